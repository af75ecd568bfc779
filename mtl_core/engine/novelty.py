"""Is an input like the training data? A distance on the shared features, so it works for every preset.

The shared features are the last backbone layer's output (averaged over height and width for an image
model). On the training split they are summarised by their mean, their top principal directions (up to
``COMPONENTS``) with each one's variance, and the mean variance left outside them. An input's score is the
squared Mahalanobis distance in that subspace plus its residual energy over the residual variance, divided
by the number of dimensions (about 1 for a typical training example). The threshold is the ``PERCENTILE``th
percentile of the validation split's scores, so about 1 in 100 inputs like the training data is flagged,
and an input far from it is flagged by a wide margin. The summary lives in the card (``novelty``).

Each head also gets a summary of its own features (the input of its output layer) on the training examples
it has labels for (``novelty["head_features"]``), and a head trained on part of the data (its labels missing
elsewhere, e.g. shapes-3head's orientation, labelled only on images with the marker dot) a summary of the
shared features of its own examples (``novelty["heads"]``): an input like the training data but unlike what
a head learned from is flagged for that head.

A principal-subspace distance, as in classic novelty detection (e.g. Hoffmann 2007, "Kernel PCA for novelty
detection"; here linear), rather than a density model: cheap (one matrix product per input), and stable with
the few thousand examples of a preset.
"""

from __future__ import annotations

import numpy as np

COMPONENTS = 16
PERCENTILE = 99.0


def feature_layer(model) -> str:
    """The name of the last ``backbone*`` layer: the features every head reads."""
    names = [layer.name for layer in model.layers if layer.name.startswith("backbone")]
    if not names:
        raise ValueError("the model has no shared backbone")
    return names[-1]


SHARED = "shared"  # the key of the backbone's features among feature_model's outputs


def feature_model(model, heads: list[str] = ()):
    """A Keras model: the network's inputs -> {"shared": its backbone features pooled to one vector per example,
    head: each head's own features (the input of its output layer)}."""
    import keras

    out = model.get_layer(feature_layer(model)).output
    if len(out.shape) == 4:
        out = keras.layers.GlobalAveragePooling2D(name="novelty_pool")(out)
    elif len(out.shape) != 2:
        out = keras.layers.Flatten(name="novelty_flatten")(out)
    return keras.Model(model.input, {SHARED: out, **{h: model.get_layer(h).input for h in heads}})


def features(net, x: np.ndarray, lam: np.ndarray | None = None, batch_size: int = 512) -> dict[str, np.ndarray]:
    """{"shared": (N, D), head: (N, D_head)} features of prepared inputs through ``net`` (a
    :func:`feature_model`), at ``lam`` for a conditioned model."""
    from mtl_core.engine.batches import model_inputs

    parts: dict[str, list] = {}
    for i in range(0, len(x), batch_size):
        for key, value in net(model_inputs(x[i:i + batch_size], lam), training=False).items():
            parts.setdefault(key, []).append(np.asarray(value, np.float64))
    return {key: np.concatenate(v).reshape(len(x), -1) for key, v in parts.items()}


def fit(train: np.ndarray, validation: np.ndarray, layer: str) -> dict:
    """The card's ``novelty`` summary from training and validation features (N, D)."""
    train = np.asarray(train, np.float64)
    mean = train.mean(axis=0)
    centred = train - mean
    k = int(min(COMPONENTS, train.shape[1], max(len(train) - 1, 1)))
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variances = singular[:k] ** 2 / max(len(train) - 1, 1)
    residual = centred - (centred @ vt[:k].T) @ vt[:k]
    rest = max(train.shape[1] - k, 1)
    residual_variance = float((residual ** 2).sum(axis=1).mean() / rest)
    summary = {"layer": layer, "mean": mean.tolist(), "components": vt[:k].tolist(),
               "variances": variances.tolist(), "residual_variance": residual_variance}
    scores = score(summary, validation)
    summary["threshold"] = float(np.percentile(scores, PERCENTILE))
    summary["percentile"] = PERCENTILE
    summary["fitted_on"] = f"{len(train)} training examples; threshold from {len(validation)} validation examples"
    return summary


def score(summary: dict, features: np.ndarray) -> np.ndarray:
    """(N,) novelty scores of features (N, D): about 1 for training-like inputs, large for unlike ones."""
    x = np.asarray(features, np.float64) - np.asarray(summary["mean"])
    components = np.asarray(summary["components"])
    z = x @ components.T
    inside = (z ** 2 / np.maximum(np.asarray(summary["variances"]), 1e-12)).sum(axis=1)
    residual = ((x - z @ components) ** 2).sum(axis=1) / max(summary["residual_variance"], 1e-12)
    return (inside + residual) / x.shape[1]


def _level(value: float, summary: dict) -> str:
    return (f"novelty {value:.1f}, {value / summary['threshold']:.1f}x the level only "
            f"{100 - summary['percentile']:g}% of validation inputs reach")


def warnings(summary: dict, features: dict[str, np.ndarray]) -> list[list[str]]:
    """Per input, its warning lines: unlike the model's training data (every answer in doubt); else the heads
    whose own features, or whose share of the training data (``heads``), the input is unlike, named in one
    line. ``features``: feature_model's outputs for the inputs."""
    shared = features[SHARED]
    lines: list[list[str]] = [[] for _ in range(len(shared))]
    overall = score(summary, shared)
    # A part whose threshold is 0 summarises features that never varied (a head that stopped learning while
    # training, conflict.py): it cannot tell one input from another, so it says nothing.
    per_head = [(head, part, score(part, shared)) for head, part in (summary.get("heads") or {}).items()
                if part["threshold"] > 0]
    per_head += [(head, part, score(part, features[head]))
                 for head, part in (summary.get("head_features") or {}).items()
                 if head in features and part["threshold"] > 0]
    for i, value in enumerate(overall):
        if value > summary["threshold"]:
            lines[i].append(f"unlike this model's training data ({_level(float(value), summary)}): "
                            "treat every answer with caution")
            continue
        flagged = {}
        for head, part, scores in per_head:
            ratio = float(scores[i]) / part["threshold"]
            if ratio > 1 and ratio > flagged.get(head, (0, None))[0]:
                flagged[head] = (ratio, _level(float(scores[i]), part))
        if flagged:
            names = ", ".join(flagged)
            these = "these heads were" if len(flagged) > 1 else "this head was"
            worst = max(flagged.values())[1]
            lines[i].append(f"{names}: unlike what {these} trained on ({worst}): treat those answers with caution")
    return lines
