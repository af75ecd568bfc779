"""Where along the backbone a head's target can still be read: a linear probe per backbone layer.

A head reads the backbone's last layer unless it branches off earlier (``--branch-at head=K``). Whether it
should is a question this bench answers with a stored model: for each backbone layer (and the head's own
features, for comparison) it fits a linear model from that layer's output (averaged over height and width
for an image) to the head's labels on the training split, and scores it on the test split: ridge regression
and MAE for a regression head, logistic regression and accuracy for a classification head. A target the
later layers throw away shows as a probe that gets worse along the backbone: branch the head off where its
probe is best. Run on a model trained on that head alone too: the layers it trained for the target are the
readout to compare with, and a shared backbone far behind it at every layer says the head needs trainable layers
of its own.

    python bench/layer_probe.py --preset shapes-3head --head intensity [--model ID] [--limit 3000]

``--model``: a stored model id or folder (default: the preset's shipped or latest model). ``--limit``: the
most training examples the probes are fitted on (a random subset, seed 0), to keep the fits short.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench._machine import machine  # noqa: E402


def probe(features: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, kind: str) -> float:
    """Test metric of a linear probe fitted on ``train``: MAE (regression) or accuracy."""
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "regression":
        fit = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13))).fit(features[train], y[train])
        return float(np.mean(np.abs(fit.predict(features[test]) - y[test])))
    fit = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(features[train], y[train])
    return float(np.mean(fit.predict(features[test]) == y[test]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="shapes-3head")
    ap.add_argument("--head", required=True)
    ap.add_argument("--model", help="a stored model id or folder; default: the preset's default model")
    ap.add_argument("--limit", type=int, default=3000, help="training examples the probes are fitted on")
    args = ap.parse_args()

    import keras

    from mtl_core.control import datasets
    from mtl_core.control.presets import get_preset
    from mtl_core.control.store import ModelStore
    from mtl_core.engine.models import layers  # noqa: F401  (registers the custom layers for loading)

    stored = ModelStore().resolve(args.preset, args.model)
    preset = get_preset(args.preset)
    task = next((t for t in preset.tasks if t.name == args.head), None)
    if task is None:
        raise SystemExit(f"--head: {args.preset} has no head {args.head!r} "
                         f"(heads: {', '.join(t.name for t in preset.tasks)})")
    data, split, _ = datasets.rebuild(preset, stored.card["config"], stored.card.get("data", {}).get("fingerprint"))
    model = keras.saving.load_model(stored.model_file, compile=False, safe_mode=True)
    x = np.asarray(data.x, np.float32)
    x = x[..., None] if x.ndim == 3 and len(model.input.shape) == 4 else x
    y = np.asarray(data.y[args.head], np.float64)
    labelled = np.isfinite(y) & (y >= 0 if task.kind != "regression" else True)
    rng = np.random.default_rng(0)
    train = np.asarray(split.train)[labelled[split.train]]
    train = np.sort(rng.choice(train, size=min(args.limit, len(train)), replace=False))
    test = np.asarray(split.test)[labelled[split.test]]
    y = y if task.kind == "regression" else y.astype(int)

    # each backbone step's output (the last layer named after the step: a residual block's is its "_out"), then
    # the head's own features (the input of its output layer), for comparison
    steps = {}
    for layer in model.layers:
        if layer.name.startswith("backbone_"):
            steps[int(layer.name.split("_")[1])] = layer
    tensors = {layer.name: layer.output for layer in steps.values()}
    tensors[f"{args.head}: its own features"] = model.get_layer(args.head).input
    pooled = {name: keras.layers.GlobalAveragePooling2D()(t) if len(t.shape) == 4 else t for name, t in tensors.items()}
    features = keras.Model(model.input, pooled).predict(x, batch_size=512, verbose=0)

    metric = "MAE (lower is better)" if task.kind == "regression" else "accuracy"
    print(f"machine: {machine()}")
    print(f"{stored.id}: a linear probe for {args.head} on each layer's output (averaged over height and width), "
          f"fitted on {len(train)} training examples, test {metric} on {len(test)}\n")
    print(f"{'layer':<36} {'width':>6} {'probe':>8}")
    branch = {layer.name: step + 1 for step, layer in steps.items()}  # a head reading it: branch_at = step + 1
    for name in tensors:
        where = f"--branch-at {args.head}={branch[name]}" if name in branch else ""
        score = probe(features[name], y, train, test, task.kind)
        print(f"{name:<36} {features[name].shape[1]:>6} {score:8.4f}  {where}")


if __name__ == "__main__":
    main()
