"""Layers of a loss-conditioned model ("You Only Train Once", Dosovitskiy & Djolonga, ICLR 2020).

The model takes the loss-weight vector lambda (one weight per head) as a second input. ``LogLossWeights``
puts it on the simplex and takes its logarithm, a small MLP (plain Dense layers) turns that into a
conditioning vector, and each ``FiLM`` layer maps the conditioning vector to a per-channel scale and shift
of the features it modulates: ``x * (1 + gamma) + beta``. The FiLM kernels start at zero, so a fresh
conditioned model computes exactly what the plain architecture computes.

Registered with Keras (package ``mtl_core``), each with its ``get_config``: a conditioned model loads with
``safe_mode=True`` like every other model of the studio.
"""

from __future__ import annotations

import keras
from keras import ops

MIN_WEIGHT = 1e-3  # lambda is clipped here before the log: a head with weight 0 still has a finite input
# The FiLM output scale of a conditioned model built now (``FiLM(scale=...)``). With Adam, scaling a layer's
# output by s moves that output s times as fast, so 0.1 makes lambda's scale and shift learn ten times more
# slowly than the network they modulate: at scale 1 (the first conditioned models) they grew fast enough to
# disturb the slow-learning heads (the study: bench/conditioned.py, figures in docs/conditioned.md).
FILM_SCALE = 0.1


@keras.saving.register_keras_serializable(package="mtl_core")
class LogLossWeights(keras.layers.Layer):
    """lambda (B, K), any positive scale -> log of lambda normalised to sum 1, clipped at ``min_weight``.

    Why the log: the interesting weightings differ by ratios (0.1 vs 0.01 matters as much as 0.9 vs 0.09),
    which the log makes differences of equal size for the MLP.
    """

    def __init__(self, min_weight: float = MIN_WEIGHT, **kwargs):
        super().__init__(**kwargs)
        self.min_weight = float(min_weight)

    def call(self, inputs):
        lam = ops.maximum(ops.cast(inputs, "float32"), 0.0)
        lam = lam / ops.maximum(ops.sum(lam, axis=-1, keepdims=True), 1e-12)
        return ops.log(ops.maximum(lam, self.min_weight))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "min_weight": self.min_weight}


@keras.saving.register_keras_serializable(package="mtl_core")
class FiLM(keras.layers.Layer):
    """Feature-wise linear modulation: ``[features (B, ..., C), condition (B, D)] -> features * (1 + gamma) + beta``
    with ``(gamma, beta) = condition @ kernel + bias`` per channel, broadcast over any spatial axes.

    Kernel and bias start at zero (identity): training learns how much lambda should change each channel.
    ``scale`` multiplies ``(gamma, beta)``: the default 1 is the plain layer (and what a model saved before
    the argument existed loads with); conditioned models are built with :data:`FILM_SCALE`.
    """

    def __init__(self, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def build(self, input_shape):
        feature_shape, condition_shape = input_shape
        channels, dim = int(feature_shape[-1]), int(condition_shape[-1])
        self.channels = channels
        self.kernel = self.add_weight(shape=(dim, 2 * channels), initializer="zeros", name="kernel")
        self.bias = self.add_weight(shape=(2 * channels,), initializer="zeros", name="bias")

    def call(self, inputs):
        features, condition = inputs
        condition = ops.cast(condition, self.compute_dtype)
        film = ops.matmul(condition, ops.cast(self.kernel, self.compute_dtype)) + ops.cast(self.bias,
                                                                                           self.compute_dtype)
        if self.scale != 1.0:
            film = film * self.scale
        gamma, beta = film[:, :self.channels], film[:, self.channels:]
        for _ in range(len(features.shape) - 2):  # (B, C) -> (B, 1, ..., 1, C) for conv features
            gamma, beta = ops.expand_dims(gamma, 1), ops.expand_dims(beta, 1)
        return features * (1.0 + gamma) + beta

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def conditioning(lam, units: tuple[int, ...] = (64, 64), name: str = "lambda"):
    """log lambda -> a small ReLU MLP: the vector every FiLM layer reads."""
    z = LogLossWeights(name=f"{name}_log")(lam)
    for i, n in enumerate(units):
        z = keras.layers.Dense(n, activation="relu", name=f"{name}_mlp_{i}")(z)
    return z
