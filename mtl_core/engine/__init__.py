"""The engine: TensorFlow/Keras code that builds, trains, evaluates and runs models.

It reads the control plane (specs, configs, the store) and never the views, the CLI or the pages.
Inference (``engine.inference``) does not import the training code, so serving a model stays light.
"""
