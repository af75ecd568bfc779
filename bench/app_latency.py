"""App latency in a real browser: `streamlit run app.py` to the rendered home page, and upload to the
rendered prediction for each offline preset (an image upload for image presets, a CSV upload for tabular
ones), in headless Debian Chromium driven by Playwright.

Each figure is a wall-clock time measured from the benchmark process: "start to home page" from the
`streamlit run` subprocess being spawned to the home page's model tables drawn in the browser (the
browser is launched before the server, so its own start-up is not counted); "first Predict page" from
navigation to the page with its model loaded (TensorFlow's import happens here, once per server);
"upload -> outputs shown" from handing the file to the page's uploader to every head's value on the page
(for a CSV: its summary line), "-> charts drawn too" until plotly.js has drawn every head's figure as
well (median and max over --runs uploads, each on a freshly loaded page, the model already in the
server's cache).
The server warms up in the background (mtl_core/views/warmup.py): "-> warm-up done" is when the home page
says the first visit's model is ready, and that preset's first Predict page is then timed from the home
page (goal: its upload within 1 s). A second server measures a visitor who arrives early: Predict opened
right after the home page, timed to its upload, and whether the page showed the warm-up's stages meanwhile;
a third, with the warm-up off, times its home page as the baseline of the same run.
The goals (home page under 5 s, upload to prediction under 1 s, the warmed Predict page under 1 s) are
printed beside them as ratios. Nothing is asserted.

    python bench/app_latency.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from _browser import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    choose_preset,
    count_at_least,
    missing_browser,
    spawn_streamlit,
    stop_streamlit,
    wait_idle,
)

HOME_GOAL, UPLOAD_GOAL, WARM_PREDICT_GOAL = 5.0, 1.0, 1.0


def warmed_preset() -> str:
    """The preset a first visit opens, whose model the server warms up (share.first_preset on the shipped models)."""
    from mtl_core.control.presets import all_presets
    from mtl_core.control.store import ModelStore
    from mtl_core.views.share import first_preset

    store = ModelStore(root=Path(tempfile.mkdtemp()) / "models", shipped=ROOT / "weights")
    return first_preset(all_presets(), lambda name: store.default(name) is not None)


def serve_and_open_home(page, folder: Path, env: dict | None = None):
    """Start a server, open its home page as soon as it answers; (process, url, seconds to answer, to home)."""
    (folder / "home").mkdir(parents=True)
    t0 = time.perf_counter()
    proc, url = spawn_streamlit(folder / "home", folder / "streamlit.log", env=env)
    while True:  # the browser retries until the server answers, as a user reloading would
        try:
            page.goto(url, timeout=1000)
            break
        except Exception:  # noqa: BLE001 - connection refused until the server listens
            if proc.poll() is not None or time.perf_counter() - t0 > 120:
                sys.exit(f"streamlit did not start:\n{(folder / 'streamlit.log').read_text()[-2000:]}")
            time.sleep(0.05)
    t_listen = time.perf_counter() - t0
    page.get_by_role("heading", name="Multi-Task Studio").wait_for(timeout=120_000)
    count_at_least(page, "stDataFrame", 3)  # the shipped models' tables
    return proc, url, t_listen, time.perf_counter() - t0


def arrive_early(browser, folder: Path, preset: str) -> tuple[float, bool]:
    """A fresh server; Predict opened right after its home page: seconds to the upload, and whether the page
    showed the warm-up's stages while the visitor waited."""
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    proc, url, _, _ = serve_and_open_home(page, folder)
    try:
        t0 = time.perf_counter()
        page.goto(f"{url}/predict?preset={preset}")
        saw_progress = False
        upload = page.get_by_test_id("stFileUploaderDropzoneInput")
        while upload.count() == 0 and time.perf_counter() - t0 < 120:
            saw_progress = saw_progress or page.get_by_text("Getting the model ready").count() > 0
            time.sleep(0.05)
        return time.perf_counter() - t0, saw_progress
    finally:
        stop_streamlit(proc)
        page.close()


def open_predict(page, url: str, preset: str) -> float:
    """Open the Predict page with ``preset`` chosen; seconds until it has settled."""
    t0 = time.perf_counter()
    page.goto(f"{url}/predict")
    page.get_by_role("heading", name="Predict").wait_for()
    wait_idle(page)
    choose_preset(page, preset)
    return time.perf_counter() - t0


def upload_image(page, path: Path, heads: int) -> tuple[float, float]:
    """Seconds from the upload to every head's value shown, and to every head's chart drawn."""
    start = page.get_by_test_id("stMetric").count()
    t0 = time.perf_counter()
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(path))
    count_at_least(page, "stMetric", start + heads)
    values = time.perf_counter() - t0
    count_at_least(page, "stPlotlyChart", heads)
    return values, time.perf_counter() - t0


