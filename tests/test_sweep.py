"""Sweeps: one model per weight vector, reused from the store the second time (nothing trains), the
CLI's one-line JSON with Pareto flags and the hypervolume, its option errors found before TensorFlow,
and sweeps found again among stored models (the Trade-offs page's view)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import assert_user_error, one_json_line, run_without_tensorflow

from mtl_core.cli import main
from mtl_core.control import pareto
from mtl_core.control.config import make_config
from mtl_core.control.presets import get_preset
from mtl_core.control.store import ModelStore
from mtl_core.control.sweeps import submit_sweep, sweep_groups
from mtl_core.engine.sweep import run_sweep

ROOT = Path(__file__).resolve().parent.parent
PRESET = "color-digits"
OPTIONS = {"epochs": 1, "limit": 300, "batch_size": 32, "seed": 5}
CLI_OPTIONS = ["--epochs", "1", "--limit", "300", "--batch-size", "32", "--seed", "5"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A store holding a 2-point sweep of color-digits (1 epoch, 300 examples), and its document."""
    home = tmp_path_factory.mktemp("sweep-home")
    store = ModelStore(root=home / "models", shipped=None)
    config = make_config(get_preset(PRESET), **OPTIONS)
    vectors = pareto.weight_vectors(list(config.loss_weights), 2, "grid")
    events = []
    doc = run_sweep(PRESET, config, vectors, store=store, subscribers=[events.append])
    return home, store, config, vectors, doc, events


def test_a_sweep_trains_one_model_per_vector_and_marks_the_front(swept):
    _, store, _, vectors, doc, events = swept
    assert [p["weights"] for p in doc["points"]] == vectors
    assert len({p["model"] for p in doc["points"]}) == 2
    assert all(not p["cached"] for p in doc["points"])
    assert sum(e["event"] == "start" for e in events) == 2
    for point in doc["points"]:
        assert set(point["metrics"]) == {"digit", "color"}
        assert set(point["metrics"]["digit"]) == {"accuracy"} and set(point["metrics"]["color"]) == {"auc"}
        card = store.find(point["model"]).card
        assert point["metrics"]["digit"]["accuracy"] == card["metrics"]["validation"]["digit"]["accuracy"]
    assert any(p["pareto"] for p in doc["points"])
    assert doc["hypervolume"] >= 0 and doc["reference"] == {"digit": 0.1, "color": 0.5}


def test_a_second_sweep_reuses_the_stored_models_and_trains_nothing(swept):
    _, store, config, vectors, doc, _ = swept
    events = []
    again = run_sweep(PRESET, config, vectors, store=store, subscribers=[events.append])
    assert [p["model"] for p in again["points"]] == [p["model"] for p in doc["points"]]
    assert all(p["cached"] for p in again["points"])
    assert not any(e["event"] == "start" for e in events)  # no training started
    assert again["hypervolume"] == doc["hypervolume"]


def test_the_cli_sweep_prints_one_json_line_and_reuses_the_store(swept):
    home, _, _, _, doc, _ = swept
    env = {**os.environ, "MTL_HOME": str(home), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "mtl_core", "sweep", "--preset", PRESET, "--points", "2",
                           *CLI_OPTIONS, "--json"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = one_json_line(proc.stdout)
    assert [p["model"] for p in out["points"]] == [p["model"] for p in doc["points"]]
    assert all(p["cached"] for p in out["points"]) and "stored model reused" in proc.stderr
    assert {"weights", "model", "metrics", "pareto"} <= set(out["points"][0])
    assert out["hypervolume"] == pytest.approx(doc["hypervolume"])


def test_queueing_a_sweep_skips_the_vectors_already_stored(swept, tmp_path):
    from mtl_core.control.jobs import JobQueue

    _, store, _, vectors, doc, _ = swept
    queue = JobQueue(tmp_path / "jobs")
    submitted = submit_sweep(PRESET, vectors, CLI_OPTIONS, queue=queue, store=store)
    assert submitted.jobs == [] and submitted.stored == [p["model"] for p in doc["points"]]
    assert queue.list() == []


def test_stored_models_are_grouped_into_sweeps(swept):
    _, store, _, _, doc, _ = swept
    groups = sweep_groups(store, PRESET)
    assert len(groups) == 1 and len(groups[0].models) == 2
    again = groups[0].document()
    assert {p["model"]: p["pareto"] for p in again["points"]} == {p["model"]: p["pareto"] for p in doc["points"]}
    assert "2 models" in groups[0].label


@pytest.mark.parametrize("argv,needle", [
    (["--points", "0"], "--points"),
    (["--points", "3", "--method", "random"], "--method"),
    (["--heads", "digit"], "at least two heads"),
    (["--epochs", "0"], "--epochs"),
])
def test_sweep_option_errors_are_one_line_user_errors(argv, needle, capsys):
    rc = main(["sweep", "--preset", PRESET, *argv])
    out, err = capsys.readouterr()
    assert_user_error(rc, out, err, needle)


def test_sweep_option_errors_are_found_before_tensorflow_is_imported(tmp_path):
    env = {**os.environ, "MTL_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    results = run_without_tensorflow([["sweep", "--preset", PRESET, "--points", "500"],
                                      ["sweep", "--preset", PRESET, "--method", "x"]], env)
    for rc, err in results:
        assert rc == 2 and err.startswith("error: ") and "blocked" not in err, err
    assert json.dumps(results).count("--points") == 1
