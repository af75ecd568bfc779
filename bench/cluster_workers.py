"""One training here, and on a loopback Ray cluster on one worker and on two (issue 15, part 2).

The same config (color-digits by default, small) three ways, each into a fresh store:

1. ``python -m mtl_core train`` on this machine;
2. ``train --cluster`` on a two-node cluster on 127.0.0.1 (tests/cluster/loopback.py): one Ray task;
3. ``train --cluster --workers 2``: one training over two Ray Train workers, one per node, under
   ``MultiWorkerMirroredStrategy``.

Printed: the machine and load; per way the wall time (the CLI's, process start included) with its ratio to
(1), the fit seconds from the card, and the test metrics, which should agree within noise. With 2 cores the
two workers share the cores the single training had to itself: the point is the overhead, not speed.

    python bench/cluster_workers.py [--preset color-digits] [--epochs 3] [--limit 600] [--weighting static]
"""

from __future__ import annotations

import argparse
import json
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


def cli_train(args: list[str], env: dict) -> tuple[float, dict, dict]:
    """(wall seconds, the --json result, the stored card)."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "mtl_core", "train", *args, "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"train failed ({out.returncode}): {out.stderr[-2000:]}")
    result = json.loads(out.stdout)
    card = json.loads((Path(env["MTL_HOME"]) / "models" / result["model"] / "card.json").read_text())
    return wall, result, card


def headline(metrics: dict) -> str:
    parts = []
    for head, m in metrics.items():
        name = "accuracy" if "accuracy" in m else "mae"
        parts.append(f"{head} {name} {m[name]:.3f}")
    return ", ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="color-digits")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=600)
    ap.add_argument("--weighting", default="static")
    args = ap.parse_args()
    train_args = ["--preset", args.preset, "--epochs", str(args.epochs), "--limit", str(args.limit),
                  "--weighting", args.weighting, "--precision", "float32"]
    print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.2f}")
    print(f"training: {args.preset}, {args.weighting} weights, {args.epochs} epochs on {args.limit} examples\n")
    rows = []
    with tempfile.TemporaryDirectory(prefix="mtl-bench-workers-") as tmp:
        tmp = Path(tmp)
        base_env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
                    "MTL_WEIGHTS": str(tmp / "no-shipped")}
        rows.append(("`train` here", *cli_train(train_args, {**base_env, "MTL_HOME": str(tmp / "here")})))
        with loopback_cluster(nodes=2, cpus_per_node=1) as cluster:
            env = {**base_env, **loopback_env(cluster.tmpdir)}
            cluster_args = [*train_args, "--cluster", cluster.address]
            rows.append(("`train --cluster` (one task)",
                         *cli_train(cluster_args, {**env, "MTL_HOME": str(tmp / "one")})))
            rows.append(("`train --cluster --workers 2` (a worker per node)",
                         *cli_train([*cluster_args, "--workers", "2"], {**env, "MTL_HOME": str(tmp / "two")})))
    base_wall, base_fit = rows[0][1], rows[0][3]["training"]["seconds"]
    print("| how | wall | × here | fit (card) | × here | replicas | test metrics |")
    print("|---|---|---|---|---|---|---|")
    for name, wall, result, card in rows:
        fit = card["training"]["seconds"]
        print(f"| {name} | {wall:.1f} s | {wall / base_wall:.2f}× | {fit:.1f} s | {fit / base_fit:.2f}× | "
              f"{card['training']['device']['replicas']} | {headline(result['metrics'])} |")


if __name__ == "__main__":
    main()
