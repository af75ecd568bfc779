"""The study benches of issue 14 print their tables: the weighting study (every method against single-task
models, resumable from its ledger) and the loss-conditioned bench (a conditioned model against static models
per λ point). Tiny budgets: one epoch, the cheapest presets; the figures are the benches' own, not checked
here beyond their shape and range."""

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# Each bench runs in a process of its own and trains a few models (four and three): with the slow group.
pytestmark = pytest.mark.slow


def run_bench(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def table_rows(text: str, first_cell: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith(f"| {first_cell}")]


def test_weighting_study_prints_its_table_and_resumes_from_the_ledger(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    args = ["bench/weighting_study.py", "--preset", "churn-spend", "--method", "static", "--method", "famo",
            "--seeds", "1", "--epochs", "1", "--store", str(tmp_path / "store"), "--ledger", str(ledger)]
    first = run_bench(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "### churn-spend" in first.stdout
    single = table_rows(first.stdout, "single-task")
    static, famo = table_rows(first.stdout, "static"), table_rows(first.stdout, "famo")
    assert len(single) == 1 and len(static) == 1 and len(famo) == 1, first.stdout
    # Δm% is a signed percentage; "heads ≥ single-task" counts out of churn-spend's heads.
    heads = len(single[0]) - 5
    for row in (static[0], famo[0]):
        assert re.fullmatch(r"[+-]\d+\.\d\d ± \d+\.\d\d", row[heads + 1]), row
        assert re.fullmatch(rf"\d of {heads}", row[heads + 2]), row
        assert float(row[heads + 3]) > 0  # ms per step, measured in this run
    assert float(static[0][heads + 4]) == 1.0
    # One ledger line per training: a model per head alone, then the two methods.
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [row["what"] for row in lines].count("single-task seed 1") == heads
    assert {row["what"] for row in lines} >= {"static seed 1", "famo seed 1"}

    # A rerun that may not train prints the same table from the ledger alone.
    again = run_bench(*args, "--from-ledger", "--store", str(tmp_path / "empty-store"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert table_rows(again.stdout, "famo") == famo
    assert "(ledger)" in again.stderr


def test_conditioned_bench_prints_its_table_and_resumes_from_the_ledger(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    args = ["bench/conditioned.py", "--only", "color-digits", "--seeds", "1", "--epochs", "1", "--points", "2",
            "--store", str(tmp_path / "store"), "--ledger", str(ledger)]
    result = run_bench(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "### color-digits" in out
    points = [line for line in out.splitlines() if re.match(r"\| 0\.\d\d, 0\.\d\d \|", line)]
    assert len(points) == 2, out  # two λ points for two heads, with the 5% floor
    reached = re.search(r"points x heads within the goal .*: (\d+) of (\d+)", out)
    assert reached and int(reached.group(2)) == 4 and int(reached.group(1)) <= 4
    ratio = re.search(r"\| mean \| \| \| \| \| \*\*(\d+\.\d\d)×\*\* \|", out)
    assert ratio and float(ratio.group(1)) > 0
    # One ledger line per training: the conditioned model (with its figures at both points), two static ones.
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert sorted(row["what"].split()[0] for row in lines) == ["conditioned", "static", "static"]
    assert len(next(row for row in lines if row["what"].startswith("conditioned"))["at"]) == 2

    # From a fresh clone (an empty store) the same table comes from the ledger, without training.
    again = run_bench(*args[:-4], "--store", str(tmp_path / "empty-store"), "--ledger", str(ledger))
    assert again.returncode == 0, again.stderr[-3000:]
    assert [line for line in again.stdout.splitlines() if re.match(r"\| 0\.\d\d, 0\.\d\d \|", line)] == points
    assert again.stderr.count("(ledger)") == 3
    assert not list((tmp_path / "empty-store").rglob("card.json"))  # nothing trained
