"""What each weighting method costs per training step as the number of heads grows (issue 14: FAMO's point is
a cost that does not grow with the heads; the gradient-combining methods take one backward pass per head).

A table of 2,000 rows with 12 numeric features and 8 regression targets (each a different random linear
function of the features, plus noise) is written to a CSV and trained as the table preset with the first K
targets as heads, for K = 2, 4, 8, with each method: 3 epochs, batch 64, median ms per step over epochs 2..3
(the first traces the step), in one run. Printed: ms per step and the ratio to static weights at the same K.

    python bench/weighting_cost.py [--heads 2,4,8] [--method M ...]
"""

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench._machine import machine  # noqa: E402

METHODS = ("static", "uncertainty", "famo", "pcgrad", "mgda", "cagrad", "nash_mtl", "aligned_mtl", "imtl")


def table(path: Path, rows: int = 2000, features: int = 12, targets: int = 8) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, features))
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)])
    for t in range(targets):
        frame[f"t{t}"] = x @ rng.normal(size=features) + 0.3 * rng.normal(size=rows)
    frame.to_csv(path, index=False)


def main():
    from mtl_core.control.config import make_config
    from mtl_core.control.datasets import load_training_data
    from mtl_core.control.presets import preset_for
    from mtl_core.engine.training import Trainer

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--heads", default="2,4,8")
    ap.add_argument("--method", action="append", choices=METHODS)
    args = ap.parse_args()
    counts = [int(k) for k in args.heads.split(",")]
    methods = args.method or list(METHODS)
    print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.2f}")
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "targets.csv"
        table(csv)
        for k in counts:
            data_options = {"source": "csv", "dir": str(csv), "targets": "+".join(f"t{t}" for t in range(k))}
            preset = preset_for("table", data_options)
            for method in methods:
                config = make_config(preset, data=data_options, epochs=3, batch_size=64, weighting=method,
                                     patience=10**6, lr_patience=10**6)
                events: list[dict] = []
                Trainer(preset, config, subscribers=[events.append]).run(load_training_data(preset, config))
                batches = next(e for e in events if e["event"] == "start")["batches"]
                seconds = [e["seconds"] for e in events if e["event"] == "epoch"][1:]
                results[(k, method)] = 1000 * statistics.median(seconds) / batches
                print(f"  K={k} {method}: {results[(k, method)]:.2f} ms/step", file=sys.stderr, flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}; 2,000 rows, batch 64, median ms per step, epochs 2..3")
    print("| method | " + " | ".join(f"K={k}: ms / step (× static)" for k in counts) + " |")
    print("|---" * (len(counts) + 1) + "|")
    for method in methods:
        cells = [f"{results[(k, method)]:.2f} ({results[(k, method)] / results[(k, 'static')]:.2f}×)"
                 if "static" in methods else f"{results[(k, method)]:.2f}" for k in counts]
        print(f"| {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
