"""The loss-conditioned model (one model for every weighting): lambda changes its outputs, a constant lambda
gives exactly the static model's weighted loss, it saves and loads under safe_mode with a lambda grid in its
card, predict/evaluate take lambda (and an ordinary model refuses it, before TensorFlow is imported), and
the config flag leaves every existing model id unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_cli import run_without_tensorflow

from mtl_core.cli import main
from mtl_core.control import loss_weights as cond
from mtl_core.control.config import TrainConfig, make_config
from mtl_core.control.presets import get_preset
from mtl_core.control.store import ModelStore
from mtl_core.errors import UserError

TINY_DATA = {"source": "generated", "n": 400, "noise": 0.3, "seed": 0}  # as tests/conftest.py

ROOT = Path(__file__).resolve().parent.parent
PRESET = "shapes-3head"
DATA = {**TINY_DATA, "n": 300, "drawings": 0}  # the generator-style images only (the default has drawings)
TRAIN_ARGV = ["train", "--preset", PRESET, "--conditioned", "--epochs", "2", "--batch-size", "32", "--seed", "3",
              "--data-option", ",".join(f"{k}={v}" for k, v in DATA.items() if k != "source")]


@pytest.fixture(scope="module")
def conditioned(tmp_path_factory):
    """A conditioned shapes-3head model trained for 2 epochs on 300 generated images, in its own store
    (configured by the CLI's own parser, so `train --conditioned` with the same flags finds it)."""
    from mtl_core.control.options import build_config, train_parser
    from mtl_core.engine.training import train

    store = ModelStore(root=tmp_path_factory.mktemp("cond") / "models", shipped=None)
    _, config = build_config(train_parser().parse_args(TRAIN_ARGV[1:]))
    model_id, card, _ = train(PRESET, config, store=store)
    return store, model_id, card


def test_the_flag_changes_the_id_and_leaves_existing_ids_unchanged():
    preset = get_preset(PRESET)
    plain, cond_config = make_config(preset), make_config(preset, conditioned=True)
    assert plain.model_id("fp") != cond_config.model_id("fp")
    assert "conditioned" not in plain.hash_key("fp")
    # the shipped models were trained before the flag existed: their cards' configs still hash to their ids
    for folder in sorted((ROOT / "weights").iterdir()):
        if (folder / "card.json").is_file():
            card = json.loads((folder / "card.json").read_text())
            assert TrainConfig.from_dict(card["config"]).model_id(card["data"]["fingerprint"]) == card["id"]


def test_conditioned_ids_carry_the_conditioned_version():
    """What a conditioned model is changed (its FiLM scale): its config hashes a version of its own, so the
    new models get new ids, and a static config's key is unchanged (no version in it)."""
    from mtl_core.control.config import CONDITIONED_VERSION

    preset = get_preset(PRESET)
    key = make_config(preset, conditioned=True).hash_key("fp")
    assert key["conditioned"] == {"version": CONDITIONED_VERSION} and CONDITIONED_VERSION >= 2
    assert "conditioned" not in make_config(preset).hash_key("fp")


def test_film_scale_is_in_the_layer_config_and_an_old_config_loads_at_scale_1():
    import keras

    from mtl_core.engine.models.conditioned import FILM_SCALE, FiLM

    layer = FiLM(FILM_SCALE, name="f")
    assert layer.get_config()["scale"] == FILM_SCALE
    assert FiLM.from_config(layer.get_config()).scale == FILM_SCALE
    old = {k: v for k, v in layer.get_config().items() if k != "scale"}  # saved before the argument existed
    assert FiLM.from_config(old).scale == 1.0
    # the scale multiplies gamma and beta: kernel 0, bias 1 -> x * (1 + s) + s
    x, c = np.ones((2, 3), np.float32), np.zeros((2, 4), np.float32)
    layer([x, c])
    layer.bias.assign(np.ones(6, np.float32))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer([x, c])), (1 + FILM_SCALE) + FILM_SCALE, rtol=1e-6)


def test_changing_lambda_changes_the_outputs(conditioned):
    from mtl_core.engine.inference import Predictor

    store, model_id, _ = conditioned
    predictor = Predictor(store.find(model_id))
    x = np.random.default_rng(0).uniform(0, 1, (8, 32, 32, 1)).astype(np.float32)
    a = predictor.predict_arrays(x, {"shape": 1, "orientation": 0.05, "intensity": 0.05})
    b = predictor.predict_arrays(x, {"shape": 0.05, "orientation": 0.05, "intensity": 1})
    default = predictor.predict_arrays(x)
    same = predictor.predict_arrays(x, predictor.loss_weights())
    for head in a:
        assert np.abs(a[head] - b[head]).max() > 1e-4, head
        np.testing.assert_allclose(default[head], same[head], rtol=1e-6)


