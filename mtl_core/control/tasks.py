"""What a head predicts: its kind, classes, unit, loss and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("multiclass", "binary", "regression")

# Metric per kind: which one monitors the head, and whether higher is better.
PRIMARY_METRIC = {"multiclass": ("accuracy", "max"), "binary": ("accuracy", "max"), "regression": ("mae", "min")}
DEFAULT_LOSS = {
    "multiclass": "sparse_categorical_crossentropy",
    "binary": "binary_crossentropy",
    "regression": "mse",
}
DEFAULT_METRICS = {"multiclass": ("accuracy",), "binary": ("accuracy", "auc"), "regression": ("mae", "mse")}


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
    metrics: tuple[str, ...] = ()
    loss_weight: float = 1.0
    value_range: tuple[float, float] | None = None
    description: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name}: kind must be one of {KINDS}, not {self.kind!r}")
        if self.kind == "multiclass" and len(self.class_names) < 2:
            raise ValueError(f"task {self.name}: a multiclass task needs class names")
        if self.kind == "binary" and len(self.class_names) != 2:
            raise ValueError(f"task {self.name}: a binary task needs two class names (negative, positive)")
        if not self.loss:
            object.__setattr__(self, "loss", DEFAULT_LOSS[self.kind])
        if not self.metrics:
            object.__setattr__(self, "metrics", DEFAULT_METRICS[self.kind])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def primary_metric(self) -> tuple[str, str]:
        """(metric name, "max" or "min") used to monitor and compare this head."""
        return PRIMARY_METRIC[self.kind]

    @classmethod
    def from_dict(cls, d: dict) -> TaskSpec:
        """The inverse of ``to_dict`` (a model card's ``tasks`` entries); unknown keys are ignored."""
        return cls(name=d["name"], kind=d["kind"], class_names=tuple(d.get("class_names") or ()),
                   unit=d.get("unit", ""), loss=d.get("loss", ""), metrics=tuple(d.get("metrics") or ()),
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
