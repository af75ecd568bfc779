"""Is an input like the training data? A distance on the shared features, so it works for every preset.

The shared features are the last backbone layer's output (averaged over height and width for an image
model). On the training split they are summarised by their mean, their top principal directions (up to
``COMPONENTS``) with each one's variance, and the mean variance left outside them. An input's score is the
squared Mahalanobis distance in that subspace plus its residual energy over the residual variance, divided
by the number of dimensions (about 1 for a typical training example). The threshold is the ``PERCENTILE``th
percentile of the validation split's scores, so about 1 in 100 inputs like the training data is flagged,
and an input far from it is flagged by a wide margin. The summary lives in the card (``novelty``).

A head trained on part of the data (its labels missing elsewhere, e.g. shapes-3head's orientation, labelled
only on images with the marker dot) gets a summary of its own examples (``novelty["heads"]``): an input like
the training data but unlike that head's examples is flagged for that head.

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


def feature_model(model):
    """A Keras model: the network's inputs -> its shared features, pooled to one vector per example."""
    import keras

    out = model.get_layer(feature_layer(model)).output
    if len(out.shape) == 4:
        out = keras.layers.GlobalAveragePooling2D(name="novelty_pool")(out)
    elif len(out.shape) != 2:
        out = keras.layers.Flatten(name="novelty_flatten")(out)
    return keras.Model(model.input, out)


def features(model, x: np.ndarray, lam: np.ndarray | None = None, batch_size: int = 512) -> np.ndarray:
    """The pooled shared features (N, D) of prepared inputs (at ``lam`` for a loss-conditioned model)."""
    from mtl_core.engine.batches import model_inputs

    net = feature_model(model)
    parts = [np.asarray(net(model_inputs(x[i:i + batch_size], lam), training=False), np.float64)
             for i in range(0, len(x), batch_size)]
    return np.concatenate(parts).reshape(len(x), -1)


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


def warnings(summary: dict, features: np.ndarray) -> list[list[str]]:
    """Per input, its warning lines: unlike the model's training data (every answer in doubt), else unlike
    the examples of the heads with their own summary (``heads``), named in one line."""
    lines: list[list[str]] = [[] for _ in range(len(features))]
    overall = score(summary, features)
    per_head = {head: score(part, features) for head, part in (summary.get("heads") or {}).items()}
    for i, value in enumerate(overall):
        if value > summary["threshold"]:
            lines[i].append(f"unlike this model's training data ({_level(float(value), summary)}): "
                            "treat every answer with caution")
            continue
        flagged = [(h, float(s[i])) for h, s in per_head.items() if s[i] > summary["heads"][h]["threshold"]]
        if flagged:
            head, worst = max(flagged, key=lambda f: f[1] / summary["heads"][f[0]]["threshold"])
            names = ", ".join(h for h, _ in flagged)
            these = "these heads were" if len(flagged) > 1 else "this head was"
            lines[i].append(f"{names}: unlike the examples {these} trained on ({_level(worst, summary['heads'][head])}"
                            "): treat those answers with caution")
    return lines
