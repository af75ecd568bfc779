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
    watched = "heads_error" if card["config"]["monitor"] == "heads" else "loss"  # what early stopping watched
    kept = int(np.argmin(val[watched])) if card["training"]["epochs_run"] > 1 else 0
    for head, metric in (("orientation", "accuracy"), ("intensity", "mae")):
        assert val[head][metric][kept] == pytest.approx(card["metrics"]["validation"][head][metric], rel=1e-4)


def _triangle_png(shape_rgb, background_rgb) -> bytes:
    """A filled triangle drawn plainly, 64×64, as a person would make one in a paint program."""
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGB", (64, 64), background_rgb)
    ImageDraw.Draw(img).polygon([(32, 8), (56, 54), (8, 54)], fill=shape_rgb)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_a_colour_picture_that_turns_blank_in_grey_is_flagged_for_a_grey_model():
    """Red on a green of the same luminance (0.299) is a clear triangle to a person and an even grey to the
    shipped shapes-3head model, which reads luma: its prediction says so. White on black, or the same
    colours given to an RGB model (color-digits), get no such warning."""
    from PIL import Image

    from mtl_core.control.data.images import contrast_lost_in_grey
    from mtl_core.control.store import SHIPPED_DIR
    from mtl_core.engine.inference import Predictor

    green = (0, round(255 * 0.299 / 0.587), 0)
    store = ModelStore(shipped=SHIPPED_DIR)
    grey_model = Predictor.for_preset("shapes-3head", store=store)
    items = grey_model.predict([_triangle_png((255, 0, 0), green), _triangle_png((255, 255, 255), (0, 0, 0))],
                               names=["red-on-green.png", "white-on-black.png"]).items
    lost = [w for w in items[0].get("warnings", []) if "in grey" in w]
    assert len(lost) == 1 and "keeps only 0% of its contrast" in lost[0], items[0]
    assert "outputs" in items[0]  # still answered: a warning, not an error
    assert not any("in grey" in w for w in items[1].get("warnings", []))

    rgb_model = Predictor.for_preset("color-digits", store=store)
    [rgb_item] = rgb_model.predict([_triangle_png((255, 0, 0), green)], names=["red-on-green.png"]).items
    assert not any("in grey" in w for w in rgb_item.get("warnings", []))

    blue_on_black = Image.new("RGB", (32, 32))
    blue_on_black.paste((0, 0, 255), (8, 8, 24, 24))
    warning = contrast_lost_in_grey(blue_on_black, (32, 32))
    assert warning is not None and "keeps only 20%" in warning  # blue weighs 0.114: 0.114 x sqrt(3)
    assert contrast_lost_in_grey(Image.new("RGB", (32, 32), (200, 30, 30)), (32, 32)) is None  # nothing to lose
