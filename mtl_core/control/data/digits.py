"""Coloured digits for color-digits (seed 004): a digit drawn in red or green on black, 28x28x3.

Two sources of grey digits, both coloured the same way:

* ``load_sklearn_digits()``: scikit-learn's bundled handwritten digits (1,797 real 8x8 images,
  values 0..16, UCI "Optical Recognition of Handwritten Digits"), upsampled to 20x20 with bilinear
  interpolation and centred in a 28x28 frame as MNIST digits are. Offline; the default.
* ``load_mnist(folder=None)``: MNIST's 70,000 28x28 digits, from ``mnist.npz`` in ``folder``
  (the file keras.datasets leaves in ~/.keras/datasets) or downloaded by keras.datasets (11 MB).

Colouring (``colourise``), deterministic by seed: the colour label is drawn 50/50 per image
(0 = red, 1 = green); the grey digit goes into that channel, scaled by a brightness drawn from
[0.6, 1.0], so the colour head must read which channel is lit, not how bright it is.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from mtl_core.errors import UserError

COLOR_NAMES = ("red", "green")
MNIST_BYTES = 11_490_434  # size of mnist.npz as served to keras.datasets


def load_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 28, 28) float32 in [0, 1] and labels 0..9."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    out = np.zeros((len(bunch.images), 28, 28), dtype=np.float32)
    for i, img in enumerate(bunch.images):
        small = Image.fromarray((img / 16.0).astype(np.float32), mode="F")
        out[i, 4:24, 4:24] = np.asarray(small.resize((20, 20), Image.Resampling.BILINEAR))
    return np.clip(out, 0, 1), bunch.target.astype(np.int32)


def _read_mnist_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in f.files]
            if missing:
                raise UserError(f"{path}: not an MNIST archive (missing {', '.join(missing)})")
            x = np.concatenate([f["x_train"], f["x_test"]])
            y = np.concatenate([f["y_train"], f["y_test"]])
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001  (a cut-off download: BadZipFile, zlib.error, EOFError...)
        raise UserError(f"{path}: not a readable .npz archive ({str(exc).splitlines()[0][:120]})") from None
    if len(x) == 0:
        raise UserError(f"{path}: no images in the archive")
    if x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) != len(y):
        raise UserError(f"{path}: images have shape {x.shape}, expected (N, 28, 28) with one label each")
    if y.min() < 0 or y.max() > 9:
        raise UserError(f"{path}: labels must be digits 0..9")
    return x.astype(np.float32) / 255.0, y.astype(np.int32)


def load_mnist(folder: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST train+test (70,000 images); our own split is made later, stratified by digit."""
    if folder:
        path = Path(folder)
        path = path / "mnist.npz" if path.is_dir() else path
        if not path.is_file():
            raise UserError(f"{path}: no such file (expected mnist.npz as keras.datasets saves it)")
        return _read_mnist_npz(path)
    cached = Path.home() / ".keras" / "datasets" / "mnist.npz"
    if not cached.is_file():
        print(f"downloading MNIST through keras.datasets ({MNIST_BYTES / 1e6:.1f} MB, once; "
              f"cached in {cached.parent})", file=sys.stderr, flush=True)
    try:
        import keras

        (xtr, ytr), (xte, yte) = keras.datasets.mnist.load_data()
    except Exception as exc:  # noqa: BLE001  (network errors come in many types)
        raise UserError(f"MNIST download failed ({str(exc).splitlines()[0][:160]}); offline, use the default "
                        f"data or --data-dir with a folder holding mnist.npz") from None
    return np.concatenate([xtr, xte]).astype(np.float32) / 255.0, np.concatenate([ytr, yte]).astype(np.int32)


def colourise(grey: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(N,28,28) grey -> (N,28,28,3) red-or-green images and colour labels (0 red, 1 green)."""
    rng = np.random.default_rng(seed)
    colour = rng.integers(0, 2, size=len(grey)).astype(np.int32)
    brightness = rng.uniform(0.6, 1.0, size=len(grey)).astype(np.float32)
    rgb = np.zeros((*grey.shape, 3), dtype=np.float32)
    rgb[np.arange(len(grey)), :, :, colour] = grey * brightness[:, None, None]
    return rgb, colour
