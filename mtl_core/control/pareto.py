"""Pareto fronts of multi-task models: dominance, the front, the exact hypervolume, loss-weight vectors.

Everything works in *maximisation form*: an accuracy or an AUC is taken as it is, an MAE is negated, so
"larger is better" on every axis and one dominance test serves every kind of head. No TensorFlow here
(numpy only): the CLI validates a sweep and the page draws a front without importing it.

Reference point of the hypervolume (what a model must beat on a head to add volume): a model that knows
nothing about that head, i.e. chance accuracy ``1 / n_classes`` for a multiclass head, AUC 0.5 for a
binary head, and the MAE of always predicting the training median (``baseline_mae`` of the card's
validation metrics; the largest MAE among the points when a card lacks it). Points worse than the
reference on some head add no volume. With these references the hypervolume of two sweeps on the same
data is comparable, and it is 0 for a front of uninformed models.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from mtl_core.control.tasks import HEAD_KINDS

# The metric that places a head on the front: accuracy for a multiclass head, AUC for a binary one (it does
# not depend on the 0.5 threshold), MAE for a regression head; with whether larger is better.
DEFAULT_FLOOR = 0.05  # smallest share of the loss a head gets in a sweep (see weight_vectors)
METHODS = ("grid", "dirichlet")
MAX_POINTS = 200


# -- dominance and the front -------------------------------------------------------------------------
def dominates(a, b) -> bool:
    """``a`` dominates ``b`` (maximisation form): at least as good on every axis, better on one."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(a >= b) and np.any(a > b))


def pareto_mask(points) -> np.ndarray:
    """For each row of ``points`` (N, K), whether no other row dominates it. Equal rows are all kept."""
    p = np.asarray(points, dtype=float)
    if p.ndim != 2:
        raise ValueError(f"points must be (N, K), got shape {p.shape}")
    keep = np.ones(len(p), dtype=bool)
    for i in range(len(p)):
        others = np.delete(p, i, axis=0)
        if len(others) and np.any(np.all(others >= p[i], axis=1) & np.any(others > p[i], axis=1)):
            keep[i] = False
    return keep


def pareto_front(points) -> np.ndarray:
    """The non-dominated rows of ``points``."""
    p = np.asarray(points, dtype=float)
    return p[pareto_mask(p)]


# -- hypervolume -------------------------------------------------------------------------------------
def hypervolume(points, reference) -> float:
    """Exact volume dominated by ``points`` (N, K) and bounded below by ``reference`` (K,), maximisation form.

    Slicing along the last axis (HSO): the points sorted by it, each slab between two consecutive levels
    adds its thickness times the (K-1)-dimensional volume of the points at or above the slab. Exact for any
    K; O(N^K) in the worst case, plenty for the tens of points of a sweep (K = 2 or 3 heads).
    """
    p = np.asarray(points, dtype=float).reshape(-1, len(reference))
    ref = np.asarray(reference, dtype=float)
    p = p[np.all(p > ref, axis=1)]  # a point not beyond the reference on every axis adds nothing
    if not len(p):
        return 0.0
    return float(_hv(pareto_front(p), ref))


def _hv(p: np.ndarray, ref: np.ndarray) -> float:
    if p.shape[1] == 1:
        return float(p[:, 0].max() - ref[0])
    order = np.argsort(-p[:, -1])  # highest last coordinate first
    p = p[order]
    total = 0.0
    for i in range(len(p)):
        upper = p[i, -1]
        lower = p[i + 1, -1] if i + 1 < len(p) else ref[-1]
        if upper > lower:
            total += (upper - lower) * _hv(p[:i + 1, :-1], ref[:-1])
    return total


# -- from model cards to objective vectors -------------------------------------------------------------
def objective_value(task, metrics: dict) -> float:
    """A head's front metric in maximisation form (MAE negated; see ``HeadKind.front_metric``)."""
    kind = HEAD_KINDS[task.kind]
    _, value = kind.front_metric(metrics)
    value = float("nan") if value is None else float(value)
    return value if kind.objective[1] == "max" else -value


