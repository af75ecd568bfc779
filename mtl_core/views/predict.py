"""The Predict page: predictions with what the model saw, the tabular form's widgets, batch CSVs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mtl_core.control import datasets
from mtl_core.control.tasks import TaskSpec, card_tasks
from mtl_core.errors import UserError
from mtl_core.views.common import Sample, make_samples, pick
from mtl_core.views.models import stalled_heads

IMAGE_TYPES = ("png", "jpg", "jpeg", "webp", "bmp", "gif")  # what the upload widgets accept


def gallery(preset, card: dict, n: int = 12, seed: int = 0) -> list[Sample]:
    """``n`` samples of the model's own test split (never seen in training), with all their labels."""
    data, split, _ = datasets.rebuild(preset, card["config"], offline=True)
    idx = split.test[pick(len(split.test), n, seed)]
    return make_samples(preset, data, idx, card_tasks(card), keep_x=True)


@dataclass
class FeatureSpec:
    """One widget of the tabular form: its kind, default and range (from the training data when it is
    on this machine, else from the card's mean and standard deviation)."""

    name: str
    kind: str  # "numeric" or "categorical"
    default: float | int | str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int = 1
    integer: bool = False
    options: list[str] = field(default_factory=list)
    help: str = ""


def _nice_step(std: float) -> float:
    if not math.isfinite(std) or std <= 0:
        return 0.1
    return float(10 ** math.floor(math.log10(std) - 1))


def feature_specs(card: dict, train_rows: pd.DataFrame | None = None) -> list[FeatureSpec]:
    """Widget specs for a tabular model: numeric columns default to the training mean and allow the
    training range widened by half its span each way (never below 0 for a column that never is);
    categorical columns offer the training categories, defaulting to the most frequent one."""
    from mtl_core.control.data.tabular import TabularEncoder, to_number

    enc = TabularEncoder.from_dict(card["preprocessing"]["tabular"])
    specs = []
    for col in enc.order:
        if col in enc.numeric:
            mean, std = enc.numeric[col]
            values = None
            if train_rows is not None and col in train_rows:
                try:
                    values = np.array([to_number(str(v)) for v in train_rows[col]], dtype=np.float64)
                    values = values[np.isfinite(values)]
                except ValueError:
                    values = None
            if values is not None and len(values):
                lo, hi = float(values.min()), float(values.max())
                integer = bool(np.all(values == np.round(values)))
                span = max(hi - lo, std, 1e-9)
                low = lo - span / 2 if lo < 0 else max(0.0, lo - span / 2)
                high = hi + span / 2
                how = f"training data: {lo:g} to {hi:g}, mean {mean:.4g}"
            else:
                integer = False
                low, high = mean - 4 * std, mean + 4 * std
                how = f"training mean {mean:.4g}, std {std:.4g} (range: mean ± 4 std)"
            if integer:
                low, high = math.floor(low), math.ceil(high)
                default = int(min(max(round(mean), low), high))
                specs.append(FeatureSpec(col, "numeric", default, int(low), int(high), 1, True, help=how))
            else:
                step = _nice_step(std)
                low, high = math.floor(low / step) * step, math.ceil(high / step) * step
                default = float(min(max(round(mean / step) * step, low), high))
                specs.append(FeatureSpec(col, "numeric", round(default, 10), round(low, 10), round(high, 10),
                                         step, False, help=how))
        else:
            options = list(enc.categorical[col])
            default = options[0] if options else ""
            if train_rows is not None and col in train_rows and len(train_rows):
                counts = train_rows[col].astype(str).value_counts()
                default = next((c for c in counts.index if c in options), default)
            specs.append(FeatureSpec(col, "categorical", default, options=options,
                                     help=f"{len(options)} categories seen in training"))
    return specs


@dataclass
class ModelContext:
    """What the Predict page shows beside a model's outputs: each regression head's training range, the
    form's widgets (tabular) and an example CSV; ``note`` says why the training data could not be read."""

    ranges: dict[str, tuple[float, float, str]]  # head -> (low, high, where it comes from)
    features: list[FeatureSpec]
    example_csv: bytes
    note: str = ""
    stalled: dict[str, int] = field(default_factory=dict)  # head -> epoch it stopped learning (card warnings)


