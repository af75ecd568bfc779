"""Probabilities a user can take at their word: temperature scaling per classification head (Guo, Pleiss, Sun &
Weinberger 2017, "On Calibration of Modern Neural Networks") and its measure, the expected calibration error.

- One temperature T > 0 per classification head, fitted on the validation split by minimising the negative
  log-likelihood of ``softmax(log p / T)`` (multi-class) or ``sigmoid(logit p / T)`` (binary). T > 1 softens
  an over-confident head. The predicted class never changes (T keeps the order), so accuracy and AUC do not.
- ECE: the examples binned by their confidence (15 equal-width bins), the mean |accuracy - confidence| over
  bins weighted by their size. Binary heads are measured on P(predicted class), as multi-class ones.
- The card records T and the ECE before and after on the validation and the test split
  (``card["calibration"]``); the Predictor applies T to every output.

Only numpy and scipy: no TensorFlow.
"""

from __future__ import annotations

import numpy as np

BINS = 15
EPS = 1e-7
T_RANGE = (0.05, 20.0)


def _as_classes(p: np.ndarray) -> np.ndarray:
    """(N,) P(positive) of a binary head -> (N, 2); (N, C) stays."""
    p = np.asarray(p, dtype=np.float64)
    return np.stack([1.0 - p, p], axis=1) if p.ndim == 1 else p


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = BINS) -> float:
    """ECE of probabilities ``p`` ((N, C), or (N,) for a binary head) against integer labels ``y``."""
    probs = _as_classes(p)
    y = np.asarray(y).astype(int)
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    correct = (predicted == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def apply_temperature(p: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities of one head with temperature T applied; the same shape as given ((N, C) or (N,))."""
    if temperature == 1.0:
        return p
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 1:  # binary: P(positive) through its logit
        q = np.clip(p, EPS, 1 - EPS)
        return (1.0 / (1.0 + np.exp(-np.log(q / (1 - q)) / temperature))).astype(np.float32)
    logits = np.log(np.clip(p, EPS, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _nll(p: np.ndarray, y: np.ndarray) -> float:
    probs = _as_classes(p)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], EPS, 1.0))))


def fit_temperature(p: np.ndarray, y: np.ndarray) -> float:
    """The T in ``T_RANGE`` that minimises the validation NLL (1.0 when there is nothing to fit)."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(y).astype(int)
    if len(y) < 2:
        return 1.0
    found = minimize_scalar(lambda log_t: _nll(apply_temperature(p, float(np.exp(log_t))), y),
                            bounds=tuple(np.log(T_RANGE)), method="bounded")
    return float(np.exp(found.x)) if found.success else 1.0


def calibrate(tasks, labels: dict, predictions: dict) -> dict:
    """{head: {"temperature", "ece": {"validation": {"before", "after"}, "test": {...}}}} for the classification
    heads, fitted on ``predictions["validation"]``; ``labels``/``predictions``: {split: {head: array}}, with
    missing labels (-1 or NaN) left out."""
    out = {}
    for task in tasks:
        if not task.head_kind.classes:
            continue
        y, p = {}, {}
        for split in labels:
            values = np.asarray(labels[split][task.name], dtype=np.float64)
            known = task.head_kind.known(values)
            y[split], p[split] = values[known].astype(int), np.asarray(predictions[split][task.name])[known]
        temperature = fit_temperature(p["validation"], y["validation"])
        out[task.name] = {"temperature": round(temperature, 4), "ece": {
            split: {"before": round(expected_calibration_error(p[split], y[split]), 4) if len(y[split]) else None,
                    "after": round(expected_calibration_error(apply_temperature(p[split], temperature), y[split]), 4)
                    if len(y[split]) else None}
            for split in ("validation", "test")}}
    return out


def temperatures(card: dict) -> dict[str, float]:
    """The card's temperature per head (heads without one: 1, e.g. models trained before calibration)."""
    return {head: float(info.get("temperature", 1.0)) for head, info in (card.get("calibration") or {}).items()}
