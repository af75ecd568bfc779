"""The control plane: what a model is and where it lives, without TensorFlow.

Heads and their kinds, presets and their data readers, model specs, training configs and the
options that make them, loss weights, the model store, background jobs, sweeps, Pareto fronts and
Hub metadata. Everything here imports in well under a second, so the CLI checks a command and the
app's pages rerun before TensorFlow is ever imported; ``tests/test_layers.py`` keeps it that way.
"""
