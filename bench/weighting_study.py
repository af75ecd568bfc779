"""Every loss-weighting method against single-task models (issue 14, part 4).

For each preset, each method in the catalogue and each seed: the preset's default model and training, with
``--weighting METHOD``; and for each head, the same network trained on that head alone (same seed). Printed
per preset: each head's test metric, mean ± std over the seeds; Δm% (the average relative change against
the single-task models, as LibMTL reports it: (1/K) sum_k (-1)^l_k (M_k - M_k,single) / M_k,single x 100,
l_k = 1 where lower is better); how many heads are at or above their single-task model within noise
(mean + the two runs' combined std reaches the single-task mean); and the median milliseconds per
training step (epochs 2.., as logged by the trainer), with the ratio to static weights.

    python bench/weighting_study.py [--preset P ...] [--method M ...] [--seeds 42,43,44] [--store DIR]
                                    [--epochs N] [--data-option KEY=VALUE,...]

``--epochs`` and ``--data-option`` (as train's) replace the preset's defaults for every training of the
study: a smaller budget, said in the printed header.

Models train through a store of their own (``--store``, default out/weighting-study). What each training
measured (model id, test metrics, ms per step) is also appended to a ledger kept in git
(``--ledger``, default bench/results/weighting-study.jsonl): a rerun, even from a fresh clone, takes a model's
figures from it instead of training again, so a study longer than one sitting resumes where it stopped.
How the ledger is keyed: bench/_ledger.py. ``--json FILE`` writes the figures.

Trainings go seed by seed (every method at seed 42, then 43, ...), so a study stopped half-way has every
method at some seeds. ``--from-ledger`` trains nothing: it prints the table of what the ledger holds, each
cell saying over how many seeds it was taken when that is fewer than asked.
"""

import argparse
import json
import math
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench._budget import add_budget_arguments, budget  # noqa: E402
from bench._ledger import Ledger, local_precision, model_id  # noqa: E402
from bench._machine import machine  # noqa: E402
from mtl_core.control import methods as catalogue  # noqa: E402
from mtl_core.control.config import make_config  # noqa: E402
from mtl_core.control.modelspec import ModelSpec  # noqa: E402
from mtl_core.control.presets import get_preset  # noqa: E402
from mtl_core.control.store import ModelStore  # noqa: E402
from mtl_core.engine.training import train  # noqa: E402

PRESETS = ("churn-spend", "color-digits", "shapes-3head")  # cheapest first: a partial run still says something
ROOT = Path(__file__).resolve().parents[1]


def step_ms(events: list[dict]) -> float | None:
    """Median ms per step over epochs 2.. (the first traces the step); None for a model read from the store."""
    epochs = [e for e in events if e["event"] == "epoch"]
    start = next((e for e in events if e["event"] == "start"), None)
    if not epochs or start is None:
        return None
    seconds = [e["seconds"] for e in epochs[1:]] or [epochs[0]["seconds"]]
    return 1000 * statistics.median(seconds) / start["batches"]


class NotInLedger(Exception):
    pass


def run(preset_name: str, store: ModelStore, ledger: Ledger, timings: dict, train_missing: bool = True,
        **overrides) -> dict:
    """Test metrics of one training (from the ledger, else through the store), and its ms per step."""
    preset = get_preset(preset_name)
    config = make_config(preset, **overrides)
    what = f"{overrides.get('weighting', 'single-task')} seed {overrides.get('seed')}"
    known = ledger.get(model_id(preset_name, config), local_precision(config))
    if known is not None:
        print(f"  {preset_name} {what}: {known['id']} (ledger)", file=sys.stderr, flush=True)
        return {"id": known["id"], "test": known["test"], "ms": known["ms"]}
    if not train_missing:
        raise NotInLedger(what)
    events: list[dict] = []
    trained_id, card, cached = train(preset_name, config, store=store, subscribers=[events.append])
    if not cached:
        timings[trained_id] = step_ms(events)
    print(f"  {preset_name} {what}: {trained_id}{' (stored)' if cached else ''}", file=sys.stderr, flush=True)
    row = {"id": trained_id, "precision": card["training"]["precision"], "preset": preset_name, "what": what,
           "test": card["metrics"]["test"],
           "ms": timings.get(trained_id), "epochs": card["training"]["epochs_run"],
           "seconds": card["training"]["seconds"]}
    ledger.add(row)
    return row


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def delta_m(metrics: dict, single: dict, heads: list) -> float:
    """Δm% of one multi-task run against the single-task runs of the same seed."""
    total = 0.0
    for task in heads:
        metric, mode = task.primary_metric
        sign = -1.0 if mode == "min" else 1.0
        total += sign * (metrics[task.name][metric] - single[task.name][metric]) / single[task.name][metric]
    return 100.0 * total / len(heads)


