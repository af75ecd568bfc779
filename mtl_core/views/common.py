"""What the app's pages show, computed here so that it is tested without a browser.

The pages (``pages/*.py``) hold widgets and layout only; every number, table and sample they show
comes from a function of this module. Nothing here imports Streamlit, and TensorFlow is imported
only by the functions that run a model (they take a ``Predictor``), so the pages that only read
cards and data stay fast.

Everything is generic over presets: heads are read from the model card (a model may have fewer
heads than its preset) or from the preset, never from a preset's name.
"""

from __future__ import annotations

import dataclasses
import io
import math
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mtl_core.control.tasks import TaskSpec
from mtl_core.errors import UserError

IMAGE_TYPES = ("png", "jpg", "jpeg", "webp", "bmp", "gif")  # what the upload widgets accept
FOLD_ABOVE = 12  # a multiclass head with more classes than this shows its top TOP_K and folds the rest
TOP_K = 10
DISPLAY_PIXELS = 192  # preprocessed images are shown upscaled (nearest neighbour) to about this size
REGRESSION_TOLERANCE = 0.1  # a regression prediction counts as right within 10% of the training range


# ----------------------------------------------------------------------------- tasks and values


def card_tasks(card: dict) -> list[TaskSpec]:
    """The heads of a stored model, in its own order (the card may hold a subset of the preset's)."""
    return [TaskSpec.from_dict(d) for d in card["tasks"]]


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


def label_text(task: TaskSpec, value) -> str:
    """A ground-truth label as text; a missing label (NaN, -1) is an em dash."""
    if value is None:
        return "—"
    if task.kind == "regression":
        v = float(value)
        return format_value(v, task.unit) if math.isfinite(v) else "—"
    i = int(value)
    return task.class_names[i] if 0 <= i < len(task.class_names) else "—"


# ----------------------------------------------------------------------------- data availability


def offline_sources(preset) -> tuple[str, ...]:
    """The preset's data sources that load without a download.

    Presets may declare ``offline_sources``; otherwise a source counts as offline when its one-line
    description says "offline" and no "download" (the convention every preset's ``data_sources`` follows).
    """
    declared = getattr(preset, "offline_sources", None)
    if declared is not None:
        return tuple(declared)
    out = []
    for name, text in preset.data_sources.items():
        low = text.lower()
        if "offline" in low and "download" not in low:
            out.append(name)
    return tuple(out)


def data_available(preset, options: dict | None = None) -> bool:
    """Whether ``options`` (a model's ``config["data"]``, default: the preset's) load offline."""
    options = options or preset.data_defaults
    if options.get("dir"):
        return Path(options["dir"]).exists()
    return options.get("source", "") in offline_sources(preset)


def how_to_get_data(preset) -> list[str]:
    """Lines (markdown) telling a user how to get a preset's data: its sources and the CLI."""
    lines = [f"- `{name}`: {text}" for name, text in preset.data_sources.items()]
    if preset.dir_source:
        lines.append(f"- with the files already on this machine: `python -m mtl_core train --preset {preset.name} "
                     f"--data-dir FOLDER`")
    return lines


def train_command(preset_name: str) -> str:
    return f"python -m mtl_core train --preset {preset_name}"


# ----------------------------------------------------------------------------- datasets and splits


def config_from_dict(d: dict):
    """A TrainConfig from a card's ``config`` (keys this version does not know are left out)."""
    from mtl_core.control.config import TrainConfig

    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig.from_dict({k: v for k, v in d.items() if k in known})


def load_split(preset, config: dict | None = None):
    """(Dataset, Split, TrainConfig) for a model's config (default: the preset's default training);
    the split is rebuilt exactly as training made it (same data, seed and fractions)."""
    from mtl_core.control.config import make_config
    from mtl_core.control.data.splits import stratified_split
    from mtl_core.engine.training import load_training_data

    cfg = config_from_dict(config) if config else make_config(preset)
    if not data_available(preset, cfg.data):
        raise UserError(f"{preset.name}: the data of this model is not on this machine "
                        f"({preset.data_sources.get(cfg.data.get('source', ''), cfg.data.get('source', '?'))})")
    data = load_training_data(preset, cfg)
    labels = data.y.get(preset.stratify)
    split = stratified_split(labels, len(data), val_fraction=cfg.val_fraction,
                             test_fraction=cfg.test_fraction, seed=cfg.seed)
    return data, split, cfg


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