def reference_point(tasks: list, metrics_list: list[dict]) -> np.ndarray:
    """The hypervolume's reference in maximisation form (see the module docstring). ``tasks``: TaskSpecs
    (their kinds say what an uninformed model scores); ``metrics_list``: each point's {head: metrics}."""
    ref = []
    for task in tasks:
        chance = HEAD_KINDS[task.kind].chance(task)
        if chance is not None:
            ref.append(chance)
        else:  # a regression head: predicting the median (the card's baseline MAE), else the worst point
            baselines = [m[task.name].get("baseline_mae") for m in metrics_list if task.name in m]
            baselines = [b for b in baselines if b is not None and math.isfinite(b)]
            worst = max((m[task.name]["mae"] for m in metrics_list if task.name in m), default=1.0)
            ref.append(-(float(np.median(baselines)) if baselines else worst))
    return np.asarray(ref, dtype=float)


def objective_matrix(tasks: list, metrics_list: list[dict]) -> np.ndarray:
    """(N, K) maximisation-form objectives of N points' per-head metrics."""
    return np.asarray([[objective_value(t, m[t.name]) for t in tasks] for m in metrics_list], dtype=float)


# -- loss-weight vectors -------------------------------------------------------------------------------
def simplex_grid(k: int, n: int) -> np.ndarray:
    """``n`` points of the (k-1)-simplex (rows sum to 1) on a regular grid.

    The grid of resolution H (all compositions of H into k parts, C(H+k-1, k-1) points) with the smallest H
    giving at least ``n`` points; when it has more, ``n`` of them are picked by farthest-point sampling from
    the centre, so a few points still spread over the whole simplex. k=2: exactly ``linspace``.
    """
    if k < 1 or n < 1:
        raise ValueError("k and n must be positive")
    if k == 1:
        return np.ones((n, 1))
    if k == 2:
        t = np.linspace(0.0, 1.0, n) if n > 1 else np.array([0.5])
        return np.stack([1 - t, t], axis=1)
    h = 1
    while math.comb(h + k - 1, k - 1) < n:
        h += 1
    grid = np.asarray([c for c in _compositions(h, k)], dtype=float) / h
    if len(grid) == n:
        return grid
    centre = np.full(k, 1.0 / k)
    chosen = [int(np.argmin(np.linalg.norm(grid - centre, axis=1)))]
    dist = np.linalg.norm(grid - grid[chosen[0]], axis=1)
    while len(chosen) < n:
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(grid - grid[nxt], axis=1))
    return grid[sorted(chosen)]


def _compositions(h: int, k: int):
    """All k-tuples of non-negative integers summing to h, in lexicographic order."""
    for cuts in itertools.combinations(range(h + k - 1), k - 1):
        parts, prev = [], -1
        for c in cuts:
            parts.append(c - prev - 1)
            prev = c
        parts.append(h + k - 1 - prev - 1)
        yield tuple(parts)


def dirichlet_points(k: int, n: int, seed: int = 0, alpha: float = 1.0) -> np.ndarray:
    """``n`` points drawn from Dirichlet(alpha, ..., alpha) (alpha=1: uniform on the simplex), seeded."""
    return np.random.default_rng(seed).dirichlet(np.full(k, float(alpha)), size=n)


def with_floor(points: np.ndarray, floor: float = DEFAULT_FLOOR) -> np.ndarray:
    """Shrink simplex points towards the centre so every head keeps at least ``floor`` of the total:
    a weight of exactly 0 leaves a head untrained (its outputs are noise, not a trade-off) and has no
    logarithm for the loss-conditioned model's encoder."""
    k = points.shape[1]
    if not 0 <= floor * k < 1:
        raise ValueError(f"floor {floor} is too large for {k} heads")
    return floor + (1 - k * floor) * points


def weight_vectors(heads: list[str], n: int, method: str = "grid", seed: int = 0,
                   floor: float = DEFAULT_FLOOR) -> list[dict[str, float]]:
    """``n`` loss-weight vectors for a sweep, as {head: weight} with weights summing to the number of heads
    (so equal weights are all 1, the scale of the static default). ``method``: ``grid`` (a regular simplex
    grid) or ``dirichlet`` (uniform random on the simplex, seeded)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (known: {', '.join(METHODS)})")
    k = len(heads)
    points = simplex_grid(k, n) if method == "grid" else dirichlet_points(k, n, seed)
    points = with_floor(points, floor) * k
    return [{h: round(float(w), 6) for h, w in zip(heads, row, strict=True)} for row in points]


def normalise(weights: dict[str, float], heads: list[str]) -> dict[str, float]:
    """Weights of ``heads`` scaled to sum to 1 (a point of the simplex); a missing head counts as 0."""
    total = sum(float(weights.get(h, 0.0)) for h in heads)
    if total <= 0:
        raise ValueError("the weights sum to zero")
    return {h: float(weights.get(h, 0.0)) / total for h in heads}
