"""What a head predicts: its kind, classes, unit, loss and metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class HeadKind:
    """What a kind of head (multiclass, binary, regression) means everywhere: its loss and metrics, the
    metric that monitors and compares it, the one its Pareto front uses, and how one raw output becomes
    the prediction JSON and a decision. One object per kind (:data:`HEAD_KINDS`), so code asks the kind
    instead of branching on its name."""

    name = ""
    loss = ""
    metrics: tuple[str, ...] = ()
    primary = ("", "max")  # (metric, "max" or "min"): early stopping, model tables, ensembles' --keep
    objective = ("", "max")  # the metric a Pareto front and hypervolume use
    classes = True  # has class names (and a label)

    def front_metric(self, metrics: dict) -> tuple[str, float | None]:
        """(metric name, value) of the front metric in ``metrics``; an undefined AUC (one class in the
        split: NaN) falls back to accuracy."""
        metric = self.objective[0]
        value = metrics.get(metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            if metric != self.primary[0] and self.primary[0] in metrics:
                return self.primary[0], metrics[self.primary[0]]
        return metric, value

    def check(self, task: TaskSpec) -> None:
        """ValueError when ``task`` cannot be a head of this kind (e.g. a binary head without two classes)."""

    def units(self, task: TaskSpec) -> int:
        """Output units of the head's last layer."""
        return 1

    def known(self, labels: np.ndarray) -> np.ndarray:
        """Which labels are present: a missing class label is -1 (or NaN), a missing value NaN."""
        return np.asarray(labels, dtype=np.float64) >= 0

    def chance(self, task: TaskSpec) -> float | None:
        """The front metric of an uninformed model (the hypervolume's reference); None: from the data."""
        return None

    def scores(self, task: TaskSpec, y_true: np.ndarray, y_pred: np.ndarray, with_details: bool) -> dict:
        """The head's metrics on labelled rows (``y_true`` without missing labels; ``y_pred`` as
        :func:`mtl_core.control.metrics.head_metrics` takes it); details: confusion matrix or baseline."""
        raise NotImplementedError

    def output(self, task: TaskSpec, value) -> dict:
        """One head's output for one input, in the prediction-JSON form of DESIGN.md."""
        raise NotImplementedError

    def decide(self, value) -> float:
        """One raw output as a decision: the class index (classification heads) or the value."""
        raise NotImplementedError


class Multiclass(HeadKind):
    name, loss, metrics = "multiclass", "sparse_categorical_crossentropy", ("accuracy",)
    primary = objective = ("accuracy", "max")

    def check(self, task) -> None:
        if len(task.class_names) < 2:
            raise ValueError(f"task {task.name}: a multiclass task needs class names")

    def units(self, task) -> int:
        return len(task.class_names)

    def chance(self, task) -> float:
        return 1.0 / max(len(task.class_names), 1)

    def scores(self, task, y_true, y_pred, with_details) -> dict:
        from sklearn.metrics import confusion_matrix

        pred = y_pred.argmax(axis=1)
        out = {"accuracy": float(np.mean(pred == y_true))}
        if with_details:
            out["confusion_matrix"] = confusion_matrix(y_true, pred, labels=list(range(len(task.class_names)))).tolist()
        return out

    def output(self, task, value) -> dict:
        probs = np.asarray(value, dtype=np.float64)
        top = int(probs.argmax())
        return {"kind": self.name, "label": task.class_names[top], "index": top,
                "probability": round(float(probs[top]), 6),
                "probabilities": {c: round(float(p), 6) for c, p in zip(task.class_names, probs, strict=True)}}

    def decide(self, value) -> float:
        return int(np.argmax(value))