def gallery(preset, card: dict, n: int = 12, seed: int = 0) -> list[Sample]:
    """``n`` samples of the model's own test split (never seen in training), with all their labels."""
    data, split, _ = load_split(preset, card["config"])
    idx = split.test[pick(len(split.test), n, seed)]
    return make_samples(preset, data, idx, card_tasks(card), keep_x=True)


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
    from mtl_core.control.config import make_config

    config = make_config(preset, data=options).to_dict() if options else None
    data, split, _ = load_split(preset, config)
    part = np.empty(len(data), dtype=object)
    for name in ("train", "val", "test"):
        part[getattr(split, name)] = name
    balance, targets, missing = {}, {}, {}
    for task in preset.tasks:
        y = np.asarray(data.y[task.name])
        if task.kind == "regression":
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


# ----------------------------------------------------------------------------- tabular form


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


# ----------------------------------------------------------------------------- model context


@dataclass
class ModelContext:
    """What the Predict page shows beside a model's outputs: each regression head's training range, the
    form's widgets (tabular) and an example CSV; ``note`` says why the training data could not be read."""

    ranges: dict[str, tuple[float, float, str]]  # head -> (low, high, where it comes from)
    features: list[FeatureSpec]
    example_csv: bytes
    note: str = ""


def model_context(preset, card: dict) -> ModelContext:
    tasks = card_tasks(card)
    ranges: dict[str, tuple[float, float, str]] = {}
    for t in tasks:
        if t.kind == "regression" and t.value_range:
            ranges[t.name] = (float(t.value_range[0]), float(t.value_range[1]), "the task's range")
    data = split = None
    note = ""
    tabular = card["input"]["kind"] == "tabular"
    if tabular or any(t.kind == "regression" and t.name not in ranges for t in tasks):  # else no data needed
        try:
            data, split, _ = load_split(preset, card["config"])
        except UserError as exc:
            note = str(exc)
    for t in tasks:
        if t.kind == "regression" and t.name not in ranges:
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
    return ModelContext(ranges, features, example, note)


# ----------------------------------------------------------------------------- predictions


@dataclass
class ItemResult:
    """One input's prediction, or its error, with what the model saw."""

    input: str
    outputs: dict | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    model_input: np.ndarray | None = None  # images: (H, W, C) in [0, 1]; tables: the encoded row
    original: str = ""  # e.g. "256×256 RGB JPEG"


def predict_images(predictor, sources: list, names: list[str | None] | None = None) -> tuple[list[ItemResult], float]:
    """Every image is tried; a bad one gets its one-line error and the others still run.

    The same steps as ``Predictor.predict`` (decode, resize, model), keeping each preprocessed array so
    the page can show what the model saw. Returns the items and the seconds it took.
    """
    from mtl_core.control.data.images import describe_source, load_image
    from mtl_core.engine.inference import head_output

    t0 = time.perf_counter()
    names = names or [None] * len(sources)
    items, arrays, good = [], [], []
    for source, name in zip(sources, names, strict=True):
        label = describe_source(source, name)
        try:
            img = load_image(source, name=label)
            original = "" if isinstance(source, np.ndarray) else \
                f"{img.width}×{img.height} {img.mode}{' ' + img.format if img.format else ''}"
            x = predictor.prepare(img, name=label)
        except UserError as exc:
            items.append(ItemResult(label, error=str(exc)))
            continue
        good.append(len(items))
        arrays.append(x)
        items.append(ItemResult(label, model_input=x, original=original))
    if arrays:
        out = predictor.predict_arrays(np.stack(arrays))
        for row, i in enumerate(good):
            items[i].outputs = {t.name: head_output(t, out[t.name][row]) for t in predictor.tasks}
    return items, time.perf_counter() - t0


