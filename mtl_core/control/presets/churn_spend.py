"""churn-spend: seed 003's two-head MLP on customer rows: churn (binary) and next-year spend (USD)."""

from __future__ import annotations

from pathlib import Path

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
    y = {head: labels_from_column(frame, col, TASKS[i].kind, name, TASKS[i].class_names)
         for i, (head, col) in enumerate(columns.items())}
    return Dataset(x, y, what)


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
        "csv": "your CSV (--data-dir FILE --data-option churn=COL,spend=COL,features=A+B+C)",
    },
    dir_source="csv",
    offline_sources=("generated",),
    sklearn_baselines=True,
    train=TrainDefaults(epochs=40, batch_size=64, lr=1e-3, clipnorm=1.0, monitor="loss", patience=6,
                        lr_patience=3, lr_factor=0.5, min_lr=1e-5),
    stratify="churn",
    reference={"metrics": {}, "note": "seed 003 reports no numbers (plots only)"},
)
