"""table: any CSV with one or more target columns becomes a multi-task model, one head per target.

    python -m mtl_core train --preset table --data-dir data.csv --target churn --target "spend (USD)=regression"

The heads, their kinds, class names and units come from the data (:mod:`mtl_core.control.data.table_schema`);
the other columns are the features unless ``--features`` names them (ids and constant columns are left
out, a feature that gives a target away is flagged). The network is churn-spend's MLP, with the same
scikit-learn baselines per head, so the card shows whether the network is worth it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from mtl_core.control.modelspec import HeadSpec, ModelSpec
from mtl_core.control.presets.base import Dataset, Preset, TrainDefaults
from mtl_core.errors import UserError

MIN_ROWS = 20
BACKBONE = ("dense:64", "dense:32")
TRAIN = TrainDefaults(epochs=60, batch_size=64, lr=1e-3, clipnorm=1.0, monitor="loss", patience=8,
                      lr_patience=4, lr_factor=0.5, min_lr=1e-5)


@functools.lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int, size: int):
    """The CSV as strings, read once per version of the file (a config is specialised several times)."""
    from mtl_core.control.data.tabular import read_csv

    return read_csv(Path(path))


def read_table(options: dict):
    if not options.get("dir"):
        raise UserError("--data-dir: the table preset needs your CSV file (--data-dir FILE --target COLUMN)")
    path = Path(options["dir"])
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "no such file"
        raise UserError(f"--data-dir: {path}: {what} (the table preset reads one CSV file)")
    stat = os.stat(path)
    return _read(str(path.resolve()), stat.st_mtime_ns, stat.st_size), path.name


def _schema(options: dict):
    from mtl_core.control.data import table_schema as schema

    frame, name = read_table(options)
    if not options.get("targets"):
        raise UserError(f"--target: name the target column(s) of {name} (columns: {', '.join(frame.columns)})")
    targets = [schema.infer_target(frame, column, kind, name) for column, kind in schema.parse_targets(
        options["targets"])]
    heads = [t.head for t in targets]
    if len(set(heads)) != len(heads):
        raise UserError(f"{name}: two targets get the same head name ({', '.join(heads)}); rename a column")
    named = [f for f in str(options.get("features", "")).split("+") if f] or None
    report = schema.choose_features(frame, targets, named, name)
    return frame, name, targets, report


def specialise(options: dict) -> Preset:
    """The preset of one table: a head per target, the features, and a loader for that file."""
    frame, name, targets, report = _schema(options)
    tasks = tuple(t.task() for t in targets)
    model = ModelSpec(input_shape=(0,), backbone=BACKBONE,
                      heads=tuple(HeadSpec(t.name, hidden=("dense:16",)) for t in tasks))

    def load_data(opts: dict) -> Dataset:
        from mtl_core.control.data import table_schema as schema

        frame, name, targets, report = _schema(opts)
        if len(frame) < MIN_ROWS:
            raise UserError(f"{name}: {len(frame)} data rows; at least {MIN_ROWS} are needed to train")
        y = {t.head: schema.labels(frame, t) for t in targets}
        notes = {"name": name, "rows": len(frame), "targets": {t.head: t.column for t in targets},
                 "features": report.features}
        if report.excluded:
            notes["excluded"] = report.excluded
        if report.flagged:
            notes["flagged"] = report.flagged
        return Dataset(frame[report.features].reset_index(drop=True), y,
                       f"{name} ({len(frame):,} rows; targets {', '.join(t.column for t in targets)})", notes=notes)

    stratify = next((t.name for t in tasks if t.kind != "regression"), "")
    return Preset(
        name=PRESET.name, title=f"Your table: {name}", description=PRESET.description, seed_file="",
        tasks=tasks, input_kind="tabular", model=model, load_data=load_data,
        data_defaults=dict(options), data_sources=PRESET.data_sources, dir_source="csv", offline_sources=("csv",),
        sklearn_baselines=True, train=TRAIN, stratify=stratify,
        reference={"metrics": {}, "note": "your data: no published reference"})


def _template_data(options: dict) -> Dataset:
    raise UserError("the table preset trains on your CSV: --data-dir FILE --target COLUMN[=kind] (repeatable)")


PRESET = Preset(
    name="table",
    title="Your table (any CSV)",
    description="Any CSV: one head per --target column (binary, multiclass or regression, inferred from the "
                "values), the other columns as features. Missing feature values are imputed; missing labels "
                "leave their head out for that row.",
    seed_file="",
    tasks=(),
    input_kind="tabular",
    model=ModelSpec(input_shape=(0,), backbone=BACKBONE, heads=()),
    load_data=_template_data,
    data_defaults={"source": "csv"},
    data_sources={"csv": "your CSV (--data-dir FILE --target COLUMN[=kind] ... [--features A+B])"},
    dir_source="csv",
    offline_sources=("csv",),
    sklearn_baselines=True,
    train=TRAIN,
    reference={"metrics": {}, "note": "your data: no published reference"},
    specialise=specialise,
)