def upload_csv(page, path: Path, rows: int) -> tuple[float, float]:
    """Seconds from the upload to the summary line, and to the result table and one row's charts drawn."""
    page.get_by_role("tab", name="Batch (CSV)").click()
    wait_idle(page)
    charts = page.get_by_test_id("stPlotlyChart").count()
    t0 = time.perf_counter()
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(path))
    page.get_by_text(f"{rows} of {rows} rows predicted").wait_for()
    values = time.perf_counter() - t0
    count_at_least(page, "stDataFrame", 1)
    count_at_least(page, "stPlotlyChart", charts + 2)
    return values, time.perf_counter() - t0


def inputs(folder: Path) -> dict[str, tuple[str, Path, int]]:
    """One real input per offline preset: (kind, file, heads or rows)."""
    import numpy as np
    from _images import save_png, shapes
    from PIL import Image

    from mtl_core.control.data.customers import write_customers_csv
    from mtl_core.control.data.digits import colourise, load_sklearn_digits

    x, _ = shapes(n=1, seed=123)
    grey, _ = load_sklearn_digits()
    rgb, _ = colourise(grey[:1], 0)
    digit = folder / "digit.png"
    Image.fromarray(np.round(rgb[0] * 255).astype(np.uint8)).save(digit)
    return {
        "shapes-3head": ("image", save_png(x[0], folder / "shape.png"), 3),
        "color-digits": ("image", digit, 2),
        "churn-spend": ("csv", write_customers_csv(folder / "customers.csv", n=100, seed=1), 100),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="uploads per preset (each on a fresh page)")
    ap.add_argument("--presets", default="shapes-3head,color-digits,churn-spend", help="comma-separated")
    args = ap.parse_args()
    reason = missing_browser()
    if reason:
        sys.exit(f"cannot run: {reason}")
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="mtl-bench-app-"))
    files = inputs(tmp)
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        warm = warmed_preset()
        proc, url, t_listen, t_home = serve_and_open_home(page, tmp / "server")
        t0 = time.perf_counter() - t_home  # the server's spawn, on this clock
        try:
            rows.append(("streamlit run -> server answers", t_listen, None, None))
            rows.append(("streamlit run -> home page rendered", t_home, None, HOME_GOAL))
            page.get_by_text("is ready for Predict").wait_for(timeout=120_000)
            rows.append((f"streamlit run -> warm-up done ({warm}'s model)", time.perf_counter() - t0, None, None))
            t1 = time.perf_counter()
            page.get_by_test_id("stSidebarNav").get_by_role("link", name="Predict").click()  # as a visitor does
            page.get_by_test_id("stFileUploaderDropzoneInput").first.wait_for(state="attached")
            rows.append((f"{warm}: home -> Predict's upload, after the warm-up", time.perf_counter() - t1, None,
                         WARM_PREDICT_GOAL))
            for preset, (kind, path, size) in files.items():
                if preset not in args.presets.split(","):
                    continue
                first = open_predict(page, url, preset)
                if preset != warm:
                    rows.append((f"{preset}: first Predict page (model load)", first, None, None))
                shown, drawn = [], []
                for _ in range(args.runs):
                    open_predict(page, url, preset)
                    a, b = upload_image(page, path, size) if kind == "image" else upload_csv(page, path, size)
                    shown.append(a)
                    drawn.append(b)
                what = "image upload" if kind == "image" else f"CSV upload ({size} rows)"
                rows.append((f"{preset}: {what} -> outputs shown", statistics.median(shown), max(shown),
                             UPLOAD_GOAL))
                rows.append((f"{preset}: {what} -> charts drawn too", statistics.median(drawn), max(drawn),
                             UPLOAD_GOAL))
        finally:
            stop_streamlit(proc)
        cold = browser.new_page(viewport={"width": 1400, "height": 1600})
        proc, _, _, t_cold = serve_and_open_home(cold, tmp / "no-warmup", env={"MTL_WARMUP": "0"})
        stop_streamlit(proc)
        cold.close()
        rows.append(("the same, warm-up off (MTL_WARMUP=0): home page rendered", t_cold, None, HOME_GOAL))
        early, saw = arrive_early(browser, tmp / "early", warm)
        rows.append((f"{warm}: Predict right after home, to its upload ({'stages shown' if saw else 'no stages'})",
                     early, None, None))
        browser.close()

    from bench._machine import machine

    print(f"machine: {machine()}")
    print(f"browser: {CHROMIUM} (headless), {args.runs} uploads per preset, shipped models from weights/")
    print(f"{'measure':<58} {'seconds':>8} {'max':>7} {'goal':>6} {'of goal':>8}")
    for name, value, worst, goal in rows:
        print(f"{name:<58} {value:8.3f} {'' if worst is None else f'{worst:7.3f}':>7} "
              f"{'' if goal is None else f'{goal:g}':>6} {'' if goal is None else f'{value / goal:7.0%}':>8}")


if __name__ == "__main__":
    main()
