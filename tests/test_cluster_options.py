"""Where a training runs, checked before anything runs: `--cluster` / MTL_CLUSTER, the per-job resources,
Ray missing, and a cluster that does not answer (one line, exit 2, nothing queued). The trainings on a real
loopback cluster are in tests/cluster (marked `cluster`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mtl_core.control import cluster, options
from mtl_core.control.jobs import JobQueue
from mtl_core.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # should anything here start Ray: 127.0.0.1 only (DESIGN.md)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    for key, value in LOOPBACK.items():
        monkeypatch.setenv(key, value)


def closed_port() -> int:
    with socket.socket() as s:  # bound and closed again: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_flag_and_no_environment_trains_here(monkeypatch):
    monkeypatch.delenv(cluster.ENV, raising=False)
    assert cluster.spec_from(None) is None
    monkeypatch.setenv(cluster.ENV, "")
    assert cluster.spec_from(None) is None


def test_resources_without_a_cluster_are_a_mistake(monkeypatch):
    monkeypatch.delenv(cluster.ENV, raising=False)
    with pytest.raises(UserError, match=r"--gpus-per-job: only with --cluster"):
        cluster.spec_from(None, gpus=1)
    with pytest.raises(UserError, match=r"--workers: only with --cluster ADDRESS .*every GPU already trains"):
        cluster.spec_from(None, workers=2)
    assert cluster.spec_from(None, workers=1) is None  # one worker is what training here is


@pytest.mark.parametrize("address, message", [
    ("127.0.0.1:99999", "port 99999 is out of range"),
    ("http://head:6379", "is not a Ray address"),
    ("a b", "is not a Ray address"),
])
def test_a_malformed_address_is_refused(address, message):
    with pytest.raises(UserError, match=message):
        cluster.spec_from(address, check=False)


def test_resources_are_checked(monkeypatch):
    with pytest.raises(UserError, match=r"--cpus-per-job: 0 is out of range"):
        cluster.spec_from("127.0.0.1:6379", cpus=0, check=False)
    with pytest.raises(UserError, match=r"--retries: 11 is out of range"):
        cluster.spec_from("127.0.0.1:6379", retries=11, check=False)
    with pytest.raises(UserError, match=r"--workers: 0 is out of range"):
        cluster.spec_from("127.0.0.1:6379", workers=0, check=False)
    spec = cluster.spec_from("head:6379", cpus=2, gpus=1, retries=0, workers=4, check=False)
    assert spec.to_dict() == {"address": "head:6379", "cpus": 2.0, "gpus": 1.0, "retries": 0, "workers": 4}


def test_without_ray_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(UserError, match=r"^--cluster: Ray is not installed "
                                        r"\(pip install -r requirements-cluster.txt\)$"):
        cluster.spec_from("127.0.0.1:6379")


def test_a_cluster_that_does_not_answer_is_one_line_and_nothing_is_queued(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    address = f"127.0.0.1:{closed_port()}"
    queue = JobQueue(tmp_path / "jobs")
    with pytest.raises(UserError, match=rf"^--cluster {address}: no Ray cluster answers at {address} "):
        queue.submit(["--preset", "color-digits", "--epochs", "1", "--cluster", address])
    assert not (tmp_path / "jobs").exists() or not [p for p in (tmp_path / "jobs").iterdir() if p.is_dir()]
    monkeypatch.setenv(cluster.ENV, address)  # the app's way: the same refusal, naming the variable
    with pytest.raises(UserError, match=rf"^\$MTL_CLUSTER {address}: no Ray cluster answers"):
        queue.submit(preset="color-digits", epochs=1)


def test_auto_without_a_local_cluster(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    with pytest.raises(UserError, match=r"--cluster auto: no Ray cluster was started on this machine"):
        cluster.spec_from("auto")


def test_the_cli_refuses_an_unreachable_cluster_before_training(tmp_path):
    pytest.importorskip("ray")
    address = f"127.0.0.1:{closed_port()}"
    for command in (["train", "--preset", "color-digits", "--epochs", "1"],
                    ["sweep", "--preset", "color-digits", "--epochs", "1", "--points", "2"]):
        out = subprocess.run([sys.executable, "-m", "mtl_core", *command, "--cluster", address], cwd=ROOT,
                             capture_output=True, text=True, timeout=120, env={**os.environ, **LOOPBACK})
        assert out.returncode == 2, out.stderr
        assert out.stderr.strip().splitlines() == [
            f"error: --cluster {address}: no Ray cluster answers at {address} (Connection refused); "
            "start one with `ray start --head`, see docs/cluster.md"]


def test_a_job_for_a_cluster_records_where_it_runs(monkeypatch):
    """validate() writes $MTL_CLUSTER into the job's arguments, so the job (and its listing) says where it runs."""
    monkeypatch.setattr(cluster, "check_reachable", lambda address, flag="--cluster": address)
    monkeypatch.setenv(cluster.ENV, "10.0.0.5:6379")
    argv, _, _ = options.validate(["--preset", "color-digits", "--epochs", "1"])
    assert argv[argv.index("--cluster") + 1] == "10.0.0.5:6379"
    monkeypatch.delenv(cluster.ENV)
    argv, _, _ = options.validate(["--preset", "color-digits", "--epochs", "1"])
    assert "--cluster" not in argv


def test_a_cluster_job_says_where_it_runs_once_its_node_is_known(tmp_path):
    from mtl_core.control.jobs import Job, progress
    from mtl_core.views.train import job_status, runs_on

    job = Job(id="j1", preset="color-digits", argv=["--preset", "color-digits", "--cluster", "10.0.0.5:6379"],
              state="running", started=1.0, config={"epochs": 3}, dir=tmp_path)
    assert job.cluster == "10.0.0.5:6379"
    assert runs_on(job) == "Ray cluster 10.0.0.5:6379"
    assert job_status(job)[1].startswith("sent to the Ray cluster 10.0.0.5:6379: waiting for a node")
    job.events_file.write_text(
        '{"event": "node", "host": "gpu-7", "ip": "10.0.0.7", "node_id": "abc"}\n'
        '{"event": "start", "epochs": 3, "batches": 5, "device": {"kind": "GPU", "name": "T4"}}\n'
        '{"event": "epoch", "epoch": 1, "epochs": 3, "val": {}, "train": {}}\n')
    assert progress(job)["node"] == {"host": "gpu-7", "ip": "10.0.0.7", "node_id": "abc", "workers": None}
    assert "Ray cluster 10.0.0.5:6379, node gpu-7 (10.0.0.7)" in job_status(job)[1]
    # --workers 2: each worker says where it is; rank 0 stands for the training
    job.events_file.write_text(
        '{"event": "node", "host": "gpu-8", "ip": "10.0.0.8", "node_id": "def", "rank": 1, "workers": 2}\n'
        '{"event": "node", "host": "gpu-7", "ip": "10.0.0.7", "node_id": "abc", "rank": 0, "workers": 2}\n'
        '{"event": "node", "host": "gpu-9", "ip": "10.0.0.9", "node_id": "ghi", "rank": 1, "workers": 2}\n')
    assert progress(job)["node"]["host"] == "gpu-7"
    assert runs_on(job) == "Ray cluster 10.0.0.5:6379, 2 workers led by gpu-7 (10.0.0.7)"
    here = Job(id="j2", preset="color-digits", argv=["--preset", "color-digits"], dir=tmp_path)
    assert here.cluster is None and runs_on(here) == "this machine"
