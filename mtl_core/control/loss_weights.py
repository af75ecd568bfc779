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


def parse_loss_weights(text: str, flag: str = "--loss-weights") -> dict[str, float]:
    """``"shape=1,orientation=1.5"`` -> dict; the values are checked by :func:`check_weights`."""
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise UserError(f"{flag}: {part!r} is not of the form head=weight")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise UserError(f"{flag}: weight of {name.strip()!r} is not a number ({value!r})") from None
    return weights


def check_weights(weights: dict[str, float], heads: list[str] | tuple[str, ...], flag: str = "--loss-weights",
                  owner: str = "") -> None:
    """Every weight names one of ``heads`` and is a finite number >= 0 (``owner``: whose heads, for the message)."""
    for name, w in weights.items():
        if name not in heads:
            raise UserError(f"{flag}: unknown head {name!r}{' for ' + owner if owner else ''} "
                            f"(heads: {', '.join(heads)})")
        if not isinstance(w, (int, float)) or math.isnan(w) or math.isinf(w):
            raise UserError(f"{flag}: weight of {name!r} is not a finite number ({w!r})")
        if w < 0:
            raise UserError(f"{flag}: weight of {name!r} is negative ({w:g})")


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
    check_weights(given, heads, flag)
    weights = {**card["config"]["loss_weights"], **{k: float(v) for k, v in given.items()}}
    if not any(weights.get(h, 0) > 0 for h in heads):
        raise UserError(f"{flag}: every weight is zero; lambda must have some weight")
    return pareto.normalise(weights, heads)


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


def weights_vector(weights: dict[str, float], heads: list[str]) -> np.ndarray:
    return np.asarray([weights[h] for h in heads], dtype=np.float32)
