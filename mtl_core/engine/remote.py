"""Trainings as Ray tasks: the data goes out once, progress events stream back, the model comes home.

The caller (``training.train`` or a sweep) has already loaded the data and knows the model id, so a config
that is in the store is never sent out. For the rest:

- the dataset is put into Ray's object store once (a sweep's points share it), so a node needs neither the
  user's folder nor the generator's cache;
- each training is one task (``num_cpus``/``num_gpus`` from :class:`ClusterSpec`, a fresh worker process
  per task, ``max_retries`` after a node or worker dies) running the same :class:`Trainer` as a local
  training, with its events sent back through a Ray queue, batch events at most every ``BATCH_EVERY_S``;
- the task returns ``model.keras`` as bytes and the card, with ``training.node`` (host, node id, address);
  the caller writes them into its own store atomically (``ModelStore.save_file``). A task that fails or is
  cancelled leaves nothing in the store.

With ``workers`` > 1 (``--workers N``) a training is one task that runs Ray Train's ``TensorflowTrainer``: N
workers, each with ``num_cpus``/``num_gpus``, train one model under ``MultiWorkerMirroredStrategy`` (Ray Train
sets ``TF_CONFIG``; the weighting methods are replica-aware); rank 0 sends the events and the model.

Ctrl-C (a job's cancel) cancels the tasks; a user's mistake raised on the node comes back as the same
one-line :class:`UserError`; a training lost with its node, retries spent, is a :class:`ClusterError`.
"""

from __future__ import annotations

import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mtl_core.control.cluster import ClusterSpec, check_reachable, require_ray
from mtl_core.control.config import TrainConfig
from mtl_core.control.presets.base import Dataset
from mtl_core.errors import ClusterError, UserError

BATCH_EVERY_S = 0.5
POLL_S = 0.2
NAMESPACE = "mtl-studio"
_PACKAGE = Path(__file__).resolve().parents[1]  # mtl_core/: shipped to the cluster with each connection


def connect(spec: ClusterSpec):
    """Ray, connected to ``spec.address`` (once per process), with this checkout of mtl_core on every
    worker's path (``py_modules``), so nodes run the same code as the caller."""
    ray = require_ray()
    if not ray.is_initialized():
        address = check_reachable(spec.address)
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level="ERROR",
                 configure_logging=True,
                 runtime_env={"py_modules": [str(_PACKAGE)], "excludes": ["__pycache__"],
                              "env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"}})
    return ray


def disconnect() -> None:
    """Leave the cluster (its background threads stop printing)."""
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def node_info(address: str) -> dict:
    import ray

    context = ray.get_runtime_context()
    return {"host": socket.gethostname(), "ip": ray.util.get_node_ip_address(), "node_id": context.get_node_id(),
            "cluster": address, "attempt": context.get_task_id()}


class _Forwarder:
    """A Trainer subscriber on the node: every event into the queue, batch events thinned."""

    def __init__(self, queue):
        self.queue, self.last_batch, self.pending = queue, 0.0, None

    def __call__(self, event: dict) -> None:
        if self.queue is None:
            return
        if event.get("event") == "batch":
            now = time.monotonic()
            if now - self.last_batch < BATCH_EVERY_S:
                self.pending = event
                return
            self.last_batch = now
        self.pending = None
        try:
            self.queue.put(event)
        except Exception:  # noqa: BLE001  (the queue died with another node: train on, unobserved)
            self.queue = None


def _train_task(trainer, preset_name: str, config: TrainConfig, data: Dataset, queue,
                address: str) -> tuple[bytes, dict]:
    """(runs on a node) One training by ``trainer`` (the Trainer class, passed in by reference: training.py
    calls this module); model.keras's bytes and the card."""
    from mtl_core.control.presets import preset_for

    forward = _Forwarder(queue)
    forward({"event": "node", **node_info(address)})
    result = trainer(preset_for(preset_name, config.data), config, subscribers=[forward]).run(data)
    return _packed(result, address)


def _worker_loop(trainer, preset_name: str, config: TrainConfig, data_ref: list, queue, box, address: str) -> None:
    """(runs in each Ray Train worker) One replica group of the training; rank 0 reports and sends the model."""
    import ray
    import ray.train
    import tensorflow as tf

    from mtl_core.control.presets import preset_for

    context = ray.train.get_context()
    rank, workers = context.get_world_rank(), context.get_world_size()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # from TF_CONFIG, before any other TensorFlow op
    forward = _Forwarder(queue)
    forward({"event": "node", **node_info(address), "rank": rank, "workers": workers})
    subscribers = [forward] if rank == 0 else []
    data = ray.get(data_ref[0])
    result = trainer(preset_for(preset_name, config.data), config, subscribers=subscribers,
                     strategy=strategy).run(data)
    if rank == 0:
        blob, card = _packed(result, address)
        card["training"]["node"]["workers"] = workers
        box.put((blob, card))


