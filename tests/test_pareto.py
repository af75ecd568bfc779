"""Pareto dominance, fronts and the exact hypervolume on hand-made points; weight-vector generation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mtl_core.control import pareto
from mtl_core.control.tasks import TaskSpec


def test_dominance_on_hand_made_points():
    assert pareto.dominates([0.9, 0.8], [0.8, 0.8])  # better on one, equal on the other
    assert not pareto.dominates([0.8, 0.8], [0.8, 0.8])  # equal points do not dominate each other
    assert not pareto.dominates([0.9, 0.1], [0.1, 0.9])  # a trade-off: neither dominates
    assert not pareto.dominates([0.1, 0.9], [0.9, 0.1])
    assert pareto.dominates([1, 1, 1], [1, 1, 0.5])


def test_front_keeps_exactly_the_non_dominated_points():
    points = np.array([[0.9, 0.1], [0.5, 0.5], [0.1, 0.9], [0.4, 0.4], [0.5, 0.2], [0.5, 0.5]])
    mask = pareto.pareto_mask(points)
    assert mask.tolist() == [True, True, True, False, False, True]  # duplicates of a front point stay
    assert len(pareto.pareto_front(points)) == 4


def test_hypervolume_2d_on_a_known_front():
    # staircase of three points above the reference (0, 0): 0.9*0.1 + 0.5*(0.5-0.1) + 0.1*(0.9-0.5)
    front = [[0.9, 0.1], [0.5, 0.5], [0.1, 0.9]]
    assert pareto.hypervolume(front, [0, 0]) == pytest.approx(0.09 + 0.2 + 0.04)
    # dominated points and points behind the reference change nothing
    assert pareto.hypervolume(front + [[0.4, 0.4], [-1, 5]], [0, 0]) == pytest.approx(0.33)
    assert pareto.hypervolume([[1.0, 1.0]], [0.5, 0.25]) == pytest.approx(0.5 * 0.75)
    assert pareto.hypervolume([], [0, 0]) == 0.0


def test_hypervolume_3d_on_a_known_front():
    # one box: its volume; two nested boxes: the larger; the three unit-corner boxes: inclusion-exclusion
    assert pareto.hypervolume([[1, 2, 3]], [0, 0, 0]) == pytest.approx(6)
    assert pareto.hypervolume([[1, 2, 3], [0.5, 0.5, 0.5]], [0, 0, 0]) == pytest.approx(6)
    pts = [[1, 0.5, 0.5], [0.5, 1, 0.5], [0.5, 0.5, 1]]
    # union of three boxes of volume 0.25 each; pairwise overlaps 0.125, triple overlap 0.125
    assert pareto.hypervolume(pts, [0, 0, 0]) == pytest.approx(3 * 0.25 - 3 * 0.125 + 0.125)


def test_hypervolume_3d_matches_a_monte_carlo_estimate_on_random_points():
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 1, size=(12, 3))
    exact = pareto.hypervolume(pts, [0, 0, 0])
    samples = rng.uniform(0, 1, size=(200_000, 3))
    covered = np.zeros(len(samples), dtype=bool)
    for p in pts:
        covered |= np.all(samples <= p, axis=1)
    assert exact == pytest.approx(covered.mean(), abs=0.005)


def test_objectives_are_in_maximisation_form_with_a_documented_reference():
    tasks = [TaskSpec("a", "multiclass", class_names=tuple("abcd")), TaskSpec("b", "binary", class_names=("n", "y")),
             TaskSpec("c", "regression")]
    metrics = [{"a": {"accuracy": 0.8}, "b": {"auc": 0.9, "accuracy": 0.7}, "c": {"mae": 0.2, "baseline_mae": 0.5}},
               {"a": {"accuracy": 0.6}, "b": {"auc": float("nan"), "accuracy": 0.75}, "c": {"mae": 0.1}}]
    m = pareto.objective_matrix(tasks, metrics)
    assert m.tolist() == [[0.8, 0.9, -0.2], [0.6, 0.75, -0.1]]  # NaN AUC falls back to accuracy; MAE negated
    assert pareto.reference_point(tasks, metrics).tolist() == [0.25, 0.5, -0.5]  # chance, AUC 0.5, median MAE


@pytest.mark.parametrize("k,n", [(2, 1), (2, 5), (3, 3), (3, 6), (3, 7), (3, 15), (4, 10)])
def test_simplex_grid_points_sum_to_one_and_are_distinct(k, n):
    grid = pareto.simplex_grid(k, n)
    assert grid.shape == (n, k)
    assert np.allclose(grid.sum(axis=1), 1) and (grid >= 0).all()
    assert len({tuple(np.round(r, 9)) for r in grid}) == n


def test_simplex_grid_of_a_triangular_number_is_the_full_lattice():
    grid = pareto.simplex_grid(3, 6)  # resolution 2: the corners and the edge midpoints
    expected = {(1, 0, 0), (0, 1, 0), (0, 0, 1), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5)}
    assert {tuple(r) for r in grid} == expected


def test_weight_vectors_have_a_floor_sum_to_the_number_of_heads_and_are_seeded():
    heads = ["a", "b", "c"]
    for method in pareto.METHODS:
        vectors = pareto.weight_vectors(heads, 7, method, seed=3)
        assert len(vectors) == 7
        for v in vectors:
            assert sum(v.values()) == pytest.approx(3, abs=1e-4)
            assert min(v.values()) >= pareto.DEFAULT_FLOOR * 3 - 1e-6
    assert pareto.weight_vectors(heads, 5, "dirichlet", seed=1) == pareto.weight_vectors(heads, 5, "dirichlet", seed=1)
    assert pareto.weight_vectors(heads, 5, "dirichlet", seed=1) != pareto.weight_vectors(heads, 5, "dirichlet", seed=2)
    with pytest.raises(ValueError):
        pareto.weight_vectors(heads, 5, "nope")


def test_normalise_puts_weights_on_the_simplex():
    assert pareto.normalise({"a": 1, "b": 3}, ["a", "b"]) == {"a": 0.25, "b": 0.75}
    with pytest.raises(ValueError):
        pareto.normalise({"a": 0}, ["a", "b"])


def test_compositions_cover_the_lattice():
    got = sorted(pareto._compositions(3, 3))
    want = sorted(c for c in itertools.product(range(4), repeat=3) if sum(c) == 3)
    assert got == want
