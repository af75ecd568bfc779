"""The shipped models (one folder each: model.keras + card.json), installed as ``mtl_studio_weights``.

Data only: this file makes the folder a regular package in an installed copy, so that
``importlib.resources.files("mtl_studio_weights")`` finds it. See README.md beside it.
"""
