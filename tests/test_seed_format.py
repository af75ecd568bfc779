"""The seed's own data format (X.npy (N,32,32) + y.npy (N,3)): good folders load with their values intact,
every bad one is refused before training with one line naming the file and the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mtl_core.control.data.seed_format import load_xy_dir
from mtl_core.control.presets.shapes_3head import PRESET, TASKS
from mtl_core.errors import UserError

N = 12


def _good_arrays(n: int = N, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((n, 32, 32), dtype=np.float32)
    y = np.stack([rng.integers(0, 10, n), rng.integers(0, 32, n), rng.random(n)], axis=1).astype(np.float32)
    return x, y


def _write(folder: Path, x=None, y=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if x is not None:
        np.save(folder / "X.npy", x)
    if y is not None:
        np.save(folder / "y.npy", y)
    return folder


def _one_line_error(folder: Path) -> str:
    with pytest.raises(UserError) as info:
        load_xy_dir(folder, TASKS, (32, 32))
    message = str(info.value)
    assert message and "\n" not in message, f"not one line: {message!r}"
    return message


# -- good data --------------------------------------------------------------------------------------------


def test_good_float_folder_loads_with_values_and_labels_preserved(tmp_path):
    x, y = _good_arrays()
    x3, labels = load_xy_dir(_write(tmp_path, x, y), TASKS, (32, 32))
    assert x3.shape == (N, 32, 32, 1) and x3.dtype == np.float32
    np.testing.assert_array_equal(x3[..., 0], x)
    assert set(labels) == {"shape", "orientation", "intensity"}
    np.testing.assert_array_equal(labels["shape"], y[:, 0].astype(int))
    np.testing.assert_array_equal(labels["orientation"], y[:, 1].astype(int))
    np.testing.assert_allclose(labels["intensity"], y[:, 2])
    assert np.issubdtype(labels["shape"].dtype, np.integer)
    assert np.issubdtype(labels["orientation"].dtype, np.integer)


def test_uint8_images_are_scaled_to_unit_range(tmp_path):
    x, y = _good_arrays()
    x8 = (x * 255).astype(np.uint8)
    x8[0, 0, 0], x8[0, 0, 1] = 0, 255
    x3, _ = load_xy_dir(_write(tmp_path, x8, y), TASKS, (32, 32))
    assert x3.dtype == np.float32
    assert x3.min() >= 0.0 and x3.max() <= 1.0
    assert x3[0, 0, 0, 0] == 0.0 and x3[0, 0, 1, 0] == 1.0
    np.testing.assert_allclose(x3[..., 0], x8 / 255.0, atol=1e-7)


def test_images_with_a_channel_axis_are_accepted(tmp_path):
    x, y = _good_arrays()
    x3, labels = load_xy_dir(_write(tmp_path, x[..., None], y), TASKS, (32, 32))
    assert x3.shape == (N, 32, 32, 1)
    np.testing.assert_array_equal(x3, x[..., None])
    assert len(labels["shape"]) == N


def test_integer_label_file_is_accepted(tmp_path):
    x, y = _good_arrays()
    y_int = y.copy()
    y_int[:, 2] = np.round(y_int[:, 2])  # intensity 0 or 1, still in range
    _, labels = load_xy_dir(_write(tmp_path, x, y_int.astype(np.int64)), TASKS, (32, 32))
    np.testing.assert_array_equal(labels["shape"], y[:, 0].astype(int))


def test_preset_load_data_reads_a_dir(tmp_path):
    x, y = _good_arrays()
    folder = _write(tmp_path / "seed data", x, y)
    data = PRESET.load_data({"source": "dir", "dir": str(folder)})
    assert len(data) == N
    assert data.x.shape == (N, 32, 32, 1)
    np.testing.assert_array_equal(data.x[..., 0], x)
    np.testing.assert_array_equal(data.y["orientation"], y[:, 1].astype(int))
    assert str(folder) in data.source
    # The same bytes give the same fingerprint (so the same model id), other bytes another one.
    assert PRESET.load_data({"source": "dir", "dir": str(folder)}).fingerprint == data.fingerprint
    other = _write(tmp_path / "other", x, np.concatenate([y[:, :2], 1 - y[:, 2:]], axis=1))
    assert PRESET.load_data({"source": "dir", "dir": str(other)}).fingerprint != data.fingerprint


def test_preset_dir_source_without_a_folder_is_a_user_error():
    with pytest.raises(UserError, match="--data-dir"):
        PRESET.load_data({"source": "dir"})


# -- bad data ---------------------------------------------------------------------------------------------


def _set(arr, index, value):
    arr = arr.copy()
    arr[index] = value
    return arr


def _bad_cases():
    x, y = _good_arrays()
    # name -> (X to save or a callable writing it, y to save, file the message must name, words it must hold)
    return {
        "wrong X shape": (x[:, :28, :28], y, "X.npy", ["shape", "28", "32"]),
        "X with 3 channels": (np.repeat(x[..., None], 3, axis=-1), y, "X.npy", ["shape"]),
        "y with 2 columns": (x, y[:, :2], "y.npy", ["shape", "3"]),
        "1-d y": (x, y[:, 0], "y.npy", ["shape"]),
        "N mismatch": (x, y[:-2], "y.npy", [str(N - 2), str(N)]),
        "NaN in X": (_set(x, (3, 4, 5), np.nan), y, "X.npy", ["NaN"]),
        "inf in X": (_set(x, (1, 0, 0), np.inf), y, "X.npy", ["infinite"]),
        "X above 1": (x * 255.0, y, "X.npy", ["[0, 1]"]),
        "negative X": (x - 0.5, y, "X.npy", ["[0, 1]"]),
        "inf in y": (x, _set(y, (2, 2), np.inf), "y.npy", ["infinite", "intensity"]),
        "NaN label": (x, _set(y, (4, 1), np.nan), "y.npy", ["NaN", "orientation"]),
        "label A=10": (x, _set(y, (5, 0), 10), "y.npy", ["shape", "0..9", "10"]),
        "label B=32": (x, _set(y, (6, 1), 32), "y.npy", ["orientation", "0..31", "32"]),
        "negative label": (x, _set(y, (7, 0), -1), "y.npy", ["shape", "-1"]),
        "non-integer label": (x, _set(y, (8, 1), 1.5), "y.npy", ["orientation", "1.5"]),
        "C=1.2": (x, _set(y, (9, 2), 1.2), "y.npy", ["intensity", "1.2", "[0, 1]"]),
        "C below 0": (x, _set(y, (9, 2), -0.1), "y.npy", ["intensity", "-0.1"]),
        "string X": (np.full((N, 32, 32), "a"), y, "X.npy", ["dtype", "not numeric"]),
        "string y": (x, np.full((N, 3), "1"), "y.npy", ["dtype", "not numeric"]),
        "pickled object X": (np.array([{"pixels": 1}] * N, dtype=object), y, "X.npy", ["pickled"]),
        "pickled object y": (x, np.array([[None] * 3] * N, dtype=object), "y.npy", ["pickled"]),
        "no images": (x[:0], y[:0], "X.npy", ["no images"]),
    }


BAD = _bad_cases()


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_array_is_a_one_line_user_error_naming_file_and_problem(tmp_path, case):
    x, y, file_name, words = BAD[case]
    folder = tmp_path / "data"
    folder.mkdir()
    np.save(folder / "X.npy", x, allow_pickle=True)
    np.save(folder / "y.npy", y, allow_pickle=True)
    message = _one_line_error(folder)
    assert file_name in message, message
    for word in words:
        assert word in message, f"{word!r} missing from {message!r}"


def test_missing_folder(tmp_path):
    message = _one_line_error(tmp_path / "nowhere")
    assert "nowhere" in message and "not a folder" in message


def test_a_file_instead_of_a_folder(tmp_path):
    (tmp_path / "X.npy").write_bytes(b"")
    message = _one_line_error(tmp_path / "X.npy")
    assert "not a folder" in message


@pytest.mark.parametrize("missing", ["X.npy", "y.npy"])
def test_missing_file(tmp_path, missing):
    x, y = _good_arrays()
    _write(tmp_path, x, y)
    (tmp_path / missing).unlink()
    message = _one_line_error(tmp_path)
    assert missing in message and "no such file" in message


@pytest.mark.parametrize("empty", ["X.npy", "y.npy"])
def test_zero_byte_file(tmp_path, empty):
    x, y = _good_arrays()
    _write(tmp_path, x, y)
    (tmp_path / empty).write_bytes(b"")
    message = _one_line_error(tmp_path)
    assert empty in message and "empty" in message and "0 bytes" in message


@pytest.mark.parametrize("garbled", ["X.npy", "y.npy"])
def test_garbled_bytes(tmp_path, garbled):
    x, y = _good_arrays()
    _write(tmp_path, x, y)
    (tmp_path / garbled).write_bytes(np.random.default_rng(1).bytes(700))
    message = _one_line_error(tmp_path)
    assert garbled in message and "not a valid .npy" in message


def test_garbled_bytes_are_not_called_pickled_objects(tmp_path):
    x, y = _good_arrays()
    _write(tmp_path, x, y)
    (tmp_path / "X.npy").write_bytes(np.random.default_rng(1).bytes(700))
    message = _one_line_error(tmp_path)
    assert "pickle" not in message.lower(), message


def test_truncated_npy_file(tmp_path):
    x, y = _good_arrays(n=40)
    _write(tmp_path, x, y)
    blob = (tmp_path / "X.npy").read_bytes()
    (tmp_path / "X.npy").write_bytes(blob[: len(blob) // 2])
    message = _one_line_error(tmp_path)
    assert "X.npy" in message and "not a valid .npy" in message


def test_npz_archive_named_npy(tmp_path):
    x, y = _good_arrays()
    _write(tmp_path, None, y)
    with open(tmp_path / "X.npy", "wb") as fh:
        np.savez(fh, X=x)
    message = _one_line_error(tmp_path)
    assert "X.npy" in message and "archive" in message


# -- the CLI stops before anything is stored ---------------------------------------------------------------


def _cli_bad_dirs(root: Path) -> dict[str, tuple[Path, str]]:
    x, y = _good_arrays()
    dirs = {
        "nan": (_write(root / "nan", _set(x, (0, 0, 0), np.nan), y), "X.npy"),
        "label": (_write(root / "label", x, _set(y, (0, 0), 10)), "y.npy"),
        "missing-y": (_write(root / "missing-y", x, None), "y.npy"),
    }
    garbled = _write(root / "garbled", None, y)
    (garbled / "X.npy").write_bytes(np.random.default_rng(2).bytes(256))
    dirs["garbled"] = (garbled, "X.npy")
    return dirs


@pytest.mark.parametrize("case", ["nan", "label", "missing-y", "garbled"])
def test_cli_train_with_bad_data_dir_exits_2_and_stores_nothing(tmp_path, monkeypatch, capsys, case):
    from mtl_core import cli

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("MTL_HOME", str(home))
    bad, file_name = _cli_bad_dirs(tmp_path / "data")[case]
    code = cli.main(["train", "--preset", "shapes-3head", "--data-dir", str(bad), "--epochs", "1"])
    assert code == 2
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, err
    assert file_name in error_lines[0]
    assert "Traceback" not in err
    models = home / "models"
    assert not models.exists() or not any(models.iterdir())
