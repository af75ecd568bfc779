"""Predictor: raw inputs (files, bytes, PIL images, arrays) -> every head's output, as DESIGN.md's
prediction JSON; bad inputs become error items; tampered or unsafe model files are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _images import (
    empty_file,
    grey_image,
    png_bytes,
    rgb_jpeg,
    rgba_png,
    save_png,
    shapes,
    text_file,
    to_uint8,
    truncated_png,
)

from mtl_core.control.data.shapes import SHAPE_NAMES
from mtl_core.control.store import StoredModel, sha256_file
from mtl_core.errors import UserError

HEADS = ["shape", "orientation", "intensity"]
QUANTISATION = 0.5 / 255  # largest change of a pixel in [0, 1] saved as 8 bits


@pytest.fixture(scope="module")
def stored(tiny_store) -> StoredModel:
    store, model_id, _ = tiny_store
    found = store.find(model_id)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def predictor(stored):
    from mtl_core.engine.inference import Predictor

    return Predictor([stored])


@pytest.fixture(scope="module")
def sample():
    """Four generated images (float, (4, 32, 32)) and their labels."""
    return shapes(n=4, seed=123)


def check_outputs(outputs: dict, orientation_names: list[str]) -> None:
    """One input's outputs have the form of DESIGN.md's prediction JSON for shapes-3head."""
    assert list(outputs) == HEADS

    shape = outputs["shape"]
    assert shape["kind"] == "multiclass"
    assert list(shape["probabilities"]) == list(SHAPE_NAMES)
    probs = shape["probabilities"]
    assert all(0.0 <= p <= 1.0 for p in probs.values())
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
    assert shape["label"] in SHAPE_NAMES
    assert shape["label"] == max(probs, key=probs.get)

    orientation = outputs["orientation"]
    assert orientation["kind"] == "multiclass"
    assert list(orientation["probabilities"]) == orientation_names
    assert len(orientation_names) == 32
    probs = orientation["probabilities"]
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
    assert orientation["label"] == max(probs, key=probs.get)

    intensity = outputs["intensity"]
    assert intensity["kind"] == "regression"
    assert isinstance(intensity["value"], float)
    assert 0.0 <= intensity["value"] <= 1.0
    assert intensity["unit"] == ""
    assert intensity["range"] == [0.0, 1.0]


def orientation_names(stored: StoredModel) -> list[str]:
    return next(t["class_names"] for t in stored.card["tasks"] if t["name"] == "orientation")


def prob_vector(outputs: dict, head: str) -> np.ndarray:
    return np.array(list(outputs[head]["probabilities"].values()))


# ----------------------------------------------------------------------------- every kind of input


@pytest.mark.parametrize("kind", ["png path", "png bytes", "PIL image", "numpy (32,32)", "large RGB JPEG", "RGBA PNG"])
def test_every_input_kind_gives_every_head(kind, predictor, stored, sample, tmp_path):
    x = sample[0][0]
    source = {
        "png path": lambda: save_png(x, tmp_path / "a.png"),
        "png bytes": lambda: png_bytes(save_png(x, tmp_path / "a.png")),
        "PIL image": lambda: grey_image(x),
        "numpy (32,32)": lambda: x,
        "large RGB JPEG": lambda: rgb_jpeg(x, tmp_path / "photo.jpg", size=300),
        "RGBA PNG": lambda: rgba_png(x, tmp_path / "rgba.png"),
    }[kind]()

    prediction = predictor.predict([source])
    doc = prediction.to_dict()

    assert json.loads(json.dumps(doc)) == doc  # plain JSON, as the CLI prints it
    assert doc["preset"] == "shapes-3head"
    assert doc["model"] == stored.id
    assert prediction.failed == 0
    [item] = doc["predictions"]
    assert "error" not in item
    check_outputs(item["outputs"], orientation_names(stored))


def test_prediction_json_names_files_and_keeps_order(predictor, sample, tmp_path):
    a = save_png(sample[0][0], tmp_path / "a.png")
    b = save_png(sample[0][1], tmp_path / "b.png")

    doc = predictor.predict([a, str(b), png_bytes(a)], names=[None, None, "upload.png"]).to_dict()

    assert [item["input"] for item in doc["predictions"]] == ["a.png", "b.png", "upload.png"]
    assert doc["predictions"][0]["outputs"] == doc["predictions"][2]["outputs"]


def test_same_picture_from_path_bytes_pil_and_uint8_array_gives_identical_outputs(predictor, sample, tmp_path):
    x = sample[0][2]
    path = save_png(x, tmp_path / "same.png")

    items = predictor.predict([path, png_bytes(path), grey_image(x), to_uint8(x)]).items

    assert all("error" not in item for item in items)
    assert items[1]["outputs"] == items[0]["outputs"]
    assert items[2]["outputs"] == items[0]["outputs"]
    assert items[3]["outputs"] == items[0]["outputs"]


def test_rgba_transparency_is_black_background(predictor, sample, tmp_path):
    """A transparent border reads as background (0), like the same picture with a black border."""
    x = sample[0][3].copy()
    rgba = rgba_png(x, tmp_path / "rgba.png")
    x[:2, :] = x[-2:, :] = x[:, :2] = x[:, -2:] = 0.0
    grey = save_png(x, tmp_path / "black-border.png")

    got, want = (item["outputs"] for item in predictor.predict([rgba, grey]).items)

    for head in ("shape", "orientation"):
        np.testing.assert_allclose(prob_vector(got, head), prob_vector(want, head), atol=1e-5)
    assert got["intensity"]["value"] == pytest.approx(want["intensity"]["value"], abs=1e-5)


# ----------------------------------------------------------------------------- bad inputs


def test_bad_items_become_one_line_errors_and_never_lose_the_good_one(predictor, stored, sample, tmp_path):
    good = save_png(sample[0][0], tmp_path / "good.png")
    files = [
        good,
        empty_file(tmp_path / "empty.png"),
        text_file(tmp_path / "notes.png"),
        truncated_png(tmp_path / "cut.png"),
    ]
    alone = predictor.predict([good]).items[0]["outputs"]

    prediction = predictor.predict(files)
    items = prediction.to_dict()["predictions"]

    assert len(items) == 4
    assert [item["input"] for item in items] == ["good.png", "empty.png", "notes.png", "cut.png"]
    assert prediction.failed == 3
    assert "error" not in items[0]
    check_outputs(items[0]["outputs"], orientation_names(stored))
    assert items[0]["outputs"] == alone
    for item, path in zip(items[1:], files[1:], strict=True):
        assert set(item) == {"input", "error"}
        error = item["error"]
        assert isinstance(error, str) and "\n" not in error
        assert error.startswith(f"{path.name}: ")
    assert "empty" in items[1]["error"]
    assert "not a readable image" in items[2]["error"]
    assert "truncated" in items[3]["error"]


def test_all_bad_inputs_still_give_a_prediction_document(predictor, tmp_path):
    prediction = predictor.predict([empty_file(tmp_path / "zero.png")])

    assert prediction.failed == 1
    assert prediction.to_dict()["predictions"] == [{"input": "zero.png", "error": "zero.png: empty file (0 bytes)"}]


# ----------------------------------------------------------------------------- same path as training


def test_saved_png_predicts_like_the_training_array(predictor, tmp_path):
    """Files go through the same preprocessing as training data: a generated image saved as an
    8-bit PNG predicts what the float array itself predicts, up to 8-bit quantisation."""
    x, _ = shapes(n=8, seed=7)
    paths = [save_png(img, tmp_path / f"g{i}.png") for i, img in enumerate(x)]

    prepared = np.stack([predictor.prepare(p) for p in paths])
    np.testing.assert_allclose(prepared, x[..., None], atol=QUANTISATION + 1e-6)

    items = predictor.predict(paths).items
    direct = predictor.predict_arrays(x[..., None])
    from_files = {h: np.stack([prob_vector(item["outputs"], h) for item in items]) for h in ("shape", "orientation")}
    from_files["intensity"] = np.array([item["outputs"]["intensity"]["value"] for item in items])

    tolerance = 2e-3  # 8-bit rounding moves these outputs by ~1e-4
    for head in HEADS:
        np.testing.assert_allclose(from_files[head], direct[head], rtol=0, atol=tolerance)
    # a preprocessing slip (half the brightness) moves the outputs far more than the file path does
    observed = max(np.abs(from_files[h] - direct[h]).max() for h in HEADS)
    dimmed = predictor.predict_arrays(x[..., None] * 0.5)
    assert max(np.abs(dimmed[h] - direct[h]).max() for h in HEADS) > 10 * max(observed, 1e-4)


# ----------------------------------------------------------------------------- the seed's predict_fn


def test_predict_fn_returns_class_indices_and_values(predictor, tiny_store):
    from mtl_core.engine.inference import predict_fn

    store, model_id, _ = tiny_store
    x, _ = shapes(n=12, seed=11)

    out = predict_fn(x, predictor=predictor)

    assert out.shape == (12, 3)
    assert out.dtype == np.float32
    assert np.array_equal(out[:, :2], np.round(out[:, :2]))
    assert ((out[:, 0] >= 0) & (out[:, 0] < 10)).all()
    assert ((out[:, 1] >= 0) & (out[:, 1] < 32)).all()
    assert ((out[:, 2] >= 0) & (out[:, 2] <= 1)).all()
    arrays = predictor.predict_arrays(x[..., None])
    assert np.array_equal(out[:, 0], arrays["shape"].argmax(axis=1))
    assert np.array_equal(out[:, 1], arrays["orientation"].argmax(axis=1))
    np.testing.assert_allclose(out[:, 2], arrays["intensity"], rtol=0, atol=1e-6)
    # the same through the store, by model id, and with an explicit channel axis
    np.testing.assert_array_equal(predict_fn(x, model=model_id, store=store), out)
    np.testing.assert_array_equal(predict_fn(x[..., None], predictor=predictor), out)


def test_predict_fn_refuses_a_wrong_image_size(predictor):
    from mtl_core.engine.inference import predict_fn

    with pytest.raises(UserError, match=r"^X: shape \(2, 28, 28.*expected \(N, 32, 32\)$"):
        predict_fn(np.zeros((2, 28, 28), np.float32), predictor=predictor)


# ----------------------------------------------------------------------------- refused model files


def copy_model(stored: StoredModel, where: Path) -> StoredModel:
    folder = where / stored.id
    shutil.copytree(stored.path, folder)
    return StoredModel(stored.id, folder, json.loads((folder / "card.json").read_text()), "path")


def test_model_file_with_changed_bytes_is_refused(stored, tmp_path):
    from mtl_core.engine.inference import Predictor

    copy = copy_model(stored, tmp_path)
    assert sha256_file(copy.model_file) == copy.card["model_sha256"]  # the copy itself is fine
    data = bytearray(copy.model_file.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    copy.model_file.write_bytes(bytes(data))

    with pytest.raises(UserError) as info:
        Predictor([copy])

    message = str(info.value)
    assert "sha256" in message
    assert "model.keras" in message
    assert "\n" not in message


def test_model_with_a_lambda_layer_is_refused_under_safe_mode(stored, tmp_path):
    import keras

    from mtl_core.engine.inference import Predictor

    copy = copy_model(stored, tmp_path)
    inputs = keras.Input((32, 32, 1))
    hidden = keras.layers.Lambda(lambda t: t * 2.0)(keras.layers.Flatten()(inputs))
    outputs = {
        "shape": keras.layers.Dense(10, activation="softmax", name="shape")(hidden),
        "orientation": keras.layers.Dense(32, activation="softmax", name="orientation")(hidden),
        "intensity": keras.layers.Dense(1, activation="sigmoid", name="intensity")(hidden),
    }
    copy.model_file.unlink()
    keras.Model(inputs, outputs).save(copy.model_file)
    copy.card["model_sha256"] = sha256_file(copy.model_file)
    (copy.path / "card.json").write_text(json.dumps(copy.card))
    # the file itself is a loadable Keras model: only safe_mode stands in its way
    assert keras.saving.load_model(copy.model_file, compile=False, safe_mode=False) is not None

    with pytest.raises(UserError) as info:
        Predictor([copy])

    message = str(info.value)
    assert "\n" not in message
    assert "safe_mode" in message
    assert "Lambda" in message
    assert "model.keras" in message
    assert "sha256" not in message
