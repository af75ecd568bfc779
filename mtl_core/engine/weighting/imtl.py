"""IMTL (Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang 2021, "Towards Impartial Multi-task Learning", ICLR),
the hybrid of its two parts:

- IMTL-L, on the losses: each head's loss becomes e^(s_i) L_i - s_i with a learned scale s_i (trained with
  the method's own Adam; at its optimum e^(s_i) L_i = 1, every head's loss at one scale). This sets the
  heads' own weights.
- IMTL-G, on the shared weights: the update g = sum_i a_i g_i (a on the simplex, scaled to sum K here) whose
  projections on every head's unit gradient u_i are equal, g . u_1 = g . u_i: no head is favoured. In closed
  form a_(2..K) = g_1 U^T (D U^T)^-1 with the rows D_j = g_1 - g_j, U_j = u_1 - u_j, and a_1 = 1 - sum.
  It depends only on the gradients' directions, so static loss weights do not change the shared update.
"""

from __future__ import annotations

import tensorflow as tf
from keras import ops

from mtl_core.engine.weighting.base import gradient_or_zeros
from mtl_core.engine.weighting.combine import GradientCombination, gram
from mtl_core.engine.weighting.replicas import state_variable

HELP = "impartial: equal projections of the update on every head's gradient, plus learned loss scales (Liu et al. 2021)"


def imtl_weights(m) -> tf.Tensor:
    """a (K,) on the simplex whose combination has equal projections on the heads' unit gradients (M = G G^T)."""
    m = tf.cast(m, tf.float64)
    k = m.shape[0]
    if k == 1:
        return tf.ones((1,), tf.float32)
    n = tf.sqrt(tf.maximum(tf.linalg.diag_part(m), 1e-30))
    proj = m / n[None, :]  # proj[a, b] = g_a . u_b
    rhs = proj[0, 0] - proj[0, 1:]  # g_1 . (u_1 - u_k)
    a = proj[0, 0] - proj[0:1, 1:] - proj[1:, 0:1] + proj[1:, 1:]  # (g_1 - g_j) . (u_1 - u_k)
    eye = tf.eye(k - 1, dtype=tf.float64)
    rest = tf.linalg.solve(tf.transpose(a) + 1e-12 * tf.reduce_max(tf.abs(a)) * eye, rhs[:, None])[:, 0]
    return tf.cast(tf.concat([[1.0 - tf.reduce_sum(rest)], rest], axis=0), tf.float32)


class IMTL(GradientCombination):
    name = "imtl"

    def __init__(self, heads, static_weights, seed: int = 0, **options):
        super().__init__(heads, static_weights, seed, **options)
        self.scales = state_variable(ops.zeros((self.k,)), trainable=True, name="imtl_scales")

    @property
    def trainable_variables(self) -> list:
        return [self.scales]

    def task_losses(self, losses):
        s = ops.convert_to_tensor(self.scales)
        return [ops.exp(s[i]) * self.static[i] * loss - s[i] for i, loss in enumerate(losses)]

    def combine(self, grads, static):
        return self.on_simplex(imtl_weights(gram(grads)))

    def own_gradients(self, tape, losses, variables):
        return gradient_or_zeros(tape, list(losses), variables)


METHOD = IMTL
