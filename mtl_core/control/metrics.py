"""Per-head metrics from predictions, computed the same way for cards, evaluation and ensembles."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, mean_absolute_error, mean_squared_error, roc_auc_score

from mtl_core.control.tasks import TaskSpec


def head_metrics(task: TaskSpec, y_true: np.ndarray, y_pred: np.ndarray, *, with_details: bool = False) -> dict:
    """``y_pred``: class probabilities (N, C) for multiclass, P(positive) (N,) for binary, values (N,)
    for regression. Rows whose label is missing (NaN or negative class) are left out."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if task.kind == "regression":
        y_pred = y_pred.reshape(-1)
        keep = np.isfinite(y_true.astype(np.float64))
        t, p = y_true[keep].astype(np.float64), y_pred[keep]
        out = {"mae": float(mean_absolute_error(t, p)), "mse": float(mean_squared_error(t, p))}
        if with_details:
            out["baseline_mae"] = float(np.mean(np.abs(t - np.median(t))))  # predict-the-median baseline
        return out
    keep = y_true.astype(np.float64) >= 0
    t = y_true[keep].astype(np.int64)
    if task.kind == "binary":
        prob = y_pred.reshape(-1)[keep]
        out = {"accuracy": float(np.mean((prob >= 0.5) == t))}
        out["auc"] = float(roc_auc_score(t, prob)) if len(np.unique(t)) == 2 else float("nan")
        labels = [0, 1]
        pred = (prob >= 0.5).astype(np.int64)
    else:
        pred = y_pred[keep].argmax(axis=1)
        out = {"accuracy": float(np.mean(pred == t))}
        labels = list(range(task.n_classes))
    if with_details:
        out["confusion_matrix"] = confusion_matrix(t, pred, labels=labels).tolist()
    return out


def all_metrics(tasks: dict[str, TaskSpec], y_true: dict, y_pred: dict, *, with_details: bool = False) -> dict:
    return {name: head_metrics(tasks[name], y_true[name], y_pred[name], with_details=with_details)
            for name in tasks if name in y_pred}  # in the preset's head order
