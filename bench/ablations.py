"""Do the seed's design choices help? Per-head test metrics of shapes-3head variants.

(a) the seed's configuration (weights 1.0/1.5/0.3, A->B link, stop-gradient on C)
(b) each head trained alone on the same backbone
(c) equal loss weights
(d) without the stop-gradient and without the A->B link (and each of the two alone)

Every variant trains through the store, so a second run reuses the models and only prints.
Data: the procedural generator (not the seed's unpublished data).

    python bench/ablations.py [--epochs 30] [--seed 42]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mtl_core.control.config import make_config  # noqa: E402
from mtl_core.control.presets import get_preset  # noqa: E402
from mtl_core.engine.training import train  # noqa: E402


def variants(preset):
    spec = preset.model
    equal = {t.name: 1.0 for t in preset.tasks}
    yield "(a) seed configuration", {}
    for head in preset.task_names:
        yield f"(b) {head} alone", {"model": spec.only([head]).to_dict()}
    yield "(c) equal weights", {"loss_weights": equal}
    yield "(d) no stop-gradient, no A->B link", {
        "model": spec.with_options(detach={"intensity": False}, links={"orientation": ()}).to_dict()}
    yield "(d1) no stop-gradient only", {"model": spec.with_options(detach={"intensity": False}).to_dict()}
    yield "(d2) no A->B link only", {"model": spec.with_options(links={"orientation": ()}).to_dict()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    preset = get_preset("shapes-3head")
    rows = []
    for name, options in variants(preset):
        config = make_config(preset, epochs=args.epochs, seed=args.seed, **options)
        model_id, card, cached = train(preset.name, config)
        test = card["metrics"]["test"]
        rows.append((name, model_id, test, card["training"]["epochs_run"]))
        print(f"{name}: {model_id} {'(stored)' if cached else ''}", file=sys.stderr, flush=True)

    def cell(test, head, metric):
        return f"{test[head][metric]:.3f}" if head in test else "–"

    print("| variant | shape acc | orientation acc | intensity MAE | epochs | model |")
    print("|---|---|---|---|---|---|")
    for name, model_id, test, epochs in rows:
        print(f"| {name} | {cell(test, 'shape', 'accuracy')} | {cell(test, 'orientation', 'accuracy')} | "
              f"{cell(test, 'intensity', 'mae')} | {epochs} | `{model_id}` |")
    ref = preset.reference["metrics"]
    print(f"| reference (seed, its own data) | {ref['shape']['accuracy']:.3f} | "
          f"{ref['orientation']['accuracy']:.3f} | {ref['intensity']['mae']:.3f} | | |")


if __name__ == "__main__":
    main()
