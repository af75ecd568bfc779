"""Calibration (mtl_core/engine/calibration.py): the ECE by hand, temperature scaling on an over-confident
head, the card's figures and the Predictor applying them."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_core.engine.calibration import (
    apply_temperature,
    calibrate,
    expected_calibration_error,
    fit_temperature,
)


def test_ece_by_hand():
    # 4 examples in two bins: confidence 0.9 (2 right of 2) and 0.6 (1 right of 2)
    p = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6]])
    y = np.array([0, 1, 0, 0])
    # bin 0.9: |1.0 - 0.9| = 0.1, bin 0.6: |0.5 - 0.6| = 0.1, each half the examples
    assert expected_calibration_error(p, y) == pytest.approx(0.1)
    # a binary head given as P(positive) is the same as its two columns
    assert expected_calibration_error(p[:, 1], y) == pytest.approx(0.1)
    assert expected_calibration_error(np.array([[1.0, 0.0]] * 3), np.zeros(3)) == pytest.approx(0.0)


def test_temperature_scaling_fixes_an_over_confident_head_and_keeps_its_answers():
    rng = np.random.default_rng(0)
    n, classes = 4000, 5
    true_logits = rng.normal(size=(n, classes)) * 1.5
    probs = np.exp(true_logits) / np.exp(true_logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(classes, p=row) for row in probs])  # labels drawn from the true probabilities
    confident = np.exp(3 * true_logits) / np.exp(3 * true_logits).sum(axis=1, keepdims=True)  # logits x 3
    t = fit_temperature(confident, y)
    assert t == pytest.approx(3.0, rel=0.15)  # the over-confidence found
    fixed = apply_temperature(confident, t)
    assert expected_calibration_error(fixed, y) < 0.5 * expected_calibration_error(confident, y)
    assert (fixed.argmax(axis=1) == confident.argmax(axis=1)).all()
    p = np.clip(rng.random(50), 0.01, 0.99)  # binary: the decision at 0.5 stays
    assert ((apply_temperature(p, 2.5) >= 0.5) == (p >= 0.5)).all()


def test_calibrate_fits_on_validation_and_leaves_missing_labels_out():
    from mtl_core.control.presets import get_preset

    tasks = get_preset("shapes-3head").tasks
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(600, 10)) * 1.5
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    shape = np.exp(4 * logits) / np.exp(4 * logits).sum(axis=1, keepdims=True)  # over-confident
    labels = {split: {"shape": np.array([rng.choice(10, p=row) for row in true]), "orientation": np.full(600, -1),
                      "intensity": rng.random(600)} for split in ("validation", "test")}
    orientation = rng.dirichlet(np.ones(32), size=600)
    out = calibrate(tasks, labels, {split: {"shape": shape, "orientation": orientation, "intensity": rng.random(600)}
                                    for split in labels})
    assert set(out) == {"shape", "orientation"}  # no regression head
    assert out["shape"]["temperature"] > 2.0  # sure and often wrong: softened
    for split in ("validation", "test"):  # fitted on validation, better on the test split too
        assert out["shape"]["ece"][split]["after"] < 0.5 * out["shape"]["ece"][split]["before"]
    assert out["orientation"]["ece"]["test"] == {"before": None, "after": None}  # no known labels


def test_a_trained_model_records_its_calibration_and_the_predictor_applies_it(tiny_store):
    from mtl_core.engine.inference import Predictor

    store, model_id, card = tiny_store
    assert set(card["calibration"]) == {"shape", "orientation"}
    for info in card["calibration"].values():
        assert 0.05 <= info["temperature"] <= 20
        assert 0 <= info["ece"]["test"]["before"] <= 1 and 0 <= info["ece"]["test"]["after"] <= 1
    predictor = Predictor([store.find(model_id)])
    x = np.random.default_rng(0).random((4, 32, 32, 1)).astype("float32")
    raw = predictor._fns[0](x)  # the model itself, before calibration
    calibrated = predictor.predict_arrays(x)
    want = apply_temperature(np.asarray(raw["shape"]), card["calibration"]["shape"]["temperature"])
    np.testing.assert_allclose(calibrated["shape"], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(calibrated["intensity"], np.asarray(raw["intensity"])[:, 0], rtol=1e-6)