def study(preset_name: str, method_names: list[str], seeds: list[int], store: ModelStore, ledger: Ledger,
          timings: dict, budget: dict, train_missing: bool = True) -> dict:
    """Seed by seed: the single-task models, then every method. Without ``train_missing``, what the ledger
    lacks is left out (a method's cells then average fewer seeds)."""
    preset = get_preset(preset_name)
    heads = list(preset.tasks)
    spec = ModelSpec.from_dict(budget["model"]) if "model" in budget else preset.model
    single, runs = {}, {method: {} for method in method_names}
    for seed in seeds:
        try:
            single[seed] = {t.name: run(preset_name, store, ledger, timings, train_missing, seed=seed,
                                        **{**budget, "model": spec.only([t.name]).to_dict()})["test"][t.name]
                            for t in heads}
        except NotInLedger:
            continue  # no Δm without this seed's single-task models
        for method in method_names:
            try:
                runs[method][seed] = run(preset_name, store, ledger, timings, train_missing, seed=seed,
                                         weighting=method, **budget)
            except NotInLedger:
                pass
    rows = {}
    for method, by_seed in runs.items():
        done = [s for s in seeds if s in by_seed]
        if not done:
            continue
        rows[method] = {
            "seeds": done,
            "heads": {t.name: [by_seed[s]["test"][t.name][t.primary_metric[0]] for s in done] for t in heads},
            "delta_m": [delta_m(by_seed[s]["test"], single[s], heads) for s in done],
            "ms": [by_seed[s]["ms"] for s in done if by_seed[s]["ms"] is not None],
            "models": [by_seed[s]["id"] for s in done],
        }
    return {"single": {t.name: [single[s][t.name][t.primary_metric[0]] for s in single] for t in heads},
            "seeds": seeds, "methods": rows, "heads": [(t.name, *t.primary_metric) for t in heads]}


def table(preset_name: str, result: dict) -> str:
    heads = result["heads"]
    lines = [f"### {preset_name}", "",
             "| method | " + " | ".join(f"{h} {m} ({'↓' if mode == 'min' else '↑'})" for h, m, mode in heads)
             + " | Δm% vs single-task | heads ≥ single-task | ms / step | × static |",
             "|---" * (len(heads) + 5) + "|"]
    single = {h: mean_std(v) for h, v in result["single"].items()}
    lines.append("| single-task (one model per head) | "
                 + " | ".join(f"{single[h][0]:.3f} ± {single[h][1]:.3f}" for h, _, _ in heads) + " | 0 | – | – | – |")
    # Static's models may all come from a store (trained before the study, so no step timings): then no ratio.
    static_ms = statistics.median(result["methods"].get("static", {}).get("ms") or [float("nan")])
    for method, row in result["methods"].items():
        cells, reached = [], 0
        for h, _, mode in heads:
            mean, std = mean_std(row["heads"][h])
            cells.append(f"{mean:.3f} ± {std:.3f}")
            noise = (std ** 2 + single[h][1] ** 2) ** 0.5
            reached += (mean + noise >= single[h][0]) if mode == "max" else (mean - noise <= single[h][0])
        dm, dm_std = mean_std(row["delta_m"])
        ms = statistics.median(row["ms"]) if row["ms"] else None
        ratio = None if ms is None or math.isnan(static_ms) else ms / static_ms
        seeds_told = "" if len(row["seeds"]) == len(result["seeds"]) else f" (seed{'s' * (len(row['seeds']) > 1)} " \
            + ", ".join(map(str, row["seeds"])) + ")"
        lines.append(f"| {method}{seeds_told} | " + " | ".join(cells)
                     + f" | {dm:+.2f} ± {dm_std:.2f} | {reached} of {len(heads)}"
                     f" | {'–' if ms is None else f'{ms:.1f}'} | {'–' if ratio is None else f'{ratio:.2f}'} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", action="append", choices=PRESETS)
    ap.add_argument("--method", action="append", choices=catalogue.names())
    ap.add_argument("--seeds", default="42,43,44")
    ap.add_argument("--store", default=str(ROOT / "out" / "weighting-study"))
    ap.add_argument("--ledger", default=str(ROOT / "bench" / "results" / "weighting-study.jsonl"),
                    help="the figures of every finished training, kept in git (default: %(default)s)")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--from-ledger", action="store_true",
                    help="train nothing: the table of what the ledger holds for this machine's precision")
    add_budget_arguments(ap)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    store = ModelStore(root=Path(args.store) / "models", shipped=None)
    timings_file = Path(args.store) / "step_ms.json"  # ms per step of the models trained so far (kept for reruns)
    timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    print(f"machine: {machine()}")
    results = {}
    for preset_name in args.preset or PRESETS:
        overrides, changed = budget(get_preset(preset_name), args)
        told = ", ".join(f"{k} {v}" for k, v in changed.items())
        precision = local_precision(make_config(get_preset(preset_name), **overrides))
        print(f"seeds {seeds}; {preset_name}'s default model and training{f', except {told}' if told else ''}; "
              f"precision {precision}; test split")
        try:
            results[preset_name] = study(preset_name, args.method or list(catalogue.names()), seeds, store,
                                         Ledger(Path(args.ledger)), timings, overrides,
                                         train_missing=not args.from_ledger)
        finally:
            timings_file.parent.mkdir(parents=True, exist_ok=True)
            timings_file.write_text(json.dumps(timings, indent=1))
        if not any(results[preset_name]["single"].values()):  # --from-ledger, and no seed of it there
            print(f"(the ledger has no {preset_name} single-task models at {precision}: run without --from-ledger)")
            continue
        print(table(preset_name, results[preset_name]), flush=True)
        print()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
