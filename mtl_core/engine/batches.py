"""Batch prediction: the one loop that runs a model over an array of prepared inputs.

Training (test metrics, the lambda grid), evaluation and the Predictor all call it, so every output is
shaped the same way: per head, (N, classes) probabilities, or (N,) for a binary head's P(positive) and
a regression head's value.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

BATCH_SIZE = 512


def model_inputs(x: np.ndarray, loss_weights: np.ndarray | None = None):
    """What a model takes: ``x``, or for a loss-conditioned model ``{"input": x, "loss_weights": lambda}``
    with the one lambda (K,) repeated for every row."""
    if loss_weights is None:
        return x
    lam = np.asarray(loss_weights, dtype=np.float32).reshape(1, -1)
    return {"input": x, "loss_weights": np.repeat(lam, len(x), axis=0)}


def predict_in_batches(model: Callable, x: np.ndarray, loss_weights: np.ndarray | None = None,
                       batch_size: int = BATCH_SIZE) -> dict[str, np.ndarray]:
    """Per-head outputs of ``model`` (a Keras model, or any callable taking :func:`model_inputs` and
    returning {head: tensor}) for ``x``; ``loss_weights``: lambda (K,) of a loss-conditioned model."""
    x = np.asarray(x, dtype=np.float32)
    call = model if not hasattr(model, "predict") else (lambda inputs: model(inputs, training=False))
    parts: dict[str, list] = {}
    for start in range(0, len(x), batch_size):
        out = call(model_inputs(x[start:start + batch_size], loss_weights))
        for name, value in out.items():
            parts.setdefault(name, []).append(np.asarray(value, dtype=np.float32))
    result = {}
    for name, chunks in parts.items():
        arr = np.concatenate(chunks)
        result[name] = arr[:, 0] if arr.ndim > 1 and arr.shape[-1] == 1 else arr
    return result
