"""One model for every weighting: loss-conditional training ("You Only Train Once", Dosovitskiy & Djolonga,
ICLR 2020; related: COSMOS, Ruchte & Grabocka 2021; Pareto HyperNetworks, Navon et al. 2021).

A conditioned model (``TrainConfig.conditioned``, ``train --conditioned``) takes lambda, one loss weight per
head on the simplex, as a second input (layers in ``models/conditioned.py``). Training draws lambda per
example from Dirichlet(1, ..., 1), i.e. uniformly over the simplex (every weighting equally likely; a
log-uniform draw would favour the corners, which the simplex grid of the page visits least), and minimises
the per-example weighted loss ``sum_i K * lambda_i * L_i(example)``: Keras's per-head sample weights carry
``K * lambda_i`` (times the missing-label mask), so the ordinary compile/fit path trains it, and with a
constant lambda the loss is exactly the static loss with weights ``K * lambda`` (the factor K keeps equal
weights at 1 each, the scale of static training).

Right after training the validation metrics are computed on a lambda grid (:func:`grid_vectors`) and stored
in the card (``card["conditioned"]["grid"]``), so the Trade-offs page shows metrics against lambda without
retraining. Validation during training (early stopping) uses the config's loss weights, normalised: the
model's default lambda everywhere.

No TensorFlow at import: the CLI resolves ``--loss-weights`` for a stored model before importing it.
"""

from __future__ import annotations

import math

import numpy as np

from mtl_core.control import pareto
from mtl_core.errors import UserError

DIRICHLET_ALPHA = 1.0
GRID_POINTS = {2: 11, 3: 21}  # lambda-grid size by number of heads: 0.1 steps for two, 0.2 for three
GRID_POINTS_MANY = 20


def is_conditioned(card_or_config: dict) -> bool:
    config = card_or_config.get("config", card_or_config)
    return bool(config.get("conditioned"))


def heads_of(card: dict) -> list[str]:
    """lambda's order: the model's heads as the spec lists them (the builder's ``loss_weights`` input)."""
    return [h["task"] for h in card["config"]["model"]["heads"]]


def default_weights(card_or_config: dict) -> dict[str, float]:
    """The config's loss weights on the simplex: the lambda a conditioned model uses when none is given."""
    config = card_or_config.get("config", card_or_config)
    heads = [h["task"] for h in config["model"]["heads"]]
    return pareto.normalise(config["loss_weights"], heads)


def resolve_weights(card: dict, given: dict[str, float] | None, flag: str = "--loss-weights") -> dict[str, float]:
    """The lambda to use, on the simplex: the given weights, a head not named keeping the config's weight
    (as ``train --loss-weights`` keeps the preset's), or the default. UserError for an ordinary model,
    an unknown head, a negative or non-finite weight, or weights that are all zero."""
    if given is None:
        return default_weights(card) if is_conditioned(card) else {}
    if not is_conditioned(card):
        raise UserError(f"{flag}: {card.get('id', 'this model')} is not loss-conditioned, so its weighting was "
                        "fixed at training (train one with `train --conditioned`, or retrain with --loss-weights)")
    heads = heads_of(card)
    for name, w in given.items():
        if name not in heads:
            raise UserError(f"{flag}: unknown head {name!r} (heads: {', '.join(heads)})")
        if not isinstance(w, (int, float)) or math.isnan(w) or math.isinf(w):
            raise UserError(f"{flag}: weight of {name!r} is not a finite number ({w!r})")
        if w < 0:
            raise UserError(f"{flag}: weight of {name!r} is negative ({w:g})")
    weights = {**card["config"]["loss_weights"], **{k: float(v) for k, v in given.items()}}
    if not any(weights.get(h, 0) > 0 for h in heads):
        raise UserError(f"{flag}: every weight is zero; lambda must have some weight")
    return pareto.normalise(weights, heads)


