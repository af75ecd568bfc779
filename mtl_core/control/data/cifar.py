"""CIFAR-10 and CIFAR-100 in their "python version" on-disk format, read without trusting the files.

keras.datasets downloads ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz`` and extracts them
to ``~/.keras/datasets/cifar-10-batches-py-target/cifar-10-batches-py/`` (resp.
``cifar-100-python-target/cifar-100-python/``). A user who has those folders points ``--data-dir`` at
the folder itself or at its parent; nothing is downloaded then.

* CIFAR-10: ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``, each a pickled dict with
  ``b"data"`` (uint8, (N, 3072): one row per image, the 1024 red values, then green, then blue, each
  plane row-major 32x32) and ``b"labels"`` (N ints 0..9); ``batches.meta`` holds ``b"label_names"``.
* CIFAR-100: ``train`` and ``test`` with ``b"data"``, ``b"fine_labels"`` (0..99) and
  ``b"coarse_labels"`` (0..19); ``meta`` holds ``b"fine_label_names"`` and ``b"coarse_label_names"``.

The files are Python 2 pickles. Unpickling can call any importable function, so a data file could run
code: :class:`BatchUnpickler` resolves only the few globals a CIFAR batch needs (numpy's array
reconstruction, ``numpy.ndarray``, ``numpy.dtype``, ``numpy`` scalars, ``bytes`` and
``_codecs.encode``, which Python 3 uses to pickle bytes under protocol 2) and refuses every other one
with a :class:`~mtl_core.errors.UserError` before anything runs.

Train and test files are concatenated (train first): the studio makes its own stratified split.
Images come back as float32 (N, 32, 32, 3) in [0, 1].

The tests write small files in exactly that format (``tests/_cifar_fixtures.py``).
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtl_core.errors import UserError

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR100_DIR = "cifar-100-python"
CIFAR10_BYTES = 170_498_071  # cifar-10-python.tar.gz
CIFAR100_BYTES = 169_001_437  # cifar-100-python.tar.gz
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))

CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# The 20 superclasses and their 5 classes each, as on the CIFAR page (names as in the ``meta`` file).
CIFAR100_SUPERCLASSES = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}
CIFAR100_COARSE_NAMES = tuple(CIFAR100_SUPERCLASSES)
CIFAR100_FINE_NAMES = tuple(sorted(n for names in CIFAR100_SUPERCLASSES.values() for n in names))
# coarse label of each fine label (the real data set's mapping; the fixtures use it too)
CIFAR100_FINE_TO_COARSE = tuple(
    next(i for i, names in enumerate(CIFAR100_SUPERCLASSES.values()) if fine in names) for fine in CIFAR100_FINE_NAMES)


# -- reading, safely ------------------------------------------------------------------------------


def _allowed_globals() -> dict[tuple[str, str], object]:
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
        ("builtins", "bytes"): bytes,
        ("__builtin__", "bytes"): bytes,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    return allowed


class BatchUnpickler(pickle.Unpickler):
    """A pickle reader that can build dicts, lists, bytes, numbers and numpy arrays, and nothing else.

    Every global a pickle names goes through ``find_class``; anything not on the allowlist is refused
    before it is imported or called, so a crafted file (``os.system``, ``eval``, ...) runs nothing.
    """

    _ALLOWED = _allowed_globals()

    def find_class(self, module: str, name: str):
        found = self._ALLOWED.get((module, name))
        if found is None:
            raise UserError(f"refuses to unpickle {module}.{name}: not a CIFAR batch")
        return found

    def persistent_load(self, pid):
        raise UserError("refuses to unpickle a persistent id: not a CIFAR batch")


def read_batch(path: Path) -> dict[bytes, object]:
    """One pickled CIFAR file (batch or meta) as a dict with bytes keys; a clear error for anything else."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        obj = BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001  (a garbled pickle fails in many ways; nothing ran)
        reason = (str(exc).splitlines() or [""])[0][:120] or type(exc).__name__
        raise UserError(f"{path}: not a CIFAR batch file (unreadable pickle: {reason})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: not a CIFAR batch file (holds a {type(obj).__name__}, expected a dict)")
    return {(k.encode() if isinstance(k, str) else k): v for k, v in obj.items()}


