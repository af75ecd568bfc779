"""Background training jobs: one process per training, state on disk, one FIFO queue per store ($MTL_HOME).

A training runs as ``python -m mtl_core train ... --events FILE --json`` in its own process
group, so the app stays responsive and a crash (or an out-of-memory kill) cannot take the server
down. Everything about a job lives under ``$MTL_HOME/jobs/<id>/``:

- ``job.json``: id, preset, the train arguments, state (queued|running|done|failed|cancelled),
  times, pids, device, model id, error; always replaced atomically (temp file + ``os.replace``);
- ``events.jsonl``: the trainer's progress events (start, batch, epoch, end);
- ``log.txt``: the training's stderr (its progress lines and its one-line ``error: ...``);
- ``stdout.json``: the ``--json`` result of ``train``.

There is no daemon. Any caller (the CLI, a Streamlit rerun) calls :meth:`JobQueue.advance`, which
reconciles running jobs with their processes and starts the oldest queued job when none runs. A
small wrapper, ``python -m mtl_core.control.jobs run JOBDIR``, runs the training as its child, writes the
outcome into ``job.json`` even when whoever started it has long exited, and then advances the
queue itself, so queued jobs run one after the other with nobody watching. A lock file
(``jobs/.lock``, ``fcntl.flock``) keeps two callers from starting two jobs.

This module never imports TensorFlow (or Streamlit): submitting, listing and reading progress are
cheap enough for every page rerun.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from mtl_core.control import options as options_mod
from mtl_core.control.store import mtl_home
from mtl_core.errors import UserError

FINAL_STATES = ("done", "failed", "cancelled")
CANCEL_GRACE_S = 20.0  # a cancelled training gets this long to clean up before SIGKILL
CANCEL_REPEAT_S = 8.0  # ... and asked again this often meanwhile (a normal stop takes a few seconds)
LOG_TAIL_LINES = 20
_ID_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]*$")
_PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # the folder holding mtl_core/
# Wrappers this process started: polled so that they are reaped (a zombie still answers kill(pid, 0)).
_SPAWNED: dict[int, subprocess.Popen] = {}


@dataclass
class Job:
    """One training job as stored in ``job.json`` (``position`` and ``dir`` are not stored)."""

    id: str
    preset: str
    argv: list[str]  # the arguments of `python -m mtl_core train` (canonical: long flags, absolute paths)
    state: str = "queued"
    created: float = 0.0  # unix seconds
    started: float | None = None
    ended: float | None = None
    pid: int | None = None  # the wrapper; leader of the job's process group
    train_pid: int | None = None  # the `python -m mtl_core train` child
    device: dict | None = None  # from the trainer's start event: {"kind", "count", "name"}
    model: str | None = None  # model id when done (a comma-joined ensemble for --seeds)
    cached: bool | None = None  # the config was in the store already: nothing was trained
    exit_code: int | None = None  # of the train process; negative: killed by that signal
    error: str | None = None  # one line when failed
    log_tail: list[str] = field(default_factory=list)  # the last log lines when failed
    cancel_requested: bool = False
    config: dict = field(default_factory=dict)  # the validated TrainConfig (loss weights, epochs, ...)
    submitter: str | None = None  # who queued it in the app: "owner" or "visitor:<session>" (control/access.py)
    position: int | None = None  # 0: running, 1..n: place in the queue, None: finished
    dir: Path | None = None

    @property
    def job_file(self) -> Path:
        return self.dir / "job.json"

    @property
    def events_file(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def log_file(self) -> Path:
        return self.dir / "log.txt"

    @property
    def stdout_file(self) -> Path:
        return self.dir / "stdout.json"

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def cluster(self) -> str | None:
        """The Ray address it runs on (``--cluster``, resolved from ``$MTL_CLUSTER`` when submitted), or None:
        this machine."""
        return self.argv[self.argv.index("--cluster") + 1] if "--cluster" in self.argv[:-1] else None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "mtl_core", "train", *self.argv,
                "--events", str(self.events_file), "--json"]

    def to_dict(self) -> dict:
        """JSON-ready: what job.json holds, plus the queue position and the folder."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "dir"}
        out["dir"] = str(self.dir) if self.dir else None
        return out

    def _stored(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("position", "dir")}

    @classmethod
    def _from_stored(cls, data: dict, folder: Path) -> Job:
        known = {f.name for f in fields(cls)} - {"position", "dir"}
        return cls(**{k: v for k, v in data.items() if k in known}, dir=folder)


