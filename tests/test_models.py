"""The shapes-3head architecture as built from its spec: stop-gradient on the intensity head, the
shape -> orientation link, output heads, safe saving; and ModelSpec's own validation."""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtl_core.control.data.shapes import generate_shapes
from mtl_core.control.modelspec import HeadSpec, ModelSpec
from mtl_core.control.presets.shapes_3head import PRESET
from mtl_core.engine.models.builder import build_model

TASKS = PRESET.tasks_by_name


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    x, _ = generate_shapes(n=16, seed=3, noise=0.3)
    return x[..., None]


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_model(PRESET.model, TASKS, 0.0, 1.0)


def _backbone_variables(m) -> list:
    variables = [v for layer in m.layers if layer.name.startswith("backbone_") for v in layer.trainable_weights]
    assert len(variables) >= 6  # 3 convs (kernel, bias) + 3 batch norms (gamma, beta)
    return variables


def _grads(m, images, head: str, variables) -> list:
    with tf.GradientTape() as tape:
        out = m(images, training=True)
        target = tf.reduce_sum(tf.cast(out[head], tf.float32))
    return tape.gradient(target, variables)


def _is_zero(grad) -> bool:
    return grad is None or not np.any(np.asarray(grad))


def test_a_head_behind_a_stop_gradient_does_not_train_the_backbone(images):
    seeds = PRESET.model.with_options(detach={"intensity": True}, branch_at={"intensity": None})  # the seed's head C
    m = build_model(seeds, TASKS, 0.0, 1.0)
    grads = _grads(m, images, "intensity", _backbone_variables(m))
    assert all(_is_zero(g) for g in grads)
    # ...but it does train its own layers.
    own = m.get_layer("intensity_hidden_0_dense").trainable_weights
    assert not any(_is_zero(g) for g in _grads(m, images, "intensity", own))


def test_the_presets_intensity_head_trains_the_first_block_and_layers_of_its_own(model, images):
    first = [v for name in ("backbone_0_conv", "backbone_1_bn") for v in model.get_layer(name).trainable_weights]
    later = [v for name in ("backbone_3_conv", "backbone_4_bn", "backbone_6_conv", "backbone_7_bn")
             for v in model.get_layer(name).trainable_weights]
    assert not any(_is_zero(g) for g in _grads(model, images, "intensity", first))
    assert all(_is_zero(g) for g in _grads(model, images, "intensity", later))
    assert model.get_layer("intensity_trunk_0_conv").input.shape[1:] == (16, 16, 32)


def test_orientation_head_trains_the_backbone(model, images):
    grads = _grads(model, images, "orientation", _backbone_variables(model))
    assert any(not _is_zero(g) for g in grads)
    conv_kernel = model.get_layer("backbone_0_conv").kernel
    assert not _is_zero(_grads(model, images, "orientation", [conv_kernel])[0])


def test_undetached_intensity_head_trains_the_backbone(images):
    spec = PRESET.model.with_options(detach={"intensity": False}, branch_at={"intensity": None})
    assert not spec.head("intensity").detach
    m = build_model(spec, TASKS, 0.0, 1.0)
    assert not any("stop_gradient" in layer.name for layer in m.layers)
    grads = _grads(m, images, "intensity", _backbone_variables(m))
    assert any(not _is_zero(g) for g in grads)


def test_orientation_reads_the_shape_heads_features_and_the_seeds_link_also_trains_them(model, images):
    assert isinstance(model.get_layer("orientation_link"), keras.layers.Concatenate)
    kernel = model.get_layer("shape_hidden_0_dense").kernel
    assert _is_zero(_grads(model, images, "orientation", [kernel])[0])  # the preset's: read, not trained
    seeds = build_model(PRESET.model.with_options(link_gradient={"orientation": True}), TASKS, 0.0, 1.0)
    kernel = seeds.get_layer("shape_hidden_0_dense").kernel
    assert not _is_zero(_grads(seeds, images, "orientation", [kernel])[0])  # seed 002's: no stop-gradient


def test_without_the_link_orientation_ignores_the_shape_head(images):
    spec = PRESET.model.with_options(links={"orientation": ()})
    m = build_model(spec, TASKS, 0.0, 1.0)
    assert "orientation_link" not in [layer.name for layer in m.layers]
    kernel = m.get_layer("shape_hidden_0_dense").kernel
    assert _is_zero(_grads(m, images, "orientation", [kernel])[0])


def test_a_link_without_gradient_reads_the_shape_features_and_leaves_them_to_the_shape_head(model, images):
    spec = PRESET.model.with_options(link_gradient={"orientation": True})  # the seed's link, as the reference
    keras.utils.set_random_seed(0)
    linked = build_model(spec, TASKS, 0.0, 1.0)
    m = model  # the preset's: link without gradient
    shape_kernel = m.get_layer("shape_hidden_0_dense").kernel
    assert _is_zero(_grads(m, images, "orientation", [shape_kernel])[0])  # orientation's loss leaves it alone
    assert not _is_zero(_grads(m, images, "shape", [shape_kernel])[0])
    assert any(not _is_zero(g) for g in _grads(m, images, "orientation", _backbone_variables(m)))
    # ...while it still reads them: the same weights give the same orientation as the linked model
    for layer in linked.layers:  # by name: the stop-gradient layers change the order of the weights
        linked.get_layer(layer.name).set_weights(m.get_layer(layer.name).get_weights())
    np.testing.assert_allclose(np.asarray(m(images)["orientation"]), np.asarray(linked(images)["orientation"]),
                               atol=1e-6)