def _require(batch: dict, keys: tuple[bytes, ...], path: Path) -> None:
    missing = [k.decode() for k in keys if k not in batch]
    if missing:
        have = ", ".join(sorted(repr(k.decode(errors="replace")) for k in batch if isinstance(k, bytes))) or "none"
        raise UserError(f"{path}: not a CIFAR batch file (missing key(s) {', '.join(missing)}; has {have})")


def _images(batch: dict, path: Path) -> np.ndarray:
    """b"data" rows (N, 3072) = R plane, G plane, B plane (each 32x32 row-major) -> (N, 32, 32, 3) uint8."""
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        what = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise UserError(f"{path}: b'data' is a {what}; expected uint8 of shape (N, 3072)")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _labels(batch: dict, key: bytes, n: int, n_classes: int, path: Path) -> np.ndarray:
    values = batch[key]
    try:
        labels = np.asarray(values)
    except Exception:  # noqa: BLE001
        labels = np.asarray([])
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise UserError(f"{path}: {key!r} must be a list of integer labels")
    if len(labels) != n:
        raise UserError(f"{path}: {len(labels)} values in {key!r} for {n} images")
    if n and (labels.min() < 0 or labels.max() >= n_classes):
        raise UserError(f"{path}: {key!r} holds labels {int(labels.min())}..{int(labels.max())}, "
                        f"outside 0..{n_classes - 1}")
    return labels.astype(np.int32)


def _names(meta: dict, key: bytes, count: int, path: Path) -> tuple[str, ...]:
    _require(meta, (key,), path)
    values = meta[key]
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, (bytes, str)) for v in values):
        raise UserError(f"{path}: {key!r} must be a list of class names")
    if len(values) != count:
        raise UserError(f"{path}: {key!r} has {len(values)} names, expected {count}")
    return tuple(v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v for v in values)


def find_folder(folder: str | Path, name: str, marker: str) -> Path:
    """The CIFAR folder ``name`` given itself, its parent, or keras's cache folder holding ``name``-target."""
    given = Path(folder).expanduser()
    if given.is_file():
        hint = f"; extract it first (tar xzf {given.name})" if given.name.endswith((".tar.gz", ".tgz")) else ""
        raise UserError(f"{given}: a file, expected the extracted folder {name}/{hint}")
    for candidate in (given, given / name, given / f"{name}-target" / name):
        if (candidate / marker).exists():
            return candidate
    if not given.is_dir():
        raise UserError(f"{given}: no such folder (expected the extracted {name}/ folder)")
    raise UserError(f"{given}: no {marker} here or in {name}/ (expected the extracted python version "
                    f"of the data set, the folder {name}/)")


@dataclass
class CifarData:
    """Images (N, 32, 32, 3) float32 in [0, 1], labels per label set, class names per label set."""

    x: np.ndarray
    labels: dict[str, np.ndarray]
    names: dict[str, tuple[str, ...]]
    n_train: int
    origin: str  # where it was read from, one line


def _to_float(images: list[np.ndarray]) -> np.ndarray:
    out = np.empty((sum(len(i) for i in images), 32, 32, 3), dtype=np.float32)
    start = 0
    for part in images:
        np.multiply(part, np.float32(1 / 255), out=out[start:start + len(part)], casting="unsafe")
        start += len(part)
    return out


def read_cifar10(folder: str | Path) -> CifarData:
    """The extracted ``cifar-10-batches-py`` folder (or its parent): 5 train batches + test_batch."""
    root = find_folder(folder, CIFAR10_DIR, "batches.meta")
    names = _names(read_batch(root / "batches.meta"), b"label_names", 10, root / "batches.meta")
    images, labels, n_train = [], [], 0
    for fname in (*CIFAR10_TRAIN_FILES, "test_batch"):
        path = root / fname
        if not path.is_file():
            raise UserError(f"{path}: missing (a CIFAR-10 folder holds data_batch_1..5 and test_batch)")
        batch = read_batch(path)
        _require(batch, (b"data", b"labels"), path)
        x = _images(batch, path)
        images.append(x)
        labels.append(_labels(batch, b"labels", len(x), 10, path))
        n_train += len(x) if fname != "test_batch" else 0
    return CifarData(_to_float(images), {"class": np.concatenate(labels)}, {"class": names}, n_train, str(root))


