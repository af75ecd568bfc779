"""The Models page: the model table, a card's metrics and curves, and a model's test split predicted."""

from __future__ import annotations

import io
import math
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mtl_core.control import datasets
from mtl_core.control.presets.base import take
from mtl_core.control.tasks import TaskSpec, card_tasks
from mtl_core.views.common import Sample, format_value, label_text, make_samples, pick

REGRESSION_TOLERANCE = 0.1  # a regression prediction counts as right within 10% of the training range


def headline(card: dict) -> str:
    """Each head's primary test metric: "shape accuracy 0.967, intensity mae 0.082"."""
    tasks = {t.name: t for t in card_tasks(card)}
    parts = []
    for head, values in card.get("metrics", {}).get("test", {}).items():
        if head in tasks:
            metric, _ = tasks[head].primary_metric
            if isinstance(values.get(metric), (int, float)):
                parts.append(f"{head} {metric} {values[metric]:.3f}")
    return ", ".join(parts)


def training_warnings(card: dict) -> list[dict]:
    """What the trainer warned of while training (e.g. a head that stopped learning, engine/conflict.py)."""
    return list((card.get("training") or {}).get("warnings") or [])


def stalled_heads(card: dict) -> dict[str, int]:
    """{head: the epoch since which it gave the same output for every input} for heads that stopped learning."""
    return {w["head"]: w["epoch"] for w in training_warnings(card) if w.get("kind") == "stalled_head"}


def how_trained(card: dict) -> str:
    """How a model was trained, in a few words: "30 epochs · static weights · 6,400 training examples"."""
    config, training = card.get("config", {}), card.get("training", {})
    parts = []
    epochs = training.get("epochs_run", config.get("epochs"))
    if epochs:
        parts.append(f"{epochs} epoch{'s' if epochs != 1 else ''}")
    weighting = config.get("weighting", "static")
    if config.get("conditioned"):
        parts.append("loss-conditioned")
    elif weighting == "static":
        weights = config.get("loss_weights", {})
        parts.append("weights " + ", ".join(f"{h} {w:g}" for h, w in weights.items()) if weights else "static weights")
    else:
        parts.append(f"{weighting} weighting")
    train_size = card.get("data", {}).get("sizes", {}).get("train")
    if train_size:
        parts.append(f"{train_size:,} training examples")
    return " · ".join(parts)


def picker_label(model, default_id: str | None) -> str:
    """A model picker's entry: what it scores and how it was trained, then its id and where it is from."""
    created = (model.card.get("created") or "")[:16].replace("T", " ")
    star = "★ default · " if model.id == default_id else ""
    stalled = stalled_heads(model.card)
    if stalled:  # first, where the eye starts: this model has a head that answers the same for everything
        star = f"⚠ {', '.join(stalled)} stopped learning · {star}"
    return " · ".join(p for p in (f"{star}{headline(model.card) or 'no test metrics'}", how_trained(model.card),
                                  f"{model.origin} {created}".strip(), model.id) if p)


def model_rows(store, presets, shown=lambda model: True) -> pd.DataFrame:
    """Every model (store and shipped) that ``shown`` lets through, newest first, with its preset's default
    marked."""
    defaults = {}
    for p in presets:
        found = store.default(p.name)
        defaults[p.name] = found.id if found else None
    rows = []
    for m in filter(shown, store.list()):
        rows.append({"default": "★" if defaults.get(m.preset) == m.id else "", "model": m.id, "preset": m.preset,
                     "source": m.origin, "created": m.card.get("created", ""),
                     "test metrics": headline(m.card), "trained": how_trained(m.card),
                     "size (MB)": round(m.card.get("model_bytes", 0) / 1e6, 2)})
    return pd.DataFrame(rows, columns=["default", "model", "preset", "source", "created", "test metrics", "trained",
                                       "size (MB)"])


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
            unit = f" ({task.unit}{'²' if metric == 'mse' else ''})" if task.unit and metric in ("mae", "mse") else ""
            rows.append({
                "head": task.name, "metric": metric + unit,
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
    card = predictor.card
    t0 = time.perf_counter()
    data, split, _ = datasets.rebuild(preset, card["config"], card.get("data", {}).get("fingerprint"),
                                      model=predictor.id, hint="its test split cannot be rebuilt", offline=True)
    tasks = predictor.tasks
    x = predictor.encode(take(data.x, split.test), data.source)
    y_pred = {k: np.asarray(v) for k, v in predictor.predict_arrays(x).items()}
    y_true = {t.name: np.asarray(data.y[t.name])[split.test] for t in tasks}
    ranges = {}
    for t in tasks:
        if not t.head_kind.classes:
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
        if not t.head_kind.classes:
            truth = float(y)
            lo, hi = ev.ranges.get(t.name, (0.0, 1.0))
            tol = REGRESSION_TOLERANCE * (hi - lo)
            ok = None if not math.isfinite(truth) else abs(float(p) - truth) <= tol
            out.append(Verdict(t.name, format_value(float(p)), format_value(truth) if ok is not None else "—", ok))
            continue
        pred = t.head_kind.decide(p)
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


def private_origin(model) -> bool:
    """Whether a model came from a private Hub repository, or from one whose privacy was not known when it was
    pulled (offline, from the cache): either way, not for visitors to download."""
    hub = model.card.get("hub")
    return bool(hub) and hub.get("private") is not False
