"""The "Your data" page: a user's CSV becomes a table-preset dataset. Saving the upload (under the session's
own folder, named by content), what each column could be as a target, the heads a choice of targets gives,
and the data options the Train page trains with. No Streamlit, no TensorFlow.

A dataset lives in ``$MTL_HOME/datasets/<who>/<name>-<sha12>.csv``: ``who`` is "owner" or a visitor
session's tag, so nothing of one visitor's data is listed for another (:func:`visible`).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mtl_core.control.data import table_schema as schema
from mtl_core.control.data.tabular import read_csv
from mtl_core.control.store import mtl_home
from mtl_core.errors import UserError

MAX_MB = 50  # the server's upload limit (.streamlit/config.toml maxUploadSize)
KIND_CHOICES = ("auto", "binary", "multiclass", "regression")


def datasets_root() -> Path:
    return mtl_home() / "datasets"


def _folder_name(who: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", who)[:64] or "owner"


@dataclass
class Dataset:
    """A user's saved CSV: its file, the name they gave it, its content hash, size and columns."""

    path: Path
    name: str
    fingerprint: str
    rows: int
    columns: list[str]


def save_upload(data: bytes, name: str, who: str) -> Dataset:
    """Check the CSV (one-line errors naming the file) and keep it under ``who``'s folder, named by content;
    the same file uploaded again is the same dataset. Written to a temporary file and moved in."""
    digest, path = _destination(data, name, who, "data", ".csv")
    frame = read_csv(data, name)
    if len(frame.columns) < 2:
        raise UserError(f"{name}: one column only; a table needs a target and at least one feature")
    folder = path.parent
    if not path.exists():
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return Dataset(path, name, digest, len(frame), list(frame.columns))


def _destination(data: bytes, name: str, who: str, fallback: str, suffix: str = "") -> tuple[str, Path]:
    """(sha256 of the upload, where it is kept: ``who``'s folder, ``<name>-<sha12><suffix>``), after the size
    check every upload gets."""
    if len(data) > MAX_MB * 1_000_000:
        raise UserError(f"{name}: {len(data) / 1e6:.0f} MB, more than the {MAX_MB} MB an upload may have")
    digest = hashlib.sha256(data).hexdigest()
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem)[:40] or fallback
    folder = datasets_root() / _folder_name(who)
    folder.mkdir(parents=True, exist_ok=True)
    return digest, folder / f"{stem}-{digest[:12]}{suffix}"


def _specs(targets: dict[str, str]) -> str:
    """``{"a": "auto", "b": "binary"}`` -> ``"a+b=binary"`` (the targets option of the table and images presets)."""
    return "+".join(col if kind in (None, "", "auto") else f"{col}={kind}" for col, kind in targets.items())


def visible(card: dict, who: str) -> bool:
    """Whether a model may be listed for ``who``: one trained on a dataset of another session is not (the
    owner sees everything); models of other presets and shipped ones always are."""
    if who == "owner":
        return True
    folder = (card.get("config") or {}).get("data", {}).get("dir")
    if not folder:
        return True
    try:
        owner = Path(folder).resolve().relative_to(datasets_root().resolve()).parts[0]
    except (ValueError, IndexError):
        return True  # not a dataset uploaded in the app (a CLI user's own path)
    return owner == _folder_name(who)


@dataclass
class ColumnRole:
    """What a column would be as a target (its inferred kind, classes or unit), or why it cannot be one."""

    column: str
    kind: str | None  # None: cannot be a target
    detail: str  # classes, unit, or the reason
    missing: int
    distinct: int


def column_roles(path: Path) -> list[ColumnRole]:
    frame = read_csv(path)
    roles = []
    for column in frame.columns:
        cells = frame[column].tolist()
        missing = sum(schema.is_missing(v) for v in cells)
        distinct = len({v for v in cells if not schema.is_missing(v)})
        try:
            target = schema.infer_target(frame, column, None, path.name)
        except UserError as exc:
            roles.append(ColumnRole(column, None, str(exc).split(": ", 1)[-1], missing, distinct))
            continue
        detail = (", ".join(target.class_names) if target.class_names else
                  f"numbers{' in ' + target.unit if target.unit else ''}")
        roles.append(ColumnRole(column, target.kind, detail, missing, distinct))
    return roles


def data_options(dataset_path: Path, targets: dict[str, str], features: list[str] | None = None) -> dict:
    """The table preset's data options (what `train --data-dir FILE --target COL=KIND ...` stands for)."""
    options = {"source": "csv", "dir": str(dataset_path), "targets": _specs(targets)}
    if features:
        options["features"] = "+".join(features)
    return options


def train_flags(options: dict) -> list[str]:
    """The `train` flags of :func:`data_options` (for the Train page's argv and command line)."""
    flags = ["--data-dir", options["dir"]]
    for spec in filter(None, options.get("targets", "").split("+")):
        flags += ["--target", spec]
    if options.get("features"):
        flags += ["--features", options["features"].replace("+", ",")]
    if options.get("size"):
        flags += ["--data-option", f"size={options['size']}"]
    return flags


