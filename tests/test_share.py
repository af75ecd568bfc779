"""The view in the URL (mtl_core/views/share.py, app.py, pages/_ui.py), the preset of a first visit, and an
image batch's results as files (mtl_core/views/predict.py image_batch_files)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mtl_core.control.presets import all_presets
from mtl_core.views import share
from tests._images import empty_file, png_bytes, save_png, shapes

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
WEIGHTS = ROOT / "weights"


def test_a_first_visit_opens_an_image_preset_with_a_model():
    presets = all_presets()
    assert share.first_preset(presets, lambda name: True) == "cifar10-aqi"  # not churn-spend, a table
    assert share.first_preset(presets, lambda name: name in ("churn-spend", "color-digits")) == "color-digits"
    assert share.first_preset(presets, lambda name: name == "shapes-3head") == "shapes-3head"
    assert share.first_preset(presets, lambda name: name == "churn-spend") == "churn-spend"  # the only model
    assert share.first_preset(presets, lambda name: False) == presets[0].name


def test_lambda_in_a_url_round_trips_and_bad_ones_are_ignored():
    heads = ["shape", "orientation", "intensity"]
    lam = {"shape": 0.5, "orientation": 0.3, "intensity": 0.2}
    assert share.lambda_text(lam, heads) == "shape=0.5,orientation=0.3,intensity=0.2"
    assert share.parse_lambda(share.lambda_text(lam, heads), heads) == lam
    for bad in (None, "", "shape=0.5", "shape=2,orientation=0,intensity=0", "shape=x,orientation=1,intensity=0",
                "shape=0,orientation=0,intensity=0", "digit=1,colour=0", "shape=nan,orientation=1,intensity=0"):
        assert share.parse_lambda(bad, heads) is None, bad


@pytest.fixture()
def shipped_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MTL_WEIGHTS", str(WEIGHTS))
    monkeypatch.setenv("MTL_HOME", str(tmp_path))


def test_the_preset_and_model_are_read_from_and_written_to_the_url(shipped_home):
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert at.session_state["preset"] == "color-digits"  # the first visit: an image preset with a shipped model
    assert at.query_params["preset"] == "color-digits"

    shared = AppTest.from_file(APP, default_timeout=90)
    shared.query_params["preset"] = "shapes-3head"
    shared.run()
    assert shared.session_state["preset"] == "shapes-3head"
    shared.switch_page("pages/models.py").run()
    assert not shared.exception, [e.value for e in shared.exception]
    model = next(box for box in shared.selectbox if box.label == "Model").value
    assert model.startswith("shapes-3head-") and shared.query_params["model"] == model


def test_a_shared_link_names_a_model_that_is_not_the_default(tiny_store, monkeypatch):
    store, tiny_id, _ = tiny_store
    monkeypatch.setenv("MTL_HOME", str(store.root.parent))
    monkeypatch.setenv("MTL_WEIGHTS", str(WEIGHTS))
    shipped = next(p.name for p in WEIGHTS.iterdir() if p.name.startswith("shapes-3head-"))
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["preset"] = "shapes-3head"
    at.query_params["model"] = tiny_id  # a stored model: the shipped one stays the default (nobody chose another)
    at.run()
    at.switch_page("pages/models.py").run()
    assert next(box for box in at.selectbox if box.label == "Model").value == tiny_id
    unknown = AppTest.from_file(APP, default_timeout=90)
    unknown.query_params["preset"] = "shapes-3head"
    unknown.query_params["model"] = "shapes-3head-000000000000"
    unknown.run()
    unknown.switch_page("pages/models.py").run()
    assert next(box for box in unknown.selectbox if box.label == "Model").value == shipped  # the default


def test_an_image_batch_downloads_as_csv_and_json_with_its_bad_file(shipped_home, tmp_path):
    from mtl_core.engine.inference import Predictor
    from mtl_core.views import predict as predict_view

    x, _ = shapes(n=2, seed=5)
    files = [save_png(x[i], tmp_path / f"s{i}.png") for i in range(2)] + [empty_file(tmp_path / "empty.png")]
    predictor = Predictor.for_preset("shapes-3head")
    items, _ = predict_view.predict_images(predictor, [png_bytes(f) for f in files], [f.name for f in files])
    out = predict_view.image_batch_files(predictor.tasks, items, "shapes-3head", "the-model")
    rows = list(csv.DictReader(io.StringIO(out["csv"].decode())))
    assert [r["file"] for r in rows] == ["s0.png", "s1.png", "empty.png"]
    assert rows[0]["shape: predicted"] == items[0].outputs["shape"]["label"]
    assert float(rows[1]["intensity: predicted"]) == pytest.approx(items[1].outputs["intensity"]["value"])
    assert rows[2]["shape: predicted"] == "" and "empty file" in rows[2]["error"]
    document = json.loads(out["json"])
    assert document["model"] == "the-model" and len(document["predictions"]) == 3
    assert document["predictions"][0]["outputs"]["shape"] == items[0].outputs["shape"]
    assert "empty file" in document["predictions"][2]["error"] and "outputs" not in document["predictions"][2]

    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["preset"] = "shapes-3head"  # (AppTest resets the sidebar's picker after a page switch)
    at.run()
    at.switch_page("pages/predict.py").run()
    uploader = at.file_uploader(key="upload-shapes-3head")
    for f in files:
        uploader.upload(f.name, png_bytes(f), "image/png")
    at.run()
    labels = [b.label for b in at.get("download_button")]
    assert "Download the predictions (CSV)" in labels and "Download the predictions (JSON)" in labels
