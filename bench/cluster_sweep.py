"""A sweep's wall time here and on a loopback Ray cluster (issue 15): the cost of going through Ray.

One sweep (color-digits by default, ``--points`` points, small trainings) three ways, each into a fresh
store:

1. ``python -m mtl_core sweep`` on this machine: the points one after another in one process;
2. the local job queue (what the app's Trade-offs page does): one background job per point, one at a time,
   each its own process;
3. ``sweep --cluster`` on a two-node cluster on 127.0.0.1 (tests/cluster/loopback.py), each node offering
   ``--cpus-per-node`` CPUs (default 1, so two points run at once on this 2-core machine).

Printed: the machine and load, each wall time with its ratio to (1), the points' own fit seconds (from
their cards) and what is left as overhead, then, on paper, the same sweep of P points on N GPUs when one
point takes T: ``ceil(P / N) * T`` plus the per-wave overhead measured here. With 2 cores the point is the
overhead, not speed: both nodes share the same two cores.

    python bench/cluster_sweep.py [--points 3] [--epochs 3] [--limit 600] [--paper-points 21]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

from loopback import env as loopback_env  # noqa: E402
from loopback import loopback_cluster  # noqa: E402

from bench._machine import machine  # noqa: E402


def fit_seconds(home: Path) -> list[float]:
    return [json.loads((p / "card.json").read_text())["training"]["seconds"]
            for p in sorted((home / "models").iterdir()) if not p.name.startswith(".")]


def cli_sweep(args: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "mtl_core", "sweep", *args, "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"sweep failed ({out.returncode}): {out.stderr[-2000:]}")
    return wall


def queue_sweep(preset: str, train_args: list[str], points: int, home: Path) -> float:
    os.environ["MTL_HOME"] = str(home)
    os.environ["MTL_WEIGHTS"] = str(home / "no-shipped")
    from mtl_core.control import pareto
    from mtl_core.control.jobs import JobQueue
    from mtl_core.control.presets import get_preset
    from mtl_core.control.store import ModelStore
    from mtl_core.control.sweeps import submit_sweep

    heads = [t.name for t in get_preset(preset).tasks]
    queue = JobQueue(home / "jobs")
    t0 = time.perf_counter()
    submitted = submit_sweep(preset, pareto.weight_vectors(heads, points, "grid"), train_args, queue=queue,
                             store=ModelStore(root=home / "models", shipped=None))
    queue.advance()
    while not all(queue.get(j.id).finished for j in submitted.jobs):
        time.sleep(0.2)
        queue.advance()
    wall = time.perf_counter() - t0
    failed = [queue.get(j.id) for j in submitted.jobs if queue.get(j.id).state != "done"]
    if failed:
        raise SystemExit(f"a queued job failed: {failed[0].error}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="color-digits")
    ap.add_argument("--points", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=600)
    ap.add_argument("--cpus-per-node", type=int, default=1)
    ap.add_argument("--paper-points", type=int, default=21)
    args = ap.parse_args()
    train_args = ["--epochs", str(args.epochs), "--limit", str(args.limit)]
    sweep_args = ["--preset", args.preset, "--points", str(args.points), *train_args]
    print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.2f}")
    print(f"sweep: {args.preset}, {args.points} points, {args.epochs} epochs on {args.limit} examples each\n")
    rows = []
    with tempfile.TemporaryDirectory(prefix="mtl-bench-cluster-") as tmp:
        tmp = Path(tmp)
        base_env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
                    "MTL_WEIGHTS": str(tmp / "no-shipped")}
        home = tmp / "cli"
        wall = cli_sweep(sweep_args, {**base_env, "MTL_HOME": str(home)})
        rows.append(("`sweep` here (one process, points in turn)", wall, fit_seconds(home), 1))
        home = tmp / "queue"
        wall = queue_sweep(args.preset, train_args, args.points, home)
        rows.append(("local job queue (a process per point, in turn)", wall, fit_seconds(home), 1))
        t0 = time.perf_counter()
        with loopback_cluster(nodes=2, cpus_per_node=args.cpus_per_node) as cluster:
            started = time.perf_counter() - t0
            home = tmp / "cluster"
            env = {**base_env, **loopback_env(cluster.tmpdir), "MTL_HOME": str(home)}
            wall = cli_sweep([*sweep_args, "--cluster", cluster.address], env)
            rows.append((f"`sweep --cluster`, 2 loopback nodes × {args.cpus_per_node} CPU", wall, fit_seconds(home),
                         2 * args.cpus_per_node))
    base = rows[0][1]
    print("| how | wall | × `sweep` here | points' fit (sum) | overhead: wall − fit/parallel |")
    print("|---|---|---|---|---|")
    for name, wall, fits, parallel in rows:
        print(f"| {name} | {wall:.1f} s | {wall / base:.2f}× | {sum(fits):.1f} s | "
              f"{wall - sum(fits) / min(parallel, len(fits)):.1f} s |")
    print(f"\nthe loopback cluster took {started:.1f} s to start (not in the walls above)")
    overhead = rows[-1][1] - sum(rows[-1][2]) / min(rows[-1][3], len(rows[-1][2]))
    waves = math.ceil(args.points / min(rows[-1][3], args.points))
    per_wave = overhead / waves
    print(f"\non paper: {args.paper_points} points of T each on N one-GPU nodes, "
          f"{per_wave:.0f} s overhead per wave (measured above)")
    print("| N GPUs | waves | wall |")
    print("|---|---|---|")
    for n in (1, 2, 4, 8, args.paper_points):
        w = math.ceil(args.paper_points / n)
        print(f"| {n} | {w} | {w} T + {w * per_wave:.0f} s |")
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