class Binary(HeadKind):
    name, loss, metrics = "binary", "binary_crossentropy", ("accuracy", "auc")
    primary, objective = ("accuracy", "max"), ("auc", "max")

    def check(self, task) -> None:
        if len(task.class_names) != 2:
            raise ValueError(f"task {task.name}: a binary task needs two class names (negative, positive)")

    def chance(self, task) -> float:
        return 0.5  # accuracy of a coin, AUC of a constant

    def scores(self, task, y_true, y_pred, with_details) -> dict:
        from sklearn.metrics import confusion_matrix, roc_auc_score

        prob = y_pred.reshape(-1)
        pred = (prob >= 0.5).astype(np.int64)
        out = {"accuracy": float(np.mean(pred == y_true))}
        out["auc"] = float(roc_auc_score(y_true, prob)) if len(np.unique(y_true)) == 2 else float("nan")
        if with_details:
            out["confusion_matrix"] = confusion_matrix(y_true, pred, labels=[0, 1]).tolist()
        return out

    def output(self, task, value) -> dict:
        p = float(np.asarray(value).reshape(-1)[0])
        # "probability" is P(positive class), named by "positive"; "probabilities" gives both classes
        return {"kind": self.name, "label": task.class_names[int(p >= 0.5)], "probability": round(p, 6),
                "positive": task.class_names[1],
                "probabilities": {task.class_names[0]: round(1 - p, 6), task.class_names[1]: round(p, 6)}}

    def decide(self, value) -> float:
        return int(float(np.asarray(value).reshape(-1)[0]) >= 0.5)


class Regression(HeadKind):
    name, loss, metrics = "regression", "mse", ("mae", "mse")
    primary = objective = ("mae", "min")
    classes = False

    def known(self, labels: np.ndarray) -> np.ndarray:
        return np.isfinite(np.asarray(labels, dtype=np.float64))

    def scores(self, task, y_true, y_pred, with_details) -> dict:
        from sklearn.metrics import mean_absolute_error, mean_squared_error

        y_pred = y_pred.reshape(-1)
        out = {"mae": float(mean_absolute_error(y_true, y_pred)), "mse": float(mean_squared_error(y_true, y_pred))}
        if with_details:
            out["baseline_mae"] = float(np.mean(np.abs(y_true - np.median(y_true))))  # predict-the-median baseline
        return out

    def output(self, task, value) -> dict:
        out = {"kind": self.name, "value": round(float(np.asarray(value).reshape(-1)[0]), 6), "unit": task.unit}
        if task.value_range:
            out["range"] = list(task.value_range)
        return out

    def decide(self, value) -> float:
        return float(np.asarray(value).reshape(-1)[0])


HEAD_KINDS: dict[str, HeadKind] = {k.name: k for k in (Multiclass(), Binary(), Regression())}
KINDS = tuple(HEAD_KINDS)


@dataclass(frozen=True)
class TaskSpec:
    """One head of a multi-task model.

    ``value_range`` is the range of a regression target (shown beside predictions, and a
    bounded [0, 1] target gets a sigmoid output); ``class_names`` for a binary head are
    (negative, positive).
    """

    name: str
    kind: str
    class_names: tuple[str, ...] = ()
    unit: str = ""
    loss: str = ""
    loss_weight: float = 1.0
    value_range: tuple[float, float] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name}: kind must be one of {KINDS}, not {self.kind!r}")
        self.head_kind.check(self)
        if not self.loss:
            object.__setattr__(self, "loss", self.head_kind.loss)

    @property
    def head_kind(self) -> HeadKind:
        return HEAD_KINDS[self.kind]

    @property
    def metrics(self) -> tuple[str, ...]:
        return self.head_kind.metrics

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def primary_metric(self) -> tuple[str, str]:
        """(metric name, "max" or "min") used to monitor and compare this head."""
        return self.head_kind.primary

    @classmethod
    def from_dict(cls, d: dict) -> TaskSpec:
        """The inverse of ``to_dict`` (a model card's ``tasks`` entries); unknown keys are ignored."""
        return cls(name=d["name"], kind=d["kind"], class_names=tuple(d.get("class_names") or ()),
                   unit=d.get("unit", ""), loss=d.get("loss", ""),
                   loss_weight=d.get("loss_weight", 1.0),
                   value_range=tuple(d["value_range"]) if d.get("value_range") else None,
                   description=d.get("description", ""))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "class_names": list(self.class_names),
            "unit": self.unit,
            "loss": self.loss,
            "metrics": list(self.metrics),
            "loss_weight": self.loss_weight,
            "value_range": list(self.value_range) if self.value_range else None,
            "description": self.description,
        }


def card_tasks(card: dict) -> list[TaskSpec]:
    """The heads of a stored model, in its own order (the card may hold a subset of the preset's)."""
    return [TaskSpec.from_dict(d) for d in card["tasks"]]
