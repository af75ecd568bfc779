"""The Trade-offs page through AppTest on real tiny models: a sweep's front (scatter matrix for three heads)
with the hypervolume, opening a model makes it the Predict page's model, and the loss-conditioned model's
lambda sliders move its grid metrics and its predictions. mtl_core.views.tradeoffs (what the page computes) is
tested at the end without Streamlit, on hand-made sweeps and cards."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mtl_core.control import pareto
from mtl_core.control.config import make_config
from mtl_core.control.presets import get_preset
from mtl_core.control.store import ModelStore
from mtl_core.views import tradeoffs

TINY_DATA = {"source": "generated", "n": 400, "noise": 0.3, "seed": 0}  # as tests/conftest.py

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PRESET = "shapes-3head"
TIMEOUT = 90


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """MTL_HOME with a 2-point sweep and a loss-conditioned model of shapes-3head (1 epoch, 300 images)."""
    from mtl_core.engine.sweep import run_sweep
    from mtl_core.engine.training import train

    root = tmp_path_factory.mktemp("tradeoffs-home")
    store = ModelStore(root=root / "models", shipped=None)
    preset = get_preset(PRESET)
    base = make_config(preset, data={**TINY_DATA, "n": 300}, epochs=1, batch_size=32, seed=7)
    doc = run_sweep(PRESET, base, pareto.weight_vectors(list(base.loss_weights), 2), store=store)
    cond_id, _, _ = train(PRESET, make_config(preset, data={**TINY_DATA, "n": 300}, epochs=1, batch_size=32, seed=7,
                                              conditioned=True), store=store)
    (root / "weights").mkdir()
    return root, doc, cond_id


def open_tradeoffs(root: Path, monkeypatch) -> AppTest:
    """The Trade-offs page of PRESET with ``root`` as MTL_HOME (and its empty weights/)."""
    monkeypatch.setenv("MTL_HOME", str(root))
    monkeypatch.setenv("MTL_WEIGHTS", str(root / "weights"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["preset"] = PRESET
    at.run()
    at.switch_page("pages/tradeoffs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture()
def page(home, monkeypatch) -> AppTest:
    return open_tradeoffs(home[0], monkeypatch)


def head_values(at: AppTest) -> list[str]:
    return [m.value for m in at.metric]


def test_the_page_shows_the_front_with_its_hypervolume_and_opens_a_model(page, home):
    _, doc, _ = home
    assert not page.error, [e.value for e in page.error]
    [hv] = [m for m in page.metric if m.label == "Hypervolume of the front"]
    assert hv.value == f"{doc['hypervolume']:.4f}"
    charts = page.get("plotly_chart")
    assert len(charts) >= 2  # the front and the lambda-grid plots
    assert '"splom"' in charts[0].proto.spec  # three heads: a scatter matrix
    picker = page.selectbox(key=f"tradeoffs-pick-{PRESET}")
    other = next(p["model"] for p in doc["points"] if p["model"] != picker.value)
    picker.set_value(other).run()
    assert not page.exception
    assert page.session_state["studio-chosen-model"][PRESET] == other  # the Predict page's model now
    assert any(other in str(m.value) for m in page.markdown)  # its card summary is open


def test_the_lambda_sliders_move_the_grid_metrics_and_the_predictions(page, home):
    _, _, cond_id = home
    sliders = {s.label: s for s in page.slider if s.key.startswith(f"tradeoffs-lambda-{cond_id}")}
    assert set(sliders) == {"shape", "orientation", "intensity"}
    before_caption = [c.value for c in page.caption if c.value.startswith("λ = ")]
    before = head_values(page)
    page.slider(key=f"tradeoffs-lambda-{cond_id}-shape").set_value(1.0).run()
    page.slider(key=f"tradeoffs-lambda-{cond_id}-orientation").set_value(0.0).run()
    page.slider(key=f"tradeoffs-lambda-{cond_id}-intensity").set_value(0.0).run()
    assert not page.exception, [e.value for e in page.exception]
    after_caption = [c.value for c in page.caption if c.value.startswith("λ = ")]
    assert len(after_caption) == 1 and after_caption != before_caption
    assert after_caption[0].startswith("λ = shape=1.00, orientation=0.00, intensity=0.00")
    assert head_values(page) != before  # grid metrics and/or the heads' outputs changed with lambda
    page.slider(key=f"tradeoffs-lambda-{cond_id}-shape").set_value(0.0).run()
    assert any("every weight is zero" in e.value for e in page.error)  # one line, the page still renders


# ----------------------------------------------------------------------------- without Streamlit
def two_head_doc() -> dict:
    from mtl_core.control.sweeps import summarise
    from mtl_core.control.tasks import TaskSpec

    tasks = [TaskSpec("digit", "multiclass", class_names=tuple("0123456789")),
             TaskSpec("color", "binary", class_names=("red", "green"))]
    rows = [{"weights": {"digit": w, "color": 2 - w}, "model": f"m{i}",
             "metrics": {"digit": {"accuracy": a}, "color": {"auc": b}}}
            for i, (w, a, b) in enumerate([(1.9, 0.9, 0.6), (1.0, 0.8, 0.8), (0.1, 0.5, 0.95), (1.0, 0.7, 0.7)])]
    return summarise(tasks, rows)


def test_a_two_head_front_is_a_scatter_with_the_front_marked():
    doc = two_head_doc()
    assert [p["pareto"] for p in doc["points"]] == [True, True, True, False]
    assert doc["hypervolume"] == pytest.approx(pareto.hypervolume([[0.9, 0.6], [0.8, 0.8], [0.5, 0.95]], [0.1, 0.5]))
    fig = tradeoffs.front_figure(doc, selected="m1")
    markers = fig.data[-1]
    assert list(markers.customdata) == ["m0", "m1", "m2", "m3"]
    assert list(markers.marker.symbol) == ["star", "star", "star", "circle"]
    assert len(fig.data[0].x) == 3  # the front's staircase through the three optimal models
    table = tradeoffs.points_table(doc)
    assert table["Pareto"].tolist() == ["★", "★", "★", ""] and "digit accuracy" in table


def test_lambda_grid_figures_and_the_grid_as_a_front():
    card = {"tasks": [{"name": "digit", "kind": "multiclass", "class_names": list("0123456789")},
                      {"name": "color", "kind": "binary", "class_names": ["red", "green"]}],
            "metrics": {"validation": {}},
            "conditioned": {"heads": ["digit", "color"], "default": {"digit": 0.5, "color": 0.5},
                            "grid": [{"weights": {"digit": w, "color": 1 - w},
                                      "metrics": {"digit": {"accuracy": w}, "color": {"auc": 1 - w / 2,
                                                                                      "accuracy": 0.9}}}
                                     for w in (0.1, 0.5, 0.9)]}}
    [fig] = tradeoffs.grid_figures(card, {"digit": 0.7, "color": 0.3})
    assert len(fig.data) == 2 and list(fig.data[0].x) == [0.1, 0.5, 0.9]
    doc = tradeoffs.grid_document(card)
    assert all(p["pareto"] for p in doc["points"]) and doc["hypervolume"] > 0
    with pytest.raises(Exception, match="every weight is zero"):
        tradeoffs.lambda_from_sliders({"digit": 0, "color": 0}, ["digit", "color"])
    assert tradeoffs.lambda_from_sliders({"digit": 1, "color": 3}, ["digit", "color"]) == {"digit": 0.25,
                                                                                            "color": 0.75}


def test_when_a_sweep_started_here_ends_the_page_opens_its_group(home, monkeypatch, tmp_path):
    """The sweep's jobs end while the page polls: the page reruns on the group of their models, not on the group
    it showed before (the largest). The jobs are written as done ones; their model is a copy of a sweep model
    under another seed, a group of its own, so nothing trains here."""
    import json
    import shutil
    import time

    root, doc, _ = home
    mine = tmp_path / "home"
    shutil.copytree(root, mine)
    source = mine / "models" / doc["points"][0]["model"]
    other = f"{PRESET}-0000000000aa"
    shutil.copytree(source, mine / "models" / other)
    card = json.loads((mine / "models" / other / "card.json").read_text())
    card["id"], card["config"]["seed"] = other, 8
    (mine / "models" / other / "card.json").write_text(json.dumps(card))
    now = time.time()
    (mine / "jobs" / "j-sweep-1").mkdir(parents=True)
    (mine / "jobs" / "j-sweep-1" / "job.json").write_text(json.dumps({
        "id": "j-sweep-1", "preset": PRESET, "argv": ["--preset", PRESET], "state": "done", "created": now,
        "started": now, "ended": now, "model": other, "config": card["config"]}))
    at = open_tradeoffs(mine, monkeypatch)
    groups = tradeoffs.sweep_groups(ModelStore(root=mine / "models", shipped=None), PRESET)
    picker = f"tradeoffs-group-{PRESET}"
    assert at.selectbox(key=picker).value == groups[0].key  # the two-model sweep, the largest
    new = next(g for g in groups if other in {m.id for m in g.models})

    at.session_state["tradeoffs-sweep-jobs"] = {PRESET: ["j-sweep-1"]}  # as "Start the sweep" leaves it
    at.run()

    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key=picker).value == new.key
    assert PRESET not in at.session_state["tradeoffs-sweep-jobs"]  # no more polling


def test_a_loss_conditioned_training_queued_here_is_followed_live_until_its_model_opens(home, monkeypatch, tmp_path):
    """Queued from the page (no conditioned model yet), the training shows its epoch while its process runs; when
    the job is done and its model stored, the same session's next run shows the model's λ sliders, not a stale
    progress bar. A job that failed says why. The job's process is a stand-in that sleeps (its command line names
    the job, as the queue checks), so nothing trains here."""
    import json
    import shutil
    import subprocess
    import sys
    import time

    root, _, cond_id = home
    mine = tmp_path / "home"
    shutil.copytree(root, mine)
    shutil.move(mine / "models" / cond_id, tmp_path / cond_id)  # the page starts with no conditioned model
    jobs = mine / "jobs"

    def write_job(job_id: str, **fields) -> Path:
        folder = jobs / job_id
        folder.mkdir(parents=True, exist_ok=True)
        now = time.time()
        (folder / "job.json").write_text(json.dumps({
            "id": job_id, "preset": PRESET, "argv": ["--preset", PRESET, "--conditioned"], "created": now,
            "started": now, "config": {"epochs": 3, "conditioned": True}, **fields}))
        return folder

    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "j-cond-1"])
    try:
        folder = write_job("j-cond-1", state="running", pid=stand_in.pid)
        (folder / "events.jsonl").write_text(
            json.dumps({"event": "start", "epochs": 3, "batches": 10}) + "\n"
            + json.dumps({"event": "epoch", "epoch": 1, "epochs": 3, "val": {}, "train": {}}) + "\n")
        at = open_tradeoffs(mine, monkeypatch)
        assert f"tradeoffs-cond-{PRESET}" not in {s.key for s in at.selectbox}  # nothing to pick yet
        at.session_state["tradeoffs-conditioned-job"] = {PRESET: "j-cond-1"}  # as "Train one" leaves it
        at.run()
        [bar] = at.get("progress")
        assert "Loss-conditioned model, job `j-cond-1`: epoch 2/3" in bar.proto.text, bar.proto.text

        shutil.move(tmp_path / cond_id, mine / "models" / cond_id)  # the training ends: its model is stored
        write_job("j-cond-1", state="done", pid=stand_in.pid, ended=time.time(), model=cond_id)
    finally:
        stand_in.kill()
        stand_in.wait()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.get("progress")
    assert at.selectbox(key=f"tradeoffs-cond-{PRESET}").value == cond_id
    assert {s.label for s in at.slider if s.key.startswith(f"tradeoffs-lambda-{cond_id}")} == {
        "shape", "orientation", "intensity"}
    assert PRESET not in at.session_state["tradeoffs-conditioned-job"]  # no more polling

    shutil.move(mine / "models" / cond_id, tmp_path / cond_id)
    write_job("j-cond-2", state="failed", ended=time.time(), error="out of memory")
    at.session_state["tradeoffs-conditioned-job"] = {PRESET: "j-cond-2"}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(e.value == "The loss-conditioned training failed: out of memory" for e in at.error), \
        [e.value for e in at.error]
