"""Training and validating a loss-conditioned model (one model for every weighting): the tf.data steps
that feed lambda as the model's second input, and the lambda-grid metrics stored in its card.

What a conditioned model is, and how lambda is chosen and checked, is in
:mod:`mtl_core.control.loss_weights` (no TensorFlow); the FiLM layers are in
:mod:`mtl_core.engine.models.conditioned`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mtl_core.control.loss_weights import DIRICHLET_ALPHA, grid_vectors, weights_vector
from mtl_core.control.metrics import all_metrics
from mtl_core.engine.batches import predict_in_batches


def sample_weights_dataset(batched, heads: list[str], seed: int):
    """A batched ``(x, y, masks-or-None)`` dataset -> ``({"input": x, "loss_weights": lambda}, y, sample weights)``
    with lambda drawn per example from Dirichlet(alpha) (stateless, seeded: a fresh draw each epoch, the same
    draws for the same seed) and each head's sample weight ``K * lambda_i`` times its label mask."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    k = len(heads)

    def add(parts, s):
        x, y = parts[0], parts[1]
        n = tf.shape(x)[0]
        gamma = tf.random.stateless_gamma([n, k], seed=tf.stack([s, tf.constant(0, tf.int64)]),
                                          alpha=DIRICHLET_ALPHA)
        lam = gamma / tf.reduce_sum(gamma, axis=1, keepdims=True)
        return _with_weights(x, y, parts[2] if len(parts) > 2 else None, lam, heads)

    return tf.data.Dataset.zip((batched, seeds)).map(add, num_parallel_calls=tf.data.AUTOTUNE)


def fixed_weights_dataset(batched, weights: np.ndarray, heads: list[str]):
    """As :func:`sample_weights_dataset` with one fixed lambda (K,) for every example (validation)."""
    lam_row = tf.constant(np.asarray(weights, dtype=np.float32)[None, :])

    def add(*parts):
        lam = tf.tile(lam_row, [tf.shape(parts[0])[0], 1])
        return _with_weights(parts[0], parts[1], parts[2] if len(parts) > 2 else None, lam, heads)

    return batched.map(add)


def _with_weights(x, y, masks, lam, heads: list[str]):
    """(tf.data sorts a dict's keys, so lambda's column of a head comes from ``heads``, never from ``y``.)"""
    k = len(heads)
    sw = {h: float(k) * lam[:, i] * (tf.cast(masks[h], tf.float32) if masks is not None else 1.0)
          for i, h in enumerate(heads)}
    return {"input": x, "loss_weights": lam}, y, sw


def grid_metrics(model, tasks: dict, x: np.ndarray, y: dict, heads: list[str]) -> list[dict]:
    """Metrics (without confusion matrices) of ``model`` on (x, y) at each lambda of :func:`grid_vectors`."""
    out = []
    for weights in grid_vectors(heads):
        pred = predict_in_batches(model, x, weights_vector(weights, heads))
        out.append({"weights": weights, "metrics": all_metrics(tasks, y, pred)})
    return out
