"""Nash-MTL (Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya 2022, "Multi-Task Learning as a
Bargaining Game", ICML): the update d = sum_i a_i g_i is the Nash bargaining solution among the heads,
characterised by G G^T a = 1/a (elementwise), a > 0: each head's share of the update, g_i . d, is 1/a_i.
Those are the stationarity conditions of the strictly convex f(a) = a^T M a / 2 - sum_i log a_i (M the Gram
matrix), so here they are solved exactly by damped Newton steps (the paper uses a sequence of convex
programs with cvxpy). The solution is invariant to scaling a head's gradient, so static loss weights do not
change the shared update (only the heads' own weights). |d|^2 = K whatever the gradients' size, so the
optimizer's clipnorm bounds the step.
"""

from __future__ import annotations

import tensorflow as tf

from mtl_core.engine.weighting.combine import GradientCombination, gram

HELP = "the Nash bargaining solution between the heads' gradients (Navon et al. 2022)"


def nash_weights(m, iterations: int = 30) -> tf.Tensor:
    """a > 0 (K,) with M a = 1 / a, by damped Newton on a^T M a / 2 - sum log a (self-concordant: the damped
    step 1 / (1 + decrement) stays inside a > 0)."""
    m = tf.cast(m, tf.float64)  # Newton on a badly conditioned M (nearly parallel gradients) needs the digits
    k = tf.shape(m)[0]
    m = m + 1e-9 * tf.reduce_mean(tf.linalg.diag_part(m)) * tf.eye(k, dtype=tf.float64)
    a0 = 1.0 / tf.sqrt(tf.maximum(tf.linalg.diag_part(m), 1e-30))  # exact for orthogonal gradients

    def step(i, a):
        grad = tf.linalg.matvec(m, a) - 1.0 / a
        hessian = m + tf.linalg.diag(1.0 / (a * a))
        delta = tf.linalg.solve(hessian, grad[:, None])[:, 0]
        decrement = tf.sqrt(tf.maximum(tf.tensordot(grad, delta, 1), 0.0))
        return i + 1, a - delta / (1.0 + decrement)

    return tf.cast(tf.while_loop(lambda i, a: i < iterations, step, (0, a0))[1], tf.float32)


class NashMTL(GradientCombination):
    name = "nash_mtl"

    def combine(self, grads, static):
        return nash_weights(gram(grads))


METHOD = NashMTL
