"""Train / validation / test splits (stratified, seeded) and normalisation statistics from the training
split only, checked on the function and on a model the Trainer really trained."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_core.control.data.splits import stratified_split, train_statistics

N = 1000
# Imbalanced classes, so a split that ignores them drifts visibly from these proportions.
PROPORTIONS = np.array([0.3, 0.2, 0.15, 0.1, 0.08, 0.06, 0.05, 0.03, 0.02, 0.01])


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return np.random.default_rng(0).choice(len(PROPORTIONS), size=N, p=PROPORTIONS)


def _parts(split):
    return {"train": split.train, "val": split.val, "test": split.test}


def test_parts_are_disjoint_and_cover_every_index(labels):
    split = stratified_split(labels, N, seed=0)
    parts = _parts(split)
    everything = np.concatenate(list(parts.values()))
    assert len(everything) == N
    np.testing.assert_array_equal(np.sort(everything), np.arange(N))
    for a in parts:
        for b in parts:
            if a < b:
                assert not set(parts[a]) & set(parts[b]), f"{a} and {b} overlap"


def test_sizes_hold_out_15_percent_test_then_80_20(labels):
    split = stratified_split(labels, N, seed=0)
    sizes = split.sizes()
    assert sizes == {"train": len(split.train), "val": len(split.val), "test": len(split.test)}
    assert abs(sizes["test"] - 0.15 * N) <= 1
    rest = N - sizes["test"]
    assert abs(sizes["val"] - 0.2 * rest) <= 1
    assert sizes["train"] == rest - sizes["val"]


def test_other_fractions_are_honoured(labels):
    split = stratified_split(labels, N, val_fraction=0.5, test_fraction=0.3, seed=0)
    assert abs(len(split.test) - 300) <= 1
    assert abs(len(split.val) - 350) <= 1


def test_every_part_keeps_the_class_proportions(labels):
    whole = np.bincount(labels, minlength=len(PROPORTIONS)) / N
    split = stratified_split(labels, N, seed=0)
    for name, idx in _parts(split).items():
        part = np.bincount(labels[idx], minlength=len(PROPORTIONS)) / len(idx)
        # A plain random split of this data misses by 0.02-0.06 in val/test; stratified stays within ~1 example.
        assert np.abs(part - whole).max() <= 0.01, (name, part.round(3), whole.round(3))
        assert set(np.unique(labels[idx])) == set(range(len(PROPORTIONS))), f"{name} lost a class"


def test_split_is_deterministic_by_seed(labels):
    a = stratified_split(labels, N, seed=7)
    b = stratified_split(labels, N, seed=7)
    c = stratified_split(labels, N, seed=8)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    assert not np.array_equal(a.test, c.test)


def test_without_labels_and_with_a_singleton_class_every_index_is_still_used():
    plain = stratified_split(None, 200, seed=0)
    np.testing.assert_array_equal(np.sort(np.concatenate([plain.train, plain.val, plain.test])), np.arange(200))
    labels = np.zeros(200, dtype=int)
    labels[:100] = 1
    labels[0] = 2  # one example of class 2 cannot be stratified: falls back to a plain split
    rare = stratified_split(labels, 200, seed=0)
    np.testing.assert_array_equal(np.sort(np.concatenate([rare.train, rare.val, rare.test])), np.arange(200))


def _far_apart_dataset(per_feature_shape: tuple[int, ...]):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 300)
    split = stratified_split(labels, 300, seed=0)
    x = rng.random((300, *per_feature_shape)).astype(np.float32)
    x[split.val] += 100.0
    x[split.test] -= 100.0
    return x, split


def test_image_statistics_come_from_the_training_rows_only():
    x, split = _far_apart_dataset((8, 8, 1))
    mean, std = train_statistics(x[split.train], per_feature=False)
    assert isinstance(mean, float) and isinstance(std, float)
    train = x[split.train].astype(np.float64)
    assert mean == pytest.approx(train.mean(), rel=1e-12)
    assert std == pytest.approx(train.std() + 1e-6, rel=1e-12)
    assert 0.0 < mean < 1.0 and std < 1.0  # far from the +-100 rows of val/test


def test_tabular_statistics_are_per_column_from_the_training_rows_only():
    x, split = _far_apart_dataset((5,))
    x[:, 2] = 4.0  # a constant column: std 0 + 1e-6, never a division by zero
    x[split.val, 2] += 100.0
    mean, std = train_statistics(x[split.train], per_feature=True)
    assert len(mean) == len(std) == 5
    train = x[split.train].astype(np.float64)
    np.testing.assert_allclose(mean, train.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, train.std(axis=0) + 1e-6, rtol=1e-12)
    assert std[2] == pytest.approx(1e-6)


def test_trained_models_normalisation_is_the_training_split_mean(tiny_store):
    from mtl_core.control.config import TrainConfig
    from mtl_core.control.datasets import load_training_data
    from mtl_core.control.presets import get_preset

    _, _, card = tiny_store
    preset = get_preset(card["preset"])
    config = TrainConfig.from_dict(card["config"])
    data = load_training_data(preset, config)
    assert data.fingerprint == card["data"]["fingerprint"]
    split = stratified_split(data.y[preset.stratify], len(data), val_fraction=config.val_fraction,
                             test_fraction=config.test_fraction, seed=config.seed)
    assert split.sizes() == card["data"]["sizes"]
    train = data.x[split.train].astype(np.float64)
    everything = data.x.astype(np.float64)
    norm = card["normalisation"]
    assert norm["mean"] == pytest.approx(train.mean(), rel=1e-9)
    assert norm["std"] == pytest.approx(train.std() + 1e-6, rel=1e-9)
    assert abs(norm["mean"] - everything.mean()) > 1e-6  # would be equal if val/test had leaked in
    held_out = np.concatenate([split.val, split.test])
    assert abs(norm["mean"] - data.x[held_out].astype(np.float64).mean()) > 1e-6


def test_saved_model_standardises_with_the_cards_statistics(tiny_store):
    import keras

    import mtl_core.engine.models.layers  # noqa: F401  (registers the custom layers)

    store, model_id, card = tiny_store
    model = keras.saving.load_model(store.find(model_id).model_file, safe_mode=True, compile=False)
    layer = model.get_layer("standardize")
    assert layer.mean == pytest.approx(card["normalisation"]["mean"], rel=1e-9)
    assert layer.std == pytest.approx(card["normalisation"]["std"], rel=1e-9)
    x = np.full((1, 32, 32, 1), 0.5, dtype=np.float32)
    expected = (0.5 - card["normalisation"]["mean"]) / card["normalisation"]["std"]
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5)
