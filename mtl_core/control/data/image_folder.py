"""A folder of a user's images as a multi-target data set, in either of two layouts:

- ``labels.csv`` beside the images: a file column (named file, filename, image or path, else the first
  column) and one column per target; kinds are inferred as for tables (:mod:`table_schema`), ``targets``
  picks some of them;
- no ``labels.csv``: one sub-folder per class of a single target, ``class``.

Images of any size and mode are decoded by :mod:`mtl_core.control.data.images` (EXIF orientation, alpha,
16-bit) and resized to ``size`` x ``size``; greyscale when every image is, else RGB. An image that does not
decode, or a file the labels name that is not there, is listed with its reason and skipped: the rest trains.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mtl_core.control.data import table_schema as schema
from mtl_core.control.data.images import load_image, to_array
from mtl_core.control.data.tabular import csv_line, read_csv
from mtl_core.errors import UserError

LABELS_FILE = "labels.csv"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
FILE_COLUMNS = ("file", "filename", "image", "path")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")
SIZES = (32, 48, 64, 96, 128)  # the sizes a user can pick; the default is the one nearest the data's median


@dataclass
class FolderPlan:
    """What a folder holds: image files in order, the targets with one label per file, and what was skipped."""

    folder: Path
    files: list[Path]
    labels: pd.DataFrame  # one row per file, the targets' columns as text
    targets: list[schema.Target]
    layout: str  # "labels.csv" or "sub-folders"
    skipped: dict[str, str] = field(default_factory=dict)  # file -> reason


def _inside(folder: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def scan(folder: Path | str, targets: str | None = None) -> FolderPlan:
    """The folder's layout, files and targets (no image decoded yet); one-line errors naming the problem."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "a file, not a folder" if folder.is_file() else "no such folder"
        raise UserError(f"--data-dir: {folder}: {what} (the images preset reads a folder of images, with "
                        "labels.csv or one sub-folder per class)")
    name = folder.name
    if (folder / LABELS_FILE).is_file():
        frame = read_csv(folder / LABELS_FILE, f"{name}/{LABELS_FILE}")
        file_col = next((c for c in frame.columns if c.strip().lower() in FILE_COLUMNS), frame.columns[0])
        columns = [c for c, _ in schema.parse_targets(targets)] if targets else \
            [c for c in frame.columns if c != file_col]
        kinds = dict(schema.parse_targets(targets)) if targets else {}
        if not columns:
            raise UserError(f"{name}/{LABELS_FILE}: no target column besides the file column {file_col!r}")
        if file_col in columns:
            raise UserError(f"{name}/{LABELS_FILE}: {file_col!r} is the file column, it cannot be a target")
        files, keep, skipped = [], [], {}
        for i, cell in enumerate(frame[file_col].tolist()):
            path, line = folder / cell.strip(), f"line {csv_line(frame, i)}"
            if not cell.strip() or not _inside(folder, path):
                skipped[cell or line] = f"{line}: not a file inside the folder"
            elif not path.is_file():
                skipped[cell] = f"{line}: no such file"
            else:
                files.append(path)
                keep.append(i)
        if not files:
            raise UserError(f"{name}/{LABELS_FILE}: none of its {len(frame)} files is in the folder "
                            f"(e.g. {frame[file_col].iloc[0]!r}); the file column is {file_col!r}")
        labels = frame.iloc[keep].reset_index(drop=True)
        found = [schema.infer_target(labels, c, kinds.get(c), f"{name}/{LABELS_FILE}") for c in columns]
        return FolderPlan(folder, files, labels[columns], found, LABELS_FILE, skipped)
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if targets and schema.parse_targets(targets) != [("class", None)]:
        raise UserError(f"--target: {name} has no {LABELS_FILE}, so its one target is 'class' (its sub-folders)")
    files, names = [], []
    for cls in classes:
        for path in sorted((folder / cls).rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and _inside(folder, path):
                files.append(path)
                names.append(cls)
    if not files:
        loose = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        raise UserError(f"{name}: no images in sub-folders" + (f" ({len(loose)} loose images: put them in one "
                        f"sub-folder per class, or add a {LABELS_FILE})" if loose else
                        f" and no {LABELS_FILE} (one sub-folder per class, or a {LABELS_FILE})"))
    labels = pd.DataFrame({"class": names}, dtype=str)
    found = [schema.infer_target(labels, "class", None, name)]
    return FolderPlan(folder, files, labels, found, "sub-folders")


def default_size(files: list[Path], sample: int = 200) -> tuple[int, int]:
    """(size, channels) from the data: the picked size nearest the median short side of up to ``sample``
    images (read from their headers), and 1 channel if all of them are greyscale, else 3."""
    from PIL import Image

    sides, grey = [], True
    step = max(1, len(files) // sample)
    for path in files[::step]:
        try:
            with Image.open(path) as img:
                sides.append(min(img.size))
                grey = grey and img.mode in GREY_MODES
        except Exception:  # noqa: BLE001, S112 - a broken file is reported when it is decoded
            continue
    median = float(np.median(sides)) if sides else 32.0
    return min(SIZES, key=lambda s: abs(s - median)), (1 if grey and sides else 3)


def load(plan: FolderPlan, size: int, channels: int) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, str]]:
    """Decode and resize every image: (x, labels per head, skipped) where ``skipped`` adds the images that
    did not decode, each with its one-line reason."""
    images, keep, skipped = [], [], dict(plan.skipped)
    for i, path in enumerate(plan.files):
        label = os.path.relpath(path, plan.folder)
        try:
            images.append(to_array(load_image(path, name=label), (size, size), channels))
            keep.append(i)
        except UserError as exc:
            skipped[label] = str(exc).split(": ", 1)[-1]
    if not images:
        raise UserError(f"{plan.folder.name}: none of its {len(plan.files)} images decodes "
                        f"(e.g. {next(iter(skipped.items()))[0]}: {next(iter(skipped.values()))})")
    labels = plan.labels.iloc[keep].reset_index(drop=True)
    y = {t.head: schema.labels(labels, t) for t in plan.targets}
    return np.stack(images).astype(np.float32), y, skipped
