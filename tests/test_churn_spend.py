"""churn-spend: the synthetic customer generator, the per-head masked loss for partial labels, and the
single-task scikit-learn baselines kept in the card.

One small training (600 generated customers, 30% of each label blanked, 3 epochs) is shared by the
module; the gradient checks build the model with the Trainer's own inputs, targets and loss setup.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mtl_core.control.config import make_config
from mtl_core.control.data.customers import FEATURES, generate_customers, write_customers_csv
from mtl_core.control.data.splits import stratified_split
from mtl_core.control.data.tabular import TabularEncoder, read_csv
from mtl_core.control.presets import get_preset
from mtl_core.errors import UserError

PRESET = "churn-spend"
CONTRACTS = {"month-to-month", "one-year", "two-year"}
PAYMENTS = {"electronic check", "mailed check", "bank transfer", "credit card"}
INTERNET = {"fiber", "dsl", "none"}
MISSING_DATA = {"source": "generated", "n": 600, "seed": 0, "missing": 0.3}


def numbers(column: pd.Series) -> np.ndarray:
    return np.array([float(v) if v != "" else math.nan for v in column], dtype=np.float64)


def split_of(config, data):
    """The split the Trainer makes for this config (stratified by churn, the preset's choice)."""
    return stratified_split(data.y["churn"], len(data), val_fraction=config.val_fraction,
                            test_fraction=config.test_fraction, seed=config.seed)


# ----------------------------------------------------------------------------- generator


def test_generator_is_deterministic_by_seed():
    a, b = generate_customers(300, seed=5), generate_customers(300, seed=5)
    other = generate_customers(300, seed=6)

    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(other)
    assert (a["tenure_months"] != other["tenure_months"]).mean() > 0.5


def test_generator_columns_and_value_ranges_are_as_documented():
    frame = generate_customers(2000, seed=1)

    assert list(frame.columns) == [*FEATURES, "churn", "spend"]
    assert len(frame) == 2000
    assert all(isinstance(v, str) for v in frame.iloc[0])  # a table of text cells, as read from a CSV
    tenure = numbers(frame["tenure_months"])
    assert np.all(tenure == np.round(tenure)) and tenure.min() >= 0 and tenure.max() <= 72
    assert set(frame["contract"]) == CONTRACTS
    assert set(frame["payment_method"]) == PAYMENTS
    assert set(frame["internet"]) == INTERNET
    charges = numbers(frame["monthly_charges"])
    assert charges.min() >= 18 and charges.max() <= 130
    by_internet = {k: charges[frame["internet"].to_numpy() == k].mean() for k in INTERNET}
    assert by_internet["fiber"] > by_internet["dsl"] > by_internet["none"]  # 20 + 55 / 25 / 0 USD
    calls = numbers(frame["support_calls"])
    assert np.all(calls == np.round(calls)) and calls.min() >= 0
    assert set(frame["churn"]) == {"0", "1"}
    spend = numbers(frame["spend"])
    assert np.isfinite(spend).all() and spend.min() >= 0


def test_contract_mix_is_as_documented():
    shares = generate_customers(4000, seed=2)["contract"].value_counts(normalize=True)

    assert shares["month-to-month"] == pytest.approx(0.55, abs=0.03)
    assert shares["one-year"] == pytest.approx(0.25, abs=0.03)
    assert shares["two-year"] == pytest.approx(0.20, abs=0.03)


def test_month_to_month_customers_churn_more_and_churners_spend_less():
    frame = generate_customers(4000, seed=3)
    churn = numbers(frame["churn"])
    spend = numbers(frame["spend"])
    contract = frame["contract"].to_numpy()

    rate = {c: churn[contract == c].mean() for c in CONTRACTS}
    assert rate["month-to-month"] > rate["one-year"] > rate["two-year"]
    assert rate["month-to-month"] > 2 * rate["two-year"]
    # A churner keeps 1..9 months instead of 12: next-year spend depends on churn.
    assert spend[churn == 1].mean() < 0.6 * spend[churn == 0].mean()


def test_missing_blanks_that_fraction_of_each_label_and_nothing_else():
    full = generate_customers(4000, seed=4)
    partial = generate_customers(4000, seed=4, missing=0.3)

    blank_churn, blank_spend = partial["churn"] == "", partial["spend"] == ""
    assert blank_churn.mean() == pytest.approx(0.3, abs=0.03)
    assert blank_spend.mean() == pytest.approx(0.3, abs=0.03)
    assert (blank_churn & blank_spend).mean() == pytest.approx(0.09, abs=0.03)  # blanked independently
    # the same customers: only label cells are blanked, features and the other labels are kept
    pd.testing.assert_frame_equal(partial[list(FEATURES)], full[list(FEATURES)])
    assert (partial["churn"][~blank_churn] == full["churn"][~blank_churn]).all()
    assert (partial["spend"][~blank_spend] == full["spend"][~blank_spend]).all()
    assert (generate_customers(500, seed=4)[["churn", "spend"]] != "").all().all()


@pytest.mark.parametrize("kwargs, needle", [({"n": 0}, "n must be"), ({"n": 10, "missing": 0.95}, "missing")])
def test_generator_rejects_bad_arguments(kwargs, needle):
    with pytest.raises(UserError, match=needle):
        generate_customers(**kwargs)


@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_written_csv_reads_back_identically(tmp_path, missing):
    path = write_customers_csv(tmp_path / "customers.csv", n=250, seed=7, missing=missing)

    assert path == tmp_path / "customers.csv"
    assert path.read_text().splitlines()[0] == ",".join([*FEATURES, "churn", "spend"])
    pd.testing.assert_frame_equal(read_csv(path), generate_customers(250, seed=7, missing=missing))


def test_generated_source_gives_labels_with_missing_entries_marked():
    preset = get_preset(PRESET)
    frame = generate_customers(600, seed=0, missing=0.3)

    data = preset.load_data(MISSING_DATA)

    assert list(data.x.columns) == list(FEATURES)
    assert np.array_equal(data.y["churn"] == -1, (frame["churn"] == "").to_numpy())
    assert np.array_equal(np.isnan(data.y["spend"]), (frame["spend"] == "").to_numpy())
    known = frame["churn"] != ""
    assert np.array_equal(data.y["churn"][known.to_numpy()], numbers(frame["churn"][known]).astype(int))


# ----------------------------------------------------------------------------- masked partial-label loss


@pytest.fixture(scope="module")
def setup():
    """The Trainer's model, inputs, per-head masks and compiled losses for 600 customers, 30% labels missing."""
    import keras

    from mtl_core.control.datasets import load_training_data
    from mtl_core.engine.models.builder import build_model
    from mtl_core.engine.training import Trainer

    preset = get_preset(PRESET)
    config = make_config(preset, data=MISSING_DATA, epochs=3, batch_size=32, seed=0)
    data = load_training_data(preset, config)
    trainer = Trainer(preset, config, precision="float32")
    split = split_of(config, data)
    x, spec, mean, std, _ = trainer._inputs(data, split)
    labels, masks, scale = trainer._targets(data, split)
    keras.utils.set_random_seed(0)
    model = build_model(spec, trainer.tasks, mean, std, scale)
    trainer._compile(model, keras, scale)
    return {"preset": preset, "config": config, "data": data, "trainer": trainer, "x": x, "labels": labels,
            "masks": masks, "model": model}


def head_gradients(setup, rows: np.ndarray, masks: dict) -> dict[str, list[np.ndarray]]:
    """Gradient of the compiled total loss on ``rows`` w.r.t. each head's own output layer."""
    import tensorflow as tf

    model = setup["model"]
    x = tf.constant(setup["x"][rows])
    y = {k: tf.constant(v[rows]) for k, v in setup["labels"].items()}
    w = {k: tf.constant(v[rows]) for k, v in masks.items()}
    layers = {"churn": model.get_layer("churn"), "spend": model.get_layer("spend_standardised")}
    with tf.GradientTape() as tape:
        pred = model(x, training=True)
        loss = model.compute_loss(x=x, y=y, y_pred=pred, sample_weight=w)
    variables = [v for layer in layers.values() for v in layer.trainable_variables]
    grads = dict(zip([v.path for v in variables], tape.gradient(loss, variables), strict=True))
    return {head: [np.asarray(grads[v.path]) for v in layer.trainable_variables] for head, layer in layers.items()}


def test_targets_mask_exactly_the_rows_without_a_label(setup):
    data, labels, masks = setup["data"], setup["labels"], setup["masks"]

    assert masks is not None
    assert np.array_equal(masks["churn"] == 0, data.y["churn"] == -1)
    assert np.array_equal(masks["spend"] == 0, np.isnan(data.y["spend"]))
    assert set(np.unique(labels["churn"])) == {0, 1} and np.isfinite(labels["spend"]).all()


def test_training_batches_carry_the_masks_as_per_head_sample_weights(setup):
    import tensorflow as tf

    trainer, masks = setup["trainer"], setup["masks"]
    split = split_of(setup["config"], setup["data"])

    _, val_ds = trainer._datasets(tf, setup["x"], setup["labels"], masks, split)

    weights = {k: np.concatenate([batch[2][k].numpy() for batch in val_ds]) for k in ("churn", "spend")}
    for head in ("churn", "spend"):
        assert np.array_equal(weights[head], masks[head][split.val])


def test_nothing_missing_means_no_masks():
    from mtl_core.engine.training import Trainer

    preset = get_preset(PRESET)
    config = make_config(preset, data={"source": "generated", "n": 100, "seed": 0}, epochs=1)
    data = preset.load_data(config.data)

    _, masks, _ = Trainer(preset, config)._targets(data, split_of(config, data))

    assert masks is None


def test_rows_without_a_churn_label_give_the_churn_head_zero_gradient_and_still_train_spend(setup):
    masks = setup["masks"]
    rows = np.flatnonzero((masks["churn"] == 0) & (masks["spend"] == 1))[:32]
    assert len(rows) == 32

    masked = head_gradients(setup, rows, masks)
    unmasked = head_gradients(setup, rows, {k: np.ones_like(v) for k, v in masks.items()})

    for g in masked["churn"]:  # kernel and bias of the churn output layer
        assert np.all(g == 0.0)
    assert all(np.abs(g).max() > 1e-6 for g in masked["spend"])
    # control: the same rows with their (filled-in) churn labels counted would move the churn head
    assert all(np.abs(g).max() > 1e-6 for g in unmasked["churn"])


def test_rows_without_a_spend_label_give_the_spend_head_zero_gradient(setup):
    masks = setup["masks"]
    rows = np.flatnonzero((masks["spend"] == 0) & (masks["churn"] == 1))[:32]

    grads = head_gradients(setup, rows, masks)

    assert all(np.all(g == 0.0) for g in grads["spend"])
    assert all(np.abs(g).max() > 1e-6 for g in grads["churn"])


def test_a_missing_label_changes_only_its_own_heads_gradient(setup):
    """Adding label-less rows to a batch leaves the churn head's gradient as it was on the labelled rows
    (up to the batch-size normalisation): missing rows contribute nothing, not a pull towards 0."""
    masks = setup["masks"]
    labelled = np.flatnonzero(masks["churn"] == 1)[:16]
    unlabelled = np.flatnonzero(masks["churn"] == 0)[:16]
    both = np.concatenate([labelled, unlabelled])

    alone = head_gradients(setup, labelled, masks)["churn"]
    mixed = head_gradients(setup, both, masks)["churn"]

    for a, m in zip(alone, mixed, strict=True):
        assert np.abs(a).max() > 1e-6
        scale = np.sum(a * m) / np.sum(m * m)  # the same direction, whatever the loss's normaliser
        np.testing.assert_allclose(m * scale, a, rtol=1e-4, atol=1e-7)


# ----------------------------------------------------------------------------- a training with missing labels


@pytest.fixture(scope="module")
def trained(setup):
    from mtl_core.engine.training import Trainer

    result = Trainer(setup["preset"], setup["config"]).run(setup["data"])
    return result


def test_training_with_missing_labels_works_and_learns_spend(trained):
    card = trained.card
    history = card["history"]

    assert card["training"]["epochs_run"] == 3
    for split in ("train", "val"):
        assert all(math.isfinite(v) for v in history[split]["loss"])
        assert all(math.isfinite(v) for v in history[split]["spend"]["mae"])
    test = card["metrics"]["test"]
    assert math.isfinite(test["churn"]["accuracy"]) and math.isfinite(test["spend"]["mae"])
    assert test["spend"]["mae"] < test["spend"]["baseline_mae"]  # beats predicting the median


def test_card_metrics_leave_out_rows_without_that_label(setup, trained):
    from mtl_core.engine.batches import predict_in_batches

    card, data = trained.card, setup["data"]
    split = split_of(setup["config"], data)
    assert card["data"]["sizes"] == split.sizes()
    test = split.test
    churn_known = data.y["churn"][test] >= 0
    spend_known = np.isfinite(data.y["spend"][test])
    assert 0 < churn_known.sum() < len(test) and 0 < spend_known.sum() < len(test)

    metrics = card["metrics"]["test"]
    matrix = np.array(metrics["churn"]["confusion_matrix"])
    assert matrix.shape == (2, 2)
    assert matrix.sum() == churn_known.sum()
    assert matrix.sum(axis=1).tolist() == np.bincount(data.y["churn"][test][churn_known], minlength=2).tolist()
    assert metrics["churn"]["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())

    encoder = TabularEncoder.from_dict(card["preprocessing"]["tabular"])
    pred = predict_in_batches(trained.model, encoder.encode_frame(data.x.iloc[test]))
    truth = data.y["spend"][test][spend_known]
    assert metrics["spend"]["mae"] == pytest.approx(np.abs(pred["spend"][spend_known] - truth).mean(), rel=1e-5)


# ----------------------------------------------------------------------------- baselines


def test_card_keeps_histgradientboosting_baselines_per_head(trained):
    baselines = trained.card["baselines"]

    assert set(baselines) == {"churn", "spend"}
    assert baselines["churn"]["model"] == "HistGradientBoostingClassifier"
    assert baselines["spend"]["model"] == "HistGradientBoostingRegressor"
    for part in ("validation", "test"):
        assert set(baselines["churn"][part]) == {"accuracy", "auc"}
        assert 0 <= baselines["churn"][part]["accuracy"] <= 1 and 0 <= baselines["churn"][part]["auc"] <= 1
        assert baselines["spend"][part]["mae"] > 0


def test_baselines_are_fitted_and_scored_on_the_models_own_split(setup, trained):
    """The same split and the same labelled rows as the multi-task model: refitting a HistGradientBoosting
    model per head on the training rows that have that label reproduces the card's numbers."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import mean_absolute_error, roc_auc_score

    card, data, config = trained.card, setup["data"], setup["config"]
    split = split_of(config, data)
    x = TabularEncoder.from_dict(card["preprocessing"]["tabular"]).encode_frame(data.x)
    churn, spend = data.y["churn"], data.y["spend"]
    tr_c, te_c = split.train[churn[split.train] >= 0], split.test[churn[split.test] >= 0]
    tr_s, te_s = split.train[np.isfinite(spend[split.train])], split.test[np.isfinite(spend[split.test])]

    clf = HistGradientBoostingClassifier(random_state=config.seed).fit(x[tr_c], churn[tr_c])
    reg = HistGradientBoostingRegressor(random_state=config.seed).fit(x[tr_s], spend[tr_s])

    test = card["baselines"]
    proba = clf.predict_proba(x[te_c])[:, 1]
    assert test["churn"]["test"]["auc"] == pytest.approx(roc_auc_score(churn[te_c], proba))
    assert test["churn"]["test"]["accuracy"] == pytest.approx(np.mean((proba >= 0.5) == churn[te_c]))
    assert test["spend"]["test"]["mae"] == pytest.approx(mean_absolute_error(spend[te_s], reg.predict(x[te_s])),
                                                         rel=1e-6)
    # the multi-task model's own churn metrics are computed on exactly these rows
    assert np.array(card["metrics"]["test"]["churn"]["confusion_matrix"]).sum() == len(te_c)
