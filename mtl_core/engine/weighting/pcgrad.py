"""PCGrad (Yu et al. 2020, "Gradient Surgery for Multi-Task Learning"): each head's gradient g_i (of its
statically weighted loss) is projected, against the other heads in a random order, onto the normal
plane of every g_j it conflicts with (g_i . g_j < 0): g_i <- g_i - (g_i . g_j / |g_j|^2) g_j; the update
is the sum of the projected gradients. The projection runs over all trainable weights (a head's own
weights get no gradient from the other heads, so there it changes nothing). The loss weights stay
the static ones; the order is drawn from a stateless generator keyed by (seed, step).
"""

from __future__ import annotations

import tensorflow as tf

from mtl_core.engine.weighting import replicas
from mtl_core.engine.weighting.base import Weighting, gradient_or_zeros
from mtl_core.engine.weighting.combine import flat as flatten
from mtl_core.engine.weighting.combine import unflat
from mtl_core.engine.weighting.replicas import state_variable

HELP = "projects away the conflicting part of the heads' gradients (Yu et al. 2020)"


def pcgrad_project(grads, order=None):
    """(K, P) per-task gradients -> (K, P) projected gradients; ``order`` (K,) the order of the others."""
    k = grads.shape[0]
    order = tf.range(k) if order is None else order
    projected = []
    for i in range(k):
        g = grads[i]
        for n in range(k):
            j = order[n]
            gj = tf.gather(grads, j)
            dot = tf.reduce_sum(g * gj)
            conflict = tf.logical_and(tf.not_equal(j, i), dot < 0)
            g = tf.where(conflict, g - dot / (tf.reduce_sum(gj * gj) + 1e-12) * gj, g)
        projected.append(g)
    return tf.stack(projected)


class PCGrad(Weighting):
    name = "pcgrad"
    per_task_gradients = True

    def __init__(self, heads, static_weights, seed: int = 0, **options):
        super().__init__(heads, static_weights, seed, **options)
        self.step = state_variable(0, dtype="int64", name="pcgrad_step")

    def gradients(self, tape, losses, variables):
        """The summed projected gradients of the per-head weighted losses (scalars recorded by a persistent tape)."""
        flat = [flatten(gradient_or_zeros(tape, losses[i], variables)) for i in range(self.k)]
        self.step.assign_add(1)
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.convert_to_tensor(self.step)])
        order = tf.argsort(tf.random.stateless_uniform((self.k,), seed=seed))
        grads = replicas.mean(tf.stack(flat))  # the global batch's gradients: one projection on every replica
        return unflat(tf.reduce_sum(pcgrad_project(grads, order), axis=0), variables)


METHOD = PCGrad