def _packed(result, address: str) -> tuple[bytes, dict]:
    """A finished training's model.keras as bytes, and its card with the node that trained it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        result.model.save(path)
        blob = path.read_bytes()
    card = result.card
    card["training"]["node"] = {k: v for k, v in node_info(address).items() if k != "attempt"}
    return blob, card


def _train_on_workers_task(trainer, preset_name: str, config: TrainConfig, data_ref: list, queue, address: str,
                           workers: int, cpus: float, gpus: float, retries: int) -> tuple[bytes, dict]:
    """(runs on a node, asking for no CPU of its own) One training over ``workers`` Ray Train workers; what
    rank 0 sent back. ``data_ref`` is the data's object reference in a list, so Ray hands it on unread."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.tensorflow import TensorflowTrainer
    from ray.util.queue import Queue

    box = Queue(maxsize=1, actor_options={"num_cpus": 0})
    with tempfile.TemporaryDirectory() as storage:  # Ray Train's run folder: nothing is checkpointed there
        TensorflowTrainer(
            lambda _: _worker_loop(trainer, preset_name, config, data_ref, queue, box, address),
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=gpus > 0,
                                         resources_per_worker={"CPU": cpus} | ({"GPU": gpus} if gpus else {})),
            run_config=RunConfig(storage_path=storage, failure_config=FailureConfig(max_failures=retries)),
        ).fit()
    return box.get(timeout=120)


@dataclass
class RemoteTraining:
    """One training sent out: its task, its event queue, and whom to tell."""

    key: object  # the caller's name for it (a sweep's point index)
    ref: object
    queue: object
    subscribers: list[Callable[[dict], None]]

    def pump(self) -> None:
        """Hand the events that arrived to the subscribers (a node event only to those that want it)."""
        try:
            events = self.queue.get_nowait_batch(self.queue.qsize())
        except Exception:  # noqa: BLE001  (the queue actor is gone with a dead node: nothing more to read)
            return
        for event in events:
            for subscriber in self.subscribers:
                subscriber(event)


def submit(trainer, preset_name: str, jobs: list[tuple[object, TrainConfig, list]], data: Dataset,
           spec: ClusterSpec) -> list[RemoteTraining]:
    """Send each (key, config, subscribers) as a task training with ``trainer`` (the Trainer class); they run
    at once as far as the cluster's resources go."""
    ray = connect(spec)
    from ray.util.queue import Queue
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    data_ref = ray.put(data)
    # the event queues live where the caller is (soft: anywhere if that is not a node), so a worker node's
    # death does not take other trainings' progress with it
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
    if spec.workers > 1:  # the workers ask for the resources; Ray Train restarts them (max_failures)
        task = ray.remote(max_calls=1)(_train_on_workers_task).options(num_cpus=0, max_retries=0)
        extra = (spec.workers, spec.cpus, spec.gpus, spec.retries)
        data_arg = [data_ref]
    else:  # max_calls: a fresh worker process per training
        task = ray.remote(max_calls=1)(_train_task).options(num_cpus=spec.cpus, num_gpus=spec.gpus,
                                                             max_retries=spec.retries, retry_exceptions=False)
        extra, data_arg = (), data_ref
    out = []
    for key, config, subscribers in jobs:
        queue = Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here})
        ref = task.remote(trainer, preset_name, config, data_arg, queue, spec.address, *extra)
        out.append(RemoteTraining(key, ref, queue, list(subscribers)))
    return out


def results(trainings: list[RemoteTraining], spec: ClusterSpec) -> Iterator[tuple[RemoteTraining, object]]:
    """(training, (model bytes, card) or the exception that ended it), as each one ends; events pumped
    meanwhile. Ctrl-C cancels every task not yet ended and is raised again."""
    import ray

    pending = {t.ref: t for t in trainings}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            for t in pending.values():
                t.pump()
            for ref in done:
                t = pending.pop(ref)
                t.pump()
                try:
                    yield t, ray.get(ref)
                except Exception as exc:  # noqa: BLE001  (reported per training; the others go on)
                    yield t, _explain(exc, spec)
                finally:
                    _close(t)
    except BaseException:
        for t in pending.values():
            ray.cancel(t.ref, force=True)
            _close(t)
        raise


def _close(t: RemoteTraining) -> None:
    import ray

    try:
        ray.kill(t.queue.actor)
    except Exception:  # noqa: BLE001  (already gone)
        pass


def _explain(exc: BaseException, spec: ClusterSpec) -> Exception:
    """A task's failure as the one line a user reads: their own mistake stays a UserError."""
    import ray

    cause = getattr(exc, "cause", None)
    if isinstance(cause, UserError) or isinstance(exc, UserError):
        return UserError(str(cause or exc).splitlines()[0])
    if isinstance(exc, ray.exceptions.TaskCancelledError):
        return KeyboardInterrupt()
    tries = spec.retries + 1
    if isinstance(exc, (ray.exceptions.NodeDiedError, ray.exceptions.WorkerCrashedError,
                        ray.exceptions.ActorDiedError, ray.exceptions.OwnerDiedError,
                        ray.exceptions.ObjectLostError)):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return ClusterError(f"the training was lost on the cluster {spec.address}: its node or worker died "
                            f"({type(exc).__name__}{': ' + first if first else ''}); tried {tries} "
                            f"time{'s' if tries > 1 else ''} (--retries {spec.retries})")
    inner = cause if cause is not None else exc
    text = str(inner).strip().splitlines()
    return ClusterError(f"the training failed on the cluster {spec.address}: {type(inner).__name__}"
                        + (f": {text[-1]}" if text else ""))


def train_one(trainer, preset_name: str, config: TrainConfig, data: Dataset, spec: ClusterSpec,
              subscribers: list[Callable[[dict], None]]) -> tuple[bytes, dict]:
    """One training on the cluster, waited for; its error raised."""
    (training,) = submit(trainer, preset_name, [(0, config, subscribers)], data, spec)
    for _, outcome in results([training], spec):
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome
    raise ClusterError("the cluster returned no result")  # pragma: no cover