def test_film_modulates_features_per_example_and_starts_as_the_identity():
    import keras

    from mtl_core.engine.models.conditioned import FiLM, LogLossWeights

    features = np.random.default_rng(1).normal(size=(2, 4, 4, 3)).astype(np.float32)
    lam = np.array([[0.9, 0.1], [0.1, 0.9]], np.float32)
    film = FiLM()
    z = LogLossWeights()(lam)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(film([features, z])), features, rtol=1e-6)  # zero init
    film.kernel.assign(np.ones_like(film.kernel.numpy()))
    out = keras.ops.convert_to_numpy(film([features, z]))
    assert not np.allclose(out[0], features[0]) and not np.allclose(out[0] / features[0], out[1] / features[1])
    assert FiLM.from_config(film.get_config()).name == film.name


def test_a_constant_lambda_gives_the_static_weighted_loss():
    """The per-example weighted loss sum_i K*lambda_i*L_i with lambda the same for every example equals the
    static model's loss with loss weights K*lambda, on the same batch with the same weights."""
    import keras
    import tensorflow as tf

    from mtl_core.engine import conditioned as engine_cond
    from mtl_core.engine.models.builder import build_model
    from mtl_core.engine.training import Trainer

    preset = get_preset(PRESET)
    lam = np.array([0.5, 0.3, 0.2], np.float32)
    heads = ["shape", "orientation", "intensity"]
    static_cfg = make_config(preset, loss_weights={h: 3 * float(w) for h, w in zip(heads, lam, strict=True)})
    cond_cfg = make_config(preset, loss_weights=static_cfg.loss_weights, conditioned=True)
    static_t, cond_t = Trainer(preset, static_cfg, precision="float32"), Trainer(preset, cond_cfg, precision="float32")
    keras.utils.set_random_seed(0)
    static = build_model(static_t.spec, static_t.tasks)
    conditioned_model = build_model(cond_t.spec, cond_t.tasks, conditioned=True)
    for layer in static.layers:  # the same weights; the FiLM layers start as the identity
        if layer.weights:
            conditioned_model.get_layer(layer.name).set_weights(layer.get_weights())
    static_t._compile(static, keras, {})
    cond_t._compile(conditioned_model, keras, {})
    x = np.random.default_rng(2).uniform(0, 1, (32, 32, 32, 1)).astype(np.float32)
    y = {"shape": np.arange(32) % 10, "orientation": np.arange(32) % 32,
         "intensity": np.linspace(0, 1, 32).astype(np.float32)}
    batch = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    static_loss = static.evaluate(batch, verbose=0, return_dict=True)["loss"]
    cond_loss = conditioned_model.evaluate(engine_cond.fixed_weights_dataset(batch, lam, heads), verbose=0,
                                           return_dict=True)["loss"]
    assert cond_loss == pytest.approx(static_loss, rel=1e-5)
    # and the training draws really vary per example: a batch of Dirichlet lambdas, each on the simplex
    drawn = next(iter(engine_cond.sample_weights_dataset(batch, heads, seed=0)))
    lams = drawn[0]["loss_weights"].numpy()
    assert lams.shape == (32, 3) and np.allclose(lams.sum(axis=1), 1) and lams.std(axis=0).min() > 0.05
    np.testing.assert_allclose(drawn[2]["orientation"].numpy(), 3 * lams[:, 1], rtol=1e-6)


def test_the_card_holds_validation_metrics_on_a_lambda_grid(conditioned):
    store, model_id, card = conditioned
    info = card["conditioned"]
    assert info["heads"] == ["shape", "orientation", "intensity"]
    assert info["default"] == pytest.approx(cond.default_weights(card))
    assert len(info["grid"]) == cond.GRID_POINTS[3]
    for point in info["grid"]:
        assert sum(point["weights"].values()) == pytest.approx(1)
        assert set(point["metrics"]) == {"shape", "orientation", "intensity"}
    near = cond.nearest_grid_point(card, {"shape": 10, "orientation": 0.1, "intensity": 0.1})
    assert max(near["weights"], key=near["weights"].get) == "shape"
    # saved like every model: model.keras loads under safe_mode with its second input
    import keras

    model = keras.saving.load_model(store.find(model_id).model_file, safe_mode=True, compile=False)
    assert sorted(i.name for i in model.inputs) == ["input", "loss_weights"]


