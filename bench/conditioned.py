"""One loss-conditioned model against separately trained static-weight models at the same lambda points (issue 7).

For each preset (shapes-3head, color-digits): one conditioned model (lambda drawn per example, Dirichlet(1))
and one static model per lambda point (loss weights K*lambda), all with the same data, split, batch size and
epochs (early stopping and LR reduction off, so every model runs every epoch), in one run. Prints the
machine, the test metrics of both at every point, the per-head gap (percentage points of accuracy; % of
MAE) and the ratio of training times: the conditioned model against one static training, and against all
of them (the whole front).

Goal: the whole front for at most 1.5x the time of one fixed-weight training; every point within 1 pp of
accuracy (5% of MAE) of its separately trained model.

    python bench/conditioned.py [--points 3] [--shapes-n 3000] [--shapes-epochs 8] [--digits-epochs 10]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench._machine import machine  # noqa: E402
from mtl_core.control import pareto  # noqa: E402
from mtl_core.control.config import make_config  # noqa: E402
from mtl_core.control.data.splits import stratified_split  # noqa: E402
from mtl_core.control.datasets import load_training_data  # noqa: E402
from mtl_core.control.metrics import all_metrics  # noqa: E402
from mtl_core.control.presets import get_preset  # noqa: E402
from mtl_core.engine.batches import predict_in_batches  # noqa: E402
from mtl_core.engine.training import Trainer  # noqa: E402

NO_STOPPING = {"patience": 10**6, "lr_patience": 10**6}


def test_split(preset, config, data):
    labels = data.y[preset.stratify] if preset.stratify in data.y else None
    return stratified_split(labels, len(data), val_fraction=config.val_fraction,
                            test_fraction=config.test_fraction, seed=config.seed).test


def head_value(task, metrics) -> float:
    return metrics["mae"] if task.kind == "regression" else metrics["accuracy"]


def gap_text(task, cond: float, static: float) -> tuple[str, bool]:
    """The gap of the conditioned model to the static one, and whether it is within the goal."""
    if task.kind == "regression":
        rel = (cond - static) / max(static, 1e-12)
        return f"{rel:+.1%}", rel <= 0.05
    pp = 100 * (cond - static)
    return f"{pp:+.1f} pp", pp >= -1.0


def run_preset(name: str, data_options: dict, epochs: int, points: int, seed: int) -> dict:
    preset = get_preset(name)
    heads = [t.name for t in preset.tasks]
    k = len(heads)
    lams = pareto.with_floor(pareto.simplex_grid(k, points))
    base = dict(data={**preset.data_defaults, **data_options}, epochs=epochs, seed=seed, **NO_STOPPING)
    cond_config = make_config(preset, conditioned=True, **base)
    data = load_training_data(preset, cond_config)
    idx = test_split(preset, cond_config, data)
    tasks = {t.name: t for t in preset.tasks}
    y_test = {h: data.y[h][idx] for h in heads}

    # warm-up (not timed): the first training of a process pays one-off start-up costs
    warm = make_config(preset, epochs=1, limit=200, **{k: v for k, v in base.items() if k != "epochs"})
    Trainer(preset, warm).run(load_training_data(preset, warm))
    print(f"{name}: conditioned model", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    cond = Trainer(preset, cond_config).run(data)
    cond_wall = time.perf_counter() - t0
    cond_fit = cond.card["training"]["seconds"]
    rows, static_fit, static_wall = [], [], []
    for lam in lams:
        weights = {h: float(k * w) for h, w in zip(heads, lam, strict=True)}
        print(f"{name}: static model at lambda {np.round(lam, 3).tolist()}", file=sys.stderr, flush=True)
        config = make_config(preset, loss_weights=weights, **base)
        t0 = time.perf_counter()
        static = Trainer(preset, config).run(data)
        static_wall.append(time.perf_counter() - t0)
        static_fit.append(static.card["training"]["seconds"])
        cond_metrics = all_metrics(tasks, y_test, predict_in_batches(cond.model, data.x[idx], lam))
        rows.append((lam, cond_metrics, static.card["metrics"]["test"]))
    return {"name": name, "heads": heads, "tasks": tasks, "rows": rows, "cond_fit": cond_fit, "cond_wall": cond_wall,
            "grid_seconds": cond.card["conditioned"]["grid_seconds"], "static_fit": static_fit,
            "static_wall": static_wall, "n_train": cond.card["data"]["sizes"]["train"], "epochs": epochs,
            "n_test": len(idx)}


def report(r: dict) -> None:
    heads, tasks = r["heads"], r["tasks"]
    mean_static = float(np.mean(r["static_fit"]))
    print(f"\n### {r['name']}: {r['n_train']} training / {r['n_test']} test examples, {r['epochs']} epochs, "
          f"batch 64, no early stopping")
    print("| lambda (" + ", ".join(heads) + ") | " + " | ".join(
        f"{h} {'MAE' if tasks[h].kind == 'regression' else 'acc'}: conditioned / static (gap)" for h in heads) + " |")
    print("|---|" + "---|" * len(heads))
    met = total = 0
    for lam, cond, static in r["rows"]:
        cells = []
        for h in heads:
            c, s = head_value(tasks[h], cond[h]), head_value(tasks[h], static[h])
            gap, ok = gap_text(tasks[h], c, s)
            met, total = met + ok, total + 1
            cells.append(f"{c:.3f} / {s:.3f} ({gap}{'' if ok else ' ✗'})")
        print(f"| {', '.join(f'{w:.2f}' for w in lam)} | " + " | ".join(cells) + " |")
    print(f"\ntraining time (fit): conditioned {r['cond_fit']:.1f} s; static {mean_static:.1f} s each "
          f"(min {min(r['static_fit']):.1f}, max {max(r['static_fit']):.1f}), {sum(r['static_fit']):.1f} s for "
          f"{len(r['static_fit'])} points")
    print(f"ratio conditioned / one static training: **{r['cond_fit'] / mean_static:.2f}x** (goal <= 1.5x); "
          f"conditioned / all {len(r['static_fit'])} static trainings: {r['cond_fit'] / sum(r['static_fit']):.2f}x; "
          f"the lambda grid of the card took {r['grid_seconds']:.1f} s more")
    print(f"points x heads within the accuracy goal (1 pp; 5% of MAE): {met} of {total}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=3)
    ap.add_argument("--shapes-n", type=int, default=3000)
    ap.add_argument("--shapes-epochs", type=int, default=8)
    ap.add_argument("--digits-epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--only", choices=["shapes-3head", "color-digits"])
    args = ap.parse_args()
    print(f"machine: {machine()}")
    if hasattr(os, "getloadavg"):
        print(f"load average at start: {os.getloadavg()[0]:.2f}")
    runs = [("shapes-3head", {"n": args.shapes_n}, args.shapes_epochs), ("color-digits", {}, args.digits_epochs)]
    for name, options, epochs in runs:
        if args.only and name != args.only:
            continue
        report(run_preset(name, options, epochs, args.points, args.seed))
    if hasattr(os, "getloadavg"):
        print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