# -- checks before queueing ---------------------------------------------------------------------------
def _check_data_folder(preset_name: str, data: dict) -> None:
    """Load a user's data folder once before queueing, so a folder that does not load is refused with its
    reason instead of failing later in the background (numpy/pandas readers only, no TensorFlow)."""
    from mtl_core.control.presets import get_preset

    try:
        get_preset(preset_name).for_data(data).load_data(data)
    except UserError:
        raise
    except (OSError, ValueError) as exc:
        raise UserError(f"--data-dir: {data['dir']}: does not load ({exc})") from None


# -- small helpers ------------------------------------------------------------------------------------
def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False))
    os.replace(tmp, path)


def _alive(pid: int | None, marker: str) -> bool:
    """Whether ``pid`` is still the job's process: not gone, not a zombie, and (where /proc exists)
    its command line names the job, so a reused pid after a restart is not mistaken for it."""
    if not pid:
        return False
    proc = _SPAWNED.get(pid)
    if proc is not None and proc.poll() is not None:
        _SPAWNED.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else: check /proc below
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
        return marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc (macOS): trust kill(pid, 0)
    except (OSError, IndexError):
        return True


def _signal(pid: int | None, sig: int, *, group: bool = False) -> None:
    if not pid:
        return
    try:
        (os.killpg if group else os.kill)(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _read_lines(path: Path, n: int, chunk: int = 65536) -> list[str]:
    """The last ``n`` lines of a text file (reads only its end)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - chunk))
            data = fh.read()
    except OSError:
        return []
    lines = data.decode("utf-8", "replace").replace("\r", "\n").splitlines()
    if size > chunk:
        lines = lines[1:]  # the first one is probably cut
    return [line for line in lines if line.strip()][-n:]


def tail_log(job: Job, n: int = LOG_TAIL_LINES) -> list[str]:
    """The last ``n`` lines of the job's log (the training's stderr)."""
    return _read_lines(job.log_file, n) if job.dir else []


def _iter_events(job: Job) -> Iterator[dict]:
    try:
        with open(job.events_file) as fh:
            for line in fh:
                if '"event": "batch"' in line:  # the many batch events are parsed only when needed
                    yield {"event": "batch", "_raw": line}
                    continue
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # a line being written right now
    except OSError:
        return


def events_of(job: Job, *kinds: str) -> dict[str, list[dict]]:
    """The events of these kinds so far, by kind, in order, from one read of the events file: "epoch" (per-head
    train/val metrics, learning rate: the curves to plot), "warning" (e.g. a head that stopped learning), ..."""
    found: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for event in _iter_events(job):
        if event.get("event") in found:
            found[event["event"]].append(event)
    return found


def epoch_events(job: Job) -> list[dict]:
    """Every epoch event so far (per-head train/val metrics, learning rate): the curves to plot."""
    return events_of(job, "epoch")["epoch"]


def progress(job: Job) -> dict:
    """Where a job stands: epoch/epochs, batch/batches, the last epoch's per-head metrics, the
    fraction done (0..1), the device, and the seconds since it started."""
    out = {"state": job.state, "epoch": 0, "epochs": job.config.get("epochs"), "batch": 0, "batches": None,
           "fraction": 1.0 if job.state == "done" else 0.0, "val": {}, "train": {}, "lr": None,
           "device": job.device, "elapsed": None, "cluster": job.cluster, "node": None}
    last_batch = None
    for event in _iter_events(job):
        kind = event.get("event")
        if kind == "node" and not event.get("rank"):  # a cluster's task started here (again, after a retry);
            # with --workers, each worker says where it is: rank 0 (which reports) stands for them
            out["node"] = {k: event.get(k) for k in ("host", "ip", "node_id", "workers")}
        elif kind == "start":
            out.update(epochs=event.get("epochs", out["epochs"]), batches=event.get("batches"),
                       device=event.get("device") or out["device"])
        elif kind == "epoch":
            out.update(epoch=event["epoch"], epochs=event.get("epochs", out["epochs"]), lr=event.get("lr"),
                       val=event.get("val", {}), train=event.get("train", {}))
            last_batch = None  # a batch event before this epoch's end is older news
        elif kind == "batch":
            last_batch = event["_raw"]
        elif kind == "end":
            out["fraction"] = 1.0
            out["epochs_run"] = event.get("epochs_run")
    if last_batch is not None:
        try:
            batch = json.loads(last_batch)
            out.update(batch=batch["batch"], batches=batch.get("batches", out["batches"]))
            if batch["epoch"] > out["epoch"]:
                out["running_epoch"] = batch["epoch"]
        except (ValueError, KeyError):
            pass
    if job.state == "running" and out["epochs"]:
        done = out["epoch"]
        if out.get("running_epoch") and out["batches"]:
            done = out["running_epoch"] - 1 + out["batch"] / out["batches"]
        out["fraction"] = max(out["fraction"], min(0.99, done / out["epochs"]))  # 1.0 means done and saved
    if job.started:
        out["elapsed"] = round((job.ended or time.time()) - job.started, 1)
    return out


def _start_device(job: Job) -> dict | None:
    try:
        with open(job.events_file) as fh:
            first = json.loads(fh.readline())
        return first.get("device") if first.get("event") == "start" else None
    except (OSError, ValueError):
        return None


def _outcome(job: Job, returncode: int | None) -> None:
    """Fill in the final state of a job whose training process has ended (``returncode`` None:
    nobody saw it end, e.g. the wrapper was killed too)."""
    job.ended = time.time()
    job.exit_code = returncode
    job.device = job.device or _start_device(job)
    job.position = None
    result = None
    try:
        text = job.stdout_file.read_text().strip()
        result = json.loads(text.splitlines()[-1]) if text else None
    except (OSError, ValueError, IndexError):
        pass
    model = (result or {}).get("model") or (result or {}).get("ensemble")
    if model and returncode in (0, None):  # None: finished and printed its result, then lost its wrapper
        job.state, job.model, job.cached, job.error = "done", model, (result or {}).get("cached"), None
        return
    if job.cancel_requested:
        job.state, job.error = "cancelled", None
        return
    lines = tail_log(job, LOG_TAIL_LINES)
    errors = [line for line in lines if line.startswith("error: ")]
    if returncode is None:
        job.error = "the training process ended without reporting (killed, or the machine restarted)"
    elif returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        job.error = f"the training process was killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    elif errors:
        job.error = errors[-1][len("error: "):]
    elif returncode == 0:
        job.error = "the training process exited without printing its result"
    else:
        job.error = f"the training process exited with code {returncode}" + (f": {lines[-1]}" if lines else "")
    job.state, job.log_tail = "failed", lines


# -- the queue -------------------------------------------------------------------------------------
class JobQueue:
    """Jobs of one device (one machine: its GPU, or its CPU) under ``root`` (``$MTL_HOME/jobs``).

    ``submit`` validates and queues; ``advance`` reconciles and starts the next job; ``list`` and
    ``get`` read; ``cancel`` stops. Each instance is stateless: all state is on disk, so a restarted
    app (or another process) sees the same jobs.
    """

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root else mtl_home() / "jobs"

    # reading ---------------------------------------------------------------------------------
    def _load(self, folder: Path) -> Job | None:
        try:
            return Job._from_stored(json.loads((folder / "job.json").read_text()), folder)
        except (OSError, ValueError, TypeError):
            return None

    def _all(self) -> list[Job]:
        if not self.root.is_dir():
            return []
        jobs = [j for f in self.root.iterdir() if f.is_dir() and not f.name.startswith(".")
                if (j := self._load(f)) is not None]
        jobs.sort(key=lambda j: (j.created, j.id), reverse=True)  # newest first
        queued = sorted((j for j in jobs if j.state == "queued"), key=lambda j: (j.created, j.id))
        for place, job in enumerate(queued, start=1):
            job.position = place
        for job in jobs:
            if job.state == "running":
                job.position = 0
        return jobs

    def list(self) -> list[Job]:
        """Every job, newest first, with its queue position (0 running, 1 next, ...). Call
        :meth:`advance` first to have dead processes noticed and the next job started."""
        return self._all()

    def get(self, job_id: str) -> Job:
        if not _ID_RE.match(job_id or ""):
            raise UserError(f"no job {job_id!r} (list jobs with `python -m mtl_core jobs`)")
        for job in self._all():
            if job.id == job_id:
                return job
        raise UserError(f"no job {job_id!r} in {self.root} (list jobs with `python -m mtl_core jobs`)")

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _save(self, job: Job) -> None:
        _write_json(job.job_file, job._stored())

    # changing ----------------------------------------------------------------------------------
    def submit(self, argv: Sequence[str] | None = None, /, *, submitter: str | None = None, **options) -> Job:
        """Validate `train` arguments (or keyword options: :func:`mtl_core.control.options.train_argv`), queue a job.
        Nothing is written when they are invalid (:class:`UserError`). The job starts on the next
        :meth:`advance` when nothing else runs."""
        if argv is None:
            if "preset" not in options:
                raise UserError("submit: give train arguments or preset=...")
            argv = options_mod.train_argv(**options)
        elif options:
            raise UserError("submit: give either train arguments or keyword options, not both")
        canonical, preset, config = options_mod.validate(argv)
        if config.get("data", {}).get("dir"):
            _check_data_folder(preset, config["data"])
        created = time.time()
        with self._lock():
            while True:
                job_id = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(created))}-{secrets.token_hex(3)}"
                folder = self.root / job_id
                try:
                    folder.mkdir()
                    break
                except FileExistsError:
                    continue
            job = Job(id=job_id, preset=preset, argv=canonical, created=created, config=config, dir=folder,
                      submitter=submitter)
            self._save(job)
        return self.get(job.id)

    def advance(self) -> Job | None:
        """Reconcile running jobs with their processes (a dead one becomes failed, with its last log
        lines) and start the oldest queued job if none runs here. Jobs for a cluster start at once, all of
        them: the cluster's own scheduler queues them by the resources they ask for. Returns the (first)
        job it started, if any. Cheap and safe to call from anywhere, as often as wanted."""
        if not self.root.is_dir():
            return None
        with self._lock():
            jobs = self._all()
            busy = False
            for job in jobs:
                if job.state == "running":
                    alive = self._reconcile(job)
                    busy = busy or (alive and job.cluster is None)
            queued = sorted((j for j in jobs if j.state == "queued"), key=lambda j: (j.created, j.id))
            started = [self._start(j) for j in queued if j.cluster is not None]
            local = [j for j in queued if j.cluster is None]
            if local and not busy:
                started.append(self._start(local[0]))
            return started[0] if started else None

    def _reconcile(self, job: Job) -> bool:
        """(under the lock) True while the job's processes live; otherwise record how it ended."""
        if _alive(job.pid, job.id) or _alive(job.train_pid, job.id):
            return True
        fresh = self._load(job.dir)
        if fresh is None or fresh.state != "running":  # the wrapper recorded it meanwhile
            return False
        _outcome(fresh, None)
        self._save(fresh)
        return False

    def _start(self, job: Job) -> Job:
        """(under the lock) Mark running and launch the wrapper in its own session."""
        job.state, job.started, job.position = "running", time.time(), 0
        self._save(job)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PACKAGE_PARENT), env.get("PYTHONPATH")]))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            with open(job.log_file, "ab") as log:
                proc = subprocess.Popen([sys.executable, "-m", "mtl_core.control.jobs", "run", str(job.dir)],
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                        cwd=_PACKAGE_PARENT, start_new_session=True)
        except OSError as exc:
            job.state, job.ended, job.position = "failed", time.time(), None
            job.error = f"could not start the training process: {exc}"
            self._save(job)
            return job
        _SPAWNED[proc.pid] = proc
        job.pid = proc.pid
        self._save(job)
        return job

    def cancel(self, job_id: str, grace: float = CANCEL_GRACE_S) -> Job:
        """Cancel a job. A queued one simply becomes cancelled. A running one is asked to stop (the
        training gets SIGINT, so the store's own cleanup removes its half-written temporary folder),
        then, after ``grace`` seconds, its process group is killed. Returns the job as it ends up;
        a job that finished meanwhile keeps its state."""
        with self._lock():
            job = self.get(job_id)
            if job.state == "queued":
                job.state, job.ended, job.position = "cancelled", time.time(), None
                self._save(job)
                return job
            if job.state != "running":
                return job
            job.cancel_requested = True
            self._save(job)
        def ask_to_stop() -> None:
            if _alive(job.pid, job.id):
                _signal(job.pid, signal.SIGTERM)  # the wrapper passes it on as SIGINT
            else:
                _signal(job.train_pid, signal.SIGINT)

        def gone(timeout: float, ask_every: float | None = None) -> bool:
            deadline = time.monotonic() + timeout
            asked = time.monotonic()
            while time.monotonic() < deadline:
                if not (_alive(job.pid, job.id) or _alive(job.train_pid, job.id)):
                    return True
                if ask_every and time.monotonic() - asked > ask_every:
                    # Ctrl-C again: an interrupt that arrives while TensorFlow is starting a step can be
                    # lost (seen in tests, rarely); a second one stops it where the first did not
                    ask_to_stop()
                    asked = time.monotonic()
                time.sleep(0.05)
            return False

        ask_to_stop()

        if not gone(grace, ask_every=CANCEL_REPEAT_S):
            _signal(job.pid, signal.SIGKILL, group=True)
            _signal(job.train_pid, signal.SIGKILL)
            gone(10.0)
        with self._lock():
            fresh = self._load(job.dir)
            if fresh is not None and fresh.state == "running":
                _outcome(fresh, None)
                self._save(fresh)
        self.advance()
        return self.get(job_id)


