"""A Ray cluster of several nodes on this machine, loopback only, for the cluster tests and bench.

Ray binds and advertises 127.0.0.1 only with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 in its environment (DESIGN.md),
and then `ray start --address` refuses to add a second node; ``ray.cluster_utils.Cluster`` does start real
extra nodes (their own raylet and object store, joined to the head's GCS). It runs here in a small server
process of its own session (``python tests/cluster/loopback.py``), driven over stdin: the studio's CLI
connects to it as to any cluster, a test can kill one node (``kill N``: its raylet and workers die at
once, as when a machine goes), and the end of the test stops exactly that process group, never ``ray stop``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
# a dead node is noticed within seconds, not the default ~30 s
FAST_HEALTH = {"RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "1000",
               "RAY_health_check_failure_threshold": "3", "RAY_health_check_initial_delay_ms": "500"}


def env(tmpdir: str) -> dict:
    """What every process of a test (the nodes, the studio's CLI) runs with."""
    return {**os.environ, **LOOPBACK, **FAST_HEALTH, "RAY_TMPDIR": tmpdir, "TF_CPP_MIN_LOG_LEVEL": "2",
            "RAY_USAGE_STATS_ENABLED": "0"}


class Cluster:
    """The test's side: the server process and its replies."""

    def __init__(self, proc: subprocess.Popen, tmpdir: str):
        self.proc, self.tmpdir = proc, tmpdir
        self.address = self._reply()["address"]

    @property
    def env(self) -> dict:
        return env(self.tmpdir)

    def _reply(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            log = (Path(self.tmpdir) / "server.log").read_text()[-3000:]
            raise RuntimeError(f"the loopback Ray cluster stopped:\n{log}")
        return json.loads(line)

    def _ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._reply()

    def nodes(self) -> list[dict]:
        """[{"index", "node_id", "alive"}] of the nodes this server started (0 is the head)."""
        return self._ask("nodes")["nodes"]

    def kill_node(self, index: int) -> None:
        self._ask(f"kill {index}")

    def add_node(self) -> int:
        return self._ask("add")["added"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self._ask("quit")
                self.proc.wait(30)
            except (OSError, ValueError, subprocess.TimeoutExpired, RuntimeError):
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):  # whatever of the group is left
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            time.sleep(1.0)


@contextmanager
def loopback_cluster(nodes: int = 2, cpus_per_node: int = 1):
    """A head and ``nodes - 1`` more nodes, each with ``cpus_per_node`` CPUs, on 127.0.0.1."""
    tmpdir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    log = open(Path(tmpdir) / "server.log", "w")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen([sys.executable, __file__, str(nodes), str(cpus_per_node)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=log, text=True, env=env(tmpdir), start_new_session=True)
    cluster = None
    try:
        cluster = Cluster(proc, tmpdir)
        yield cluster
    finally:
        if cluster is not None:
            cluster.stop()
        else:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(tmpdir, ignore_errors=True)


def serve(n_nodes: int, cpus: int) -> None:  # pragma: no cover  (runs in the server process)
    from ray.cluster_utils import Cluster as RayCluster

    memory = 120 * 2**20
    ray_cluster = RayCluster(initialize_head=True, head_node_args={
        "num_cpus": cpus, "object_store_memory": memory, "include_dashboard": False})
    started = [ray_cluster.head_node]
    for _ in range(n_nodes - 1):
        started.append(ray_cluster.add_node(num_cpus=cpus, object_store_memory=memory))
    ray_cluster.wait_for_nodes()
    dead: set[int] = set()

    def say(data: dict) -> None:
        print(json.dumps(data), flush=True)

    say({"address": ray_cluster.address})
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "nodes":
            say({"nodes": [{"index": i, "node_id": node.node_id, "alive": i not in dead}
                           for i, node in enumerate(started)]})
        elif command == "kill":
            index = int(rest[0])
            ray_cluster.remove_node(started[index], allow_graceful=False)
            dead.add(index)
            say({"killed": index})
        elif command == "add":
            started.append(ray_cluster.add_node(num_cpus=cpus, object_store_memory=memory))
            ray_cluster.wait_for_nodes()
            say({"added": len(started) - 1})
        elif command == "quit":
            ray_cluster.shutdown()
            say({"stopped": True})
            return


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
