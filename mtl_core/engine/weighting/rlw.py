"""Random Loss Weighting (Lin et al. 2021): every step, weights = K * softmax(z), z ~ N(0, I),
drawn from a stateless generator keyed by (seed, step), so a training is reproducible by its seed."""

from __future__ import annotations

from keras import ops

from mtl_core.engine.weighting.base import Weighting
from mtl_core.engine.weighting.replicas import state_variable

HELP = "random loss weights, drawn afresh every step (Lin et al. 2022)"


def rlw_weights(seed: int, step, k: int):
    """K * softmax of K standard normal samples; positive, summing to K; a function of (seed, step)."""
    import tensorflow as tf

    z = tf.random.stateless_normal((k,), seed=tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)]))
    return float(k) * tf.nn.softmax(z)


class RLW(Weighting):
    name = "rlw"

    def __init__(self, heads, static_weights, seed: int = 0, **options):
        super().__init__(heads, static_weights, seed, **options)
        self.step = state_variable(0, dtype="int64", name="rlw_step")

    def adaptive(self, losses):
        self.step.assign_add(1)
        return rlw_weights(self.seed, ops.convert_to_tensor(self.step), self.k)


METHOD = RLW