def test_the_link_gradient_at_its_default_leaves_the_specs_dict_and_so_the_model_ids_unchanged():
    seeds = PRESET.model.with_options(link_gradient={"orientation": True})
    d = seeds.to_dict()
    assert all("link_gradient" not in h for h in d["heads"])  # cards and ids made before the option still match
    assert PRESET.model.to_dict()["heads"][1]["link_gradient"] is False
    assert ModelSpec.from_dict(PRESET.model.to_dict()) == PRESET.model and ModelSpec.from_dict(d) == seeds


def test_outputs_are_a_dict_per_head_with_the_right_shapes_and_ranges(model, images):
    out = model(images, training=False)
    assert set(out) == {"shape", "orientation", "intensity"}
    n = len(images)
    assert tuple(out["shape"].shape) == (n, 10)
    assert tuple(out["orientation"].shape) == (n, 32)
    assert tuple(out["intensity"].shape) == (n, 1)
    for head in ("shape", "orientation"):
        probs = np.asarray(out[head])
        assert probs.min() >= 0
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    intensity = np.asarray(out["intensity"])
    assert intensity.min() >= 0.0 and intensity.max() <= 1.0
    # Extreme inputs still give a bounded intensity (sigmoid output).
    extreme = np.asarray(model(np.full((2, 32, 32, 1), 1e3, np.float32), training=False)["intensity"])
    assert np.all((extreme >= 0.0) & (extreme <= 1.0))


def test_output_layers_are_float32_under_mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        m = build_model(PRESET.model, TASKS, 0.0, 1.0)
    finally:
        keras.config.set_dtype_policy(previous)
    out = m(np.zeros((2, 32, 32, 1), np.float32), training=False)
    assert all(v.dtype == tf.float32 for v in out.values())


def test_no_lambda_layer(model, tmp_path):
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
    path = tmp_path / "m.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json").decode()
    assert '"Lambda"' not in config


def test_save_and_safe_load_give_identical_predictions(images, tmp_path):
    m = build_model(PRESET.model, TASKS, 0.37, 0.21)
    path = tmp_path / "model.keras"
    m.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    before, after = m(images, training=False), loaded(images, training=False)
    assert set(after) == set(before)
    for head in before:
        np.testing.assert_allclose(np.asarray(after[head]), np.asarray(before[head]), atol=1e-6)
    assert loaded.get_layer("standardize").mean == pytest.approx(0.37)
    assert loaded.get_layer("standardize").std == pytest.approx(0.21)


# -- ModelSpec validation ----------------------------------------------------------------------------------


def _spec(*heads: HeadSpec, backbone=("conv:8", "gap")) -> ModelSpec:
    return ModelSpec(input_shape=(32, 32, 1), backbone=backbone, heads=heads)


def test_unknown_link_source_is_refused():
    with pytest.raises(ValueError, match="nowhere"):
        _spec(HeadSpec("shape"), HeadSpec("orientation", inputs_from=("nowhere",)))
    with pytest.raises(ValueError):
        _spec(HeadSpec("shape", inputs_from=("shape",)))
    with pytest.raises(ValueError):
        PRESET.model.with_options(links={"orientation": ("colour",)})


def test_link_cycle_is_refused():
    with pytest.raises(ValueError, match="cycle"):
        _spec(HeadSpec("shape", inputs_from=("orientation",)), HeadSpec("orientation", inputs_from=("shape",)))
    with pytest.raises(ValueError, match="cycle"):
        PRESET.model.with_options(links={"shape": ("intensity",), "intensity": ("orientation",)})


@pytest.mark.parametrize("step", ["conv", "conv:8:3:1", "dense", "bogus:3", "pool:2", "Conv:8"])
def test_unknown_plan_step_is_refused(step):
    with pytest.raises(ValueError, match="unknown layer step"):
        _spec(HeadSpec("shape"), backbone=("conv:8", step))
    with pytest.raises(ValueError, match="unknown layer step"):
        _spec(HeadSpec("shape", hidden=(step,)))


def test_duplicate_heads_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        _spec(HeadSpec("shape"), HeadSpec("shape"))


def test_link_order_does_not_depend_on_declaration_order():
    spec = _spec(HeadSpec("orientation", inputs_from=("shape",)), HeadSpec("shape"))
    assert [h.task for h in spec.build_order()] == ["shape", "orientation"]


