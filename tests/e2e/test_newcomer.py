"""The app as a newcomer meets it, in Chromium (issue 17): nothing is fetched from outside the server; Home's
"Try it" opens Predict on its preset, with the preset in the URL; a model newer than the shipped one does not
become the default until "Make default" is clicked; a customer outside the training range gets a warning; the
charts' metric axes stay inside [0, 1]. Screenshots of each journey go to out/e2e/newcomer-*.png."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
from _browser import ROOT, count_at_least, start_streamlit, stop_streamlit, wait_idle
from conftest import SCREENSHOTS, require_browser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/_images.py
from _images import save_png, shapes  # noqa: E402

pytestmark = pytest.mark.browser
NEWER = "churn-spend-0123456789ab"  # a copy of the shipped churn model, created "later"


@pytest.fixture(scope="module")
def newcomer_url(tmp_path_factory):
    """A server whose store holds a churn-spend model newer than the shipped one."""
    require_browser()
    home = tmp_path_factory.mktemp("newcomer-home")
    source = next((ROOT / "weights").glob("churn-spend-*"))
    stored = home / "models" / NEWER
    shutil.copytree(source, stored)
    card = json.loads((stored / "card.json").read_text())
    (stored / "card.json").write_text(json.dumps({**card, "id": NEWER, "created": "2099-01-01T00:00:00Z"}))
    proc, url = start_streamlit(home, home / "streamlit.log")
    yield url
    stop_streamlit(proc)


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"newcomer-{name}.png"), full_page=True)


def picker_text(page) -> str:
    """What the Model picker shows (Streamlit draws a select box's choice as the text of its combobox)."""
    box = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text("Model", exact=True))
    return box.first.inner_text() + " " + " ".join(box.first.locator("input").evaluate_all(
        "els => els.map(e => e.value || e.getAttribute('aria-label') || '')"))


def test_no_page_fetches_anything_from_outside_the_server(newcomer_url, page):
    server = urlparse(newcomer_url).netloc
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if urlparse(r.url).scheme in ("http", "https", "ws", "wss")
            and urlparse(r.url).netloc != server else None)
    for path in ("/", "/predict?preset=shapes-3head", "/models?preset=churn-spend"):
        page.goto(newcomer_url + path)
        page.get_by_test_id("stMain").wait_for()
        wait_idle(page)
        page.wait_for_timeout(1500)  # the favicon and fonts are asked for after the first paint
    favicon = page.evaluate("() => document.querySelector(\"link[rel*='icon']\")?.href")
    assert favicon and urlparse(favicon).netloc == server  # the studio's own icon, served by the studio
    assert outside == []


def test_try_it_on_home_opens_predict_on_its_preset_and_a_drawing_gets_an_answer(newcomer_url, page, tmp_path):
    page.goto(newcomer_url)
    page.get_by_role("heading", name="Multi-Task Studio").wait_for()
    wait_idle(page)
    page.get_by_role("link", name="Try it: predict with shapes-3head").click()
    page.get_by_role("heading", name="Predict").wait_for()
    wait_idle(page)
    assert "preset=shapes-3head" in page.url  # a reload or a shared link keeps it
    x, _ = shapes(n=1, seed=7)
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(save_png(x[0], tmp_path / "a.png")))
    page.get_by_test_id("stMetric").nth(2).wait_for()
    count_at_least(page, "stPlotlyChart", 3)  # one figure per head (plotly.js draws them late)
    wait_idle(page)
    page.wait_for_timeout(1000)
    shot(page, "try-it-predict")
    labels = [m.inner_text().splitlines()[0].strip() for m in page.get_by_test_id("stMetricLabel").all()]
    assert labels[:3] == ["shape", "orientation", "intensity"]
    assert page.get_by_test_id("stException").count() == 0


