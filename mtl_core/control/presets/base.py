"""Preset: everything the studio knows about one reference system (seed)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mtl_core.control.modelspec import ModelSpec
from mtl_core.control.tasks import TaskSpec


def take(x, idx):
    """Rows ``idx`` of an array or of a DataFrame (tabular presets keep raw columns until the split)."""
    return x.iloc[idx] if hasattr(x, "iloc") else x[idx]  # a frame keeps its index: the CSV's row numbers


@dataclass
class Dataset:
    """Inputs and one label array per head, with a fingerprint of their exact content."""

    x: np.ndarray
    y: dict[str, np.ndarray]
    source: str  # one line saying where the data came from, shown in cards and the app
    fingerprint: str = ""
    notes: dict = field(default_factory=dict)  # what the card's "data" says besides (name, rows, columns left out)

    def __post_init__(self) -> None:
        if not self.fingerprint:
            # hashlib reads the array's buffer directly: no copy of a 700 MB CIFAR array
            raw = self.x.to_csv(index=False).encode() if hasattr(self.x, "to_csv") else \
                np.ascontiguousarray(self.x)
            digest = hashlib.sha256(raw)
            for name in sorted(self.y):
                digest.update(name.encode())
                digest.update(np.ascontiguousarray(self.y[name]).tobytes())
            self.fingerprint = digest.hexdigest()

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class TrainDefaults:
    """Hyperparameters of the seed, used unless the user overrides them."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    clipnorm: float = 1.0
    monitor: str = "loss"  # early stopping: a head (its validation metric), "loss" (total validation loss) or
    # "heads" (every head's error relative to chance, averaged: engine/stopping.py)
    patience: int = 8
    lr_patience: int = 10
    lr_factor: float = 0.7
    min_lr: float = 1e-6


@dataclass(frozen=True)
class Preset:
    """A named multi-task system: tasks, data, default model and training, seed's reference.

    ``load_data(options)`` returns a Dataset; ``options`` holds ``source`` plus source-specific
    keys (e.g. ``n``, ``noise``, ``seed`` for a generator, ``dir`` for user files).
    """

    name: str
    title: str
    description: str
    seed_file: str
    tasks: tuple[TaskSpec, ...]
    input_kind: str  # "image" or "tabular"
    model: ModelSpec
    load_data: Callable[[dict], Dataset]
    data_defaults: dict
    data_sources: dict[str, str]  # source name -> one-line description (what, where, size)
    dir_source: str = ""  # the source that reads a user's folder given by --data-dir
    offline_sources: tuple[str, ...] = ()  # sources that load without a download
    sklearn_baselines: bool = False  # fit a scikit-learn model per head on the same split (cheap inputs only)
    train: TrainDefaults = TrainDefaults()
    stratify: str = ""  # head whose labels stratify the splits
    reference: dict = field(default_factory=dict)  # {"metrics": {head: {metric: v}}, "note": str}
    variants: dict[str, ModelSpec] = field(default_factory=dict)  # other named architectures (`train --variant`)
    variant_train: dict[str, dict] = field(default_factory=dict)  # make_config overrides that come with a variant
    # A preset whose heads come from the user's data (`table`): data options -> the preset for that data
    # (its tasks, model and loader). None: the heads are the preset's own.
    specialise: Callable[[dict], Preset] | None = None

    @property
    def data_defined(self) -> bool:
        return self.specialise is not None

    def for_data(self, options: dict | None) -> Preset:
        """This preset as it applies to data ``options`` (a config's ``data``)."""
        return self.specialise(options or {}) if self.specialise is not None else self

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def task(self, name: str) -> TaskSpec:
        return next(t for t in self.tasks if t.name == name)

    @property
    def tasks_by_name(self) -> dict[str, TaskSpec]:
        return {t.name: t for t in self.tasks}

    def summary(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "seed_file": self.seed_file,
            "input": self.input_kind,
            "heads": [t.to_dict() for t in self.tasks],
            "data_sources": self.data_sources,
            "default_data": self.data_defaults.get("source"),
            "reference": self.reference,
            "variants": list(self.variants),
        }
