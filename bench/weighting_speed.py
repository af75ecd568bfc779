"""Per-step training time of each loss-weighting method against static weights (issue 5).

Same model (shapes-3head), data, batch size and epochs for every method, in one run; prints the
median seconds per training step over epochs 2..E (the first epoch includes tracing) and the ratio
to static weights.

    python bench/weighting_speed.py [--epochs 3] [--n 1200]
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench._machine import machine  # noqa: E402
from mtl_core.control import methods  # noqa: E402
from mtl_core.control.config import make_config  # noqa: E402
from mtl_core.control.datasets import load_training_data  # noqa: E402
from mtl_core.control.presets import get_preset  # noqa: E402
from mtl_core.engine.training import Trainer  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--n", type=int, default=1200)
    args = ap.parse_args()
    preset = get_preset("shapes-3head")
    print(f"machine: {machine()}")
    rows = []
    for method in methods.names():
        config = make_config(preset, epochs=args.epochs, weighting=method, patience=10**6, lr_patience=10**6,
                             data={**preset.data_defaults, "n": args.n})
        data = load_training_data(preset, config)
        events = []
        result = Trainer(preset, config, subscribers=[events.append]).run(data)
        batches = next(e for e in events if e["event"] == "start")["batches"]
        seconds = [e["seconds"] for e in events if e["event"] == "epoch"]
        step_ms = 1000 * statistics.median(seconds[1:] or seconds) / batches
        rows.append((method, step_ms, result.card["metrics"]["test"]))
        print(f"{method}: {step_ms:.1f} ms/step", file=sys.stderr, flush=True)
    static = rows[0][1]
    print(f"{args.n} generated images, batch 64, {args.epochs} epochs; median ms per step over epochs 2..E")
    print("| method | ms / step | ratio to static |")
    print("|---|---|---|")
    for method, ms, _ in rows:
        print(f"| {method} | {ms:.1f} | {ms / static:.2f}x |")


if __name__ == "__main__":
    main()