def test_a_newer_model_becomes_the_default_only_when_make_default_is_clicked(newcomer_url, page):
    page.goto(f"{newcomer_url}/models?preset=churn-spend")
    page.get_by_role("heading", name="Models", exact=True).wait_for()
    wait_idle(page)
    shown = picker_text(page)
    assert "shipped" in shown and NEWER not in shown  # the shipped model stays the default
    page.goto(f"{newcomer_url}/models?preset=churn-spend&model={NEWER}")  # the newer one, by link
    page.get_by_role("button", name="Make default").wait_for()
    wait_idle(page)
    shot(page, "models-before-make-default")
    page.get_by_role("button", name="Make default").click()
    page.get_by_text(f"{NEWER} is now the default of churn-spend").wait_for()
    wait_idle(page)
    shot(page, "models-after-make-default")

    page.goto(f"{newcomer_url}/predict?preset=churn-spend")  # another page, without a model in the URL
    page.get_by_role("heading", name="Predict").wait_for()
    wait_idle(page)
    page.wait_for_function(f"() => location.search.includes('model={NEWER}')")
    assert page.get_by_test_id("stException").count() == 0


def test_a_customer_outside_the_training_range_gets_a_warning_naming_the_column(newcomer_url, page, tmp_path):
    from mtl_core.control.data.customers import write_customers_csv

    csv = write_customers_csv(tmp_path / "customers.csv", n=3, seed=3)
    lines = csv.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[2].split(",")
    row[header.index("tenure_months")] = "80"  # trained on 0 to 72
    csv.write_text("\n".join([lines[0], lines[1], ",".join(row), lines[3]]) + "\n")
    page.goto(f"{newcomer_url}/predict?preset=churn-spend")
    page.get_by_role("heading", name="Predict").wait_for()
    wait_idle(page)
    page.get_by_role("tab", name="Batch (CSV)").click()
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(csv))
    page.get_by_text("3 of 3 rows predicted").wait_for()
    wait_idle(page)
    shot(page, "predict-out-of-range")
    warning = page.get_by_test_id("stAlertContentWarning").filter(has_text="outside the training range")
    assert "tenure_months" in warning.first.inner_text() and "0 to 72" in warning.first.inner_text()


def test_the_models_page_draws_accuracy_inside_the_unit_interval(newcomer_url, page):
    page.goto(f"{newcomer_url}/models?preset=shapes-3head")
    page.get_by_role("heading", name="Models", exact=True).wait_for()
    page.get_by_test_id("stPlotlyChart").first.wait_for()
    wait_idle(page)
    page.wait_for_timeout(1000)  # plotly.js lays the figures out after they arrive
    shot(page, "models-curves")
    ranges = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].flatMap(p =>
        Object.entries(p.layout || {}).filter(([k, v]) => k.startsWith('yaxis') && v.title && v.title.text
            && /accuracy|auc/.test(v.title.text)).map(([k, v]) => v.range))""")
    assert ranges, "no accuracy axis drawn"
    for lo, hi in ranges:
        assert 0 <= lo < hi <= 1.011


def test_on_a_phone_the_answers_come_before_the_picture_within_a_screen_of_the_upload(newcomer_url, browser, tmp_path):
    context = browser.new_context(viewport={"width": 400, "height": 800}, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{newcomer_url}/predict?preset=shapes-3head")
        page.get_by_role("heading", name="Predict").wait_for()
        wait_idle(page)
        x, _ = shapes(n=1, seed=11)
        image = save_png(x[0], tmp_path / "p.png")
        page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(image))
        page.get_by_test_id("stMetric").nth(2).wait_for()
        wait_idle(page)
        shot(page, "phone-predict")
        uploader = page.get_by_test_id("stFileUploader").first.bounding_box()
        answer = page.get_by_test_id("stMetric").first.bounding_box()
        picture = page.get_by_test_id("stImage").last.bounding_box()
        assert answer["y"] < picture["y"]  # the answers first
        assert answer["y"] - (uploader["y"] + uploader["height"]) < 800  # within a screen of the upload
    finally:
        context.close()
