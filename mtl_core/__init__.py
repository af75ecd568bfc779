"""Multi-Task Studio: see, train and compare multi-task neural networks.

Layers, each importing only the ones below it (docs/ARCHITECTURE.md; tests/test_layers.py):
``errors`` < ``control`` (presets, configs, options, store, jobs: no TensorFlow) < ``engine``
(TensorFlow: models, training, inference) < ``views`` (what each page computes) < ``cli``.
Importing this package or the control plane is cheap, so listing presets or reading model cards
never waits for TensorFlow.
"""

__version__ = "0.1.0"
