"""Aligned-MTL (Senushkin, Patakin, Kuznetsov & Konushin 2023, "Independent Component Alignment for
Multi-Task Learning", CVPR): the heads' gradient matrix G (K x P) is replaced by the closest matrix whose
rows are orthogonal and of one length, the smallest singular value sigma of G: with G G^T = V L V^T,
G' = sigma V L^(-1/2) V^T G, so G' G'^T = sigma^2 I (condition number 1: no dominating and no conflicting
head). The update is sum_i w_i g'_i with the static loss weights w (applied to the unweighted gradients,
since the alignment would erase their scale). Directions with a tiny eigenvalue (linearly dependent
gradients) are dropped, and sigma is the smallest of those kept.
"""

from __future__ import annotations

import tensorflow as tf

from mtl_core.engine.weighting.combine import GradientCombination, gram

HELP = "aligns the heads' gradients to orthogonal ones of equal length (Senushkin et al. 2023)"


def aligned_weights(m, w, tolerance: float = 1e-7) -> tf.Tensor:
    """a (K,) with sum_i a_i g_i = sum_i w_i g'_i, for M = G G^T and task weights w."""
    m = tf.cast(m, tf.float64)
    values, vectors = tf.linalg.eigh(m)
    kept = values > tolerance * tf.reduce_max(values)
    sigma = tf.sqrt(tf.reduce_min(tf.where(kept, values, tf.reduce_max(values))))
    inv_root = tf.where(kept, 1.0 / tf.sqrt(tf.where(kept, values, 1.0)), 0.0)
    b = sigma * tf.matmul(vectors * inv_root[None, :], vectors, transpose_b=True)  # sigma V L^-1/2 V^T
    return tf.cast(tf.linalg.matvec(b, tf.cast(w, tf.float64)), tf.float32)


class AlignedMTL(GradientCombination):
    name = "aligned_mtl"

    def combine(self, grads, static):
        safe = tf.where(static > 0, static, 1.0)
        raw = tf.where((static > 0)[:, None], grads / safe[:, None], 0.0)  # the unweighted gradients
        # weights on the rows of ``grads`` (the weighted gradients): a_i / static_i
        return tf.where(static > 0, aligned_weights(gram(raw), static) / safe, 0.0)


METHOD = AlignedMTL