def model_context(preset, card: dict) -> ModelContext:
    tasks = card_tasks(card)
    ranges: dict[str, tuple[float, float, str]] = {}
    for t in tasks:
        if not t.head_kind.classes and t.value_range:
            ranges[t.name] = (float(t.value_range[0]), float(t.value_range[1]), "the task's range")
    data = split = None
    note = ""
    tabular = card["input"]["kind"] == "tabular"
    if tabular or any(not t.head_kind.classes and t.name not in ranges for t in tasks):  # else no data needed
        try:
            data, split, _ = datasets.rebuild(preset, card["config"], offline=True)
        except UserError as exc:
            note = str(exc)
    for t in tasks:
        if not t.head_kind.classes and t.name not in ranges:
            if data is not None:
                y = np.asarray(data.y[t.name], dtype=np.float64)[split.train]
                y = y[np.isfinite(y)]
                if len(y):
                    ranges[t.name] = (float(y.min()), float(y.max()), "training data")
            elif t.name in (card.get("target_scale") or {}):
                mean, std = card["target_scale"][t.name]
                ranges[t.name] = (mean - 2 * std, mean + 2 * std, "training mean ± 2 std")
    features, example = [], b""
    if tabular:
        train_rows = data.x.iloc[split.train] if data is not None else None
        features = feature_specs(card, train_rows)
        if data is not None:
            rows = data.x.iloc[split.test[:5]]
        else:
            rows = pd.DataFrame([{f.name: f.default for f in features}])
        example = rows.to_csv(index=False).encode()
    return ModelContext(ranges, features, example, note, stalled=stalled_heads(card))


@dataclass
class ItemResult:
    """One input's prediction, or its error, with what the model saw."""

    input: str
    outputs: dict | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    model_input: np.ndarray | None = None  # images: (H, W, C) in [0, 1]; tables: the encoded row
    original: str = ""  # e.g. "256×256 RGB JPEG"


def _item(item: dict, model_input) -> ItemResult:
    """A prediction item and the ``ModelInput`` it came from, as the page shows them."""
    return ItemResult(item["input"], item.get("outputs"), item.get("error"), item.get("warnings", []),
                      model_input.array if model_input is not None else None,
                      model_input.original if model_input is not None else "")


def predict_images(predictor, sources: list, names: list[str | None] | None = None) -> tuple[list[ItemResult], float]:
    """Every image through ``Predictor.predict`` (a bad one gets its one-line error, the others still run),
    with what the model saw. Returns the items and the seconds it took."""
    prediction = predictor.predict(sources, names=names)
    return [_item(item, model_input) for item, model_input in zip(prediction.items, prediction.inputs, strict=True)], \
        prediction.seconds


def predict_row(predictor, row: dict, name: str = "form") -> tuple[ItemResult, float]:
    """One table row (a dict of feature values) through ``Predictor.predict``, with its encoded vector."""
    prediction = predictor.predict([row], names=[name])
    return _item(prediction.items[0], prediction.inputs[0]), prediction.seconds


def encoded_table(card: dict, row: dict, vector: np.ndarray) -> pd.DataFrame:
    """The encoded row beside the raw values: what the model saw (standardised numbers, one-hot)."""
    from mtl_core.control.data.tabular import TabularEncoder, is_missing

    enc = TabularEncoder.from_dict(card["preprocessing"]["tabular"])
    raw = []
    for col in enc.order:
        if col in enc.numeric:
            raw.append(str(row.get(col, "")))
            if col in enc.indicators:  # its missing-indicator input
                raw.append("missing" if is_missing(row.get(col, ""), numeric=True) else "")
        else:
            raw += [str(row.get(col, ""))] * len(enc.categorical[col])
    return pd.DataFrame({"feature": enc.feature_names, "your value": raw,
                         "model input": np.round(np.asarray(vector, dtype=np.float64), 4)})


@dataclass
class BatchResult:
    """A CSV's predictions: one result row per input row (errors and warnings in their own columns)."""

    name: str
    items: list[ItemResult]
    table: pd.DataFrame  # line, input columns, per-head outputs, warnings, error
    seconds: float
    error: str | None = None  # the whole file could not be read
    inputs: list[str] = field(default_factory=list)  # the input columns of ``table``

    @property
    def failed(self) -> int:
        return sum(i.error is not None for i in self.items)

    @property
    def warned(self) -> int:
        return sum(bool(i.warnings) for i in self.items)

    def csv(self) -> bytes:
        return self.table.to_csv(index=False).encode()

    def display_order(self) -> list[str]:
        """Columns for the page: line, the outputs, error, warnings, then the inputs (the CSV keeps its
        inputs first)."""
        outputs = [c for c in self.table.columns if c not in {"line", "warnings", "error", *self.inputs}]
        return ["line", *outputs, "error", "warnings", *self.inputs]


