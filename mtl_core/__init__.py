"""Multi-Task Studio's engine: presets -> data -> model -> trainer -> store -> predictor.

Importing this package is cheap: TensorFlow is imported only by the modules that build, train
or run models (``models``, ``training``, ``inference``), so listing presets or reading model
cards stays fast.
"""

__version__ = "0.1.0"
