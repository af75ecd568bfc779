"""A real `streamlit run app.py` and Debian's Chromium, shared by the browser tests and bench/app_latency.py.

Chromium comes from apt (`apt-get install -y chromium`), never from `playwright install`; MTL_CHROMIUM names
another executable (tests/test_e2e_fixtures.py points it at a missing one).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("MTL_CHROMIUM") or "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
START_TIMEOUT = 90


def missing_browser() -> str | None:
    """Why the browser cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found: install Debian's Chromium (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright; the browser is Debian's Chromium)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_streamlit(home: Path, log: Path, weights: Path = ROOT / "weights", env: dict | None = None,
                    port: int | None = None) -> tuple[subprocess.Popen, str]:
    """Start `streamlit run app.py` on a free localhost port (not waiting); the process and its URL. ``env``:
    variables set on top of this process's (e.g. a public app's)."""
    port = port or free_port()
    env = {**os.environ, "MTL_WEIGHTS": str(weights), "MTL_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": str(ROOT), **(env or {})}
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    out = open(log, "wb")  # noqa: SIM115 - closed by stop_streamlit
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    proc.log_file = out
    return proc, f"http://127.0.0.1:{port}"


def start_streamlit(home: Path, log: Path, weights: Path = ROOT / "weights", env: dict | None = None,
                    port: int | None = None) -> tuple[subprocess.Popen, str]:
    """`spawn_streamlit`, then wait until /_stcore/health answers "ok"."""
    proc, url = spawn_streamlit(home, log, weights, env, port)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stop_streamlit(proc)
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    return proc, url
        except OSError:
            pass
        time.sleep(0.05)
    stop_streamlit(proc)
    raise RuntimeError(f"streamlit did not answer /_stcore/health within {START_TIMEOUT} s:\n"
                       f"{log.read_text()[-2000:]}")


def stop_streamlit(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log = getattr(proc, "log_file", None)
    if log is not None:
        log.close()


def wait_idle(page, quiet: int = 3) -> None:
    """Until Streamlit has finished its run: no status widget and no stale element, `quiet` checks in a row."""
    seen = 0
    for _ in range(1200):
        busy = page.locator('[data-testid="stStatusWidget"]').count() + page.locator('[data-stale="true"]').count()
        seen = seen + 1 if busy == 0 else 0
        if seen >= quiet:
            return
        page.wait_for_timeout(50)
    raise TimeoutError("the app kept running for 60 s")


def choose_preset(page, preset: str) -> None:
    """Pick ``preset`` in the sidebar and wait for the page to show it."""
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name=preset).first.click()
    page.locator("code").filter(has_text=preset).first.wait_for()  # every page's caption names the preset
    wait_idle(page)


def count_at_least(page, testid: str, n: int, timeout: float = 120_000) -> None:
    """Wait, checking every animation frame, until the page shows ``n`` elements with ``testid``."""
    page.wait_for_function("([id, n]) => document.querySelectorAll(`[data-testid=${id}]`).length >= n",
                           arg=[testid, n], polling="raf", timeout=timeout)