def test_only_one_head_drops_links_and_detach():
    seeds = PRESET.model.with_options(detach={"intensity": True})  # the seed's head C, behind a stop-gradient
    single = seeds.only(["intensity"])
    assert [h.task for h in single.heads] == ["intensity"]
    assert single.head("intensity").detach is False
    assert single.head("intensity").inputs_from == ()
    assert single.backbone == PRESET.model.backbone
    lone = PRESET.model.only(["orientation"])
    assert lone.head("orientation").inputs_from == ()
    pair = PRESET.model.only(["shape", "orientation"])
    assert pair.head("orientation").inputs_from == ("shape",)
    kept_detach = seeds.only(["shape", "intensity"])
    assert kept_detach.head("intensity").detach is True


def test_single_intensity_model_trains_the_backbone(images):
    seeds = PRESET.model.with_options(detach={"intensity": True}, branch_at={"intensity": None})
    m = build_model(seeds.only(["intensity"]), TASKS, 0.0, 1.0)
    assert set(m(images[:2], training=False)) == {"intensity"}
    assert any(not _is_zero(g) for g in _grads(m, images, "intensity", _backbone_variables(m)))
    # the preset's head alone is its own path: the backbone up to its branch point, then its layers
    lone = build_model(PRESET.model.only(["intensity"]), TASKS, 0.0, 1.0)
    assert not any(layer.name.startswith(("backbone_3", "backbone_6")) for layer in lone.layers)
    assert not _is_zero(_grads(lone, images, "intensity", [lone.get_layer("backbone_0_conv").kernel])[0])


def test_spec_round_trips_through_dict_and_json():
    spec = PRESET.model.with_options(detach={"intensity": False}, links={"intensity": ("shape",)})
    for original in (PRESET.model, spec, PRESET.model.only(["shape"])):
        d = original.to_dict()
        assert ModelSpec.from_dict(d) == original
        assert ModelSpec.from_dict(json.loads(json.dumps(d))) == original
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))).head("intensity").inputs_from == ("shape",)


def test_a_head_without_links_has_no_link_gradient_to_set():
    spec = PRESET.model
    alone = spec.only(["orientation"])  # a single-task model: the link to shape is gone, and with it the option
    assert alone.head("orientation").link_gradient is True
    assert alone.to_dict() == PRESET.model.with_options(link_gradient={"orientation": True}).only(
        ["orientation"]).to_dict()


# -- branch_at: a head that leaves the backbone early ------------------------------------------------------


def test_a_head_branching_after_the_first_block_trains_only_that_block_and_reads_its_output(images):
    spec = PRESET.model.with_options(detach={"intensity": False}, branch_at={"intensity": 3})
    spec = ModelSpec.from_dict({**spec.to_dict(), "heads": [
        {**h, "trunk": ["conv:16", "gap"]} if h["task"] == "intensity" else h for h in spec.to_dict()["heads"]]})
    m = build_model(spec, TASKS, 0.0, 1.0)
    assert m.get_layer("intensity_trunk_0_conv").input.shape[1:] == (16, 16, 32)  # after conv, bn, pool
    first = [v for name in ("backbone_0_conv", "backbone_1_bn") for v in m.get_layer(name).trainable_weights]
    later = [v for name in ("backbone_3_conv", "backbone_4_bn", "backbone_6_conv", "backbone_7_bn")
             for v in m.get_layer(name).trainable_weights]
    assert not any(_is_zero(g) for g in _grads(m, images, "intensity", first))
    assert all(_is_zero(g) for g in _grads(m, images, "intensity", later))
    # the other heads still read, and train, the whole backbone
    assert not _is_zero(_grads(m, images, "shape", [m.get_layer("backbone_6_conv").kernel])[0])


def test_a_head_branching_at_the_input_shares_nothing_and_the_others_are_unchanged(images):
    spec = PRESET.model.with_options(branch_at={"intensity": 0})
    m = build_model(spec, TASKS, 0.0, 1.0)
    assert all(_is_zero(g) for g in _grads(m, images, "intensity", _backbone_variables(m)))
    base = build_model(PRESET.model, TASKS, 0.0, 1.0)
    for layer in base.layers:
        if not layer.name.startswith("intensity"):
            m.get_layer(layer.name).set_weights(layer.get_weights())
    for head in ("shape", "orientation"):
        np.testing.assert_allclose(np.asarray(m(images)[head]), np.asarray(base(images)[head]), atol=1e-6)


def test_branch_at_is_left_out_of_the_specs_dict_at_its_default_and_checked_against_the_backbone():
    heads = PRESET.model.with_options(branch_at={"shape": None}).to_dict()["heads"]
    assert "branch_at" not in heads[0]  # model ids made before the option still match
    spec = PRESET.model.with_options(branch_at={"shape": 2})
    assert ModelSpec.from_dict(spec.to_dict()) == spec and spec.to_dict()["heads"][0]["branch_at"] == 2
    with pytest.raises(ValueError, match="branch_at must be in 0..8"):
        PRESET.model.with_options(branch_at={"shape": 9})
    with pytest.raises(ValueError, match="branch_at must be in 0..8"):
        PRESET.model.with_options(branch_at={"shape": -1})