def weight_array(weights: dict[str, float], heads: list[str], n: int) -> np.ndarray:
    """lambda as the model's second input: (n, K) float32, the same row n times."""
    return np.tile(np.asarray([[weights[h] for h in heads]], dtype=np.float32), (n, 1))


def grid_vectors(heads: list[str]) -> list[dict[str, float]]:
    """The lambda grid of the card: a regular simplex grid (0.1 steps for two heads, 0.2 for three) with
    the sweeps' floor, so a grid point and a sweep point of the same weights are the same lambda."""
    n = GRID_POINTS.get(len(heads), GRID_POINTS_MANY)
    points = pareto.with_floor(pareto.simplex_grid(len(heads), n))
    return [{h: round(float(w), 6) for h, w in zip(heads, row, strict=True)} for row in points]


def nearest_grid_point(card: dict, weights: dict[str, float]) -> dict:
    """The card's grid entry ({"weights", "metrics"}) whose lambda is nearest to ``weights`` (normalised)."""
    grid = card["conditioned"]["grid"]
    heads = card["conditioned"]["heads"]
    target = np.asarray([pareto.normalise(weights, heads)[h] for h in heads])
    dists = [np.linalg.norm(np.asarray([g["weights"][h] for h in heads]) - target) for g in grid]
    return grid[int(np.argmin(dists))]


def sample_weights_dataset(tf, batched, heads: list[str], seed: int):
    """A batched ``(x, y, masks-or-None)`` dataset -> ``({"input": x, "loss_weights": lambda}, y, sample weights)``
    with lambda drawn per example from Dirichlet(alpha) (stateless, seeded: a fresh draw each epoch, the same
    draws for the same seed) and each head's sample weight ``K * lambda_i`` times its label mask."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    k = len(heads)

    def add(parts, s):
        x, y = parts[0], parts[1]
        n = tf.shape(x)[0]
        gamma = tf.random.stateless_gamma([n, k], seed=tf.stack([s, tf.constant(0, tf.int64)]),
                                          alpha=DIRICHLET_ALPHA)
        lam = gamma / tf.reduce_sum(gamma, axis=1, keepdims=True)
        return _with_weights(x, y, parts[2] if len(parts) > 2 else None, lam, heads)

    return tf.data.Dataset.zip((batched, seeds)).map(add, num_parallel_calls=tf.data.AUTOTUNE)


def fixed_weights_dataset(tf, batched, weights: np.ndarray, heads: list[str]):
    """As :func:`sample_weights_dataset` with one fixed lambda (K,) for every example (validation)."""
    lam_row = tf.constant(np.asarray(weights, dtype=np.float32)[None, :])

    def add(*parts):
        lam = tf.tile(lam_row, [tf.shape(parts[0])[0], 1])
        return _with_weights(parts[0], parts[1], parts[2] if len(parts) > 2 else None, lam, heads)

    return batched.map(add)


def _with_weights(x, y, masks, lam, heads: list[str]):
    """(tf.data sorts a dict's keys, so lambda's column of a head comes from ``heads``, never from ``y``.)"""
    import tensorflow as tf

    k = len(heads)
    sw = {h: float(k) * lam[:, i] * (tf.cast(masks[h], tf.float32) if masks is not None else 1.0)
          for i, h in enumerate(heads)}
    return {"input": x, "loss_weights": lam}, y, sw


def grid_metrics(model, tasks: dict, x: np.ndarray, y: dict, heads: list[str]) -> list[dict]:
    """Metrics (without confusion matrices) of ``model`` on (x, y) at each lambda of :func:`grid_vectors`."""
    from mtl_core.control.metrics import all_metrics
    from mtl_core.engine.training import predict_arrays

    out = []
    for weights in grid_vectors(heads):
        pred = predict_arrays(model, x, loss_weights=weights_vector(weights, heads))
        out.append({"weights": weights, "metrics": all_metrics(tasks, y, pred)})
    return out


def weights_vector(weights: dict[str, float], heads: list[str]) -> np.ndarray:
    return np.asarray([weights[h] for h in heads], dtype=np.float32)
