"""The seed's own on-disk format: ``X.npy`` (N,H,W) images and ``y.npy`` (N, heads) labels.

Column j of ``y`` is the label of the j-th task. Everything is checked before training starts,
and every problem is reported as one line naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtl_core.control.tasks import TaskSpec
from mtl_core.errors import UserError


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"{path}: no such file (the data folder needs X.npy and y.npy)")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: empty file (0 bytes)")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic != b"\x93NUMPY":
        raise UserError(f"{path}: not a valid .npy array (no NPY header: not a file written by numpy.save)")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        msg = str(exc).splitlines()[0]
        if "pickle" in msg:
            msg = "holds Python objects (pickled), not numbers"
        raise UserError(f"{path}: not a valid .npy array ({msg})") from None
    except (OSError, EOFError) as exc:
        raise UserError(f"{path}: not a valid .npy array ({str(exc).splitlines()[0]})") from None
    if not isinstance(arr, np.ndarray):
        raise UserError(f"{path}: expected one array, found an archive")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise UserError(f"{path}: dtype {arr.dtype} is not numeric")
    return arr


def load_xy_dir(folder: str | Path, tasks: tuple[TaskSpec, ...], image_size: tuple[int, int]
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Return X as float32 (N,H,W,1) in [0,1] and one label array per task."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder (expected a folder holding X.npy and y.npy)")
    x = _load_npy(folder / "X.npy")
    y = _load_npy(folder / "y.npy")
    xp, yp = folder / "X.npy", folder / "y.npy"
    h, w = image_size
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1:] != (h, w):
        raise UserError(f"{xp}: shape {x.shape}, expected (N, {h}, {w})")
    if len(x) == 0:
        raise UserError(f"{xp}: holds no images")
    if y.ndim != 2 or y.shape[1] != len(tasks):
        raise UserError(f"{yp}: shape {y.shape}, expected (N, {len(tasks)}): one column per head "
                        f"({', '.join(t.name for t in tasks)})")
    if len(y) != len(x):
        raise UserError(f"{yp}: {len(y)} rows but X.npy has {len(x)} images")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.argwhere(bad)[0][0])
        raise UserError(f"{xp}: {int(bad.sum())} NaN or infinite pixel values (first in image {first})")
    if x.min() < 0 or x.max() > 1:
        raise UserError(f"{xp}: pixel values must lie in [0, 1] (or be uint8 0..255); "
                        f"found {x.min():.3g}..{x.max():.3g}")
    labels = {}
    for j, task in enumerate(tasks):
        col = y[:, j].astype(np.float64)
        where = f"{yp}: column {j} ({task.name})"
        if not np.isfinite(col).all():
            raise UserError(f"{where}: NaN or infinite label in row {int(np.argwhere(~np.isfinite(col))[0][0])}")
        if task.kind in ("multiclass", "binary"):
            n = task.n_classes
            if (col != np.round(col)).any() or col.min() < 0 or col.max() >= n:
                row = int(np.argwhere((col != np.round(col)) | (col < 0) | (col >= n))[0][0])
                raise UserError(f"{where}: labels must be integers 0..{n - 1}; row {row} has {col[row]:g}")
            labels[task.name] = col.astype(np.int32)
        else:
            lo, hi = task.value_range or (-np.inf, np.inf)
            if col.min() < lo or col.max() > hi:
                row = int(np.argwhere((col < lo) | (col > hi))[0][0])
                raise UserError(f"{where}: values must lie in [{lo:g}, {hi:g}]; row {row} has {col[row]:g}")
            labels[task.name] = col.astype(np.float32)
    return x[..., None], labels
