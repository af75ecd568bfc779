"""The server's warm-up (mtl_core/views/warmup.py, issue 16 part 3): a background thread readies the model a
first visit opens; the Predict page takes that very Predictor, Home says how it is getting on, and a
visitor who comes early makes it start at once. The browser figures are bench/app_latency.py's."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from mtl_core.control.presets import all_presets
from mtl_core.control.store import ModelStore
from mtl_core.views import warmup

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "weights"


@pytest.fixture()
def fresh(monkeypatch):
    """A warm-up of the test's own, as a new server process has, and the warm-up switched on."""
    monkeypatch.setenv(warmup.ENV, "1")
    instance = warmup.Warmup()
    monkeypatch.setattr(warmup, "WARMUP", instance)
    return instance


def test_it_runs_once_reports_its_stages_and_hands_over_its_result():
    w = warmup.Warmup()
    gate = threading.Event()

    def load(say):
        say("importing TensorFlow")
        gate.wait(10)
        say("loading the model m1")
        return "the predictor"

    assert w.start(("m1", "/f"), load)
    assert not w.start(("m2", "/g"), load)  # once per server
    deadline = time.monotonic() + 5
    while w.status().stage != "importing TensorFlow" and time.monotonic() < deadline:
        time.sleep(0.01)
    now = w.status()
    assert (now.key, now.stage, now.done) == (("m1", "/f"), "importing TensorFlow", False)
    assert w.running_for(("m1", "/f")) and not w.running_for(("m2", "/g"))
    assert w.take(("m1", "/f")) is None  # not ready yet
    gate.set()
    assert w.wait(5)
    assert w.status().stage == "ready" and w.status().error is None
    assert w.take(("m1", "/f")) == "the predictor" and w.take(("m2", "/g")) is None


def test_a_failed_warm_up_says_why_and_hands_over_nothing():
    w = warmup.Warmup()
    w.start(("m1", "/f"), lambda say: (_ for _ in ()).throw(OSError("disk gone")))
    assert w.wait(5)
    assert w.status().error == "OSError: disk gone" and w.status().stage == "failed"
    assert w.take(("m1", "/f")) is None


def test_a_waiting_visitor_cuts_the_start_delay_short():
    w = warmup.Warmup()
    w.start(("m1", "/f"), lambda say: "ready", delay=60)
    t0 = time.monotonic()
    assert w.wait(10)
    assert time.monotonic() - t0 < 5


def test_off_with_the_environment_variable(fresh, monkeypatch):
    monkeypatch.setenv(warmup.ENV, "0")
    assert not warmup.start_for_first_visit(all_presets(), ModelStore(root=Path("/nonexistent"), shipped=WEIGHTS))
    assert fresh.status().key is None


def test_the_first_visits_model_is_readied_and_predicts(fresh, tmp_path):
    store = ModelStore(root=tmp_path / "models", shipped=WEIGHTS)
    assert warmup.start_for_first_visit(all_presets(), store)
    assert fresh.wait(120), fresh.status()
    key = fresh.status().key
    predictor = fresh.take(key)
    assert fresh.status().error is None and predictor is not None
    model = store.default(predictor.card["preset"])
    assert key == (model.id, str(model.path)) and predictor.input_kind == "image"  # the app's core: an image
    out = predictor.predict_arrays(np.zeros((1, *predictor.input_shape), np.float32))
    assert set(out) == {t.name for t in predictor.tasks}


def test_home_says_how_it_goes_and_predict_takes_the_warm_predictor(fresh, monkeypatch, tmp_path):
    import streamlit as st

    from pages import _ui

    monkeypatch.setenv("MTL_WEIGHTS", str(WEIGHTS))
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "home"))
    st.cache_resource.clear()
    gate = threading.Event()
    store = ModelStore(root=tmp_path / "home" / "models", shipped=WEIGHTS)
    name = "color-digits"
    model = store.default(name)

    def load(say):
        say("importing TensorFlow")
        gate.wait(60)
        return warmup.ready_predictor(model, say)

    fresh.start((model.id, str(model.path)), load)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["preset"] = name
    at.run()
    captions = [c.value for c in at.caption]
    expected = f"Getting the model `{model.id}` ready for Predict: importing TensorFlow"
    assert any(expected in c for c in captions), captions

    threading.Timer(1.0, gate.set).start()  # the visitor opens Predict before the end: the page waits for it
    at.switch_page("pages/predict.py").run()
    assert not at.exception, [e.value for e in at.exception]
    warm = fresh.take((model.id, str(model.path)))
    assert warm is not None and _ui.load_predictor(model.id, str(model.path)) is warm  # loaded once, not twice

    at.switch_page("pages/home.py").run()
    assert any(f"Model `{model.id}` is ready for Predict" in c.value for c in at.caption)


FREEZE_SCRIPT = r"""
import gc, json, weakref
from mtl_core.control.store import ModelStore
from mtl_core.views import warmup

store = ModelStore()
first = warmup.ready_predictor(store.default("color-digits"))  # imports TensorFlow, freezes its objects
frozen = gc.get_freeze_count()
warmup.ready_predictor(store.default("shapes-3head"))  # a second model: not frozen again
again = gc.get_freeze_count()
later = warmup.ready_predictor(store.default("churn-spend"))
gone = weakref.ref(later._models[0])  # the Keras model itself
del later
gc.collect()
print(json.dumps({"frozen": frozen, "again": again, "later_model_collected": gone() is None}))
"""


def test_tensorflows_objects_leave_the_collectors_scans_and_later_models_are_still_collected(tmp_path):
    """Streamlit collects garbage twice after every script run; with TensorFlow's ~360,000 objects in the scans
    that held every page's messages back (warmup.freeze_library_objects). In a process of its own: the freeze
    is for a whole process."""
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "MTL_HOME": str(tmp_path), "MTL_WEIGHTS": str(root / "weights"), "PYTHONPATH": str(root),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", FREEZE_SCRIPT], env=env, cwd=root, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["frozen"] > 100_000  # TensorFlow's and Keras's modules, functions and classes
    assert result["again"] == result["frozen"]  # once per process
    assert result["later_model_collected"]  # a model evicted from the cache is freed as before
