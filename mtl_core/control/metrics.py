"""Per-head metrics from predictions, computed the same way for cards, evaluation and ensembles."""

from __future__ import annotations

import numpy as np

from mtl_core.control.tasks import TaskSpec


def head_metrics(task: TaskSpec, y_true: np.ndarray, y_pred: np.ndarray, *, with_details: bool = False) -> dict:
    """``y_pred``: class probabilities (N, C) for multiclass, P(positive) (N,) for binary, values (N,)
    for regression. Rows whose label is missing (NaN or negative class) are left out; the head's kind
    computes its metrics (``HeadKind.scores``)."""
    kind = task.head_kind
    y_true = np.asarray(y_true)
    keep = kind.known(y_true)
    labels = y_true[keep].astype(np.int64 if kind.classes else np.float64)
    return kind.scores(task, labels, np.asarray(y_pred, dtype=np.float64)[keep], with_details)


def all_metrics(tasks: dict[str, TaskSpec], y_true: dict, y_pred: dict, *, with_details: bool = False) -> dict:
    return {name: head_metrics(tasks[name], y_true[name], y_pred[name], with_details=with_details)
            for name in tasks if name in y_pred}  # in the preset's head order