def predict_row(predictor, row: dict, name: str = "form") -> tuple[ItemResult, float]:
    """One table row (a dict of feature values) through ``Predictor.predict``, with its encoded vector."""
    from mtl_core.control.data.tabular import TabularEncoder

    t0 = time.perf_counter()
    [item] = predictor.predict([row], names=[name]).items
    seconds = time.perf_counter() - t0
    result = ItemResult(item["input"], item.get("outputs"), item.get("error"), item.get("warnings", []))
    if result.error is None:
        enc = TabularEncoder.from_dict(predictor.card["preprocessing"]["tabular"])
        result.model_input, _ = enc.encode_row(row, name)
    return result, seconds


def encoded_table(card: dict, row: dict, vector: np.ndarray) -> pd.DataFrame:
    """The encoded row beside the raw values: what the model saw (standardised numbers, one-hot)."""
    from mtl_core.control.data.tabular import TabularEncoder

    enc = TabularEncoder.from_dict(card["preprocessing"]["tabular"])
    raw = []
    for col in enc.order:
        if col in enc.numeric:
            raw.append(str(row.get(col, "")))
        else:
            raw += [str(row.get(col, ""))] * len(enc.categorical[col])
    return pd.DataFrame({"feature": enc.feature_names, "your value": raw,
                         "model input": np.round(np.asarray(vector, dtype=np.float64), 4)})


@dataclass
class BatchResult:
    """A CSV's predictions: one result row per input row (errors and warnings in their own columns)."""

    name: str
    items: list[ItemResult]
    table: pd.DataFrame  # row, input columns, per-head outputs, warnings, error
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
        """Columns for the page: row, the outputs, error, warnings, then the inputs (the CSV keeps its
        inputs first)."""
        outputs = [c for c in self.table.columns if c not in {"row", "warnings", "error", *self.inputs}]
        return ["row", *outputs, "error", "warnings", *self.inputs]


def output_columns(tasks: list[TaskSpec], outputs: dict | None, taken: set[str] = frozenset()) -> dict:
    """One prediction as flat result-table columns: "<head>: predicted" and the probability of the
    predicted class (multiclass) or of the positive class (binary). Names already ``taken`` by input
    columns get a "model " prefix."""
    cols: dict = {}
    for t in tasks:
        out = (outputs or {}).get(t.name)
        if t.kind == "regression":
            cols[f"{t.name}: predicted" + (f" ({t.unit})" if t.unit else "")] = out["value"] if out else None
        else:
            cols[f"{t.name}: predicted"] = out["label"] if out else None
            if t.kind == "binary":
                cols[f"{t.name}: P({t.class_names[1]})"] = out["probability"] if out else None
            else:
                cols[f"{t.name}: probability"] = out["probability"] if out else None
    return {(f"model {k}" if k in taken else k): v for k, v in cols.items()}


def predict_csv(predictor, data: bytes, name: str) -> BatchResult:
    """Every row of a CSV through ``Predictor.predict``; a bad row gets its error, the others their outputs."""
    from mtl_core.control.data.tabular import read_csv

    t0 = time.perf_counter()
    prediction = predictor.predict([data], names=[name])
    seconds = time.perf_counter() - t0
    items = [ItemResult(i["input"], i.get("outputs"), i.get("error"), i.get("warnings", []))
             for i in prediction.items]
    try:
        frame = read_csv(data, name=name, row_errors={})  # ragged rows: their own errors, as in the Predictor
    except UserError as exc:
        return BatchResult(name, items, pd.DataFrame(), seconds, error=str(exc))
    if len(items) != len(frame):  # cannot happen when read_csv agrees with the Predictor; keep it honest
        return BatchResult(name, items, pd.DataFrame(), seconds,
                           error=f"{name}: {len(items)} predictions for {len(frame)} rows")
    tasks = predictor.tasks
    taken = {*frame.columns, "row", "warnings", "error"}
    rows = []
    for (_, raw), item in zip(frame.iterrows(), items, strict=True):
        rows.append({**raw.to_dict(), **output_columns(tasks, item.outputs, taken),
                     "warnings": "; ".join(item.warnings), "error": item.error or ""})
    table = pd.DataFrame(rows)
    table.insert(0, "row", np.arange(2, len(table) + 2))  # the CSV line (the header is line 1)
    return BatchResult(name, items, table, seconds, inputs=list(frame.columns))


