"""One loss-conditioned model against static models trained for each lambda point (issues 7 and 14, part 5).

For each image preset (shapes-3head, color-digits) and each seed: one conditioned model (lambda drawn per
example, Dirichlet(1)) and one static model per lambda point (loss weights K*lambda), all with the preset's
default data and training (early stopping as a user gets it) unless ``--epochs``/``--data-option`` say
otherwise. The conditioned model is evaluated on the test split at each point, the static models' test
metrics come from their cards. Printed per preset: for each point and head, conditioned and static mean ±
std over the seeds and the mean gap (percentage points of accuracy; % of MAE), with how many seeds met the
goal; and the fit time of the conditioned model against one static training (the mean of that seed's
static trainings), per seed.

Goal: every point within 1 pp of accuracy (5% of MAE) of its static model, judged on the mean over the
seeds; the conditioned training at most 1.5x one static training.

    python bench/conditioned.py [--points 3] [--seeds 42,43,44] [--only PRESET] [--epochs N]
                                [--data-option KEY=VALUE ...] [--store DIR]

Models train through a store of their own (default out/conditioned-study); what each training measured (test
metrics, the conditioned model's at every point, fit time) is appended to a ledger kept in git (``--ledger``,
default bench/results/conditioned-study.jsonl; see bench/_ledger.py): a rerun, even from a fresh clone, takes
a model's figures from it, so a study longer than one sitting resumes where it stopped. Fit times are the
cards' (``training.seconds``), measured when each model trained.
"""

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench._budget import add_budget_arguments, budget  # noqa: E402
from bench._ledger import Ledger, local_precision, model_id  # noqa: E402
from bench._machine import machine  # noqa: E402
from mtl_core.control import pareto  # noqa: E402
from mtl_core.control.config import make_config  # noqa: E402
from mtl_core.control.presets import get_preset  # noqa: E402
from mtl_core.control.store import ModelStore  # noqa: E402
from mtl_core.engine.evaluation import evaluate  # noqa: E402
from mtl_core.engine.training import train  # noqa: E402

PRESETS = ("color-digits", "shapes-3head")  # cheapest first: a partial run still says something
ROOT = Path(__file__).resolve().parents[1]


def head_value(task, metrics: dict) -> float:
    return metrics["mae"] if task.kind == "regression" else metrics["accuracy"]


def gap(task, cond: float, static: float) -> float:
    """Conditioned against static: pp of accuracy (negative is worse), or relative MAE (positive is worse)."""
    return (cond - static) / max(static, 1e-12) if task.kind == "regression" else 100 * (cond - static)


def within_goal(task, value: float) -> bool:
    return value <= 0.05 if task.kind == "regression" else value >= -1.0


def config_and_row(preset_name: str, ledger: Ledger, **overrides) -> tuple[object, dict | None]:
    """(the training's config, and the ledger's row of it on this machine's precision, or None)."""
    config = make_config(get_preset(preset_name), **overrides)
    return config, ledger.get(model_id(preset_name, config), local_precision(config))


def trained(preset_name: str, config, store: ModelStore, what: str) -> tuple[str, dict]:
    model, card, cached = train(preset_name, config, store=store)
    print(f"  {preset_name} {what}: {model}{' (stored)' if cached else ''} {card['training']['seconds']:.1f} s, "
          f"{card['training']['epochs_run']} epochs", file=sys.stderr, flush=True)
    return model, card


def ledger_row(preset_name: str, model: str, card: dict, what: str, **figures) -> dict:
    return {"id": model, "precision": card["training"]["precision"], "preset": preset_name, "what": what,
            "seconds": card["training"]["seconds"], "epochs": card["training"]["epochs_run"],
            "sizes": card["data"]["sizes"], **figures}


def static_run(preset_name: str, store: ModelStore, ledger: Ledger, weights: dict, seed: int, base: dict) -> dict:
    """A static model's test metrics (from the ledger, else trained and added to it)."""
    what = f"static {weights} seed {seed}"
    config, known = config_and_row(preset_name, ledger, loss_weights=weights, seed=seed, **base)
    if known is not None:
        print(f"  {preset_name} {what}: {known['id']} (ledger)", file=sys.stderr, flush=True)
        return known
    model, card = trained(preset_name, config, store, what)
    row = ledger_row(preset_name, model, card, what, test=card["metrics"]["test"])
    ledger.add(row)
    return row


def point(lam) -> str:
    return ",".join(f"{float(w):.4f}" for w in lam)


def conditioned_run(preset_name: str, store: ModelStore, ledger: Ledger, heads: list[str], lams, seed: int,
                    base: dict) -> dict:
    """The conditioned model's test metrics at each λ point, under ``at`` (from the ledger; a point it lacks is
    evaluated on the model, from the store or trained again)."""
    what = f"conditioned seed {seed}"
    config, known = config_and_row(preset_name, ledger, conditioned=True, seed=seed, **base)
    if known is not None and all(point(lam) in known["at"] for lam in lams):
        print(f"  {preset_name} {what}: {known['id']} (ledger)", file=sys.stderr, flush=True)
        return known
    model, card = trained(preset_name, config, store, what)
    at = dict(known["at"]) if known is not None else {}
    for lam in lams:
        weights = {h: float(w) for h, w in zip(heads, lam, strict=True)}
        at[point(lam)] = evaluate(preset_name, model, store=store, loss_weights=weights)["metrics"]
    row = ledger_row(preset_name, model, card, what, at=at)
    ledger.add(row)
    return row


