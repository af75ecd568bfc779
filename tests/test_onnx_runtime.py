"""The Predictor's ONNX Runtime path (mtl_core/engine/onnx_runtime.py, issue 16 part 2): the same outputs as
the TensorFlow path within 1e-5, the export cached once per model file, and TensorFlow kept, saying why,
when the export fails, disagrees or is switched off. The speed is bench/predict_latency.py's."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_core.engine import onnx_runtime
from mtl_core.engine.inference import Predictor

pytest.importorskip("onnxruntime")


def images(n: int = 16) -> np.ndarray:
    from mtl_core.control.data.shapes import generate_shapes

    return generate_shapes(n, seed=3)[0][..., None].astype(np.float32)


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(onnx_runtime.ENV, raising=False)
    return tmp_path / "home"


def test_onnx_runtime_gives_the_tensorflow_outputs_and_caches_its_export(tiny_store, home, monkeypatch):
    store, model_id, _ = tiny_store
    fast = Predictor(store.resolve("shapes-3head", model_id))
    assert fast.runtime_notes[0].startswith("ONNX Runtime"), fast.runtime_notes
    monkeypatch.setenv(onnx_runtime.ENV, "tensorflow")
    slow = Predictor(store.resolve("shapes-3head", model_id))
    assert slow.runtime_notes == ["TensorFlow (MTL_RUNTIME=tensorflow)"]
    x = images()
    a, b = fast.predict_arrays(x), slow.predict_arrays(x)
    assert set(a) == set(b) == {"shape", "orientation", "intensity"}
    for head in a:
        assert np.max(np.abs(a[head] - b[head])) <= 1e-5, head

    cached = list((home / "cache" / "onnx").glob("*.onnx"))
    assert len(cached) == 1 and cached[0].name.startswith(fast.card["model_sha256"])
    stamp = cached[0].stat().st_mtime_ns
    monkeypatch.delenv(onnx_runtime.ENV)
    monkeypatch.setattr(onnx_runtime, "_export", lambda *a: pytest.fail("exported twice"))
    again = Predictor(store.resolve("shapes-3head", model_id))
    assert again.runtime_notes[0].startswith("ONNX Runtime") and cached[0].stat().st_mtime_ns == stamp


def test_a_failed_export_keeps_tensorflow_and_says_why(tiny_store, home, monkeypatch):
    store, model_id, _ = tiny_store

    def broken(*args):
        raise RuntimeError("tf2onnx could not convert op Foo")

    monkeypatch.setattr(onnx_runtime, "_export", broken)
    predictor = Predictor(store.resolve("shapes-3head", model_id))
    assert predictor.runtime_notes == ["TensorFlow (the ONNX path failed: RuntimeError: tf2onnx could not "
                                       "convert op Foo)"]
    assert predictor.predict_arrays(images(2))["shape"].shape == (2, 10)
    assert not list((home / "cache" / "onnx").glob("*.onnx"))  # nothing half-written left


def test_outputs_that_disagree_are_not_used(tiny_store, home):
    import keras
    import tensorflow as tf

    store, model_id, _ = tiny_store
    model = keras.saving.load_model(store.resolve("shapes-3head", model_id).model_file, compile=False)
    signature = [tf.TensorSpec((None, 32, 32, 1), tf.float32)]

    def off_by_a_little(x):  # a "reference" 1e-3 away from what the model computes
        return {k: np.asarray(v) + 1e-3 for k, v in model(x, training=False).items()}

    run, note = onnx_runtime.compile_model(model, signature, home / "m.onnx", off_by_a_little, images(4), "__")
    assert run is None and note.startswith("TensorFlow (ONNX Runtime differs from the Keras model by 0.001 on ")
