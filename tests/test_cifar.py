"""The CIFAR presets offline: the python-pickle batch readers on fixture files in the real format, the
restricted unpickler, the synthetic AQI, the backbone plan steps, and both presets end to end (train on
fixtures -> store -> load with safe_mode -> predict a PNG with every head).

Nothing here downloads: keras's file fetcher is replaced by one that fails as it does offline, so the
ImageNet-weights fallback is what every model gets, on any machine.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from _cifar_fixtures import dump_py2, write_cifar10_fixture, write_cifar100_fixture
from PIL import Image

from mtl_core.control.data import cifar
from mtl_core.control.data.aqi import AQI_UNIT, haze_score, synthetic_aqi
from mtl_core.control.data.cifar import (
    CIFAR10_NAMES,
    CIFAR100_COARSE_NAMES,
    CIFAR100_FINE_NAMES,
    CIFAR100_FINE_TO_COARSE,
    read_cifar10,
    read_cifar100,
)
from mtl_core.control.plan import validate_plan
from mtl_core.control.presets import get_preset
from mtl_core.errors import UserError

ROOT = Path(__file__).resolve().parent.parent


def _offline_get_file(*args, **kwargs):
    raise Exception("URL fetch failure on https://storage.googleapis.com/...: [Errno -2] offline (test)")


@pytest.fixture(scope="module")
def offline():
    """keras.utils.get_file fails as without a network; failures of earlier builds are forgotten."""
    import keras.src.utils.file_utils as file_utils

    from mtl_core.engine.models import plan

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(file_utils, "get_file", _offline_get_file)
        mp.setattr(plan, "_WEIGHT_FAILURES", {})
        yield


def _one_line_error(call, *needles: str) -> str:
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert message and "\n" not in message, f"not one line: {message!r}"
    for needle in needles:
        assert needle in message, (needle, message)
    return message


# -- readers ------------------------------------------------------------------------------------------------


def test_cifar10_rows_are_red_green_blue_planes(tmp_path):
    """A row of b"data" is 1024 red values, then 1024 green, then 1024 blue, each plane row-major."""
    root = write_cifar10_fixture(tmp_path, n_train=10, n_test=3, seed=0)
    rng = np.random.default_rng(5)
    planes = rng.integers(0, 256, size=(2, 3, 32, 32), dtype=np.uint8)  # image, channel, row, column
    rows = planes.reshape(2, 3072)
    dump_py2({b"batch_label": b"training batch 1 of 5", b"labels": [3, 7], b"data": rows,
              b"filenames": [b"a.png", b"b.png"]}, root / "data_batch_1")
    data = read_cifar10(tmp_path)
    assert data.x.dtype == np.float32 and data.x.shape == (2 + 8 + 3, 32, 32, 3)
    for image in range(2):
        for channel in range(3):
            np.testing.assert_allclose(data.x[image, :, :, channel], planes[image, channel] / 255.0, atol=1e-6)
    assert data.x[0, 0, 1, 0] == pytest.approx(rows[0, 1] / 255.0)  # red, row 0, column 1
    assert data.x[0, 1, 0, 1] == pytest.approx(rows[0, 1024 + 32] / 255.0)  # green, row 1, column 0
    assert data.x[1, 31, 31, 2] == pytest.approx(rows[1, 3071] / 255.0)  # blue, last pixel
    assert list(data.labels["class"][:2]) == [3, 7]
    assert data.names["class"] == CIFAR10_NAMES and data.n_train == 10
    assert 0.0 <= data.x.min() and data.x.max() <= 1.0


def test_fixtures_are_read_alike_by_keras_own_loader(tmp_path):
    """Format parity: keras.datasets' own (unrestricted) batch reader reads our fixture files the same."""
    load_batch = pytest.importorskip("keras.src.datasets.cifar").load_batch
    root10 = write_cifar10_fixture(tmp_path, n_train=20, n_test=5, seed=1)
    root100 = write_cifar100_fixture(tmp_path, n_train=30, n_test=5, seed=1)
    assert (root10 / "data_batch_1").read_bytes()[:2] == b"\x80\x02"  # protocol 2, as the originals
    ours = read_cifar10(root10)
    x, y = load_batch(str(root10 / "data_batch_1"))
    np.testing.assert_allclose(ours.x[:4], x.transpose(0, 2, 3, 1) / 255.0, atol=1e-6)
    np.testing.assert_array_equal(ours.labels["class"][:4], y)
    ours = read_cifar100(root100)
    x, coarse = load_batch(str(root100 / "train"), label_key="coarse_labels")
    np.testing.assert_allclose(ours.x[:30], x.transpose(0, 2, 3, 1) / 255.0, atol=1e-6)
    np.testing.assert_array_equal(ours.labels["coarse"][:30], coarse)


