"""CAGrad (Liu, Liu, Jin, Stone & Liu 2021, "Conflict-Averse Gradient Descent for Multi-task Learning",
NeurIPS): the update d maximises the worst head's improvement min_i g_i.d within a ball of radius
c|g0| around the average gradient g0. Its dual is a problem on the simplex,

    w* = argmin_w  g_w . g0 + sqrt(phi) |g_w|,   g_w = sum_i w_i g_i,   phi = c^2 |g0|^2,

and d = g0 + sqrt(phi) g_w* / |g_w*|. c = 0 is plain averaging; larger c leans toward the worst head
(c < 1 keeps the paper's convergence guarantee). Solved by projected gradient descent on the simplex
(Gram matrix at unit scale, unit step), keeping the best iterate; d is written as weights on the g_i,
scaled to sum K.
"""

from __future__ import annotations

import tensorflow as tf

from mtl_core.engine.weighting.combine import GradientCombination, gram, project_to_simplex

HELP = "the update that most helps the worst-off head near the average gradient (Liu et al. 2021)"
OPTIONS = {"c": (0.4, 0.0, 0.99, "CAGrad's radius c around the average gradient")}  # default, low, high, help


def cagrad_weights(m, c: float, iterations: int = 100) -> tf.Tensor:
    """Weights a (K,), summing to 1 + c, with d = sum_i a_i g_i the CAGrad update for the average g0."""
    m = tf.cast(m, tf.float32)
    m = m / (tf.reduce_mean(tf.linalg.diag_part(m)) + 1e-20)  # the objective scales with M: solve at scale 1
    k = tf.shape(m)[0]
    kf = tf.cast(k, tf.float32)
    mean = tf.ones((k,), tf.float32) / kf
    b = tf.linalg.matvec(m, mean)  # g_i . g0
    root_phi = c * tf.sqrt(tf.maximum(tf.tensordot(mean, b, 1), 0.0))

    def objective(w):
        mw = tf.linalg.matvec(m, w)
        norm = tf.sqrt(tf.maximum(tf.tensordot(w, mw, 1), 1e-20))
        return tf.tensordot(w, b, 1) + root_phi * norm, b + root_phi * mw / norm

    def step(i, w, best, best_value):
        value, grad = objective(w)
        better = value < best_value
        best, best_value = tf.where(better, w, best), tf.minimum(value, best_value)
        w = project_to_simplex(w - grad)
        return i + 1, w, best, best_value

    _, w, best, best_value = tf.while_loop(lambda i, *_: i < iterations, step,
                                           (0, mean, mean, tf.constant(float("inf"))))
    value, _ = objective(w)
    w = tf.where(value < best_value, w, best)
    gw_norm = tf.sqrt(tf.maximum(tf.tensordot(w, tf.linalg.matvec(m, w), 1), 1e-20))
    return mean + root_phi / gw_norm * w


class CAGrad(GradientCombination):
    name = "cagrad"

    def __init__(self, heads, static_weights, seed: int = 0, c: float = OPTIONS["c"][0], **options):
        super().__init__(heads, static_weights, seed, **options)
        self.c = float(c)

    def combine(self, grads, static):
        return self.on_simplex(cagrad_weights(gram(grads), self.c))


METHOD = CAGrad