def read_cifar100(folder: str | Path) -> CifarData:
    """The extracted ``cifar-100-python`` folder (or its parent): train + test, fine and coarse labels."""
    root = find_folder(folder, CIFAR100_DIR, "meta")
    meta = read_batch(root / "meta")
    names = {"fine": _names(meta, b"fine_label_names", 100, root / "meta"),
             "coarse": _names(meta, b"coarse_label_names", 20, root / "meta")}
    images, fine, coarse, n_train = [], [], [], 0
    for fname in ("train", "test"):
        path = root / fname
        if not path.is_file():
            raise UserError(f"{path}: missing (a CIFAR-100 folder holds train, test and meta)")
        batch = read_batch(path)
        _require(batch, (b"data", b"fine_labels", b"coarse_labels"), path)
        x = _images(batch, path)
        images.append(x)
        fine.append(_labels(batch, b"fine_labels", len(x), 100, path))
        coarse.append(_labels(batch, b"coarse_labels", len(x), 20, path))
        n_train += len(x) if fname == "train" else 0
    return CifarData(_to_float(images), {"fine": np.concatenate(fine), "coarse": np.concatenate(coarse)},
                     names, n_train, str(root))


# -- downloading, when a user asks for it -----------------------------------------------------------


def _download(what: str, size: int, folder: str, load):
    """Run a keras.datasets loader, saying first what is downloaded and how big; errors -> UserError."""
    import keras

    cache = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser() / "datasets"
    if not (cache / f"{folder}-target").exists():
        print(f"downloading {what} through keras.datasets ({size / 1e6:.0f} MB, once; cached in {cache})",
              file=sys.stderr, flush=True)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # keras prints its progress on stdout (--json owns it)
            return load(keras)
    except Exception as exc:  # noqa: BLE001  (network and archive errors come in many types)
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise UserError(f"{what} download failed ({reason}); without a network, use --data-dir with the extracted "
                        f"python version of the data set (the folder {folder}/)") from None


def load_cifar10(folder: str | Path | None = None) -> CifarData:
    """From ``folder`` when given, else downloaded by ``keras.datasets.cifar10`` (170 MB)."""
    if folder:
        return read_cifar10(folder)
    (xtr, ytr), (xte, yte) = _download("CIFAR-10", CIFAR10_BYTES, CIFAR10_DIR,
                                       lambda keras: keras.datasets.cifar10.load_data())
    labels = np.concatenate([ytr.reshape(-1), yte.reshape(-1)]).astype(np.int32)
    return CifarData(_to_float([xtr, xte]), {"class": labels}, {"class": CIFAR10_NAMES}, len(xtr), "keras.datasets")


def load_cifar100(folder: str | Path | None = None) -> CifarData:
    """From ``folder`` when given, else downloaded by ``keras.datasets.cifar100`` (169 MB, fine and coarse)."""
    if folder:
        return read_cifar100(folder)

    def both(keras):
        return (keras.datasets.cifar100.load_data(label_mode="fine"),
                keras.datasets.cifar100.load_data(label_mode="coarse"))

    ((xtr, ftr), (xte, fte)), ((_, ctr), (_, cte)) = _download("CIFAR-100", CIFAR100_BYTES, CIFAR100_DIR,
                                                               both)
    labels = {"fine": np.concatenate([ftr.reshape(-1), fte.reshape(-1)]).astype(np.int32),
              "coarse": np.concatenate([ctr.reshape(-1), cte.reshape(-1)]).astype(np.int32)}
    return CifarData(_to_float([xtr, xte]), labels,
                     {"fine": CIFAR100_FINE_NAMES, "coarse": CIFAR100_COARSE_NAMES}, len(xtr), "keras.datasets")