# ----------------------------------------------------------------------------- models


def model_rows(store, presets) -> pd.DataFrame:
    """Every model (store and shipped), newest first, with its preset's default marked."""
    defaults = {}
    for p in presets:
        found = store.default(p.name)
        defaults[p.name] = found.id if found else None
    rows = []
    for m in store.list():
        tasks = {t.name: t for t in card_tasks(m.card)}
        test = m.card.get("metrics", {}).get("test", {})
        summary = []
        for head, values in test.items():
            if head in tasks:
                metric, _ = tasks[head].primary_metric
                if metric in values:
                    summary.append(f"{head} {metric} {values[metric]:.3f}")
        rows.append({"default": "★" if defaults.get(m.preset) == m.id else "", "model": m.id, "preset": m.preset,
                     "source": m.origin, "created": m.card.get("created", ""),
                     "test metrics": ", ".join(summary), "MB": round(m.card.get("model_bytes", 0) / 1e6, 2)})
    return pd.DataFrame(rows, columns=["default", "model", "preset", "source", "created", "test metrics", "MB"])


def _num(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else round(float(x), 4)


def metrics_table(card: dict) -> pd.DataFrame:
    """Per head and metric: test and validation values, the seed's reference, the single-task baseline
    (when the card has one) and the predict-the-median baseline of regression heads."""
    reference = (card.get("reference") or {}).get("metrics", {})
    baselines = card.get("baselines") or {}
    metrics = card.get("metrics", {})
    rows = []
    for task in card_tasks(card):
        test = metrics.get("test", {}).get(task.name, {})
        val = metrics.get("validation", {}).get(task.name, {})
        for metric in (m for m in test if not isinstance(test[m], list) and m != "baseline_mae"):
            base = baselines.get(task.name, {})
            rows.append({
                "head": task.name, "metric": metric,
                "test": _num(test.get(metric)), "validation": _num(val.get(metric)),
                "reference (seed)": _num(reference.get(task.name, {}).get(metric)),
                "single-task baseline (test)": _num(base.get("test", {}).get(metric)),
                "baseline model": base.get("model") or None,
                "predict the median (test)": _num(test.get("baseline_mae")) if metric == "mae" else None,
            })
    frame = pd.DataFrame(rows)
    return frame.dropna(axis=1, how="all") if len(frame) else frame


def history_curves(card: dict) -> dict:
    """The card's history in the normalised form {"epochs", "train": {head: {metric: [...]}, "loss"}, "val",
    "lr"}; older cards kept Keras's flat history and are converted."""
    history = card.get("history") or {}
    if "train" in history:
        return history
    from mtl_core.engine.training import normalise_history

    return normalise_history(history, [t.name for t in card_tasks(card)])


def model_zip(folder: Path) -> bytes:
    """The model folder (model.keras + card.json) as a zip, its files under the folder's name."""
    folder = Path(folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{folder.name}/{path.relative_to(folder)}")
    return buf.getvalue()


@dataclass
class Evaluation:
    """A model's predictions on its own test split, for the Models page's plots and sample grid."""

    n: int
    y_true: dict[str, np.ndarray]
    y_pred: dict[str, np.ndarray]  # (N, C) probabilities, (N,) P(positive) or (N,) values
    ranges: dict[str, tuple[float, float]]  # regression head -> training range (for the tolerance)
    samples: dict[int, Sample]  # test row -> sample (picture or table row), for the rows below
    random_rows: list[int]  # a random choice of test rows
    mistake_rows: list[int]  # test rows where at least one head is wrong (samples kept for the first few)
    seconds: float = 0.0


def evaluate_on_test(predictor, preset, n_samples: int = 24, seed: int = 0) -> Evaluation:
    """Rebuild the model's test split from its card (same data, seed and split) and predict all of it."""
    from mtl_core.control.presets.base import take

    card = predictor.card
    t0 = time.perf_counter()
    data, split, _ = load_split(preset, card["config"])
    recorded = card.get("data", {}).get("fingerprint")
    if recorded and data.fingerprint != recorded:
        raise UserError(f"{predictor.id}: its training data has changed since training "
                        f"({card['data'].get('source', '')}); its test split cannot be rebuilt")
    tasks = predictor.tasks
    x = take(data.x, split.test)
    if card["input"]["kind"] == "tabular":
        from mtl_core.control.data.tabular import TabularEncoder

        x = TabularEncoder.from_dict(card["preprocessing"]["tabular"]).encode_frame(x, name=data.source)
    y_pred = {k: np.asarray(v) for k, v in predictor.predict_arrays(x).items()}
    y_true = {t.name: np.asarray(data.y[t.name])[split.test] for t in tasks}
    ranges = {}
    for t in tasks:
        if t.kind == "regression":
            y = np.asarray(data.y[t.name], dtype=np.float64)[split.train]
            y = y[np.isfinite(y)]
            ranges[t.name] = tuple(t.value_range) if t.value_range else (float(y.min()), float(y.max()))
    ev = Evaluation(len(split.test), y_true, y_pred, ranges, {}, [], [])
    ev.random_rows = [int(r) for r in pick(len(split.test), n_samples, seed)]
    ev.mistake_rows = [r for r in range(ev.n) if any(v.correct is False for v in verdicts(tasks, ev, r))]
    rows = sorted(set(ev.random_rows) | set(ev.mistake_rows[:n_samples]))
    for row, sample in zip(rows, make_samples(preset, data, split.test[rows], tasks), strict=True):
        ev.samples[row] = sample
    ev.seconds = time.perf_counter() - t0
    return ev


def roc_points(y_true: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(false-positive rates, true-positive rates, AUC) over rows with a label; None with one class only."""
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.asarray(y_true).astype(np.float64)
    keep = y >= 0
    if len(np.unique(y[keep])) < 2:
        return None
    fpr, tpr, _ = roc_curve(y[keep].astype(int), np.asarray(p)[keep])
    return fpr, tpr, float(roc_auc_score(y[keep].astype(int), np.asarray(p)[keep]))


@dataclass
class Verdict:
    head: str
    predicted: str
    truth: str
    correct: bool | None  # None: no label for this head


def verdicts(tasks: list[TaskSpec], ev: Evaluation, row: int) -> list[Verdict]:
    """Every head's prediction for test row ``row`` against its label: right, wrong, or unlabelled.
    A regression value is right within ``REGRESSION_TOLERANCE`` of the training range."""
    out = []
    for t in tasks:
        y, p = ev.y_true[t.name][row], ev.y_pred[t.name][row]
        if t.kind == "regression":
            truth = float(y)
            lo, hi = ev.ranges.get(t.name, (0.0, 1.0))
            tol = REGRESSION_TOLERANCE * (hi - lo)
            ok = None if not math.isfinite(truth) else abs(float(p) - truth) <= tol
            out.append(Verdict(t.name, format_value(float(p)), format_value(truth) if ok is not None else "—", ok))
            continue
        pred = int(np.argmax(p)) if t.kind == "multiclass" else int(float(p) >= 0.5)
        truth = int(y) if float(y) >= 0 else -1
        out.append(Verdict(t.name, t.class_names[pred], label_text(t, truth), None if truth < 0 else pred == truth))
    return out


def verdict_table(tasks: list[TaskSpec], ev: Evaluation, rows: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test samples of a tabular model: their features, then per head "predicted (true: ...)"; and a
    same-shaped frame of True/False/None saying which cells are right (for colouring)."""
    table, marks = [], []
    for r in rows:
        sample = ev.samples[r]
        row, mark = {}, {}
        for v in verdicts(tasks, ev, r):
            row[v.head] = f"{v.predicted} (true: {v.truth})"
            mark[v.head] = v.correct
        row.update(sample.row or {})
        mark.update({k: None for k in (sample.row or {})})
        table.append(row)
        marks.append(mark)
    return pd.DataFrame(table), pd.DataFrame(marks)
