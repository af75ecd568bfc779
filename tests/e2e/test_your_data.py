"""Your own table in the browser: upload a CSV (scikit-learn's wine data with an id column and holes) on Your
data, choose two targets, see the heads with their classes, unit and charts, then "Train on it": the Train page
has one slider per target, trains in the background, and Predict shows both heads for the form's row."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _browser import ROOT, count_at_least, wait_idle

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/test_table.py
from test_table import wine_csv  # noqa: E402

pytestmark = pytest.mark.browser
SCREENSHOTS = ROOT / "out" / "e2e"


def test_a_csv_becomes_a_two_head_model_from_upload_to_prediction(app_url, page, tmp_path):
    csv = wine_csv(tmp_path / "wine.csv")
    page.goto(f"{app_url}/your_data")
    page.get_by_role("heading", name="Your data").wait_for()
    wait_idle(page)
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(csv))
    page.get_by_text("wine.csv · 178 rows · fingerprint").wait_for()
    wait_idle(page)

    targets = page.get_by_role("combobox", name="Targets: the columns to predict (one head each)")
    for column in ("cultivar", "alcohol (%)"):
        targets.click()
        page.keyboard.type(column)  # the list is long: typing filters it, as a user would
        page.get_by_role("option", name=column, exact=True).click()
        wait_idle(page)
    page.keyboard.press("Escape")
    page.get_by_text("cultivar · multiclass · barbera, barolo, grignolino").wait_for()
    page.get_by_text("alcohol · regression · %").wait_for()  # the page may still be drawing: wait, not look
    page.get_by_text("Left out: bottle (an id (a different value in every row)).").wait_for()
    count_at_least(page, "stPlotlyChart", 2)  # class balance, and the alcohol histogram
    wait_idle(page)
    assert page.get_by_test_id("stPlotlyChart").count() == 2
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "your-data.png"), full_page=True)

    page.get_by_role("button", name="Train on it").click()
    page.get_by_role("heading", name="Train", exact=True).wait_for()
    wait_idle(page)
    page.get_by_text("cultivar (multiclass)").wait_for()
    page.get_by_text("alcohol (regression)").wait_for()
    box = page.get_by_label("Epochs", exact=True)
    box.fill("20")
    box.press("Enter")
    wait_idle(page)
    command = page.locator("code").filter(has_text="--preset table").filter(has_text="--target cultivar")
    command.wait_for(state="attached")  # in the "from a terminal" expander
    page.get_by_test_id("stBaseButton-primary").filter(has_text="Train").click()
    page.get_by_text("done: model table-", exact=False).wait_for(timeout=150_000)
    wait_idle(page)
    page.screenshot(path=str(SCREENSHOTS / "your-data-trained.png"), full_page=True)

    page.get_by_role("link", name="Predict").first.click()
    page.get_by_role("heading", name="Predict").wait_for()
    wait_idle(page)
    page.get_by_test_id("stMetric").nth(1).wait_for()  # the row form predicts its defaults at once
    wait_idle(page)
    labels = [m.inner_text().splitlines()[0].strip() for m in page.get_by_test_id("stMetricLabel").all()]
    assert labels[:2] == ["cultivar", "alcohol"], labels
    page.screenshot(path=str(SCREENSHOTS / "your-data-predict.png"), full_page=True)
    assert page.get_by_test_id("stException").count() == 0


def test_a_zip_of_images_becomes_a_two_head_model_and_predicts_an_upload(app_url, page, tmp_path):
    import zipfile

    from test_image_folder import photo_folder

    folder = photo_folder(tmp_path / "photos", n=60)
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"photos/{path.name}")
    page.goto(f"{app_url}/your_data")
    page.get_by_role("heading", name="Your data").wait_for()
    wait_idle(page)
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(archive))
    page.get_by_text("photos.zip · 61 images · fingerprint").wait_for()
    wait_idle(page)
    page.get_by_text("shape · multiclass").wait_for()
    page.get_by_text("brightness · regression · %").wait_for()  # the page may still be drawing: wait, not look
    page.get_by_text("Skipped gone.png: line 63: no such file.").wait_for()
    count_at_least(page, "stPlotlyChart", 2)  # the class balance and the histogram (plotly.js draws them late)
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stImage] img')]"
                           ".filter(i => i.complete && i.naturalWidth > 0).length >= 8")  # the sample images
    wait_idle(page)
    page.screenshot(path=str(SCREENSHOTS / "your-data-images.png"), full_page=True)

    page.get_by_role("button", name="Train on it").click()
    page.get_by_text("shape (multiclass)").wait_for()
    box = page.get_by_label("Epochs", exact=True)
    box.fill("2")
    box.press("Enter")
    wait_idle(page)
    page.locator("code").filter(has_text="--preset images").filter(has_text="size=").wait_for(state="attached")
    page.get_by_test_id("stBaseButton-primary").filter(has_text="Train").click()
    page.get_by_text("done: model images-", exact=False).wait_for(timeout=150_000)
    wait_idle(page)

    page.get_by_role("link", name="Predict").first.click()
    page.get_by_role("heading", name="Predict").wait_for()
    wait_idle(page)
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(folder / "img001.jpg"))
    page.get_by_test_id("stMetric").nth(1).wait_for()
    wait_idle(page)
    labels = [m.inner_text().splitlines()[0].strip() for m in page.get_by_test_id("stMetricLabel").all()]
    assert labels == ["shape", "brightness"], labels
    page.screenshot(path=str(SCREENSHOTS / "your-data-images-predict.png"), full_page=True)
    assert page.get_by_test_id("stException").count() == 0
