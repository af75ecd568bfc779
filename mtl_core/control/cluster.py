"""Where a training runs: on this machine (the default), or on a Ray cluster named by its address.

``--cluster ADDRESS`` (``train``, ``sweep``, ``jobs submit``) or ``MTL_CLUSTER`` (the app) sends trainings to
a Ray cluster: ``auto`` (the cluster this machine's ``ray start`` joined), ``HOST:PORT`` (its head's GCS
port, 6379 by default) or ``ray://HOST:PORT`` (Ray Client). Each training is one Ray task with the resources
it asks for (``--cpus-per-job``, ``--gpus-per-job``); a task whose node dies is run again up to ``--retries``
times. The training itself, its events and the model coming back are in :mod:`mtl_core.engine.remote`.

Ray is optional (requirements-cluster.txt): a plain install never imports it, and ``--cluster`` without it
is one line saying what to install. Nothing here imports Ray or TensorFlow at module import.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from mtl_core.errors import UserError

ENV = "MTL_CLUSTER"
INSTALL_HINT = "pip install -r requirements-cluster.txt"
START_HINT = "start one with `ray start --head`, see docs/cluster.md"
DEFAULT_PORT = 6379
PROBE_TIMEOUT_S = 3.0
_ADDRESS = re.compile(r"^(?:ray://)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?$")


@dataclass(frozen=True)
class ClusterSpec:
    """A Ray address and what each training asks of it. Not part of a model's config: the same config
    trained here or there is the same model (id)."""

    address: str
    cpus: float = 1.0
    gpus: float = 0.0
    retries: int = 1  # runs again, on another node when there is one, after its node or worker died
    workers: int = 1  # >1: one training data-parallel over this many Ray Train workers (cpus/gpus each)

    def to_dict(self) -> dict:
        return {"address": self.address, "cpus": self.cpus, "gpus": self.gpus, "retries": self.retries,
                "workers": self.workers}


def address_from(flag: str | None) -> str | None:
    """The flag's address, else ``MTL_CLUSTER``'s, else None (train here). An empty value means here."""
    value = flag if flag is not None else os.environ.get(ENV)
    return (value.strip() or None) if value is not None else None


def parse_address(address: str, flag: str = "--cluster") -> tuple[str, int] | None:
    """(host, port) to probe; None for ``auto`` (resolved when connecting). A malformed one is a UserError."""
    if address == "auto":
        return None
    match = _ADDRESS.match(address)
    if not match:
        raise UserError(f"{flag}: {address!r} is not a Ray address (auto, HOST:PORT or ray://HOST:PORT)")
    port = int(match.group(2) or (10001 if address.startswith("ray://") else DEFAULT_PORT))
    if not 0 < port < 65536:
        raise UserError(f"{flag}: {address!r}: port {port} is out of range")
    return match.group(1).strip("[]"), port


def auto_address() -> str | None:
    """The address this machine's ``ray start`` wrote down (what Ray's own ``address="auto"`` reads)."""
    try:
        text = (Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "ray_current_cluster").read_text().strip()
    except OSError:
        return None
    return text or None


def require_ray(flag: str = "--cluster"):
    try:
        import ray
    except ImportError:
        raise UserError(f"{flag}: Ray is not installed ({INSTALL_HINT})") from None
    return ray


def check_reachable(address: str, flag: str = "--cluster") -> str:
    """The address to connect to, after a TCP probe of the head: a cluster that is not there is one line
    (and nothing is queued) instead of Ray's retries and timeouts."""
    resolved = address
    if address == "auto":
        resolved = auto_address()
        if resolved is None:
            raise UserError(f"{flag} auto: no Ray cluster was started on this machine ({START_HINT})")
    host, port = parse_address(resolved, flag)
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(f"{flag} {address}: no Ray cluster answers at {host}:{port} ({reason}); {START_HINT}") from None
    return resolved


def spec_from(address: str | None, cpus: float | None = None, gpus: float | None = None,
              retries: int | None = None, workers: int | None = None, *, check: bool = True) -> ClusterSpec | None:
    """The validated spec of ``--cluster``/``MTL_CLUSTER`` and the per-job resources; None to train here.
    ``check``: Ray is installed and the head answers (before anything is queued or trained)."""
    flag = "--cluster" if address is not None else f"${ENV}"  # the message names where the address came from
    address = address_from(address)
    if address is None:
        for flag, value in (("--cpus-per-job", cpus), ("--gpus-per-job", gpus), ("--retries", retries),
                            ("--workers", None if workers in (None, 1) else workers)):
            if value is not None:
                raise UserError(f"{flag}: only with --cluster ADDRESS (or {ENV})"
                                + ("; on this machine every GPU already trains together (MirroredStrategy)"
                                   if flag == "--workers" else ""))
        return None
    parse_address(address, flag)
    spec = ClusterSpec(address, 1.0 if cpus is None else float(cpus), 0.0 if gpus is None else float(gpus),
                       1 if retries is None else int(retries), 1 if workers is None else int(workers))
    if spec.cpus <= 0 or spec.cpus > 1024:
        raise UserError(f"--cpus-per-job: {spec.cpus:g} is out of range (more than 0, at most 1024)")
    if spec.gpus < 0 or spec.gpus > 64:
        raise UserError(f"--gpus-per-job: {spec.gpus:g} is out of range (0..64)")
    if not 0 <= spec.retries <= 10:
        raise UserError(f"--retries: {spec.retries} is out of range (0..10)")
    if not 1 <= spec.workers <= 256:
        raise UserError(f"--workers: {spec.workers} is out of range (1..256)")
    if check:
        require_ray(flag)
        check_reachable(address, flag)
    return spec
