"""The Streamlit pages through AppTest: real uploads (PNG images, a customers CSV) give every head's output
with the right labels; bad uploads give one-line errors while the other items still show; a preset
without a model says how to get one; the Data and Models pages show their figures; a stored model can be
deleted (after a confirmation) and a shipped one cannot. The shipped models in weights/ are used, so
nothing trains here; mtl_core.views.common (what the pages compute) is tested at the end without Streamlit."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _images import empty_file, png_bytes, save_png, shapes, text_file, truncated_png
from PIL import Image
from streamlit.testing.v1 import AppTest

from mtl_core.control import datasets
from mtl_core.control.data.shapes import SHAPE_NAMES
from mtl_core.control.presets import get_preset
from mtl_core.views import common
from mtl_core.views import predict as predict_view

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
WEIGHTS = ROOT / "weights"
TIMEOUT = 90  # the first page that loads a model imports TensorFlow (5-7 s) and traces the model


@pytest.fixture()
def shipped(monkeypatch, tmp_path) -> Path:
    """The repository's shipped models, and an empty store in a temporary MTL_HOME."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("MTL_WEIGHTS", str(WEIGHTS))
    monkeypatch.setenv("MTL_HOME", str(home))
    return home


@pytest.fixture()
def nothing(monkeypatch, tmp_path) -> None:
    """No model anywhere: empty MTL_HOME and MTL_WEIGHTS."""
    for name, env in (("home", "MTL_HOME"), ("weights", "MTL_WEIGHTS")):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(env, str(tmp_path / name))


def open_page(preset: str, page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["preset"] = preset
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest, *kinds: str) -> str:
    kinds = kinds or ("title", "subheader", "markdown", "caption", "warning", "info", "error")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def metrics(at: AppTest) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


def charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def page_prediction(preset: str, sources: list, names: list[str]) -> list[dict]:
    """What the command line / Predictor says for the same inputs (the reference for the page)."""
    from mtl_core.engine.inference import Predictor

    return Predictor.for_preset(preset).predict(sources, names).items


# ----------------------------------------------------------------------------- Predict: images


def test_predict_page_uploads_pngs_and_shows_every_head_with_the_right_labels(shipped, tmp_path):
    x, y = shapes(n=2, seed=123)
    good = [save_png(x[i], tmp_path / f"shape{i}.png") for i in range(2)]
    bad = [empty_file(tmp_path / "empty.png"), text_file(tmp_path / "notes.png"),
           truncated_png(tmp_path / "cut.png")]
    at = open_page("shapes-3head", "predict")
    uploader = at.file_uploader(key="upload-shapes-3head")
    for path in [good[0], *bad, good[1]]:
        uploader.upload(path.name, png_bytes(path), "image/png")
    at.run()

    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(e.startswith("empty.png: ") and "empty file (0 bytes)" in e for e in errors), errors
    assert any(e.startswith("notes.png: ") and "not a readable image" in e for e in errors), errors
    assert any(e.startswith("cut.png: ") and "truncated" in e for e in errors), errors
    assert len(errors) == 3  # one line each, and nothing else failed
    shown = metrics(at)
    assert [label for label, _ in shown] == ["shape", "orientation", "intensity"] * 2  # both good files, in order
    reference = page_prediction("shapes-3head", [png_bytes(p) for p in good], [p.name for p in good])
    for i, item in enumerate(reference):
        shape, orientation, intensity = shown[3 * i: 3 * i + 3]
        # the page shows the Predictor's answer; the shipped model is right on 99% of such images (its card's
        # metrics are checked in test_shipped_models.py) and this draw holds one of the other 1%: a cross it
        # calls a star
        assert shape[1] == item["outputs"]["shape"]["label"] in SHAPE_NAMES
        assert sum(shown[3 * j][1] == SHAPE_NAMES[int(y[j, 0])] for j in range(2)) >= 1
        assert orientation[1] == f"{y[i, 1] * 360 / 32:g}°" == item["outputs"]["orientation"]["label"]
        assert float(intensity[1]) == pytest.approx(item["outputs"]["intensity"]["value"], abs=1e-3)
    captions = texts(at, "caption")
    assert captions.count("as the model saw it: 32×32 grey") == 2
    assert "2 of 5 images predicted in" in captions  # the prediction time, in small print
    assert charts(at) == 2 * 3  # one figure per head and image
    assert "Traceback" not in texts(at)


