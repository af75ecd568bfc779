"""The app server's memory under use (issue 16, part 4): RSS growth over many predictions and sessions.

A real `streamlit run app.py` (the warm-up on) and headless Chromium driven by Playwright.
- A first session makes ``--per-session`` predictions, so every model, decoder and cache the page uses is
  loaded. The server's resident memory after it (VmRSS of the `streamlit` process, from /proc) is the
  baseline.
- Then ``--sessions`` fresh browser sessions (a new context each: cookies, websocket, Streamlit session) each
  open Predict and upload ``--per-session`` images one after another, each a new file name, each waited for
  until its result is drawn.

Printed: RSS after each session and the growth over the baseline, against the goal (< 50 MB for 200
predictions over 10 sessions; the classic Streamlit + TensorFlow leak is a model rebuilt per rerun or per
session). Nothing is asserted.

    python bench/app_memory.py [--sessions 10] [--per-session 20] [--preset shapes-3head]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from _browser import CHROMIUM, CHROMIUM_ARGS, missing_browser, start_streamlit, stop_streamlit, wait_idle  # noqa: E402
from _images import save_png, shapes  # noqa: E402

GOAL_MB = 50.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def predict_once(page, path: Path) -> None:
    """Upload ``path`` and wait until its result (the file's name under the image it shows) is drawn."""
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(path))
    page.get_by_test_id("stImageCaption").filter(has_text=path.name).first.wait_for(timeout=60_000)
    wait_idle(page)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--per-session", type=int, default=20)
    ap.add_argument("--preset", default="shapes-3head")
    args = ap.parse_args()
    reason = missing_browser()
    if reason:
        sys.exit(f"cannot run: {reason}")
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="mtl-bench-memory-"))
    x, _ = shapes(n=args.sessions * args.per_session + 1, seed=11)
    files = [save_png(x[i], tmp / f"upload-{i:03d}.png") for i in range(len(x))]
    warmup_files = [save_png(x[i], tmp / f"first-{i:03d}.png") for i in range(args.per_session)]
    (tmp / "home").mkdir()
    proc, url = start_streamlit(tmp / "home", tmp / "streamlit.log", env={"MTL_WARMUP": "1"})
    rows = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)

            def session():
                context = browser.new_context(viewport={"width": 1400, "height": 1600})
                page = context.new_page()
                page.set_default_timeout(60_000)
                page.goto(f"{url}/predict?preset={args.preset}")
                page.get_by_test_id("stFileUploaderDropzoneInput").first.wait_for(state="attached", timeout=120_000)
                return context, page

            context, page = session()  # a first session like the others: what stays loaded is in the baseline
            for i in range(args.per_session):
                predict_once(page, warmup_files[i])
            context.close()
            time.sleep(2.0)
            base = rss_mb(proc.pid)
            t0 = time.perf_counter()
            done = 0
            for s in range(args.sessions):
                context, page = session()
                for _ in range(args.per_session):
                    done += 1
                    predict_once(page, files[done])
                context.close()
                rows.append((s + 1, done, rss_mb(proc.pid)))
            seconds = time.perf_counter() - t0
            browser.close()
        time.sleep(2.0)
        after = rss_mb(proc.pid)
    finally:
        stop_streamlit(proc)

    from bench._machine import machine

    print(f"machine: {machine()}; load average at the end {os.getloadavg()[0]:.2f}")
    print(f"server: streamlit run app.py, {args.preset}'s shipped model; {done} predictions over {args.sessions} "
          f"browser sessions in {seconds:.0f} s")
    print(f"baseline RSS after a first session of {args.per_session} predictions: {base:.1f} MB")
    print(f"{'sessions':>8} {'predictions':>11} {'RSS MB':>8} {'growth MB':>10}")
    for s, n, mb in rows:
        print(f"{s:>8} {n:>11} {mb:8.1f} {mb - base:10.1f}")
    print(f"2 s after the last session: {after:.1f} MB, growth {after - base:.1f} MB against the goal of < "
          f"{GOAL_MB:g} MB ({(after - base) / GOAL_MB:.0%} of it)")


if __name__ == "__main__":
    main()
