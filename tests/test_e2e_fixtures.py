"""The browser fixtures of tests/e2e without a browser: skipped with the reason, except under CI=true
(.ci/run), where they fail with it, so a CI run cannot pass without having run the browser tests.

Each case runs pytest in a subprocess on a copy of tests/e2e/conftest.py and _browser.py beside a generated
two-test module, with MTL_CHROMIUM (or the playwright package) made missing; no Chromium or Streamlit starts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

E2E = Path(__file__).resolve().parent / "e2e"

TESTS = '''
def test_uses_the_app(app_url):
    raise AssertionError("ran without a browser")


def test_uses_a_page(page):
    raise AssertionError("ran without a browser")
'''
# the top conftest hides the playwright package (an ImportError on import) when asked to
HIDE_PLAYWRIGHT = '''
import os
import sys

if os.environ.get("HIDE_PLAYWRIGHT"):
    sys.modules["playwright"] = None
    sys.modules["playwright.sync_api"] = None
'''


def run_fixtures(tmp_path: Path, *, ci: str | None, chromium: Path, hide_playwright: bool = False):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(HIDE_PLAYWRIGHT)
    e2e = tmp_path / "e2e"
    e2e.mkdir()
    for name in ("conftest.py", "_browser.py"):
        shutil.copy(E2E / name, e2e / name)
    (e2e / "test_needs_browser.py").write_text(TESTS)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS", "HIDE_PLAYWRIGHT")}
    env["MTL_CHROMIUM"] = str(chromium)
    if ci is not None:
        env["CI"] = ci
    if hide_playwright:
        env["HIDE_PLAYWRIGHT"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(e2e)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def missing_chromium(tmp_path: Path) -> Path:
    return tmp_path / "no-such-dir" / "chromium"


@pytest.mark.parametrize("ci", [None, "false", "1"])
def test_without_ci_a_missing_chromium_skips_with_the_reason(tmp_path, ci):
    chromium = missing_chromium(tmp_path)
    run = run_fixtures(tmp_path, ci=ci, chromium=chromium)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "2 skipped" in out and "error" not in out.lower(), out
    assert f"{chromium} not found" in out, out


def test_under_ci_a_missing_chromium_fails_with_the_reason(tmp_path):
    chromium = missing_chromium(tmp_path)
    run = run_fixtures(tmp_path, ci="true", chromium=chromium)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "2 errors" in out and "skipped" not in out, out
    assert out.count(f"CI=true, so the browser tests must run, but {chromium} not found") >= 2, out
    assert "ran without a browser" not in out, out


def test_under_ci_a_missing_playwright_fails_with_the_reason(tmp_path):
    run = run_fixtures(tmp_path, ci="true", chromium=Path(sys.executable), hide_playwright=True)  # a file that exists
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "2 errors" in out and "skipped" not in out, out
    assert out.count("CI=true, so the browser tests must run, but the playwright package is not installed") >= 2, out


def test_without_ci_a_missing_playwright_skips_with_the_reason(tmp_path):
    run = run_fixtures(tmp_path, ci=None, chromium=Path(sys.executable), hide_playwright=True)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "2 skipped" in out and "the playwright package is not installed" in out, out


def test_ci_run_exports_ci_true_before_the_test_line():
    script = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text().splitlines()
    export = script.index("export CI=true")
    run = next(i for i, line in enumerate(script) if line.startswith('bash -c "$test_line"'))
    assert export < run