def coloured_digit_png(index: int) -> tuple[bytes, str, str]:
    """A real coloured digit (scikit-learn's digits, coloured as the preset does) as PNG bytes."""
    from mtl_core.control.data.digits import colourise, load_sklearn_digits

    grey, digits = load_sklearn_digits()
    rgb, colour = colourise(grey, 0)
    buf = io.BytesIO()
    Image.fromarray(np.round(rgb[index] * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue(), str(digits[index]), ("red", "green")[int(colour[index])]


def test_predict_page_colour_digit_png_shows_digit_and_colour(shipped):
    data, digit, colour = coloured_digit_png(3)
    at = open_page("color-digits", "predict")
    at.file_uploader(key="upload-color-digits").upload("digit.png", data, "image/png").run()

    assert not at.exception and not at.error
    assert metrics(at) == [("digit", digit), ("color", colour)]
    assert "as the model saw it: 28×28 RGB" in texts(at, "caption")


def test_predict_page_gallery_sample_shows_outputs_beside_the_true_labels(shipped):
    at = open_page("shapes-3head", "predict")
    assert not [b for b in at.button if b.key and b.key.startswith("pick-")]  # the gallery waits for its tab
    at.session_state["predict-tabs-image"] = "Samples from the test split"
    at.run()
    picks = [b for b in at.button if b.key and b.key.startswith("pick-")]
    assert len(picks) == 12  # a gallery of the model's test split
    picks[0].click().run()

    assert not at.exception
    assert [label for label, _ in metrics(at)] == ["shape", "orientation", "intensity"]
    truths = [m.value for m in at.markdown if "true:" in m.value]
    assert len(truths) == 3
    shown = dict(metrics(at))  # each head's answer, beside its true label marked right or wrong
    for head, truth in zip(("shape", "orientation"), truths, strict=False):
        if truth == f":gray[true: {common.MISSING}]":
            continue  # a plain drawing has no orientation label: nothing to be right or wrong against
        label = truth.split("true: ", 1)[1].rstrip("]").rsplit(" ", 1)[0]
        assert ("✓" in truth) == (shown[head] == label) and ("✗" in truth) != (shown[head] == label), (head, truth)
    assert truths[2] == f":gray[true: {common.MISSING}]" or "✓" not in truths[2]  # a value: no right or wrong
    assert not any(f"{common.MISSING} ✗" in t or f"{common.MISSING} ✓" in t for t in truths)


# ----------------------------------------------------------------------------- Predict: tables


def customers_csv(tmp_path: Path, n: int = 12) -> tuple[bytes, int]:
    """A real customers CSV with one bad row (text in a numeric column); returns it and the bad line."""
    from mtl_core.control.data.customers import write_customers_csv

    lines = write_customers_csv(tmp_path / "customers.csv", n=n, seed=7).read_text().splitlines()
    cells = lines[3].split(",")
    cells[0] = "twelve"
    lines[3] = ",".join(cells)
    return ("\n".join(lines) + "\n").encode(), 4


def test_predict_page_csv_batch_keeps_good_rows_and_reports_the_bad_one(shipped, tmp_path):
    data, bad_line = customers_csv(tmp_path)
    at = open_page("churn-spend", "predict")
    at.file_uploader(key="csv-churn-spend").upload("customers.csv", data, "text/csv").run()

    assert not at.exception
    [error] = [e.value for e in at.error]
    assert error == f"customers.csv: line {bad_line}, column 'tenure_months': 'twelve' is not a number"
    assert "11 of 12 rows predicted" in texts(at, "markdown")
    table = next(d.value for d in at.dataframe if "error" in d.value.columns)
    assert len(table) == 12 and list(table["line"]) == list(range(2, 14))  # one result row per input row
    failed = table[table["error"] != ""]
    assert list(failed["line"]) == [bad_line]
    assert (failed[["churn: predicted", "churn: P(churns)", "spend: predicted (USD)"]] == "").all(axis=None)  # blank
    good = table[table["error"] == ""]
    assert set(good["churn: predicted"]) <= {"stays", "churns"}
    assert pd.to_numeric(good["churn: P(churns)"]).between(0, 1).all()
    assert pd.to_numeric(good["spend: predicted (USD)"].str.replace(",", "")).notna().all()
    reference = page_prediction("churn-spend", [data], ["customers.csv"])
    ok = [i for i in reference if "outputs" in i]
    assert list(good["churn: predicted"]) == [i["outputs"]["churn"]["label"] for i in ok]
    assert any(b.label.startswith("Download the predictions") for b in at.get("download_button"))
    assert [label for label, _ in metrics(at)][-2:] == ["churn", "spend"]  # one row's panels
    assert "Traceback" not in texts(at)


def test_predict_page_csv_unreadable_file_is_one_error(shipped):
    at = open_page("churn-spend", "predict")
    at.file_uploader(key="csv-churn-spend").upload("empty.csv", b"", "text/csv").run()

    assert not at.exception
    assert [e.value for e in at.error] == ["empty.csv: empty file (0 bytes)"]


def test_predict_page_form_has_a_widget_per_feature_and_follows_changes(shipped):
    at = open_page("churn-spend", "predict")
    numbers = {w.label: w for w in at.number_input}
    choices = {w.label: w for w in at.selectbox if w.key and w.key.startswith("feature-")}
    assert set(numbers) == {"tenure_months", "monthly_charges", "support_calls"}
    assert set(choices) == {"contract", "payment_method", "internet"}
    assert set(choices["contract"].options) == {"month-to-month", "one-year", "two-year"}
    assert numbers["tenure_months"].value == 36  # the training mean, as a whole number of months
    churn, spend = metrics(at)[-2:]
    assert churn[0] == "churn" and churn[1] in ("stays", "churns")
    assert spend[0] == "spend" and spend[1].endswith(" USD")
    before = at.metric[-2].delta

    choices["contract"].set_value("two-year").run()
    numbers = {w.label: w for w in at.number_input}
    numbers["tenure_months"].set_value(70).run()
    assert not at.exception and not at.error
    assert at.metric[-2].delta != before  # the churn probability follows the form
    assert metrics(at)[-2] == ("churn", "stays")  # a long two-year contract stays


# ----------------------------------------------------------------------------- no model, no data


@pytest.mark.parametrize("page", ["predict", "models"])
def test_a_preset_without_a_model_says_how_to_train_one(nothing, page):
    at = open_page("color-digits", page)

    [warning] = [w.value for w in at.warning]
    assert "No trained model for **color-digits**" in warning
    assert "python -m mtl_core train --preset color-digits" in warning
    assert not at.metric and not at.file_uploader and not at.error  # no made-up outputs


def test_data_page_of_a_preset_without_offline_data_says_how_to_get_it(nothing):
    at = open_page("cifar10-aqi", "data")

    assert not at.error
    [info] = [i.value for i in at.info]
    assert "no offline data set" in info and "--data-dir" in info
    assert at.text_input  # a folder holding the files can be given


# ----------------------------------------------------------------------------- Data and Models


def test_data_page_shows_samples_class_balance_and_target_distribution(nothing):
    at = open_page("shapes-3head", "data")

    assert not at.error
    assert len(at.image) == 24
    labels = texts(at, "caption")
    assert labels.count("shape: **") == 24 and labels.count("orientation: **") == 24
    assert charts(at) == 3  # balance of shape and of orientation, the intensity histogram
    assert "8,000 examples" in labels
    assert "3,981 rows without a label for orientation" in labels  # the plain drawings: shape label only


def test_data_page_of_a_table_shows_rows_with_their_labels(nothing):
    at = open_page("churn-spend", "data")

    [table] = [d.value for d in at.dataframe]
    assert {"churn", "spend", "contract", "tenure_months"} <= set(table.columns)
    assert set(table["churn"]) <= {"stays", "churns"}
    assert charts(at) == 2


def test_models_page_shows_the_card_curves_and_test_split_plots(shipped):
    at = open_page("color-digits", "models")

    assert not at.error
    frames = [d.value for d in at.dataframe]
    assert any("color-digits-" in str(v) for v in frames[0]["model"])  # every model, one table
    table = frames[1].set_index(["head", "metric"])
    assert table.loc[("digit", "accuracy"), "test"] > 0.9
    # training curves: total loss and learning rate, the gradient conflict, one figure per head
    assert charts(at) == 1 + 1 + 2
    assert any("digit ~ color" in c.value for c in at.caption)  # the conflict monitor's reading
    at.session_state["models-tabs"] = "Confusion matrices"
    assert charts(at.run()) == 2  # one per classification head
    at.session_state["models-tabs"] = "Test split"
    assert charts(at.run()) == 1  # the colour head's ROC curve (no regression head)
    assert not at.error and not at.exception
    grid = [m.value for m in at.markdown if m.value.startswith(":green[digit") or m.value.startswith(":red[digit")]
    assert len(grid) == 24  # test samples, every head coloured by correctness
    assert any(b.label.startswith("Download this model") for b in at.get("download_button"))
    assert not [b for b in at.button if b.key and b.key.startswith("delete-")]  # shipped: read-only


def test_models_page_of_a_table_model_plots_roc_and_predicted_against_actual(shipped):
    at = open_page("churn-spend", "models")
    at.session_state["models-tabs"] = "Test split"
    at.run()

    assert not at.exception and not at.error
    assert charts(at) == 2  # the churn head's ROC curve, spend predicted against actual
    grid = [d.value for d in at.dataframe if "churn" in d.value.columns][-1]
    assert len(grid) == 24 and grid["churn"].str.contains(r"\(true: (?:stays|churns)\)").all()
    assert "tenure_months" in grid.columns  # the features beside every head's verdict


def test_models_page_deletes_a_stored_model_after_confirmation(shipped):
    source = next(WEIGHTS.glob("churn-spend-*"))
    stored = shipped / "models" / "churn-spend-0123456789ab"
    shutil.copytree(source, stored)
    at = open_page("churn-spend", "models")
    at.selectbox(key="models-model-churn-spend").set_value(stored.name).run()  # the shipped one is the default

    at.button(key="delete-churn-spend-0123456789ab").click().run()
    assert stored.exists()  # not yet: a confirmation first
    assert any("cannot be undone" in w.value for w in at.warning)
    at.button(key="delete-yes-churn-spend-0123456789ab").click().run()

    assert not at.exception
    assert not stored.exists()
    assert any("Deleted churn-spend-0123456789ab" in s.value for s in at.success)
    assert source.exists()  # the shipped one stays, the default


def test_a_new_model_is_not_the_default_until_make_default_is_clicked(shipped):
    import json

    source = next(WEIGHTS.glob("churn-spend-*"))
    stored = shipped / "models" / "churn-spend-0123456789ab"
    shutil.copytree(source, stored)
    card = json.loads((stored / "card.json").read_text())
    (stored / "card.json").write_text(json.dumps({**card, "id": stored.name, "created": "2099-01-01T00:00:00Z"}))

    at = open_page("churn-spend", "models")
    picker = at.selectbox(key="models-model-churn-spend")
    assert picker.value == source.name  # the shipped model stays first although the copy is newer
    assert picker.options[0].startswith("★ default · churn accuracy") and "epochs" in picker.options[0]
    picker.set_value(stored.name).run()
    assert at.button(key=f"make-default-{stored.name}")  # not the default: the owner may make it so
    at.button(key=f"make-default-{stored.name}").click().run()

    assert not at.exception
    assert any(f"{stored.name} is now the default of churn-spend" in s.value for s in at.success)
    assert json.loads((shipped / "models" / "defaults.json").read_text()) == {"churn-spend": stored.name}
    again = open_page("churn-spend", "models")  # another visitor: the chosen model first
    assert again.selectbox(key="models-model-churn-spend").value == stored.name
    assert "chosen as the default" in texts(again, "caption")


# ----------------------------------------------------------------------------- mtl_core.views.common


def test_top_probabilities_fold_the_rest_of_many_classes():
    probs = {f"c{i}": (100 - i) / 5050 for i in range(100)}

    items = common.top_probabilities(probs)

    assert [c for c, _ in items[:3]] == ["c0", "c1", "c2"]
    assert len(items) == common.TOP_K + 1 and items[-1][0] == "other (90 classes)"
    assert sum(p for _, p in items) == pytest.approx(1.0)
    assert len(common.top_probabilities({"a": 0.2, "b": 0.8})) == 2  # few classes: all of them, sorted
    assert common.top_probabilities({"a": 0.2, "b": 0.8})[0] == ("b", 0.8)


def test_feature_specs_come_from_the_card_and_the_training_data():
    import json

    card = json.loads(next(WEIGHTS.glob("churn-spend-*")).joinpath("card.json").read_text())
    rows = __import__("pandas").DataFrame({"tenure_months": ["0", "72", "30"], "contract": ["one-year"] * 3,
                                           "payment_method": ["credit card"] * 3, "internet": ["dsl"] * 3,
                                           "monthly_charges": ["20.5", "99.5", "50"], "support_calls": ["0", "2", "1"]})

    specs = {s.name: s for s in predict_view.feature_specs(card, rows)}
    without_data = {s.name: s for s in predict_view.feature_specs(card)}

    tenure = specs["tenure_months"]
    assert tenure.integer and tenure.low == 0 and tenure.high == 108 and isinstance(tenure.default, int)
    assert specs["monthly_charges"].low <= 20.5 and specs["monthly_charges"].high >= 99.5
    assert specs["contract"].kind == "categorical" and specs["contract"].default == "one-year"
    mean, std = card["preprocessing"]["tabular"]["numeric"]["monthly_charges"]
    assert without_data["monthly_charges"].low == pytest.approx(mean - 4 * std, abs=1)


def test_format_value_and_range():
    assert common.format_value(1234.5, "USD") == "1,234.5 USD"
    assert common.format_value(0.4312) == "0.431"
    assert common.format_range(0, 1) == "0.00 to 1.00"
    assert common.format_range(0, 1201.6, "USD") == "0 to 1,202 USD"


def test_offline_sources_never_count_a_download():
    from mtl_core.control.presets import all_presets

    offline = {p.name: datasets.on_this_machine(p) for p in all_presets()}
    assert offline["shapes-3head"] and offline["color-digits"] and offline["churn-spend"]
    assert not any(v for k, v in offline.items() if k.startswith("cifar"))


def test_home_headline_metrics_sit_beside_the_seeds_reference():
    from mtl_core.control.store import ModelStore
    from mtl_core.views import home

    store = ModelStore(root=ROOT / "no-store-here", shipped=ROOT / "weights")
    model = store.default("shapes-3head")
    rows = {r["head"]: r for r in home.headline_metrics(get_preset("shapes-3head"), model)}
    test = model.card["metrics"]["test"]
    assert set(rows) == {"shape", "orientation", "intensity"}
    assert rows["shape"]["metric"] == "accuracy" and rows["shape"]["this model (test)"] == round(
        test["shape"]["accuracy"], 4)
    assert rows["intensity"]["metric"] == "mae"  # a regression head is compared on its error
    assert rows["shape"]["reference (seed)"] == pytest.approx(0.255)  # the seed author's number, shown as theirs