# -- the wrapper: python -m mtl_core.control.jobs run JOBDIR ------------------------------------------------
def _die_with_parent() -> None:  # pragma: no cover  (runs in the child between fork and exec)
    """Linux: the training gets SIGKILL if its wrapper dies, so no orphan trains on unobserved."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_job(job_dir: Path) -> int:
    """Run one job's training as a child, record its outcome in job.json, start the next job."""
    queue = JobQueue(job_dir.parent)
    state = {"child": None, "stop": False}

    def on_signal(signum, frame):  # cancel (SIGTERM) or a hang-up: ask the training to stop (Ctrl-C)
        state["stop"] = True
        if state["child"] is not None and state["child"].poll() is None:
            state["child"].send_signal(signal.SIGINT)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    with queue._lock():
        job = queue._load(job_dir)
        if job is None or job.state != "running":
            return 0
        job.pid = os.getpid()
        if job.cancel_requested:
            _outcome(job, None)
            queue._save(job)
            return 0
        queue._save(job)
    with open(job.log_file, "ab") as log:
        log.write(f"$ python -m mtl_core train {' '.join(job.argv)}\n".encode())
    linux = sys.platform.startswith("linux")
    try:
        with open(job.stdout_file, "wb") as out, open(job.log_file, "ab") as log:
            child = subprocess.Popen(job.command(), stdin=subprocess.DEVNULL, stdout=out, stderr=log,
                                     cwd=_PACKAGE_PARENT, preexec_fn=_die_with_parent if linux else None)
    except OSError as exc:
        with queue._lock():
            job = queue._load(job_dir)
            job.state, job.ended, job.position = "failed", time.time(), None
            job.error = f"could not start the training process: {exc}"
            queue._save(job)
        queue.advance()
        return 0
    state["child"] = child
    if state["stop"]:  # the signal came before the child existed
        child.send_signal(signal.SIGINT)
    with queue._lock():
        job = queue._load(job_dir)
        job.train_pid = child.pid
        queue._save(job)
    returncode = child.wait()
    with queue._lock():
        job = queue._load(job_dir)
        if job.state == "running":
            _outcome(job, returncode)
            queue._save(job)
    queue.advance()  # the queue moves on with nobody watching
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtl_core.control.jobs",
                                     description="Job runner (started by JobQueue.advance).")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the job in JOBDIR and record its outcome")
    run.add_argument("job_dir", type=Path)
    args = parser.parse_args(argv)
    return run_job(args.job_dir.resolve())


if __name__ == "__main__":
    sys.exit(main())
