"""churn-spend: seed 003's two-head MLP on customer rows: churn (binary) and next-year spend (USD)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtl_core.control.modelspec import HeadSpec, ModelSpec
from mtl_core.control.presets.base import Dataset, Preset, TrainDefaults
from mtl_core.control.tasks import TaskSpec
from mtl_core.errors import UserError

TASKS = (
    TaskSpec("churn", "binary", class_names=("stays", "churns"), loss_weight=1.0,
             description="will the customer leave (binary cross-entropy)"),
    TaskSpec("spend", "regression", unit="USD", loss_weight=1.0,
             description="next-year spend (MSE, in units of the training std)"),
)

# Seed 003: shared layers, then a sigmoid head and a linear head. input_shape is set at training
# time to the encoded width (numeric columns + one-hot categories).
MODEL = ModelSpec(
    input_shape=(0,),
    backbone=("dense:64", "dense:32"),
    heads=(HeadSpec("churn", hidden=("dense:16",)), HeadSpec("spend", hidden=("dense:16",))),
)
MIN_ROWS = 20


def load_data(options: dict) -> Dataset:
    from mtl_core.control.data.tabular import labels_from_column, read_csv, table_dataset_parts

    source = options.get("source", "generated")
    if source == "generated":
        from mtl_core.control.data.customers import generate_customers

        n, seed, missing = int(options.get("n", 4000)), int(options.get("seed", 0)), float(options.get("missing", 0))
        frame = generate_customers(n, seed, missing)
        name, columns = "generated customers", {"churn": "churn", "spend": "spend"}
        what = f"synthetic customer generator (n={n}, seed={seed}, missing labels {missing:g}); not real customers"
    elif source == "csv":
        if not options.get("dir"):
            raise UserError("--data-dir: give the CSV file (e.g. customers.csv)")
        path = Path(options["dir"])
        frame, name = read_csv(path), path.name
        columns = {"churn": options.get("churn", "churn"), "spend": options.get("spend", "spend")}
        what = f"{path.name} (churn column {columns['churn']!r}, spend column {columns['spend']!r})"
    else:
        raise UserError(f"--data: unknown source {source!r} for churn-spend (known: generated, csv)")
    features = [f for f in str(options.get("features", "")).split("+") if f] or None
    x, columns = table_dataset_parts(frame, columns, features, name)
    if len(x) < MIN_ROWS:
        raise UserError(f"{name}: {len(x)} data rows; at least {MIN_ROWS} are needed to train")
    churn, label_map = _churn_labels(frame, columns["churn"], name, options.get("churn_positive"))
    y = {"churn": churn, "spend": labels_from_column(frame, columns["spend"], "regression", name)}
    notes = {"name": name, "rows": len(x)} | ({"labels": {"churn": label_map}} if label_map else {})
    return Dataset(x, y, what, notes=notes)


def _churn_labels(frame, column: str, name: str, positive: str | None):
    """The churn column as 0/1: 0/1, yes/no, true/false or stays/churns; any other two values too (the
    ``churn_positive`` option names the one that means "churns", else the second in sorted order), with
    the mapping returned for the card. More than two values is an error naming the column."""
    from mtl_core.control.data.tabular import BINARY_VALUES, is_missing, labels_from_column

    values = sorted({v.strip() for v in frame[column].tolist() if not is_missing(v)})
    known = {**BINARY_VALUES, **{c: i for i, c in enumerate(TASKS[0].class_names)}}
    if all(v.lower() in known for v in values) or len(values) != 2:
        return labels_from_column(frame, column, "binary", name, TASKS[0].class_names), None
    if positive is not None and positive not in values:
        raise UserError(f"--data-option churn_positive={positive}: column {column!r} has the values "
                        f"{values[0]!r} and {values[1]!r}")
    order = [v for v in values if v != positive] + [positive] if positive else values
    mapping = {order[0]: 0, order[1]: 1}
    labels = np.asarray([-1 if is_missing(v) else mapping[v.strip()] for v in frame[column].tolist()], dtype=np.int32)
    return labels, {v: TASKS[0].class_names[i] for v, i in mapping.items()}


PRESET = Preset(
    name="churn-spend",
    title="Customers: churn and spend",
    description="Tabular customer rows; heads: churn (binary) and next-year spend (regression, USD). "
                "Rows missing one label still train the other head.",
    seed_file="003_38d6ab5f8a655bc9.txt",
    tasks=TASKS,
    input_kind="tabular",
    model=MODEL,
    load_data=load_data,
    data_defaults={"source": "generated", "n": 4000, "seed": 0, "missing": 0.0},
    data_sources={
        "generated": "documented synthetic customer generator (offline, default; not real customers)",
        "csv": "your CSV (--data-dir FILE --data-option churn=COL,spend=COL,churn_positive=VALUE; --features A,B)",
    },
    dir_source="csv",
    offline_sources=("generated",),
    sklearn_baselines=True,
    train=TrainDefaults(epochs=40, batch_size=64, lr=1e-3, clipnorm=1.0, monitor="loss", patience=6,
                        lr_patience=3, lr_factor=0.5, min_lr=1e-5),
    stratify="churn",
    reference={"metrics": {}, "note": "seed 003 reports no numbers (plots only)"},
)
