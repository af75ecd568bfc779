"""The app in a real browser: `streamlit run app.py` and Debian's Chromium (see conftest.py). Opening the
Predict page directly (a deep link as the first request of the server), choosing a preset in the sidebar
and uploading a real image shows one panel per head; a CSV of customers gives a result table."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _browser import choose_preset, count_at_least, wait_idle

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/_images.py
from _images import save_png, shapes  # noqa: E402

pytestmark = pytest.mark.browser


def test_predict_page_shows_every_head_for_an_uploaded_image(app_url, page, tmp_path):
    x, y = shapes(n=1, seed=123)
    image = save_png(x[0], tmp_path / "circle.png")
    page.goto(f"{app_url}/predict")
    page.get_by_role("heading", name="Predict").wait_for()
    wait_idle(page)
    choose_preset(page, "shapes-3head")

    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(image))
    count_at_least(page, "stMetric", 3)
    count_at_least(page, "stPlotlyChart", 3)  # one figure in each head's panel (plotly.js draws them late)
    wait_idle(page)

    labels = [m.inner_text().splitlines()[0].strip() for m in page.get_by_test_id("stMetricLabel").all()]
    assert labels == ["shape", "orientation", "intensity"]
    values = [v.inner_text().strip() for v in page.get_by_test_id("stMetricValue").all()]
    assert values[0] == "circle" and values[1] == f"{y[0, 1] * 360 / 32:g}°"
    assert page.get_by_test_id("stPlotlyChart").count() == 3
    assert page.get_by_text("as the model saw it: 32×32 grey").is_visible()
    assert page.get_by_test_id("stException").count() == 0


def test_predict_page_csv_batch_in_the_browser(app_url, page, tmp_path):
    from mtl_core.control.data.customers import write_customers_csv

    csv = write_customers_csv(tmp_path / "customers.csv", n=8, seed=3)
    page.goto(f"{app_url}/predict")
    page.get_by_role("heading", name="Predict").wait_for()
    wait_idle(page)
    choose_preset(page, "churn-spend")
    page.get_by_role("tab", name="Batch (CSV)").click()

    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(csv))
    page.get_by_text("8 of 8 rows predicted").wait_for()
    wait_idle(page)

    assert page.get_by_role("button", name="Download the predictions (CSV)").is_visible()
    assert page.get_by_test_id("stException").count() == 0
    assert page.get_by_test_id("stAlertContentError").count() == 0


def test_train_page_moves_a_slider_and_trains_in_the_background(app_url, page):
    page.goto(f"{app_url}/train")
    page.get_by_role("heading", name="Train", exact=True).wait_for()
    wait_idle(page)
    choose_preset(page, "shapes-3head")

    slider = page.get_by_role("slider").nth(1)  # orientation's loss weight, 1.5 by default
    slider.focus()
    for _ in range(4):  # four steps of 0.05 down
        page.keyboard.press("ArrowLeft")
    wait_idle(page)
    for label, value in (("Epochs", "1"), ("Training-set size", "150")):
        box = page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Enter")
        wait_idle(page)
    command = page.locator("code").filter(has_text="orientation=1.3").filter(has_text="--epochs 1 --limit 150")
    command.wait_for(state="attached")  # in the "from a terminal" expander

    page.get_by_test_id("stBaseButton-primary").filter(has_text="Train").click()
    page.get_by_text("done: model shapes-3head-", exact=False).wait_for(timeout=150_000)  # polled by the page
    wait_idle(page)

    assert page.get_by_text("is now the model of the Predict and Models pages").is_visible()
    assert page.get_by_test_id("stPlotlyChart").count() >= 3
    assert page.get_by_test_id("stException").count() == 0


def test_tradeoffs_page_draws_the_front_of_the_shipped_model(app_url, page):
    page.goto(f"{app_url}/tradeoffs")
    page.get_by_role("heading", name="Trade-offs").wait_for()
    wait_idle(page)
    choose_preset(page, "color-digits")

    page.get_by_text("Hypervolume of the front").wait_for()
    count_at_least(page, "stPlotlyChart", 1)  # the front: one scatter for two heads
    wait_idle(page)

    assert page.get_by_text("1 of 1 models Pareto-optimal").is_visible()
    assert page.get_by_test_id("stException").count() == 0


def test_a_shared_link_opens_its_preset_and_model_and_survives_a_reload(app_url, page):
    page.goto(f"{app_url}/predict?preset=shapes-3head")
    page.get_by_role("heading", name="Predict").wait_for()
    page.locator("code").filter(has_text="shapes-3head").first.wait_for()
    wait_idle(page)
    page.wait_for_function("() => location.search.includes('model=shapes-3head-')")  # the URL names the model
    assert "preset=shapes-3head" in page.url
    shared = page.url
    page.goto(f"{app_url}/")  # elsewhere, then the link again, as someone who was sent it
    page.goto(shared)
    page.get_by_role("heading", name="Predict").wait_for()
    page.locator("code").filter(has_text="shapes-3head").first.wait_for()
    wait_idle(page)
    assert page.get_by_test_id("stSidebar").get_by_text("Shapes: shape, orientation, intensity").is_visible()
    assert page.get_by_test_id("stException").count() == 0


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))


def test_a_fresh_server_warms_the_first_visits_model_and_predict_opens_ready(browser, tmp_path):
    """MTL_WARMUP on (the other tests' server has it off): Home says the model is getting ready, then ready;
    Predict, opened from the sidebar, has its upload at once and predicts."""
    from _browser import start_streamlit, stop_streamlit
    from conftest import SCREENSHOTS

    (tmp_path / "home").mkdir()
    proc, url = start_streamlit(tmp_path / "home", tmp_path / "streamlit.log", env={"MTL_WARMUP": "1"})
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    try:
        page.goto(url)
        page.get_by_role("heading", name="Multi-Task Studio").wait_for(timeout=60_000)
        page.get_by_text("ready for Predict").first.wait_for(timeout=60_000)  # "Getting ... ready", then "is ready"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "warmup-home-getting-ready.png"))
        page.get_by_text("is ready for Predict").wait_for(timeout=120_000)
        page.screenshot(path=str(SCREENSHOTS / "warmup-home-ready.png"))
        assert page.get_by_test_id("stException").count() == 0

        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Predict").click()
        page.get_by_test_id("stFileUploaderDropzoneInput").first.wait_for(state="attached", timeout=10_000)
        assert page.get_by_text("Loading the model").count() == 0  # taken from the warm-up: nothing to load
        x, _ = shapes(n=1, seed=5)
        image = save_png(x[0], tmp_path / "shape.png")
        page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(image))
        count_at_least(page, "stMetric", 2)
        page.screenshot(path=str(SCREENSHOTS / "warmup-predict.png"))
        assert page.get_by_test_id("stException").count() == 0
    finally:
        page.close()
        stop_streamlit(proc)
