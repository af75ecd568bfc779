"""Single-task scikit-learn baselines on the multi-task model's own split: one model per head.

They answer the user's first question about a multi-task model: does sharing help, or would a
plain gradient-boosted model per target do as well? Rows without a head's label are left out of
that head's baseline, as they are out of its loss.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from mtl_core.control.metrics import head_metrics
from mtl_core.control.tasks import TaskSpec


def sklearn_baselines(tasks: dict[str, TaskSpec], x: np.ndarray, y: dict, split, seed: int = 0) -> dict:
    """{head: {"model": name, "validation": metrics, "test": metrics}} for HistGradientBoosting per head."""
    x2 = x.reshape(len(x), -1)
    out = {}
    for name, task in tasks.items():
        labels = np.asarray(y[name]).astype(np.float64)
        known = task.head_kind.known(labels)
        train = split.train[known[split.train]]
        if not task.head_kind.classes:
            model = HistGradientBoostingRegressor(random_state=seed).fit(x2[train], labels[train])

            def predict(idx, model=model):
                return model.predict(x2[idx])
        else:
            model = HistGradientBoostingClassifier(random_state=seed).fit(x2[train], labels[train].astype(int))

            def predict(idx, model=model, task=task):
                proba = model.predict_proba(x2[idx])
                if task.kind == "binary":
                    return proba[:, list(model.classes_).index(1)] if 1 in model.classes_ else np.zeros(len(idx))
                full = np.zeros((len(idx), task.n_classes))
                full[:, model.classes_.astype(int)] = proba
                return full
        out[name] = {"model": type(model).__name__,
                     "validation": head_metrics(task, y[name][split.val], predict(split.val)),
                     "test": head_metrics(task, y[name][split.test], predict(split.test))}
    return out
