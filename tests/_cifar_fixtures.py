"""CIFAR python batches in the real on-disk format, for the tests: protocol-2 pickles with Python 2 byte
strings and numpy arrays referenced as ``numpy.core.multiarray._reconstruct``, like the originals, read by
the studio's restricted unpickler (``mtl_core.control.data.cifar``) exactly as a download would be."""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np

from mtl_core.control.data.cifar import (
    CIFAR10_DIR,
    CIFAR10_NAMES,
    CIFAR10_TRAIN_FILES,
    CIFAR100_COARSE_NAMES,
    CIFAR100_DIR,
    CIFAR100_FINE_NAMES,
    CIFAR100_FINE_TO_COARSE,
)
from mtl_core.errors import UserError


class _Py2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2's cPickle wrote the originals: bytes as py2 ``str`` opcodes (read back as
    bytes under ``encoding="bytes"``) and numpy's reconstructor under its old module name."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str

    def save_global(self, obj, name=None):
        if getattr(obj, "__name__", "") == "_reconstruct" and "numpy" in getattr(obj, "__module__", ""):
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def dump_py2(obj, path: Path) -> None:
    """Write ``obj`` as a protocol-2 pickle in the originals' dialect (see :class:`_Py2Pickler`)."""
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    path.write_bytes(buffer.getvalue())


def _palette(n: int, spread: float = 0.45) -> np.ndarray:
    """n fixed colours (independent of the fixture seed) around mid grey."""
    return 0.5 + np.random.default_rng(1234).uniform(-spread, spread, size=(n, 3))


def _fixture_images(rng: np.random.Generator, colours: np.ndarray) -> np.ndarray:
    """uint8 (N, 3072) rows: each image's colour (one per label), a bright blob, noise, and a random haze
    toward light grey, so the labels are learnable and the synthetic AQI varies."""
    n = len(colours)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    cy, cx = rng.uniform(0.2, 0.8, size=(2, n, 1, 1))
    blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.05)[..., None]
    img = colours[:, None, None, :] * (0.5 + 0.5 * blob) + rng.normal(0, 0.06, size=(n, 32, 32, 3))
    haze = rng.uniform(0.0, 0.9, size=(n, 1, 1, 1))
    img = (1 - haze) * img + haze * 0.75
    rows = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    return rows.transpose(0, 3, 1, 2).reshape(n, 3072)


def _check_sizes(n_train: int, n_test: int, minimum: int) -> None:
    if n_train < minimum or n_test < 1:
        raise UserError(f"fixture: n_train must be at least {minimum} and n_test at least 1")


def write_cifar10_fixture(folder: str | Path, n_train: int = 500, n_test: int = 100, seed: int = 0) -> Path:
    """Write a small ``cifar-10-batches-py/`` under ``folder`` in the real format; return that folder."""
    _check_sizes(n_train, n_test, 5)
    root = Path(folder) / CIFAR10_DIR
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    dump_py2({b"num_cases_per_batch": -(-n_train // 5), b"label_names": [n.encode() for n in CIFAR10_NAMES],
              b"num_vis": 3072}, root / "batches.meta")
    sizes = [n_train // 5 + (i < n_train % 5) for i in range(5)]
    for i, (fname, n) in enumerate(zip((*CIFAR10_TRAIN_FILES, "test_batch"), (*sizes, n_test), strict=True)):
        labels = rng.integers(0, 10, size=n)
        title = f"training batch {i + 1} of 5" if i < 5 else "testing batch 1 of 1"
        dump_py2({b"batch_label": title.encode(), b"labels": [int(v) for v in labels],
                  b"data": _fixture_images(rng, _palette(10)[labels]),
                  b"filenames": [f"fixture_{i}_{j:05d}.png".encode() for j in range(n)]}, root / fname)
    return root


def write_cifar100_fixture(folder: str | Path, n_train: int = 500, n_test: int = 100, seed: int = 0) -> Path:
    """Write a small ``cifar-100-python/`` under ``folder`` in the real format; return that folder."""
    _check_sizes(n_train, n_test, 1)
    root = Path(folder) / CIFAR100_DIR
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    dump_py2({b"fine_label_names": [n.encode() for n in CIFAR100_FINE_NAMES],
              b"coarse_label_names": [n.encode() for n in CIFAR100_COARSE_NAMES]}, root / "meta")
    to_coarse = np.asarray(CIFAR100_FINE_TO_COARSE)
    colours = _palette(20)[to_coarse] + 0.5 * (_palette(100) - 0.5)  # a superclass's classes look alike
    for fname, n in (("train", n_train), ("test", n_test)):
        fine = rng.integers(0, 100, size=n)
        dump_py2({b"filenames": [f"fixture_{fname}_{j:05d}.png".encode() for j in range(n)],
                  b"batch_label": f"{'training' if fname == 'train' else 'testing'} batch 1 of 1".encode(),
                  b"fine_labels": [int(v) for v in fine], b"coarse_labels": [int(v) for v in to_coarse[fine]],
                  b"data": _fixture_images(rng, colours[fine])}, root / fname)
    return root
