"""Browser fixtures: a real `streamlit run app.py` on a free localhost port (MTL_WEIGHTS = the repository's
weights/, MTL_HOME = a temporary folder) and Debian's Chromium driven by Playwright for Python. Without
/usr/bin/chromium (or $MTL_CHROMIUM) or the playwright package every test here is skipped with the reason,
except under CI=true (.ci/run), where they fail with it: a CI run must not pass with no browser test run.
A failing test leaves a screenshot of its page in out/e2e/."""

from __future__ import annotations

import os

import pytest
from _browser import CHROMIUM, CHROMIUM_ARGS, ROOT, missing_browser, start_streamlit, stop_streamlit

SCREENSHOTS = ROOT / "out" / "e2e"


def require_browser() -> None:
    """Skip the test when there is no browser here; fail it instead under CI=true."""
    reason = missing_browser()
    if not reason:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, so the browser tests must run, but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    require_browser()
    home = tmp_path_factory.mktemp("e2e-home")
    proc, url = start_streamlit(home, home / "streamlit.log")
    yield url
    stop_streamlit(proc)


@pytest.fixture(scope="module")
def browser():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture()
def page(browser, request):
    """A fresh browser page; a screenshot of it is saved to out/e2e/ when the test fails."""
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{request.node.name}.png"
        try:
            pg.screenshot(path=str(path), full_page=True)
            print(f"screenshot of the failure: {path}")
        except Exception as exc:  # noqa: BLE001 - the test's own failure matters more
            print(f"no screenshot ({exc})")
    context.close()
