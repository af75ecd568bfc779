"""color-digits: the two digit sources (scikit-learn's bundled digits, MNIST's mnist.npz), the colouring,
a short training and its card, and predictions on red and green PNG files.

MNIST is never downloaded: ``mnist_npz`` writes a file in the format keras.datasets leaves in
~/.keras/datasets (x_train uint8 (N, 28, 28), y_train uint8, x_test, y_test), from real digits.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mtl_core.cli import main
from mtl_core.control.data.digits import COLOR_NAMES, colourise, load_mnist, load_sklearn_digits
from mtl_core.control.presets import get_preset
from mtl_core.errors import UserError

PRESET = "color-digits"


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    return load_sklearn_digits()


def mnist_arrays(digits, n_train: int, n_test: int) -> dict[str, np.ndarray]:
    """MNIST-format arrays (uint8 images 0..255, uint8 labels) made of real handwritten digits."""
    x, y = digits
    x8 = np.round(x * 255).astype(np.uint8)
    return {"x_train": x8[:n_train], "y_train": y[:n_train].astype(np.uint8),
            "x_test": x8[n_train:n_train + n_test], "y_test": y[n_train:n_train + n_test].astype(np.uint8)}


def write_npz(path: Path, **arrays) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:  # np.savez(path) would append ".npz" to other names
        np.savez(fh, **arrays)
    return path


def one_line_error(exc: pytest.ExceptionInfo, path: Path) -> str:
    message = str(exc.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def own_home(monkeypatch, home: Path) -> Path:
    weights = home / "no-shipped-weights"
    weights.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("MTL_HOME", str(home))
    monkeypatch.setenv("MTL_WEIGHTS", str(weights))
    return home


# ----------------------------------------------------------------------------- scikit-learn digits


def test_sklearn_digits_are_1797_centred_28x28_images_in_0_1(digits):
    from sklearn.datasets import load_digits

    x, y = digits

    assert x.shape == (1797, 28, 28) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() <= 1.0
    # centred like MNIST: a 20x20 digit in the middle, a 4-pixel black border
    for border in (x[:, :4, :], x[:, 24:, :], x[:, :, :4], x[:, :, 24:]):
        assert np.all(border == 0)
    assert np.all(x[:, 4:24, 4:24].max(axis=(1, 2)) > 0.5)  # every image has ink
    original = load_digits()
    assert np.array_equal(y, original.target)
    assert np.bincount(y, minlength=10).min() >= 170
    # each image is its own 8x8 digit upsampled: shrinking it back gives that digit, not another one
    small = np.stack([np.asarray(Image.fromarray(img[4:24, 4:24], mode="F").resize((8, 8), Image.Resampling.BOX))
                      for img in x[:40]])
    target = original.images[:40] / 16.0
    own = [np.corrcoef(small[i].ravel(), target[i].ravel())[0, 1] for i in range(40)]
    shifted = [np.corrcoef(small[i].ravel(), target[(i + 1) % 40].ravel())[0, 1] for i in range(40)]
    assert min(own) > 0.9
    assert np.mean(own) > np.mean(shifted) + 0.3


def test_colourise_is_deterministic_by_seed(digits):
    grey = digits[0][:300]

    rgb, colour = colourise(grey, 7)
    rgb_again, colour_again = colourise(grey, 7)
    _, colour_other = colourise(grey, 8)

    assert np.array_equal(rgb, rgb_again) and np.array_equal(colour, colour_again)
    assert not np.array_equal(colour, colour_other)


def test_colourise_draws_the_digit_only_in_the_labelled_channel(digits):
    grey = digits[0][:300]

    rgb, colour = colourise(grey, 3)

    assert rgb.shape == (300, 28, 28, 3) and rgb.dtype == np.float32
    assert set(colour.tolist()) == {0, 1}
    assert COLOR_NAMES == ("red", "green") == get_preset(PRESET).task("color").class_names
    rows = np.arange(len(grey))
    lit, unlit = rgb[rows, :, :, colour], rgb[rows, :, :, 1 - colour]  # 0: red channel, 1: green channel
    assert np.all(unlit == 0) and np.all(rgb[..., 2] == 0)
    brightness = lit.max(axis=(1, 2)) / grey.max(axis=(1, 2))
    assert brightness.min() >= 0.6 - 1e-6 and brightness.max() <= 1.0 + 1e-6
    np.testing.assert_allclose(lit, grey * brightness[:, None, None], atol=1e-6)  # the digit itself, dimmed


def test_colour_labels_are_about_half_red_half_green(digits):
    for seed in (0, 1):
        _, colour = colourise(digits[0], seed)
        assert colour.mean() == pytest.approx(0.5, abs=0.05)


def test_default_source_is_coloured_sklearn_digits_deterministic_by_seed(digits):
    preset = get_preset(PRESET)

    data = preset.load_data({"source": "sklearn", "seed": 0})

    assert data.x.shape == (1797, 28, 28, 3)
    assert np.array_equal(data.y["digit"], digits[1])
    rgb, colour = colourise(digits[0], 0)
    assert np.array_equal(data.x, rgb) and np.array_equal(data.y["color"], colour)
    assert "not MNIST" in data.source
    assert preset.load_data({"source": "sklearn", "seed": 0}).fingerprint == data.fingerprint
    assert preset.load_data({"source": "sklearn", "seed": 1}).fingerprint != data.fingerprint
    with pytest.raises(UserError, match="unknown source 'svhn'"):
        preset.load_data({"source": "svhn"})


# ----------------------------------------------------------------------------- MNIST's mnist.npz


def test_mnist_npz_reader_gives_train_and_test_images_scaled_to_0_1(tmp_path, digits):
    arrays = mnist_arrays(digits, 120, 30)
    path = write_npz(tmp_path / "data" / "mnist.npz", **arrays)

    for where in (path.parent, path):  # the folder holding mnist.npz, or the file itself
        x, y = load_mnist(str(where))

        assert x.shape == (150, 28, 28) and x.dtype == np.float32
        np.testing.assert_array_equal(x, np.concatenate([arrays["x_train"], arrays["x_test"]]) / np.float32(255))
        assert y.dtype == np.int32
        assert np.array_equal(y, np.concatenate([arrays["y_train"], arrays["y_test"]]))


def test_mnist_source_reads_the_folder_and_colours_the_images(tmp_path, digits):
    arrays = mnist_arrays(digits, 100, 20)
    folder = write_npz(tmp_path / "data" / "mnist.npz", **arrays).parent

    data = get_preset(PRESET).load_data({"source": "mnist", "dir": str(folder), "seed": 2})

    assert data.x.shape == (120, 28, 28, 3)
    assert "MNIST" in data.source and str(folder) in data.source
    assert np.array_equal(data.y["digit"], np.concatenate([arrays["y_train"], arrays["y_test"]]))
    rows = np.arange(120)
    assert np.all(data.x[rows, :, :, 1 - data.y["color"]] == 0)


def _bad_arrays(digits) -> dict:
    good = mnist_arrays(digits, 20, 5)
    return {
        "missing keys": ({k: good[k] for k in ("x_train", "y_train")}, ["missing x_test, y_test"]),
        "32x32 images": ({**good, "x_train": np.zeros((20, 32, 32), np.uint8), "x_test": np.zeros((5, 32, 32),
                                                                                                np.uint8)},
                         ["(25, 32, 32)", "(N, 28, 28)"]),
        "colour images": ({**good, "x_train": np.zeros((20, 28, 28, 3), np.uint8),
                           "x_test": np.zeros((5, 28, 28, 3), np.uint8)}, ["(25, 28, 28, 3)"]),
        "fewer labels than images": ({**good, "y_train": good["y_train"][:15]}, ["one label each"]),
        "label 10": ({**good, "y_test": np.full(5, 10, np.uint8)}, ["0..9"]),
        "object arrays": ({**good, "y_train": np.array([1, "a"] * 10, dtype=object)}, ["not a readable"]),
    }


@pytest.mark.parametrize("case", ["missing keys", "32x32 images", "colour images", "fewer labels than images",
                                  "label 10", "object arrays"])
def test_bad_mnist_npz_is_a_one_line_user_error_naming_the_file(case, tmp_path, digits):
    arrays, needles = _bad_arrays(digits)[case]
    path = write_npz(tmp_path / "mnist.npz", **arrays)

    with pytest.raises(UserError) as exc:
        load_mnist(str(tmp_path))

    message = one_line_error(exc, path)
    for needle in needles:
        assert needle in message


@pytest.mark.parametrize("content", [b"", b"this is text, not an archive\n", bytes(range(256)) * 8])
def test_garbled_mnist_file_is_a_one_line_user_error(content, tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_bytes(content)

    with pytest.raises(UserError) as exc:
        load_mnist(str(path))

    assert "not a readable .npz" in one_line_error(exc, path)


def test_folder_without_mnist_npz_says_what_it_expected(tmp_path):
    with pytest.raises(UserError) as exc:
        load_mnist(str(tmp_path))

    assert "mnist.npz" in one_line_error(exc, tmp_path / "mnist.npz")


def _truncated(path: Path, digits) -> None:
    write_npz(path, **mnist_arrays(digits, 20, 5))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # an interrupted download


def _bad_crc(path: Path, digits) -> None:
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **mnist_arrays(digits, 20, 5))
    data = bytearray(path.read_bytes())
    data[100:400] = b"\x55" * 300  # damaged bytes inside the compressed x_train
    path.write_bytes(bytes(data))


def _empty_arrays(path: Path, digits) -> None:
    empty = np.zeros((0, 28, 28), np.uint8)
    write_npz(path, x_train=empty, y_train=np.zeros(0, np.uint8), x_test=empty, y_test=np.zeros(0, np.uint8))


@pytest.mark.parametrize("damage", [_truncated, _bad_crc, _empty_arrays], ids=["truncated", "bad-crc", "no-images"])
def test_damaged_mnist_npz_is_a_one_line_user_error(damage, tmp_path, digits):
    path = tmp_path / "mnist.npz"
    damage(path, digits)

    with pytest.raises(UserError) as exc:
        load_mnist(str(path))

    one_line_error(exc, path)


def test_cli_train_on_a_bad_mnist_npz_exits_2_and_stores_nothing(tmp_path, monkeypatch, capsys, digits):
    home = own_home(monkeypatch, tmp_path / "home")
    good = mnist_arrays(digits, 20, 5)
    path = write_npz(tmp_path / "data" / "mnist.npz", x_train=good["x_train"], y_train=good["y_train"])

    rc = main(["train", "--preset", PRESET, "--data", "mnist", "--data-dir", str(path.parent), "--epochs", "1"])

    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and str(path) in err and "missing x_test" in err
    assert not (home / "models").exists() or not any((home / "models").iterdir())


# ----------------------------------------------------------------------------- a short training


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits):
    """`train --data mnist --data-dir FOLDER` on an mnist.npz holding the 1,797 real scikit-learn digits
    (1,500 as x_train, 297 as x_test), one epoch, in a private store; the JSON, the card and the stderr.
    """
    from mtl_core.control.store import ModelStore

    root = tmp_path_factory.mktemp("color-digits")
    folder = write_npz(root / "keras-datasets" / "mnist.npz", **mnist_arrays(digits, 1500, 297)).parent
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, redirect_stdout(out), redirect_stderr(err):
        own_home(mp, root / "home")
        rc = main(["train", "--preset", PRESET, "--data", "mnist", "--data-dir", str(folder), "--epochs", "1",
                   "--batch-size", "32", "--seed", "0", "--json"])
    assert rc == 0, err.getvalue()
    doc = json.loads(out.getvalue())
    store = ModelStore(root=root / "home" / "models", shipped=None)
    card = store.find(doc["model"]).card
    return {"store": store, "doc": doc, "card": card, "folder": folder, "stderr": err.getvalue()}


def test_cli_trains_on_a_folder_holding_mnist_npz(trained):
    doc, card, folder = trained["doc"], trained["card"], trained["folder"]

    assert doc["model"].startswith(f"{PRESET}-") and doc["cached"] is False
    assert set(doc["metrics"]) == {"digit", "color"}
    assert card["config"]["data"]["source"] == "mnist" and card["config"]["data"]["dir"] == str(folder)
    assert "MNIST" in card["data"]["source"] and str(folder) in card["data"]["source"]
    assert sum(card["data"]["sizes"].values()) == 1797
    assert card["input"]["shape"] == [28, 28, 3]
    assert f"training {PRESET}" in trained["stderr"]


def test_short_training_learns_digits_and_colours(trained):
    card = trained["card"]
    test = card["metrics"]["test"]

    assert test["digit"]["accuracy"] > 0.5  # chance is 0.1
    assert test["color"]["accuracy"] > 0.9
    assert test["color"]["auc"] > 0.95


def test_card_keeps_the_digit_confusion_matrix_of_the_test_split(trained, digits):
    from mtl_core.control.data.splits import stratified_split

    card = trained["card"]
    matrix = np.array(card["metrics"]["test"]["digit"]["confusion_matrix"])
    sizes = card["data"]["sizes"]

    assert sizes == {"train": 1221, "val": 306, "test": 270}
    assert matrix.shape == (10, 10)
    assert matrix.sum() == sizes["test"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(card["metrics"]["test"]["digit"]["accuracy"])
    config = card["config"]
    split = stratified_split(digits[1], 1797, val_fraction=config["val_fraction"],
                             test_fraction=config["test_fraction"], seed=config["seed"])
    assert matrix.sum(axis=1).tolist() == np.bincount(digits[1][split.test], minlength=10).tolist()  # true digits


def save_rgb_png(rgb: np.ndarray, path: Path) -> Path:
    Image.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8), mode="RGB").save(path, format="PNG")
    return path


def test_predictor_reads_red_and_green_pngs(trained, digits, tmp_path):
    from mtl_core.engine.inference import Predictor

    store, model_id = trained["store"], trained["doc"]["model"]
    grey = digits[0][digits[1] == 3][0]
    red, green = np.zeros((28, 28, 3), np.float32), np.zeros((28, 28, 3), np.float32)
    red[..., 0], green[..., 1] = grey, grey  # the same digit in either colour
    files = [save_rgb_png(red, tmp_path / "red3.png"), save_rgb_png(green, tmp_path / "green3.png")]

    prediction = Predictor(store.find(model_id)).predict(files).to_dict()

    assert prediction["preset"] == PRESET and prediction["model"] == model_id
    items = prediction["predictions"]
    assert [item["input"] for item in items] == ["red3.png", "green3.png"]
    assert [item["outputs"]["color"]["label"] for item in items] == ["red", "green"]
    for item in items:
        assert list(item["outputs"]) == ["digit", "color"]
        colour = item["outputs"]["color"]
        assert colour["kind"] == "binary" and 0 <= colour["probability"] <= 1
        digit = item["outputs"]["digit"]
        assert digit["kind"] == "multiclass"
        assert list(digit["probabilities"]) == [str(d) for d in range(10)]
        assert sum(digit["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert digit["label"] == max(digit["probabilities"], key=digit["probabilities"].get)
