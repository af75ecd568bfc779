"""Background training jobs: a queue on disk, one training process at a time, cancel, crashes.

Every job here is a real `python -m mtl_core train` process on tiny data (about 10 s each, most of
it importing TensorFlow). Each test has its own MTL_HOME, so the queues are independent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mtl_core import cli
from mtl_core.control.jobs import JobQueue, epoch_events, progress, tail_log
from mtl_core.control.store import ModelStore
from mtl_core.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
SHAPES_TINY = ["--preset", "shapes-3head", "--data-option", "n=200", "--epochs", "1", "--batch-size", "32"]
CHURN_TINY = ["--preset", "churn-spend", "--data-option", "n=300", "--epochs", "2"]
# Long enough to be stopped mid-training: 50 epochs of 1000 images.
SHAPES_LONG = ["--preset", "shapes-3head", "--epochs", "50", "--batch-size", "32", "--data-option", "n=1000"]
TIMEOUT = 120


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    """An empty MTL_HOME of this test's own; no shipped weights."""
    home = tmp_path / "home"
    (tmp_path / "no-weights").mkdir()
    monkeypatch.setenv("MTL_HOME", str(home))
    monkeypatch.setenv("MTL_WEIGHTS", str(tmp_path / "no-weights"))
    return home


@pytest.fixture()
def queue(home):
    queue = JobQueue()
    yield queue
    for job in queue.list():  # a failed test leaves no training behind
        if job.state == "running":
            for kill, pid in ((os.killpg, job.pid), (os.kill, job.train_pid)):
                try:
                    kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError, TypeError):
                    pass


def wait_for(queue: JobQueue, job_id: str, states: tuple[str, ...] = ("done", "failed", "cancelled"),
             timeout: float = TIMEOUT):
    """Call advance() as a page would, until the job reaches one of ``states``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queue.advance()
        job = queue.get(job_id)
        if job.state in states:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job.state} after {timeout}s; log: {tail_log(job)}")


def wait_until_training(queue: JobQueue, job_id: str, timeout: float = TIMEOUT):
    """Until the trainer's start event is written: the model is built and fit() begins."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = queue.get(job_id)
        assert job.state == "running", (job.state, job.error, tail_log(job))
        if job.train_pid and job.events_file.is_file() and job.events_file.read_text().strip():
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not start training; log: {tail_log(queue.get(job_id))}")