@dataclass
class HeadView:
    """One head of the chosen targets: its kind and classes or unit, and what to draw."""

    head: str
    column: str
    kind: str
    classes: tuple[str, ...] = ()
    unit: str = ""
    counts: dict[str, int] = field(default_factory=dict)  # classification: label -> rows
    values: np.ndarray | None = None  # regression: the known values
    missing: int = 0


@dataclass
class Plan:
    heads: list[HeadView]
    features: list[str]
    excluded: dict[str, str]
    flagged: dict[str, str]


def plan(path: Path, targets: dict[str, str]) -> Plan:
    """The heads the targets give, their class balance or distribution, and the features: exactly what the
    table preset will train (the same inference), or a one-line UserError."""
    from mtl_core.control.presets import get_preset

    options = data_options(path, targets)
    get_preset("table").for_data(options)  # what training will do: raises for a target that cannot be learned
    frame = read_csv(path)
    parsed = [schema.infer_target(frame, c, k, path.name) for c, k in schema.parse_targets(options["targets"])]
    report = schema.choose_features(frame, parsed, None, path.name)
    return Plan(head_views(frame, parsed), report.features, report.excluded, report.flagged)


def head_views(labels: pd.DataFrame, targets: list) -> list[HeadView]:
    """Each target's head with what to draw: class counts, or the known values (``labels``: one row per
    example, the targets' columns as text)."""
    heads = []
    for target in targets:
        y = schema.labels(labels, target)
        if target.kind == "regression":
            known = y[np.isfinite(y)]
            heads.append(HeadView(target.head, target.column, target.kind, unit=target.unit, values=known,
                                  missing=int(len(y) - len(known))))
        else:
            counts = pd.Series(y[y >= 0]).value_counts()
            heads.append(HeadView(target.head, target.column, target.kind, target.class_names, counts={
                name: int(counts.get(i, 0)) for i, name in enumerate(target.class_names)},
                missing=int((y < 0).sum())))
    return heads


# ----------------------------------------------------------------------------- a zip of images

MAX_FILES = 20_000
MAX_UNZIPPED_MB = 500


def save_zip(data: bytes, name: str, who: str) -> Dataset:
    """Unpack a zip of images (with labels.csv, or one sub-folder per class) under ``who``'s folder, named by
    content. Refused, with nothing left behind: an entry whose path escapes the folder, more than
    :data:`MAX_FILES` files or :data:`MAX_UNZIPPED_MB` MB unpacked, no image at all."""
    import io
    import shutil
    import zipfile

    from mtl_core.control.data import image_folder

    digest, final = _destination(data, name, who, "images")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise UserError(f"{name}: not a zip file") from None
    entries = [e for e in archive.infolist() if not e.is_dir()]
    for entry in entries:
        parts = Path(entry.filename.replace("\\", "/")).parts
        if entry.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise UserError(f"{name}: {entry.filename!r} points outside the folder; nothing was unpacked")
    if len(entries) > MAX_FILES:
        raise UserError(f"{name}: {len(entries):,} files, more than the {MAX_FILES:,} a dataset may have")
    if sum(e.file_size for e in entries) > MAX_UNZIPPED_MB * 1_000_000:
        raise UserError(f"{name}: more than {MAX_UNZIPPED_MB} MB once unpacked")
    keep = [e for e in entries if Path(e.filename).suffix.lower() in image_folder.IMAGE_SUFFIXES
            or Path(e.filename).name == image_folder.LABELS_FILE]
    if not any(Path(e.filename).suffix.lower() in image_folder.IMAGE_SUFFIXES for e in keep):
        raise UserError(f"{name}: no images in the zip (png, jpg, webp, bmp, gif, tiff)")
    if not final.exists():
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
        try:
            for entry in keep:
                target = tmp / entry.filename
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(entry) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            os.replace(_single_top_folder(tmp), final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    plan = image_folder.scan(final)
    return Dataset(final, name, digest, len(plan.files), [t.column for t in plan.targets])


def _single_top_folder(folder: Path) -> Path:
    """A zip made of one folder ("photos/...") unpacks to that folder's content, not a folder inside it."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir() and not (folder / "labels.csv").exists():
        inner = entries[0]
        if (inner / "labels.csv").exists() or any(p.is_dir() for p in inner.iterdir()):
            return inner
    return folder


def image_data_options(folder: Path, targets: dict[str, str], size: int) -> dict:
    return {"source": "folder", "dir": str(folder), "targets": _specs(targets), "size": str(size)}


def image_plan(folder: Path, targets: dict[str, str]) -> tuple[Plan, object]:
    """The heads of an image folder's chosen targets (class counts or value distributions, over the listed
    files), and the folder plan itself (files, skipped)."""
    from mtl_core.control.data import image_folder

    folder_plan = image_folder.scan(folder, _specs(targets) or None)
    return Plan(head_views(folder_plan.labels, folder_plan.targets), [], {}, {}), folder_plan
