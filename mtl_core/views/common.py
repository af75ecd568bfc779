"""What every page shows the same way: head outputs as text, labels, data samples, how to get data.

Nothing in ``mtl_core/views`` imports Streamlit, and TensorFlow is imported only by the functions
that run a model (they take a ``Predictor``), so the pages that only read cards and data stay fast.
Everything is generic over presets: heads are read from the model card (a model may have fewer heads
than its preset) or from the preset, never from a preset's name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mtl_core.control.tasks import TaskSpec

FOLD_ABOVE = 12  # a multiclass head with more classes than this shows its top TOP_K and folds the rest
TOP_K = 10
DISPLAY_PIXELS = 192  # preprocessed images are shown upscaled (nearest neighbour) to about this size


def format_value(value: float, unit: str = "") -> str:
    """A regression value for people: 3 significant figures below 100, thousands separators above."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value == 0:
        return f"0 {unit}".strip()
    size = abs(value)
    text = f"{value:,.1f}" if size >= 100 else f"{value:.2f}" if size >= 1 else f"{value:.3f}"
    return f"{text} {unit}".strip()


def format_range(low: float, high: float, unit: str = "") -> str:
    """"0.00 to 1.00", "0 to 1,202 USD": both ends with the same number of decimals, set by the span."""
    span = abs(high - low) or abs(high) or 1.0
    decimals = max(0, 2 - math.floor(math.log10(span)))
    return f"{low:,.{decimals}f} to {high:,.{decimals}f} {unit}".strip()


def top_probabilities(probabilities: dict[str, float], k: int = TOP_K,
                      fold_above: int = FOLD_ABOVE) -> list[tuple[str, float]]:
    """Classes sorted by probability, highest first; beyond ``fold_above`` classes the top ``k`` and one
    ``"other (N classes)"`` entry holding the sum of the rest (so 100 classes stay readable)."""
    items = sorted(probabilities.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(items) <= fold_above:
        return [(str(c), float(p)) for c, p in items]
    rest = items[k:]
    other = (f"other ({len(rest)} classes)", float(sum(p for _, p in rest)))
    return [(str(c), float(p)) for c, p in items[:k]] + [other]


MISSING = "—"  # a ground-truth label the data does not have (a plain drawing's orientation)


def label_text(task: TaskSpec, value) -> str:
    """A ground-truth label as text; a missing label (NaN, -1) is ``MISSING``."""
    if value is None:
        return MISSING
    if not task.head_kind.classes:
        v = float(value)
        return format_value(v, task.unit) if math.isfinite(v) else MISSING
    i = int(value)
    return task.class_names[i] if 0 <= i < len(task.class_names) else MISSING


def how_to_get_data(preset) -> list[str]:
    """Lines (markdown) telling a user how to get a preset's data: its sources and the CLI."""
    lines = [f"- `{name}`: {text}" for name, text in preset.data_sources.items()]
    if preset.dir_source:
        lines.append(f"- with the files already on this machine: `python -m mtl_core train --preset {preset.name} "
                     f"--data-dir FOLDER`")
    return lines


def train_command(preset_name: str) -> str:
    return f"python -m mtl_core train --preset {preset_name}"


def to_display(x: np.ndarray, pixels: int = DISPLAY_PIXELS) -> np.ndarray:
    """A model input (H, W, C) in [0, 1] as uint8, upscaled by an integer factor with nearest neighbour
    (every input pixel becomes a visible block: this is what the model saw, not a smoothed version)."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    scale = max(1, pixels // max(arr.shape[0], arr.shape[1]))
    arr = np.repeat(np.repeat(arr, scale, axis=0), scale, axis=1)
    return np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


@dataclass
class Sample:
    """One example: its index in the data set, its picture (uint8, upscaled) or table row, and its labels."""

    index: int
    labels: dict[str, str]
    image: np.ndarray | None = None  # for display
    x: np.ndarray | None = None  # the model's input (images) for prediction
    row: dict | None = None  # tabular presets: the raw row


def make_samples(preset, data, idx: np.ndarray, tasks: list[TaskSpec] | None = None,
                 keep_x: bool = False) -> list[Sample]:
    tasks = tasks or list(preset.tasks)
    out = []
    for i in idx:
        labels = {t.name: label_text(t, data.y[t.name][i]) for t in tasks if t.name in data.y}
        if preset.input_kind == "image":
            x = np.asarray(data.x[i], dtype=np.float32)
            out.append(Sample(int(i), labels, image=to_display(x, 96), x=x if keep_x else None))
        else:
            out.append(Sample(int(i), labels, row=data.x.iloc[int(i)].to_dict()))
    return out


def pick(n_total: int, n: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n_total, size=min(n, n_total), replace=False))


def cluster_line() -> str | None:
    """The page's line about where trainings go when ``MTL_CLUSTER`` names a Ray cluster; None: here."""
    from mtl_core.control.cluster import ENV, address_from

    address = address_from(None)
    if address is None:
        return None
    return (f"Trainings run on the Ray cluster {address} (${ENV}), one CPU each, all at once as far as its nodes "
            "go; the models come back into this studio's store. The device choice applies on the node.")
