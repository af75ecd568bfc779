"""The engine: TensorFlow/Keras code that builds, trains, evaluates and runs models.

It reads the control plane (specs, configs, the store) and never the views, the CLI or the pages.
Inference (``engine.inference``) does not import the training code, so serving a model stays light.
"""

import os

# TensorFlow runs oneDNN's CPU kernels by default only where the CPU has AVX-512 VNNI/BF16 or AMX; elsewhere
# (an AVX2 CPU such as the 2-core AMD EPYC this project is measured on) its own float32 convolution gradients
# are the slow part of a training step. With oneDNN on, a shapes-3head step took 134 ms instead of 214 ms
# there (`python bench/step_variants.py`, docs/benchmarks.md). It must be set before TensorFlow is imported,
# and every engine module imports TensorFlow after this package; a user's own setting wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