def test_prediction_json_and_evaluation_say_which_lambda(conditioned):
    from mtl_core.engine.evaluation import evaluate
    from mtl_core.engine.inference import Predictor

    store, model_id, _ = conditioned
    predictor = Predictor(store.find(model_id))
    x = np.zeros((32, 32, 1), np.float32)
    doc = predictor.predict([x], ["blank"], loss_weights={"shape": 2, "orientation": 1, "intensity": 1}).to_dict()
    assert doc["loss_weights"] == {"shape": 0.5, "orientation": 0.25, "intensity": 0.25}
    assert "loss_weights" in predictor.predict([x], ["blank"]).to_dict()  # the default lambda, said too
    result = evaluate(PRESET, predictor=predictor, loss_weights={"intensity": 0})
    assert result["loss_weights"]["intensity"] == 0 and result["n"] > 0
    with pytest.raises(UserError, match="unknown head"):
        predictor.predict([x], ["blank"], loss_weights={"nope": 1})
    with pytest.raises(UserError, match="every weight is zero"):
        predictor.predict_arrays(x[None], {"shape": 0, "orientation": 0, "intensity": 0})


def test_an_ordinary_model_refuses_loss_weights(tiny_store):
    from mtl_core.engine.inference import Predictor

    store, model_id, _ = tiny_store
    predictor = Predictor(store.find(model_id))
    assert "loss_weights" not in predictor.predict([np.zeros((32, 32, 1), np.float32)], ["blank"]).to_dict()
    with pytest.raises(UserError, match="not loss-conditioned"):
        predictor.predict_arrays(np.zeros((1, 32, 32, 1), np.float32), {"shape": 1})


def test_cli_loss_weight_errors_come_before_tensorflow(cli_env, tmp_path):
    png = tmp_path / "a.png"
    png.write_bytes(b"not needed: the flag is refused first")
    argvs = [["predict", "--preset", PRESET, str(png), "--loss-weights", "shape=1"],
             ["evaluate", "--preset", PRESET, "--loss-weights", "shape=1"],
             ["predict", "--preset", PRESET, str(png), "--loss-weights", "shape"],
             ["train", "--preset", PRESET, "--conditioned", "--weighting", "gradnorm"],
             ["train", "--preset", PRESET, "--conditioned", "--heads", "shape"]]
    results = run_without_tensorflow(argvs, cli_env)
    needles = ["not loss-conditioned", "not loss-conditioned", "head=weight", "--weighting gradnorm", "two heads"]
    for (rc, err), needle in zip(results, needles, strict=True):
        assert rc == 2 and err.count("\n") == 1 and needle in err, err


def test_cli_train_conditioned_is_stored_once(conditioned, monkeypatch, capsys):
    store, model_id, _ = conditioned
    monkeypatch.setenv("MTL_HOME", str(store.root.parent))
    assert main([*TRAIN_ARGV, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == model_id and out["cached"] is True and set(out["loss_weights"]) == set(cond.heads_of(
        store.find(model_id).card))


def test_curves_of_a_head_with_missing_labels_count_only_its_labelled_examples(tmp_path):
    """With plain drawings half the images have no orientation or intensity label. The conditioned model's
    validation curves (which early stopping watches) are the card's validation metrics, labelled examples only,
    not diluted by unlabelled ones counted as class 0 / value 0 (which held orientation near 50% and stopped
    the training at the wrong epoch)."""
    from mtl_core.engine.training import train

    store = ModelStore(root=tmp_path / "models", shipped=None)
    config = make_config(get_preset(PRESET), conditioned=True, epochs=2, batch_size=32, seed=3,
                         data={**TINY_DATA, "drawings": 0.5})
    _, card, _ = train(PRESET, config, store=store)
    val = card["history"]["val"]
    kept = int(np.argmin(val["heads_error"])) if card["training"]["epochs_run"] > 1 else 0
    for head, metric in (("orientation", "accuracy"), ("intensity", "mae")):
        assert val[head][metric][kept] == pytest.approx(card["metrics"]["validation"][head][metric], rel=1e-4)
