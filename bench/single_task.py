"""Multi-task vs single-task, per head: the preset's default model against the same architecture
trained on each head alone, and the scikit-learn baseline where the preset has one.

    python bench/single_task.py --preset color-digits [--preset churn-spend ...]

Models train through the store (a rerun only prints). Test-split metrics, one seed.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mtl_core.control.config import make_config  # noqa: E402
from mtl_core.control.presets import get_preset  # noqa: E402
from mtl_core.engine.training import train  # noqa: E402


def fmt(value):
    return "–" if value is None else f"{value:.3f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", action="append", required=True)
    args = ap.parse_args()
    print("| preset | head | metric | multi-task | same net, head alone | scikit-learn baseline | reference (seed) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.preset:
        preset = get_preset(name)
        _, card, _ = train(name, make_config(preset))
        alone = {h: train(name, make_config(preset, model=preset.model.only([h]).to_dict()))[1]
                 for h in preset.task_names}
        for task in preset.tasks:
            metrics = [task.primary_metric[0]] + (["auc"] if task.kind == "binary" else [])
            for metric in metrics:
                base = card.get("baselines", {}).get(task.name, {}).get("test", {}).get(metric)
                ref = preset.reference.get("metrics", {}).get(task.name, {}).get(metric)
                print(f"| {name} | {task.name} | {metric} | {fmt(card['metrics']['test'][task.name][metric])} | "
                      f"{fmt(alone[task.name]['metrics']['test'][task.name][metric])} | {fmt(base)} | {fmt(ref)} |")


if __name__ == "__main__":
    main()
