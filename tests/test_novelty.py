"""Unlike the training data? (mtl_core/engine/novelty.py): the score on known distributions, the threshold's
meaning, a trained model's card and the Predictor's warnings, and a head trained on part of the data."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_core.control.config import make_config
from mtl_core.control.presets import get_preset
from mtl_core.control.store import ModelStore
from mtl_core.engine import novelty


def test_the_score_is_about_one_inside_and_large_outside():
    rng = np.random.default_rng(0)
    scales = np.linspace(3.0, 0.1, 40)  # a few strong directions and many weak ones
    train, val, test = (rng.normal(size=(n, 40)) * scales for n in (3000, 1000, 1000))
    summary = novelty.fit(train, val, "backbone_x")
    inside = novelty.score(summary, test)
    assert 0.8 < np.median(inside) < 1.2
    assert 0.003 < (inside > summary["threshold"]).mean() < 0.03  # about 1 in 100 at the 99th percentile
    shifted = test[:50] + 3.0 * scales  # three standard deviations along every direction
    assert (novelty.score(summary, shifted) > summary["threshold"]).all()
    off_subspace = test[:50].copy()
    # far along a weak direction, outside the principal subspace (measured against the pooled residual variance,
    # so it takes a move of several residual standard deviations, not of that direction's own)
    off_subspace[:, -1] += 12.0
    assert (novelty.score(summary, off_subspace) > summary["threshold"]).all()
    lines = novelty.warnings(summary, {novelty.SHARED: np.concatenate([test[:1] * 0, shifted[:1]])})
    assert lines[0] == [] and lines[1][0].startswith("unlike this model's training data (novelty ")


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """A tiny shapes model trained with plain drawings (orientation and intensity labelled on the rest)."""
    from mtl_core.engine.training import train

    store = ModelStore(root=tmp_path_factory.mktemp("novelty") / "models", shipped=None)
    config = make_config(get_preset("shapes-3head"), epochs=2, batch_size=32,
                         data={"source": "generated", "n": 400, "noise": 0.3, "seed": 0, "drawings": 0.5})
    model_id, card, _ = train("shapes-3head", config, store=store)
    return store, model_id, card


def test_a_trained_model_flags_noise_and_not_its_own_kind_of_image(drawn):
    from mtl_core.control.data.shapes import generate_shapes
    from mtl_core.engine.inference import Predictor

    store, model_id, card = drawn
    assert card["novelty"]["layer"].startswith("backbone") and card["novelty"]["threshold"] > 0
    predictor = Predictor([store.find(model_id)])
    x, _ = generate_shapes(40, seed=77, noise=0.3)
    rng = np.random.default_rng(0)
    noise = rng.random((10, 32, 32)).astype(np.float32)
    items = predictor.predict([*x[..., None], *noise[..., None]]).items
    flagged = ["unlike this model's training data" in " ".join(i.get("warnings", [])) for i in items]
    assert sum(flagged[:40]) <= 3  # images like the training data: rarely
    assert all(flagged[40:])  # uniform noise: always
    assert all(i["novelty"]["threshold"] == pytest.approx(card["novelty"]["threshold"], abs=1e-3) for i in items)


def test_a_head_trained_on_part_of_the_data_flags_inputs_unlike_its_examples(drawn):
    from mtl_core.control.data.shapes import plain_drawings
    from mtl_core.engine.inference import Predictor

    store, model_id, card = drawn
    assert set(card["novelty"]["heads"]) == {"orientation", "intensity"}  # not shape: labelled everywhere
    assert set(card["novelty"]["head_features"]) == {"shape", "orientation", "intensity"}  # each head's own
    predictor = Predictor([store.find(model_id)])
    drawings = plain_drawings(np.arange(20) % 10, seed=5)
    items = predictor.predict(list(drawings[..., None])).items
    named = [w for i in items for w in i.get("warnings", [])
             if {"orientation", "intensity"} <= set(w.split(":")[0].split(", ")) and "unlike what these heads" in w]
    assert len(named) >= 15  # no marker dot: orientation and intensity were never trained on such images
    assert not any(w.startswith("shape") for i in items for w in i.get("warnings", []))  # shape learned them


def test_curves_of_a_head_with_missing_labels_count_only_its_labelled_examples(drawn):
    """Half the images have no orientation label: the curves' validation accuracy is the card's (labelled
    examples only) at the epoch whose weights were kept, not diluted by unlabelled ones counted as class 0."""
    _, _, card = drawn
    val = card["history"]["val"]
    kept = int(np.argmin(val["loss"])) if card["training"]["epochs_run"] > 1 else 0
    for head, metric in (("orientation", "accuracy"), ("intensity", "mae")):
        assert val[head][metric][kept] == pytest.approx(card["metrics"]["validation"][head][metric], rel=1e-4)
