"""The Data page: a preset's default data, its samples, class balance per split and target distributions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mtl_core.control import datasets
from mtl_core.control.config import make_config
from mtl_core.views.common import Sample, label_text, make_samples, pick


@dataclass
class DataOverview:
    """What the Data page shows for a preset's default data."""

    source: str
    n: int
    sizes: dict[str, int]
    samples: list[Sample]
    table: pd.DataFrame | None  # tabular presets: sample rows with their labels
    balance: dict[str, pd.DataFrame]  # classification head -> class, split, count
    targets: dict[str, np.ndarray]  # regression head -> known values
    missing: dict[str, int]  # head -> rows without that label


def data_overview(preset, options: dict | None = None, n_samples: int = 24, seed: int = 0) -> DataOverview:
    """Samples with every label, class balance per split, regression targets; ``options`` replaces the
    preset's default data options (e.g. ``{"source": ..., "dir": ...}``)."""
    data, split, _ = datasets.rebuild(preset, make_config(preset, data=options), offline=True)
    part = np.empty(len(data), dtype=object)
    for name in ("train", "val", "test"):
        part[getattr(split, name)] = name
    balance, targets, missing = {}, {}, {}
    for task in preset.tasks:
        y = np.asarray(data.y[task.name])
        if not task.head_kind.classes:
            values = y.astype(np.float64)
            known = np.isfinite(values)
            targets[task.name] = values[known]
            missing[task.name] = int((~known).sum())
            continue
        known = y.astype(np.float64) >= 0
        missing[task.name] = int((~known).sum())
        frame = pd.DataFrame({"class": [task.class_names[int(v)] for v in y[known]], "split": part[known]})
        counts = frame.groupby(["class", "split"], sort=False).size().rename("count").reset_index()
        order = {c: i for i, c in enumerate(task.class_names)}
        balance[task.name] = counts.sort_values(["class", "split"], key=lambda s: s.map(order) if s.name == "class"
                                                else s.map({"train": 0, "val": 1, "test": 2})).reset_index(drop=True)
    idx = pick(len(data), n_samples, seed)
    samples = make_samples(preset, data, idx)
    table = None
    if preset.input_kind != "image":
        table = data.x.iloc[idx].reset_index(drop=True).copy()
        for task in preset.tasks:
            table[task.name] = [label_text(task, data.y[task.name][i]) for i in idx]
        table.insert(0, "#", idx)  # the example's index in the data set
    return DataOverview(data.source, len(data), split.sizes(), samples, table, balance, targets, missing)