def test_cifar100_fine_coarse_labels_and_names(tmp_path):
    root = write_cifar100_fixture(tmp_path, n_train=40, n_test=10, seed=2)
    for where in (root, tmp_path):  # the folder itself or its parent
        data = read_cifar100(where)
        assert data.x.shape == (50, 32, 32, 3) and data.n_train == 40
        assert data.names == {"fine": CIFAR100_FINE_NAMES, "coarse": CIFAR100_COARSE_NAMES}
        assert len(set(CIFAR100_FINE_NAMES)) == 100 and len(CIFAR100_COARSE_NAMES) == 20
        np.testing.assert_array_equal(data.labels["coarse"], np.asarray(CIFAR100_FINE_TO_COARSE)[data.labels["fine"]])
    assert CIFAR100_COARSE_NAMES[CIFAR100_FINE_TO_COARSE[CIFAR100_FINE_NAMES.index("whale")]] == "aquatic_mammals"


def test_keras_cache_layout_is_found(tmp_path):
    """keras.datasets leaves ~/.keras/datasets/cifar-10-batches-py-target/cifar-10-batches-py/."""
    write_cifar10_fixture(tmp_path / "cifar-10-batches-py-target", n_train=5, n_test=1)
    assert len(read_cifar10(tmp_path).x) == 6


# -- the restricted unpickler -------------------------------------------------------------------------------


class _Payload:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("call", ["os.system", "subprocess.call", "builtins.eval"])
def test_a_batch_that_would_run_code_is_refused_and_nothing_runs(tmp_path, call):
    import builtins
    import subprocess as sp

    marker = tmp_path / "ran"
    func, args = {"os.system": (os.system, (f"touch {marker}",)),
                  "subprocess.call": (sp.call, (["touch", str(marker)],)),
                  "builtins.eval": (builtins.eval, (f"open({str(marker)!r}, 'w').close()",))}[call]
    evil = pickle.dumps({b"data": _Payload(func, args), b"labels": [0]}, protocol=2)
    pickle.loads(evil)  # the payload is live: plain pickle runs it
    assert marker.exists()
    marker.unlink()

    root = write_cifar10_fixture(tmp_path, n_train=5, n_test=1)
    (root / "data_batch_2").write_bytes(evil)
    message = _one_line_error(lambda: read_cifar10(root), "data_batch_2", "refuses to unpickle", "not a CIFAR batch")
    assert f".{func.__name__}: " in message  # the global as the pickle names it (py2 names under protocol 2)
    assert not marker.exists()


# -- bad input: one line naming the file ---------------------------------------------------------------------


