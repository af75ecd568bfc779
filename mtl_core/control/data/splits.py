"""Train / validation / test splits, stratified by one head's labels (seed 002, section 3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def stratified_split(labels: np.ndarray | None, n: int, *, val_fraction: float = 0.2,
                     test_fraction: float = 0.15, seed: int = 0) -> Split:
    """Hold out ``test_fraction`` first, then split the rest 80/20 (``val_fraction``).

    Stratifying keeps every class of ``labels`` in the same proportion in each part; classes
    too rare to stratify (fewer than 2 examples in a part) fall back to a plain random split.
    """
    from sklearn.model_selection import train_test_split  # here: scikit-learn's import costs Home 1.3 s

    idx = np.arange(n)

    def _split(ids, fraction, strat):
        try:
            return train_test_split(ids, test_size=fraction, random_state=seed, stratify=strat)
        except ValueError:  # a class with a single member cannot be stratified
            return train_test_split(ids, test_size=fraction, random_state=seed)

    strat = labels if labels is not None else None
    rest, test = _split(idx, test_fraction, strat)
    strat_rest = labels[rest] if labels is not None else None
    train, val = _split(rest, val_fraction, strat_rest)
    return Split(np.sort(train), np.sort(val), np.sort(test))


def train_statistics(x_train: np.ndarray, per_feature: bool) -> tuple[list | float, list | float]:
    """Mean and std of the training split only (no leakage from validation/test).

    Images use one scalar (seed 002, section 2.3); tabular data one value per column.
    The 1e-6 keeps a constant input from dividing by zero.
    """
    x = x_train.astype(np.float64)
    if per_feature:
        axes = tuple(range(x.ndim - 1))
        return x.mean(axis=axes).tolist(), (x.std(axis=axes) + 1e-6).tolist()
    return float(x.mean()), float(x.std() + 1e-6)