def one_seed(preset_name: str, seed: int, points: int, store: ModelStore, ledger: Ledger, base: dict) -> dict:
    preset = get_preset(preset_name)
    heads = [t.name for t in preset.tasks]
    lams = pareto.with_floor(pareto.simplex_grid(len(heads), points))
    cond = conditioned_run(preset_name, store, ledger, heads, lams, seed, base)
    rows, static_seconds, static_epochs = [], [], []
    for lam in lams:
        weights = {h: round(len(heads) * float(w), 6) for h, w in zip(heads, lam, strict=True)}
        static = static_run(preset_name, store, ledger, weights, seed, base)
        static_seconds.append(static["seconds"])
        static_epochs.append(static["epochs"])
        rows.append({"lambda": [float(w) for w in lam], "conditioned": cond["at"][point(lam)],
                     "static": static["test"]})
    return {"rows": rows, "cond_seconds": cond["seconds"], "cond_epochs": cond["epochs"],
            "static_seconds": static_seconds, "static_epochs": static_epochs,
            "n_train": cond["sizes"]["train"], "n_test": cond["sizes"]["test"]}


def mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {std:.3f}"


def report(preset_name: str, runs: dict[int, dict], changed: dict) -> None:
    preset = get_preset(preset_name)
    tasks = list(preset.tasks)
    seeds = sorted(runs)
    first = runs[seeds[0]]
    training = ", ".join(f"{k} {v}" for k, v in changed.items()) or "the preset's default data and training"
    print(f"\n### {preset_name}: {first['n_train']} training / {first['n_test']} test examples; {training}; "
          f"seeds {', '.join(map(str, seeds))}\n")
    print("| λ (" + ", ".join(t.name for t in tasks) + ") | "
          + " | ".join(f"{t.name} {'MAE' if t.kind == 'regression' else 'acc'}: conditioned / static, mean gap"
                       f" (seeds within goal)" for t in tasks) + " |")
    print("|---|" + "---|" * len(tasks))
    met = total = 0
    for i, row in enumerate(first["rows"]):
        cells = []
        for t in tasks:
            cond = [head_value(t, runs[s]["rows"][i]["conditioned"][t.name]) for s in seeds]
            static = [head_value(t, runs[s]["rows"][i]["static"][t.name]) for s in seeds]
            gaps = [gap(t, c, s) for c, s in zip(cond, static, strict=True)]
            mean_gap = statistics.fmean(gaps)
            ok = within_goal(t, mean_gap)
            met, total = met + ok, total + 1
            shown = f"{mean_gap:+.1%}" if t.kind == "regression" else f"{mean_gap:+.1f} pp"
            cells.append(f"{mean_std(cond)} / {mean_std(static)}, **{shown}**{'' if ok else ' ✗'} "
                         f"({sum(within_goal(t, g) for g in gaps)}/{len(gaps)})")
        print(f"| {', '.join(f'{w:.2f}' for w in row['lambda'])} | " + " | ".join(cells) + " |")
    print(f"\npoints x heads within the goal (1 pp; 5% of MAE), on the mean over seeds: {met} of {total}\n")
    print("| seed | conditioned fit | epochs | one static fit (mean) | epochs | ratio (goal ≤ 1.5×) |")
    print("|---|---|---|---|---|---|")
    for s in seeds:
        r = runs[s]
        one = statistics.fmean(r["static_seconds"])
        print(f"| {s} | {r['cond_seconds']:.1f} s | {r['cond_epochs']} | {one:.1f} s | "
              f"{'/'.join(map(str, r['static_epochs']))} | {r['cond_seconds'] / one:.2f}× |")
    ratios = [runs[s]["cond_seconds"] / statistics.fmean(runs[s]["static_seconds"]) for s in seeds]
    print(f"| mean | | | | | **{statistics.fmean(ratios):.2f}×** |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=3)
    ap.add_argument("--seeds", default="42,43,44")
    ap.add_argument("--only", choices=PRESETS)
    add_budget_arguments(ap)
    ap.add_argument("--store", default=str(ROOT / "out" / "conditioned-study"))
    ap.add_argument("--ledger", default=str(ROOT / "bench" / "results" / "conditioned-study.jsonl"),
                    help="the figures of every finished training, kept in git (default: %(default)s)")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    store = ModelStore(root=Path(args.store) / "models", shipped=None)
    ledger = Ledger(Path(args.ledger))
    print(f"machine: {machine()}")
    if hasattr(os, "getloadavg"):
        print(f"load average at start: {os.getloadavg()[0]:.2f}")
    for name in [args.only] if args.only else PRESETS:
        base, changed = budget(get_preset(name), args)
        runs = {seed: one_seed(name, seed, args.points, store, ledger, base) for seed in seeds}
        report(name, runs, changed)
    if hasattr(os, "getloadavg"):
        print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