def process_gone(pid: int, wait: float = 5.0) -> bool:
    """Whether ``pid`` has exited within ``wait`` seconds (a process that is exiting has an empty command
    line and is no longer the job's, but may take a moment under load to become a zombie)."""
    deadline = time.monotonic() + wait
    while not _gone_now(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _gone_now(pid)


def _gone_now(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is gone too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def store_leftovers(home: Path) -> list[str]:
    models = home / "models"
    return sorted(p.name for p in models.iterdir()) if models.is_dir() else []


# ----------------------------------------------------------------------------- refused before queuing

BAD_SUBMISSIONS = {
    "all weights zero": (["--loss-weights", "shape=0,orientation=0,intensity=0"], "every weight is zero"),
    "negative weight": (["--loss-weights", "shape=-1"], "negative"),
    "weight not a number": (["--loss-weights", "shape=abc"], "not a number"),
    "unknown head": (["--loss-weights", "nohead=1"], "unknown head 'nohead'"),
    "epochs out of range": (["--epochs", "0"], "--epochs"),
    "batch size out of range": (["--batch-size", "100000"], "--batch-size"),
    "missing data folder": (["--data-dir", "/no/such/folder"], "/no/such/folder"),
    "unknown flag": (["--frobnicate", "1"], "--frobnicate"),
    "bad seeds": (["--seeds", "1,x"], "--seeds"),
}


@pytest.mark.parametrize("case", list(BAD_SUBMISSIONS))
def test_invalid_submissions_are_refused_before_any_job_is_created(case, queue, home):
    extra, needle = BAD_SUBMISSIONS[case]

    with pytest.raises(UserError, match=needle.replace("(", r"\(")):
        queue.submit(["--preset", "shapes-3head", *extra])

    assert not (home / "jobs").exists()
    assert queue.list() == []


def test_unknown_preset_and_keyword_options_are_checked_too(queue, home):
    with pytest.raises(UserError, match="unknown preset 'nope'"):
        queue.submit(preset="nope")
    with pytest.raises(UserError, match="negative"):
        queue.submit(preset="churn-spend", loss_weights={"churn": -2})
    assert not (home / "jobs").exists()


def test_submit_stores_canonical_arguments_and_the_validated_config(queue, tmp_path, monkeypatch):
    from mtl_core.control.data.shapes import generate_shapes

    folder = tmp_path / "data"
    folder.mkdir()
    x, y = generate_shapes(40, seed=0)  # the folder is loaded once at submission
    np.save(folder / "X.npy", x)
    np.save(folder / "y.npy", y)
    monkeypatch.chdir(tmp_path)  # a relative --data-dir is made absolute: the job runs elsewhere

    job = queue.submit(["train", "--preset", "shapes-3head", "--data-dir", "data", "--loss-weights", "shape=2",
                        "--epochs", "3", "--json", "--events", "x.jsonl"])
    kw = queue.submit(preset="churn-spend", loss_weights={"churn": 2, "spend": 0.5}, data_option={"n": 300},
                      epochs=2, force=True)

    assert job.argv == ["--preset", "shapes-3head", "--loss-weights", "shape=2", "--epochs", "3",
                        "--data-dir", str(folder)]
    assert job.state == "queued" and job.config["loss_weights"]["shape"] == 2.0 and job.config["epochs"] == 3
    assert kw.argv == ["--preset", "churn-spend", "--loss-weights", "churn=2,spend=0.5", "--epochs", "2",
                       "--data-option", "n=300", "--force"]
    stored = json.loads(job.job_file.read_text())
    assert stored["state"] == "queued" and stored["argv"] == job.argv and "position" not in stored
    assert [(j.id, j.position) for j in queue.list()] == [(kw.id, 2), (job.id, 1)]  # newest first, FIFO places


def test_cancel_a_queued_job(queue):
    first = queue.submit(CHURN_TINY)
    second = queue.submit(SHAPES_TINY)

    cancelled = queue.cancel(first.id)

    assert cancelled.state == "cancelled" and cancelled.position is None and cancelled.pid is None
    assert queue.get(second.id).position == 1  # moved up
    assert queue.cancel(first.id).state == "cancelled"  # again: no change, no error
    with pytest.raises(UserError, match="no job 'nope'"):
        queue.cancel("nope")
    with pytest.raises(UserError, match="no job"):
        queue.get("../etc")
    queue.cancel(second.id)
    assert queue.advance() is None  # nothing left to start
    assert not second.events_file.exists() and not second.log_file.exists()


BLOCK_TENSORFLOW = r"""
import sys, time

class BlockTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("tensorflow", "keras", "streamlit"):
            raise ImportError("blocked by the test: " + name)
        return None

sys.meta_path.insert(0, BlockTensorFlow())
from mtl_core.control.jobs import JobQueue, progress, tail_log

q = JobQueue()
t0 = time.perf_counter()
job = q.submit(["--preset", "shapes-3head", "--epochs", "2"])
rows = [(j.to_dict(), progress(j), tail_log(j)) for j in q.list()]
q.cancel(job.id)
print(round(time.perf_counter() - t0, 3))
"""


def test_submitting_and_listing_never_import_tensorflow(home):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    proc = subprocess.run([sys.executable, "-c", BLOCK_TENSORFLOW], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)

    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout) < 1.0  # cheap enough for every page rerun


# ----------------------------------------------------------------------------- real trainings


@pytest.mark.slow
def test_jobs_run_one_at_a_time_in_order_and_finish_with_a_stored_model(queue, home):
    first = queue.submit(CHURN_TINY)
    second = queue.submit(SHAPES_TINY)

    started = queue.advance()
    assert started.id == first.id and started.state == "running" and started.pid
    assert queue.advance() is None  # one at a time
    assert queue.get(second.id).state == "queued" and queue.get(second.id).position == 1
    assert queue.get(first.id).position == 0

    second_done = wait_for(queue, second.id)
    first_done = queue.get(first.id)

    for job, preset in ((first_done, "churn-spend"), (second_done, "shapes-3head")):
        assert job.state == "done", (job.error, tail_log(job))
        assert job.exit_code == 0 and job.error is None and job.cached is False
        assert job.model.startswith(preset + "-")
        found = ModelStore().find(job.model)
        assert found is not None and found.source == "store"
        assert job.device["kind"] in ("CPU", "GPU")
        assert found.card["training"]["device"] == job.device
        epochs = epoch_events(job)
        assert [e["epoch"] for e in epochs] == list(range(1, job.config["epochs"] + 1))
        report = progress(job)
        assert report["fraction"] == 1.0 and report["epoch"] == report["epochs"] == job.config["epochs"]
        assert set(report["val"]) >= set(found.card["metrics"]["test"])  # per-head validation metrics
        assert any(line.startswith("training ") for line in job.log_file.read_text().splitlines())  # progress
    assert second_done.started >= first_done.ended  # FIFO, never two at once

    restarted = JobQueue()  # an app restart: state comes from disk
    assert [(j.id, j.state, j.model) for j in restarted.list()] == [
        (second.id, "done", second_done.model), (first.id, "done", first_done.model)]
    assert restarted.advance() is None


def test_cancel_a_running_job_leaves_no_model_and_no_process(queue, home):
    job = queue.submit(SHAPES_LONG)
    queue.advance()
    job = wait_until_training(queue, job.id)

    cancelled = queue.cancel(job.id)

    assert cancelled.state == "cancelled", (cancelled.error, tail_log(cancelled))
    # the training stopped on SIGINT with the CLI's Ctrl-C exit (a SIGKILL after the grace period would be -9)
    assert cancelled.exit_code == 130 and "error: interrupted" in tail_log(cancelled)
    assert process_gone(job.pid) and process_gone(job.train_pid)
    assert cancelled.model is None and cancelled.position is None and cancelled.ended
    assert store_leftovers(home) == []  # no model folder, no .tmp-* of a half-written one
    assert queue.advance() is None


def test_a_killed_job_becomes_failed_with_its_last_log_lines(queue, home):
    job = queue.submit(SHAPES_LONG)
    queue.advance()
    job = wait_until_training(queue, job.id)
    deadline = time.monotonic() + 30
    while not any(line.startswith("training ") for line in tail_log(job)) and time.monotonic() < deadline:
        time.sleep(0.1)

    os.killpg(job.pid, signal.SIGKILL)  # the wrapper and the training: nobody can record the outcome
    while not (process_gone(job.pid) and process_gone(job.train_pid)) and time.monotonic() < deadline:
        JobQueue().advance()  # reaps the wrapper if this process started it
        time.sleep(0.05)

    JobQueue().advance()  # a new instance, as after an app restart
    failed = JobQueue().get(job.id)

    assert failed.state == "failed"
    assert "without reporting" in failed.error
    assert any(line.startswith("training shapes-3head") for line in failed.log_tail)
    assert failed.log_tail == tail_log(failed)[-len(failed.log_tail):]
    assert store_leftovers(home) == []


def test_a_data_folder_that_does_not_load_is_refused_before_a_job_exists(queue, home, tmp_path):
    folder = tmp_path / "bad-data"
    folder.mkdir()
    (folder / "X.npy").write_bytes(b"these are not numpy bytes")
    np.save(folder / "y.npy", np.zeros((4, 3)))

    with pytest.raises(UserError) as info:
        queue.submit(["--preset", "shapes-3head", "--data-dir", str(folder), "--epochs", "1"])

    assert str(info.value).startswith(str(folder / "X.npy") + ": not a valid .npy array"), info.value
    assert "\n" not in str(info.value)
    assert queue.list() == []
    assert store_leftovers(home) == []


def test_a_job_whose_data_goes_bad_after_submission_fails_with_the_one_line_reason(queue, home, tmp_path):
    from mtl_core.control.data.shapes import generate_shapes

    folder = tmp_path / "data"
    folder.mkdir()
    x, y = generate_shapes(60, seed=0)
    np.save(folder / "X.npy", x)
    np.save(folder / "y.npy", y)
    job = queue.submit(["--preset", "shapes-3head", "--data-dir", str(folder), "--epochs", "1"])  # loads now
    (folder / "X.npy").write_bytes(b"these are not numpy bytes")  # ... and is damaged before the job runs
    queue.advance()

    failed = wait_for(queue, job.id)

    assert failed.state == "failed" and failed.exit_code == 2
    assert failed.error.startswith(str(folder / "X.npy") + ": not a valid .npy array"), failed.error
    assert "\n" not in failed.error
    assert f"error: {failed.error}" in failed.log_tail
    assert failed.model is None
    assert store_leftovers(home) == []


# ----------------------------------------------------------------------------- the CLI (`jobs` command)

needs_cli = pytest.mark.skipif(not hasattr(cli, "cmd_jobs"), reason="the `jobs` CLI command is not merged yet")


@needs_cli
def test_cli_jobs_submit_list_show_cancel(queue, capsys):
    assert cli.main(["jobs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"jobs": []}

    assert cli.main(["jobs", "submit", "shapes-3head", *SHAPES_LONG[2:], "--json"]) == 0
    job = json.loads(capsys.readouterr().out)["job"]
    assert job["state"] == "running" and job["argv"] == SHAPES_LONG

    assert cli.main(["jobs", "show", job["id"], "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["job"]
    assert shown["id"] == job["id"] and "progress" in shown and "log" in shown

    assert cli.main(["jobs", "cancel", job["id"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["job"]["state"] == "cancelled"

    assert cli.main(["jobs"]) == 0
    assert job["id"] in capsys.readouterr().out


@needs_cli
def test_cli_jobs_user_errors_exit_2_with_one_line(home, capsys):
    for argv, needle in ((["jobs", "submit", "shapes-3head", "--epochs", "0"], "--epochs"),
                         (["jobs", "submit", "nope"], "unknown preset 'nope'"),
                         (["jobs", "cancel", "nope"], "no job 'nope'"),
                         (["jobs", "show", "nope"], "no job 'nope'")):
        assert cli.main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.startswith("error: ") and err.count("\n") == 1 and needle in err
    assert not (home / "jobs").exists() or not any(p.is_dir() for p in (home / "jobs").iterdir())