def output_columns(tasks: list[TaskSpec], outputs: dict | None, taken: set[str] = frozenset()) -> dict:
    """One prediction as flat result-table columns: "<head>: predicted" and the probability of the
    predicted class (multiclass) or of the positive class (binary). Names already ``taken`` by input
    columns get a "model " prefix."""
    cols: dict = {}
    for t in tasks:
        out = (outputs or {}).get(t.name)
        if not t.head_kind.classes:
            cols[f"{t.name}: predicted" + (f" ({t.unit})" if t.unit else "")] = out["value"] if out else None
        else:
            cols[f"{t.name}: predicted"] = out["label"] if out else None
            if t.kind == "binary":
                cols[f"{t.name}: P({t.class_names[1]})"] = out["probability"] if out else None
            else:
                cols[f"{t.name}: probability"] = out["probability"] if out else None
    return {(f"model {k}" if k in taken else k): v for k, v in cols.items()}


def image_batch_files(tasks: list[TaskSpec], items: list[ItemResult], preset: str, model: str) -> dict[str, bytes]:
    """An image batch's results to download, as for a table batch: {"csv": one row per file (its outputs,
    warnings and error), "json": the CLI's prediction JSON (``predict --json``)}."""
    import json

    rows = [{"file": item.input, "as read": item.original,
             **output_columns(tasks, item.outputs, {"file", "as read", "warnings", "error"}),
             "warnings": "; ".join(item.warnings), "error": item.error or ""} for item in items]
    predictions = []
    for item in items:
        entry = {"input": item.input}
        if item.error is not None:
            entry["error"] = item.error
        else:
            entry["outputs"] = item.outputs
            if item.warnings:
                entry["warnings"] = item.warnings
        predictions.append(entry)
    document = {"preset": preset, "model": model, "predictions": predictions}
    return {"csv": pd.DataFrame(rows).to_csv(index=False).encode(),
            "json": (json.dumps(document, indent=2) + "\n").encode()}


def predict_csv(predictor, data: bytes, name: str) -> BatchResult:
    """Every row of a CSV through ``Predictor.predict``; a bad row gets its error, the others their outputs.
    The result table keeps each row as read (from the prediction's inputs: the CSV is parsed once)."""
    prediction = predictor.predict([data], names=[name])
    items = [_item(i, m) for i, m in zip(prediction.items, prediction.inputs, strict=True)]
    rows_read = [m.row for m in prediction.inputs if m is not None and m.row is not None]
    if not rows_read:  # the file itself could not be read (its one error item says why)
        return BatchResult(name, items, pd.DataFrame(), prediction.seconds, error=items[0].error if items else None)
    columns = list(rows_read[0])
    taken = {*columns, "line", "warnings", "error"}
    rows = []
    for item, model_input in zip(items, prediction.inputs, strict=True):
        rows.append({**model_input.row, **output_columns(predictor.tasks, item.outputs, taken),
                     "warnings": "; ".join(item.warnings), "error": item.error or ""})
    table = pd.DataFrame(rows)
    table.insert(0, "line", [m.line for m in prediction.inputs])  # the CSV line, as an editor numbers it
    return BatchResult(name, items, table, prediction.seconds, inputs=columns)


def overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """The image the model saw with one head's explanation laid over it (red where the head's evidence is,
    yellow where most), as a float (H, W, 3) in [0, 1] for :func:`common.to_display`."""
    base = np.asarray(image, dtype=np.float32)
    base = np.repeat(base, 3, axis=-1) if base.shape[-1] == 1 else base[..., :3]
    heat = np.clip(np.asarray(heat, dtype=np.float32), 0.0, 1.0)[..., None]
    colour = np.concatenate([np.ones_like(heat), heat, np.zeros_like(heat)], axis=-1)
    alpha = 0.65 * heat
    return np.clip(0.7 * base * (1 - alpha) + colour * alpha, 0.0, 1.0)


def explanation_overlays(predictor, items: list[ItemResult]) -> list[dict[str, np.ndarray] | None]:
    """Per item (None where it failed), each head's explanation over the image it saw (mtl_core.engine.explain)."""
    good = [i for i, item in enumerate(items) if item.error is None and item.model_input is not None]
    out: list[dict[str, np.ndarray] | None] = [None] * len(items)
    if not good:
        return out
    maps = predictor.explain_arrays(np.stack([items[i].model_input for i in good]))
    for row, i in enumerate(good):
        out[i] = {head: overlay(items[i].model_input, maps[head][row]) for head in maps}
    return out
