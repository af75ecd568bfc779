"""The Train and Compare pages: the form stands for the same `train` flags as the CLI (defaults give the
bare command), bad settings are refused with the CLI's reason before any job exists, a tiny real job started
from the page is followed to the end and its model becomes the pages' model, the same settings again open
the stored model instead of training, and Compare shows two models side by side."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mtl_core.control.jobs import JobQueue
from mtl_core.control.presets import all_presets, get_preset
from mtl_core.control.store import ModelStore
from mtl_core.errors import UserError
from mtl_core.views import compare
from mtl_core.views import train as train_form

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PRESET = "shapes-3head"
KEY = f"train-{PRESET}"


# ----------------------------------------------------------------------------- the form (no Streamlit)


@pytest.mark.parametrize("preset", [p.name for p in all_presets(include_data_defined=False)])
def test_the_default_form_is_the_bare_command_and_the_presets_config(preset):
    from mtl_core.control.config import make_config

    p = get_preset(preset)
    argv = train_form.train_args(p, train_form.form_defaults(p))
    assert argv == ["--preset", preset]
    assert train_form.check(argv) == make_config(p).to_dict()


def test_every_form_option_becomes_a_train_flag_with_the_same_meaning():
    p = get_preset(PRESET)
    form = train_form.form_defaults(p)
    form.loss_weights = {"shape": 2.0, "orientation": 0.5, "intensity": 0.3}
    form.weighting, form.weighting_options = "gradnorm", {"alpha": 0.75}
    form.epochs, form.batch_size, form.lr, form.seed, form.limit = 3, 16, 0.002, 7, 500
    form.detach = {**form.detach, "orientation": True}
    form.links = {**form.links, "intensity": ["shape"]}
    form.link_gradient = {**form.link_gradient, "orientation": True}  # the seed's link
    form.branch_at = {**form.branch_at, "shape": train_form.branch_choices(p)["after layer 3: pool"]}
    form.precision, form.device = "float32", "cpu"

    argv = train_form.train_args(p, form)
    config = train_form.check(argv)

    assert train_form.command_line(argv).startswith("python -m mtl_core train --preset shapes-3head --loss-weights")
    assert config["loss_weights"] == form.loss_weights
    assert config["weighting"] == "gradnorm" and config["extra"] == {"weighting_options": {"alpha": 0.75}}
    assert (config["epochs"], config["batch_size"], config["lr"], config["seed"], config["limit"]) == \
        (3, 16, 0.002, 7, 500)
    heads = {h["task"]: h for h in config["model"]["heads"]}
    assert heads["orientation"]["detach"] is True and list(heads["intensity"]["inputs_from"]) == ["shape"]
    assert "link_gradient" not in heads["orientation"] and "link_gradient" not in heads["intensity"]  # True: default
    assert heads["shape"]["branch_at"] == 3 and argv[argv.index("--branch-at") + 1] == "shape=3"
    assert argv[argv.index("--precision") + 1] == "float32" and argv[argv.index("--device") + 1] == "cpu"


def test_the_conditioned_switch_is_train_conditioned():
    p = get_preset(PRESET)
    form = train_form.form_defaults(p)
    form.conditioned = True
    argv = train_form.train_args(p, form)
    assert argv == ["--preset", PRESET, "--conditioned"] and train_form.check(argv)["conditioned"] is True


def test_freezing_is_offered_only_with_a_pretrained_backbone():
    cifar = get_preset("cifar10-aqi")
    form = train_form.form_defaults(cifar)
    assert form.freeze == 0.7 and train_form.form_defaults(get_preset(PRESET)).freeze is None
    form.freeze = 0.2
    config = train_form.check(train_form.train_args(cifar, form))
    assert "app:mobilenetv2:0.2" in config["model"]["backbone"]


@pytest.mark.parametrize(("change", "needle"), [
    ({"loss_weights": {"shape": 0.0, "orientation": 0.0, "intensity": 0.0}}, "every weight is zero"),
    ({"links": {"shape": ["orientation"], "orientation": ["shape"], "intensity": []}}, "--link"),
])
def test_bad_settings_are_refused_with_the_clis_reason(change, needle):
    p = get_preset(PRESET)
    form = train_form.form_defaults(p)
    for name, value in change.items():
        setattr(form, name, value)
    with pytest.raises(UserError, match=needle):
        train_form.check(train_form.train_args(p, form))


def test_find_trained_matches_exactly_the_stored_config(tiny_store):
    store, model_id, card = tiny_store
    assert train_form.find_trained(store, card["config"]).id == model_id
    assert train_form.find_trained(store, {**card["config"], "seed": card["config"]["seed"] + 1}) is None
    assert train_form.find_trained(store, {**card["config"], "data": {**card["config"]["data"], "dir": "/x"}}) is None


# ----------------------------------------------------------------------------- the pages (AppTest)


@pytest.fixture()
def studio(monkeypatch, tmp_path, tiny_store) -> ModelStore:
    """An MTL_HOME holding a copy of the tiny shapes model; no shipped weights."""
    home = tmp_path / "home"
    (tmp_path / "weights").mkdir()
    store, model_id, _ = tiny_store
    shutil.copytree(store.find(model_id).path, home / "models" / model_id)
    monkeypatch.setenv("MTL_HOME", str(home))
    monkeypatch.setenv("MTL_WEIGHTS", str(tmp_path / "weights"))
    yield ModelStore()
    for job in JobQueue().list():  # a failed test leaves no training behind
        if not job.finished:
            JobQueue().cancel(job.id, grace=2)


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["preset"] = PRESET
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def progress_text(at: AppTest) -> str:
    return " ".join(p.proto.text for p in at.get("progress"))


def test_a_cluster_that_does_not_answer_is_said_and_train_stays_disabled(studio, monkeypatch):
    pytest.importorskip("ray")
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("MTL_CLUSTER", address)
    at = open_page("train")
    assert any(f"Trainings run on the Ray cluster {address} ($MTL_CLUSTER)" in c.value for c in at.caption)
    assert any(f"$MTL_CLUSTER {address}: no Ray cluster answers" in e.value for e in at.error), \
        [e.value for e in at.error]
    assert at.button(key=f"{KEY}-submit").disabled
    assert JobQueue().list() == []


def test_on_a_cluster_the_form_offers_workers_and_the_command_says_so(studio, monkeypatch):
    pytest.importorskip("ray")
    import socket

    with socket.socket() as listening:  # answers the reachability probe; the form is not submitted
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        address = f"127.0.0.1:{listening.getsockname()[1]}"
        monkeypatch.setenv("MTL_CLUSTER", address)
        at = open_page("train")
        assert "--workers" not in at.code[0].value
        at.number_input(key=f"{KEY}-workers").set_value(2)
        at.run()
        assert not at.error, [e.value for e in at.error]
        assert "--workers 2" in at.code[0].value and f"--cluster {address}" not in at.code[0].value
        assert not at.button(key=f"{KEY}-submit").disabled


def test_all_zero_weights_show_the_reason_and_disable_train(studio):
    at = open_page("train")
    for head in ("shape", "orientation", "intensity"):
        at.slider(key=f"{KEY}-w-{head}").set_value(0.0)
    at.run()

    assert any("every weight is zero" in e.value for e in at.error), [e.value for e in at.error]
    assert all("--" not in e.value for e in at.error)  # the form's words ("Loss weights: ..."), not the CLI's flags
    assert at.button(key=f"{KEY}-submit").disabled
    assert JobQueue().list() == []


def test_a_weight_can_be_typed_and_the_training_set_size_says_what_the_split_leaves(studio):
    at = open_page("train")
    at.number_input(key=f"{KEY}-w-orientation-typed").set_value(0.75).run()
    assert at.slider(key=f"{KEY}-w-orientation").value == 0.75  # the slider follows the typed weight
    at.slider(key=f"{KEY}-w-orientation").set_value(1.25).run()
    assert at.number_input(key=f"{KEY}-w-orientation-typed").value == 1.25  # and the box the slider
    at.number_input(key=f"{KEY}-limit").set_value(300).run()

    assert "orientation=1.25" in at.code[0].value and "--limit 300" in at.code[0].value
    assert any("300 examples → 204 to train on, 51 to validate, 45 to test" in c.value for c in at.caption)
    assert not at.exception


@pytest.mark.slow
def test_train_page_runs_a_job_to_the_end_then_reuses_it_and_compare_shows_both(studio):
    at = open_page("train")
    at.slider(key=f"{KEY}-w-orientation").set_value(0.5)
    at.number_input(key=f"{KEY}-epochs").set_value(2)
    at.number_input(key=f"{KEY}-limit").set_value(150)
    at.run()
    assert "--loss-weights shape=1,orientation=0.5,intensity=0.3 --epochs 2 --limit 150" in at.code[0].value

    at.button(key=f"{KEY}-submit").click().run()
    [job] = JobQueue().list()
    assert job.config["loss_weights"]["orientation"] == 0.5 and job.config["epochs"] == 2
    seen, deadline = set(), time.monotonic() + 150
    while time.monotonic() < deadline:  # a browser polls with st.fragment(run_every=...); AppTest reruns
        time.sleep(1.0)
        at.run()
        seen.add(progress_text(at).split(": ", 1)[-1].split(" ")[0])
        if JobQueue().get(job.id).finished:
            at.run()
            break
    job = JobQueue().get(job.id)
    assert job.state == "done", (job.error, job.log_tail)
    assert "epoch" in seen  # the running state was shown with its epoch count
    assert not at.exception
    assert f"done: model {job.model}" in progress_text(at)
    assert any(job.model in s.value for s in at.success)
    assert len(at.get("plotly_chart")) >= 4  # a validation curve per head, and the gradient conflict
    assert any("shape ~ orientation" in c.value for c in at.caption)  # the conflict monitor's reading
    curves = train_form.job_curves(job)
    assert len(curves["gradients"]["cosine"]["shape ~ orientation"]) == len(curves["epochs"])
    assert curves["epochs"] and set(curves["val"]) >= {"shape", "orientation", "intensity"}
    assert studio.find(job.model).card["config"]["loss_weights"]["orientation"] == 0.5

    # the same settings again: the stored model opens, no second job
    at.button(key=f"{KEY}-submit").click().run()
    assert len(JobQueue().list()) == 1
    assert any("trained before" in s.value and job.model in s.value for s in at.success)
    table = train_form.jobs_table(JobQueue().list())
    assert table.loc[0, "state"] == "done" and table.loc[0, "model or reason"] == job.model

    # a reload (a new session, e.g. after an app restart) follows the preset's newest job again
    reloaded = open_page("train")
    assert f"Job `{job.id}`: done: model {job.model}" in progress_text(reloaded)

    # the Predict page now shows the new model
    at.switch_page("pages/predict.py").run()
    assert next(box for box in at.selectbox if box.label == "Model").value == job.model

    # Compare: the tiny model and the new one side by side
    at.switch_page("pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    frames = [df.value for df in at.dataframe]
    settings = frames[0]
    assert set(settings["model"]) == {m.id for m in studio.list(PRESET)}
    assert job.model in frames[1].columns and "best" in frames[1].columns
    assert len(at.get("plotly_chart")) >= 7  # three heads' curves, three heads' loss weights, a conflict pair
    assert "Gradient conflict per epoch" in [h.value for h in at.subheader]


def test_compare_metrics_name_the_best_model_per_row(studio, tiny_store):
    _, model_id, card = tiny_store
    [tiny] = studio.list(PRESET)

    class Other:  # a second model whose card differs in known ways
        id, source = "other", "store"
        card = {**tiny.card, "metrics": {"test": {
            "shape": {"accuracy": 1.0}, "orientation": {"accuracy": 0.0}, "intensity": {"mae": 0.0}}}}

    table = compare.metrics_table([tiny, Other()], "test").set_index(["head", "metric"])
    assert table.loc[("shape", "accuracy"), "best"] == "other"
    assert table.loc[("intensity", "mae"), "best"] == "other"  # lower is better
    if card["metrics"]["test"]["orientation"]["accuracy"] > 0:
        assert table.loc[("orientation", "accuracy"), "best"] == model_id
    flat = compare.weight_series([tiny], "orientation")[model_id]
    assert set(flat[1]) == {card["config"]["loss_weights"]["orientation"]}


def test_compare_legends_name_how_each_model_was_trained_not_its_hash(studio, tiny_store):
    _, model_id, card = tiny_store
    [tiny] = studio.list(PRESET)
    labelled = compare.with_legend_labels(compare.weight_series([tiny], "orientation"), [tiny])
    [label] = labelled
    weights = card["config"]["loss_weights"]
    assert label.startswith(f"{card['config']['weighting']} · shape={weights['shape']:g}")
    assert label.endswith(f"…{model_id[-6:]}") and model_id not in label


def test_a_starting_job_says_what_it_is_doing_and_a_running_one_names_the_epoch_under_way(tmp_path):
    from mtl_core.control.jobs import Job

    job = Job(id="j1", preset=PRESET, argv=["--preset", PRESET], state="running", started=1.0,
              config={"epochs": 2}, dir=tmp_path)
    fraction, line = train_form.job_status(job)
    assert fraction == 0.0 and line.startswith("starting (") and "loading TensorFlow" in line  # not "epoch 0/2"
    job.events_file.write_text('{"event": "start", "epochs": 2, "batches": 5, "device": {"kind": "CPU"}}\n')
    assert train_form.job_status(job)[1].startswith("epoch 1/2")  # started, no batch yet: the first epoch
    job.events_file.write_text(job.events_file.read_text()
                               + '{"event": "epoch", "epoch": 1, "epochs": 2, "val": {}, "train": {}}\n')
    assert train_form.job_status(job)[1].startswith("epoch 2/2")


def test_a_running_jobs_warnings_reach_its_panel_in_order(tmp_path):
    from mtl_core.control.jobs import Job

    job = Job(id="j1", preset=PRESET, argv=["--preset", PRESET], state="running", started=1.0,
              config={"epochs": 4}, dir=tmp_path)
    job.events_file.write_text(
        '{"event": "epoch", "epoch": 1, "epochs": 4, "val": {}, "train": {}}\n'
        '{"event": "epoch", "epoch": 2, "epochs": 4, "val": {}, "train": {}}\n'
        '{"event": "warning", "kind": "stalled_head", "head": "shape", "epoch": 1, "message": "head \'shape\' has '
        'given the same output for every input since epoch 1"}\n'
        '{"event": "epoch", "epoch": 3, "epochs": 4, "val": {}, "train": {}}\n')
    curves = train_form.job_curves(job)
    assert curves["epochs"] == [1, 2, 3]
    assert curves["warnings"] == ["head 'shape' has given the same output for every input since epoch 1"]


def test_a_heads_branch_point_is_chosen_in_its_options_and_shown_in_the_command(studio):
    at = open_page("train")
    box = at.selectbox(key=f"{KEY}-branch-shape")
    assert box.value == "after the whole backbone" and "at the input (layers of its own)" in box.options
    box.set_value("after layer 3: pool")
    at.run()
    assert not at.error, [e.value for e in at.error]
    assert "--branch-at shape=3" in at.code[0].value