def _batch(changes: dict, n: int = 4) -> dict:
    """A CIFAR-10 batch of n black images with ``changes`` applied (a None value removes the key)."""
    batch = {b"batch_label": b"training batch 1 of 5", b"labels": [1] * n,
             b"data": np.zeros((n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}
    batch.update(changes)
    return {k: v for k, v in batch.items() if v is not None}


BAD_CIFAR10 = {
    "garbled": ("data_batch_3", lambda p: p.write_bytes(np.random.default_rng(0).bytes(2000)), "not a CIFAR batch"),
    "truncated": ("data_batch_3", lambda p: p.write_bytes(p.read_bytes()[:500]), "unreadable pickle"),
    "empty file": ("data_batch_3", lambda p: p.write_bytes(b""), "unreadable pickle"),
    "not a dict": ("data_batch_3", lambda p: dump_py2([1, 2, 3], p), "holds a list"),
    "no labels key": ("data_batch_3", lambda p: dump_py2(_batch({b"labels": None}), p), "missing key(s) labels"),
    "wrong row width": ("data_batch_3", lambda p: dump_py2(_batch({b"data": np.zeros((4, 3000), np.uint8)}), p),
                        "(4, 3000)"),
    "float pixels": ("data_batch_3", lambda p: dump_py2(_batch({b"data": np.zeros((4, 3072), np.float32)}), p),
                     "expected uint8"),
    "label out of range": ("test_batch", lambda p: dump_py2(_batch({b"labels": [0, 1, 10, 2]}), p),
                           "outside 0..9"),
    "negative label": ("test_batch", lambda p: dump_py2(_batch({b"labels": [0, -1, 1, 2]}), p), "outside 0..9"),
    "label count": ("test_batch", lambda p: dump_py2(_batch({b"labels": [0, 1]}), p), "2 values"),
    "text labels": ("test_batch", lambda p: dump_py2(_batch({b"labels": [b"cat"] * 4}), p), "integer labels"),
    "missing batch": ("data_batch_4", lambda p: p.unlink(), "missing"),
    "meta with 9 names": ("batches.meta", lambda p: dump_py2({b"label_names": [b"a"] * 9}, p), "9 names"),
}


@pytest.mark.parametrize("case", sorted(BAD_CIFAR10))
def test_bad_cifar10_files_give_one_line_naming_the_file(tmp_path, case):
    fname, damage, needle = BAD_CIFAR10[case]
    root = write_cifar10_fixture(tmp_path, n_train=10, n_test=2)
    damage(root / fname)
    _one_line_error(lambda: read_cifar10(tmp_path), str(root / fname), needle)


BAD_CIFAR100 = {
    "coarse label 20": ("train", {b"coarse_labels": [20] * 4}, "outside 0..19"),
    "fine label 100": ("test", {b"fine_labels": [100] * 4}, "outside 0..99"),
    "no coarse labels": ("train", {b"coarse_labels": None}, "missing key(s) coarse_labels"),
}


@pytest.mark.parametrize("case", sorted(BAD_CIFAR100))
def test_bad_cifar100_files_give_one_line_naming_the_file(tmp_path, case):
    fname, changes, needle = BAD_CIFAR100[case]
    root = write_cifar100_fixture(tmp_path, n_train=10, n_test=2)
    dump_py2(_batch({b"labels": None, b"fine_labels": [1] * 4, b"coarse_labels": [1] * 4, **changes}),
             root / fname)
    _one_line_error(lambda: read_cifar100(root), str(root / fname), needle)


def test_missing_folder_archive_and_wrong_folder(tmp_path):
    _one_line_error(lambda: read_cifar10(tmp_path / "nowhere"), "nowhere", "no such folder")
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"\x1f\x8b")
    _one_line_error(lambda: read_cifar10(archive), "cifar-10-python.tar.gz", "extract it first")
    write_cifar100_fixture(tmp_path, n_train=5, n_test=1)
    _one_line_error(lambda: read_cifar10(tmp_path), str(tmp_path), "batches.meta")  # a CIFAR-100 folder
    _one_line_error(lambda: get_preset("cifar10-aqi").load_data({"source": "mnist"}), "unknown source")


def test_label_names_other_than_cifar10s_are_refused_by_the_preset(tmp_path):
    root = write_cifar10_fixture(tmp_path, n_train=5, n_test=1)
    dump_py2({b"label_names": [f"thing{i}".encode() for i in range(10)]}, root / "batches.meta")
    _one_line_error(lambda: get_preset("cifar10-aqi").load_data({"source": "cifar10", "dir": str(root)}),
                    "not CIFAR-10's")


# -- the download path (keras.datasets replaced: nothing leaves this machine) ----------------------------------


def test_download_says_what_and_how_big_first_and_fails_with_the_way_out(tmp_path, monkeypatch, capsys):
    import keras

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def failing():
        print("Downloading data from https://www.cs.toronto.edu/...")  # keras's own progress line
        raise Exception("URL fetch failure: [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", failing)
    _one_line_error(lambda: cifar.load_cifar10(), "CIFAR-10 download failed", "--data-dir", "cifar-10-batches-py")
    out, err = capsys.readouterr()
    assert out == ""  # stdout belongs to --json
    assert "downloading CIFAR-10" in err and "170 MB" in err and "Downloading data from" in err


def test_download_of_cifar100_asks_for_fine_and_coarse(monkeypatch, capsys):
    import keras

    calls = []

    def fake(label_mode="fine"):
        calls.append(label_mode)
        labels = np.arange(6).reshape(6, 1) % (100 if label_mode == "fine" else 20)
        return (np.zeros((6, 32, 32, 3), np.uint8), labels), (np.full((2, 32, 32, 3), 255, np.uint8), labels[:2])

    monkeypatch.setattr(keras.datasets.cifar100, "load_data", fake)
    data = cifar.load_cifar100()
    assert sorted(calls) == ["coarse", "fine"]
    assert data.x.shape == (8, 32, 32, 3) and data.x.max() == 1.0 and data.n_train == 6
    assert data.names["fine"] == CIFAR100_FINE_NAMES and set(data.labels) == {"fine", "coarse"}


# -- the synthetic AQI -----------------------------------------------------------------------------------------


def _photo(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.random((32, 32, 3)) * 0.8 + rng.random(3) * 0.2, 0, 1).astype(np.float32)


def test_aqi_is_deterministic_in_range_and_vectorised():
    images = np.stack([_photo(i) for i in range(5)])
    first = synthetic_aqi(images)
    assert first.dtype == np.float32 and first.shape == (5,)
    np.testing.assert_array_equal(first, synthetic_aqi(images.copy()))
    np.testing.assert_array_equal(first, [synthetic_aqi(im) for im in images])
    np.testing.assert_array_equal(first, np.round(first, 1))
    assert ((0 <= first) & (first <= 500)).all()
    np.testing.assert_allclose(synthetic_aqi((images * 255).round().astype(np.uint8)), first, atol=0.2)
    assert AQI_UNIT == "AQI (synthetic)"


def test_hazier_means_higher_aqi():
    image = _photo(3)
    grey = np.full_like(image, 0.75)
    values = [float(synthetic_aqi((1 - t) * image + t * grey)) for t in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert values == sorted(values) and len(set(values)) == 5, values
    assert values[-1] == 500.0  # flat light grey: the haziest image


def test_saturated_high_contrast_image_has_a_low_aqi():
    stripes = np.zeros((32, 32, 3), np.float32)
    stripes[:, ::2] = (1.0, 1.0, 0.0)  # yellow
    stripes[:, 1::2] = (0.0, 0.0, 1.0)  # blue
    assert float(synthetic_aqi(stripes)) < 25
    assert float(haze_score(stripes)) < 0.05
    with pytest.raises(ValueError):
        haze_score(np.zeros((4, 32, 32)))  # not RGB


# -- backbone plan steps -------------------------------------------------------------------------------------


@pytest.mark.parametrize("step", ["app:vgg16", "app:mobilenetv2:1.5", "app:resnet50:x", "resize:x", "resize:4",
                                  "app", "app:resnet50:0.1:2"])
def test_bad_backbone_steps_are_refused_before_building(step):
    with pytest.raises(ValueError):
        validate_plan((step,), "backbone")


def test_resize_step_and_caffe_preprocessing():
    import keras

    from mtl_core.engine.models.layers import CaffePreprocess
    from mtl_core.engine.models.plan import apply_plan, pretrained_report

    validate_plan(("resize:96", "app:mobilenetv2", "app:resnet50:0.5", "gap"), "backbone")
    rgb = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    expected = keras.applications.resnet50.preprocess_input(rgb * 255.0)  # caffe: BGR, 0..255, minus the means
    np.testing.assert_allclose(np.asarray(CaffePreprocess()(rgb)), expected, rtol=1e-5, atol=1e-3)

    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, apply_plan(inputs, ("resize:64", "gap"), "backbone"))
    resize = model.get_layer("backbone_0_resize")
    assert isinstance(resize, keras.layers.Resizing) and resize.interpolation == "bilinear"
    assert tuple(resize.output.shape) == (None, 64, 64, 3) and pretrained_report(model) == []


def test_the_resnet50_variants_build_offline_and_say_so(offline):
    from mtl_core.control.presets.cifar100_fine_coarse import VARIANT_TRAIN, VARIANTS
    from mtl_core.engine.models.builder import build_model
    from mtl_core.engine.models.layers import CaffePreprocess
    from mtl_core.engine.models.plan import pretrained_report

    preset = get_preset("cifar100-fine-coarse")
    assert set(VARIANTS) == set(VARIANT_TRAIN) == {"resnet50", "resnet50-enhanced"}
    spec = replace(VARIANTS["resnet50"], backbone=("app:resnet50:0.5", "gap"))  # the seed's, half frozen
    model = build_model(spec, preset.tasks_by_name)
    assert isinstance(model.get_layer("backbone_0_app_preprocess"), CaffePreprocess)
    [report] = pretrained_report(model)
    assert report["network"] == "resnet50" and report["weights"].startswith("none (ImageNet weights unavailable")
    assert report["input_shape"] == [32, 32, 3] and report["frozen_layers"] == round(0.5 * report["layers"])
    net = model.get_layer("backbone_0_app")
    assert not any(layer.trainable for layer in net.layers[:report["frozen_layers"]])
    assert all(layer.trainable for layer in net.layers[report["frozen_layers"]:])
    assert model.output["fine"].shape[-1] == 100 and model.output["coarse"].shape[-1] == 20


# -- both presets end to end on fixture files -------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory, offline):
    from mtl_core.control.config import make_config
    from mtl_core.control.store import ModelStore
    from mtl_core.engine.training import train

    home = tmp_path_factory.mktemp("cifar")
    store = ModelStore(root=home / "models", shipped=None)
    dirs = {"cifar10-aqi": write_cifar10_fixture(home, n_train=250, n_test=50, seed=0),
            "cifar100-fine-coarse": write_cifar100_fixture(home, n_train=250, n_test=50, seed=0)}
    out = {"store": store, "home": home}
    for name, folder in dirs.items():
        preset = get_preset(name)
        config = make_config(preset, data={"source": preset.dir_source, "dir": str(folder)}, epochs=1,
                             batch_size=16, limit=120)
        model_id, card, cached = train(name, config, store=store)
        out[name] = (model_id, card, cached)
    return out


def test_cifar10_aqi_trains_on_fixtures_with_the_default_mobilenetv2(trained):
    model_id, card, cached = trained["cifar10-aqi"]
    assert not cached and model_id.startswith("cifar10-aqi-")
    assert list(card["config"]["model"]["backbone"]) == ["resize:96", "app:mobilenetv2:0.7", "gap"]
    [pretrained] = card["pretrained"]  # the offline fallback is written in the card
    assert pretrained["network"] == "mobilenetv2" and pretrained["input_shape"] == [96, 96, 3]
    assert pretrained["weights"].startswith("none (ImageNet weights unavailable") and "offline" in pretrained["weights"]
    assert pretrained["frozen_layers"] == round(0.7 * pretrained["layers"])
    # the backbone applies MobileNetV2's own preprocessing to [0, 1] inputs: no standardisation before it
    assert card["normalisation"]["mean"] == 0.0 and card["normalisation"]["std"] == 1.0
    assert sum(card["data"]["sizes"].values()) == 120 and "CIFAR-10 from" in card["data"]["source"]
    assert set(card["metrics"]["test"]) == {"class", "aqi"}
    assert card["reference"]["metrics"]["class"]["accuracy"] == 0.8037


def test_cifar100_trains_on_fixtures_with_the_light_default(trained):
    model_id, card, cached = trained["cifar100-fine-coarse"]
    assert not cached and card["pretrained"] == []
    assert card["normalisation"]["computed_on"] == "training split"
    assert set(card["metrics"]["test"]) == {"fine", "coarse"}
    assert card["reference"]["metrics"]["coarse"]["accuracy"] == 0.6093


def _png(path: Path, seed: int) -> Path:
    Image.fromarray((_photo(seed) * 255).astype(np.uint8)).save(path)
    return path


@pytest.mark.parametrize("name", ["cifar10-aqi", "cifar100-fine-coarse"])
def test_stored_models_load_under_safe_mode_and_predict_a_png_with_every_head(trained, name, tmp_path):
    from mtl_core.engine.inference import Predictor

    store = trained["store"]
    predictor = Predictor.for_preset(name, trained[name][0], store)  # keras.saving.load_model(safe_mode=True)
    result = predictor.predict([str(_png(tmp_path / "photo.png", 1))]).to_dict()
    [item] = result["predictions"]
    assert "error" not in item and result["model"] == trained[name][0]
    outputs = item["outputs"]
    if name == "cifar10-aqi":
        assert set(outputs) == {"class", "aqi"}
        assert outputs["class"]["label"] in CIFAR10_NAMES
        assert list(outputs["class"]["probabilities"]) == list(CIFAR10_NAMES)
        assert sum(outputs["class"]["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert outputs["aqi"]["unit"] == AQI_UNIT and outputs["aqi"]["range"] == [0.0, 500.0]
        assert np.isfinite(outputs["aqi"]["value"])
    else:
        assert set(outputs) == {"fine", "coarse"}
        assert list(outputs["fine"]["probabilities"]) == list(CIFAR100_FINE_NAMES)
        assert outputs["coarse"]["label"] in CIFAR100_COARSE_NAMES


def test_predict_without_a_model_says_so_and_how_to_train_one(tmp_path):
    env = {**os.environ, "MTL_HOME": str(tmp_path / "home"), "MTL_WEIGHTS": str(tmp_path / "none"),
           "PYTHONPATH": str(ROOT)}
    png = _png(tmp_path / "photo.png", 2)
    for preset in ("cifar10-aqi", "cifar100-fine-coarse"):
        proc = subprocess.run([sys.executable, "-m", "mtl_core", "predict", "--preset", preset, str(png), "--json"],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and proc.stdout == ""
        [line] = proc.stderr.strip().splitlines()
        assert line.startswith("error: ") and "no trained model" in line and f"train --preset {preset}" in line
