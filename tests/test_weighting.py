"""Loss-weighting methods (mtl_core/engine/weighting): each method's formula on hand-made losses, the registry,
and one tiny real training per adaptive method that stores a loadable model and its per-epoch weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mtl_core.control import methods as catalogue
from mtl_core.control.config import make_config
from mtl_core.control.presets import get_preset
from mtl_core.control.store import ModelStore
from mtl_core.errors import UserError

PRESET = get_preset("shapes-3head")
HEADS = ["shape", "orientation", "intensity"]
STATIC = {"shape": 1.0, "orientation": 1.5, "intensity": 0.3}


WEIGHTING_METHODS = catalogue.names()


def test_the_catalogue_read_without_tensorflow_matches_the_method_classes():
    """A method is one file: the catalogue (HELP, OPTIONS literals) and the class it defines agree, and every
    option is a keyword of the class with the catalogue's default."""
    import inspect

    from mtl_core.engine.weighting import get_method, methods

    assert set(catalogue.names()) == set(methods()) >= {"static", "uncertainty", "gradnorm", "dwa", "rlw", "pcgrad"}
    for info in catalogue.methods().values():
        cls = get_method(info.name)
        assert cls.name == info.name and info.help
        params = inspect.signature(cls.__init__).parameters
        for option in info.options:
            assert params[option.name].default == option.default
            assert option.low <= option.default <= option.high
    with pytest.raises(KeyError):
        get_method("nope")


def test_a_new_method_file_is_a_method_everywhere(tmp_path, monkeypatch):
    """Adding a file to the weighting folder is all it takes: the catalogue, the train flags (with the
    method's options) and config validation see it, without importing it."""
    from mtl_core.control import options

    folder = tmp_path / "weighting"
    folder.mkdir()
    for f in catalogue.WEIGHTING_DIR.glob("*.py"):
        (folder / f.name).write_text(f.read_text())
    (folder / "toy.py").write_text('"""A toy method."""\n\nHELP = "a toy"\n'
                                   'OPTIONS = {"beta": (0.5, 0.0, 1.0, "toy strength")}\n')
    monkeypatch.setattr(catalogue, "WEIGHTING_DIR", folder)
    catalogue.methods.cache_clear()
    try:
        assert catalogue.methods()["toy"].help == "a toy"
        _, _, config = options.validate(["--preset", "shapes-3head", "--weighting", "toy", "--toy-beta", "0.25"])
        assert config["weighting"] == "toy" and config["extra"] == {"weighting_options": {"beta": 0.25}}
        with pytest.raises(UserError, match="--toy-beta: 2 is out of range"):
            options.validate(["--preset", "shapes-3head", "--weighting", "toy", "--toy-beta", "2"])
        with pytest.raises(UserError, match="--toy-beta: only for --weighting toy"):
            options.validate(["--preset", "shapes-3head", "--toy-beta", "0.3"])
    finally:
        catalogue.methods.cache_clear()


def test_make_config_refuses_an_unknown_method():
    with pytest.raises(UserError, match="--weighting: unknown method 'magic'"):
        make_config(PRESET, weighting="magic")
    assert make_config(PRESET, weighting="dwa").weighting == "dwa"


# -- formulas on hand-made losses ---------------------------------------------------------------------------


def test_static_is_the_configured_weighted_sum():
    from mtl_core.engine.weighting.static import Static

    method = Static(HEADS, STATIC)
    total = float(method(np.array([2.0, 1.0, 4.0], "float32")))
    assert total == pytest.approx(1.0 * 2 + 1.5 * 1 + 0.3 * 4)
    assert method.end_epoch() == pytest.approx(STATIC)


def test_dwa_equal_weights_for_the_first_two_epochs_then_its_formula():
    from mtl_core.engine.weighting.dwa import dwa_weights

    assert dwa_weights([], k=3) == [1.0, 1.0, 1.0]
    assert dwa_weights([[1.0, 2.0, 3.0]]) == [1.0, 1.0, 1.0]
    history = [[1.0, 2.0, 3.0], [0.5, 2.0, 3.3], [0.4, 1.0, 3.3]]
    r = [0.4 / 0.5, 1.0 / 2.0, 3.3 / 3.3]  # L(t-1) / L(t-2)
    e = [math.exp(x / 2.0) for x in r]
    expected = [3 * x / sum(e) for x in e]
    got = dwa_weights(history, temperature=2.0)
    assert got == pytest.approx(expected)
    assert sum(got) == pytest.approx(3.0)
    assert got[2] > got[0] > got[1]  # the head whose loss fell least gets the most weight


def test_dwa_method_updates_between_epochs_and_multiplies_static_weights():
    from mtl_core.engine.weighting.dwa import DWA, dwa_weights

    method = DWA(HEADS, STATIC)
    epochs = [[[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], [[0.5, 2.0, 3.0], [0.5, 2.0, 3.0]], [[0.5, 1.0, 3.0]]]
    recorded = []
    for steps in epochs:
        for losses in steps:
            method(np.array(losses, "float32"))
        recorded.append(method.end_epoch())
    assert recorded[0] == pytest.approx(STATIC) and recorded[1] == pytest.approx(STATIC)
    adaptive = dwa_weights([[1.0, 2.0, 3.0], [0.5, 2.0, 3.0]])
    assert recorded[2] == pytest.approx({h: STATIC[h] * a for h, a in zip(HEADS, adaptive, strict=True)}, rel=1e-5)


def test_uncertainty_loss_and_its_gradient_with_respect_to_log_variances():
    import tensorflow as tf

    from mtl_core.engine.weighting.uncertainty import Uncertainty, uncertainty_loss

    losses = tf.constant([2.0, 0.5, 1.0])
    s = tf.Variable([0.0, 1.0, -0.5])
    with tf.GradientTape() as tape:
        total = uncertainty_loss(losses, s)
    expected = sum(math.exp(-si) * li + si for li, si in zip([2.0, 0.5, 1.0], [0.0, 1.0, -0.5], strict=True))
    assert float(total) == pytest.approx(expected, rel=1e-6)
    grad = tape.gradient(total, s).numpy()  # d/ds_i = 1 - exp(-s_i) L_i
    assert grad == pytest.approx([1 - 2.0, 1 - math.exp(-1.0) * 0.5, 1 - math.exp(0.5) * 1.0], rel=1e-5)

    # at the optimum exp(s_i) = L_i: a noisier (larger-loss) task ends with a smaller weight exp(-s_i)
    method = Uncertainty(HEADS, {h: 1.0 for h in HEADS})
    var = method.trainable_variables[0]
    for _ in range(300):
        with tf.GradientTape() as tape:
            total = method(np.array([0.2, 1.0, 4.0], "float32"))
        var.assign_sub(0.1 * tape.gradient(total, var))
    weights = method.end_epoch()
    assert weights["shape"] > weights["orientation"] > weights["intensity"]
    assert np.exp(var.numpy()) == pytest.approx([0.2, 1.0, 4.0], rel=0.05)


def test_rlw_weights_positive_sum_to_k_and_reproducible_by_seed():
    from mtl_core.engine.weighting.rlw import RLW, rlw_weights

    a = rlw_weights(0, 1, 3).numpy()
    assert (a > 0).all() and a.sum() == pytest.approx(3.0, rel=1e-6)
    assert rlw_weights(0, 1, 3).numpy() == pytest.approx(a)  # deterministic by (seed, step)
    assert not np.allclose(rlw_weights(1, 1, 3).numpy(), a)  # another seed, other weights
    assert not np.allclose(rlw_weights(0, 2, 3).numpy(), a)  # another step, other weights

    def run(seed):
        method = RLW(HEADS, {h: 1.0 for h in HEADS}, seed=seed)
        return [float(method(np.ones(3, "float32"))) for _ in range(3)], method

    totals, method = run(7)
    assert all(t == pytest.approx(3.0, rel=1e-5) for t in totals)  # unit losses: total = sum of weights = K
    assert run(7)[1].end_epoch() == pytest.approx(method.end_epoch())


# -- one tiny real training per adaptive method ---------------------------------------------------------------


# every method's whole training through the store; in the quick run (``-m "not slow"``) only a loss-weighting
# and a gradient-combining method, since test_one_step_trains_every_weight_of_the_model steps every method
QUICK = ("uncertainty", "famo", "mgda")


@pytest.mark.parametrize("method", [m if m in QUICK else pytest.param(m, marks=pytest.mark.slow)
                                    for m in WEIGHTING_METHODS if m != "static"])
def test_training_with_an_adaptive_method_stores_a_loadable_model_and_its_weights(method, tmp_path):
    from mtl_core.engine.inference import Predictor
    from mtl_core.engine.training import train

    store = ModelStore(root=tmp_path / "models", shipped=None)
    config = make_config(PRESET, data={"source": "generated", "n": 200, "noise": 0.3, "seed": 0},
                         epochs=2, batch_size=32, weighting=method)
    events: list[dict] = []
    model_id, card, cached = train("shapes-3head", config, store=store, subscribers=[events.append])
    assert not cached and card["config"]["weighting"] == method
    weights = card["history"]["loss_weights"]
    assert set(weights) == set(HEADS)
    epochs_run = card["training"]["epochs_run"]
    assert all(len(v) == epochs_run and all(w > 0 and math.isfinite(w) for w in v) for v in weights.values())
    epoch_events = [e for e in events if e["event"] == "epoch"]
    assert [e["loss_weights"] for e in epoch_events] == [{h: weights[h][i] for h in HEADS} for i in range(epochs_run)]
    for split in ("train", "val"):
        assert all(math.isfinite(x) for x in card["history"][split]["loss"])
    if method == "dwa":  # equal adaptive weights in the first two epochs: the static weights
        assert {h: v[0] for h, v in weights.items()} == pytest.approx(STATIC)

    found = store.find(model_id)
    predictor = Predictor([found])
    x = np.random.default_rng(0).random((3, 32, 32, 1)).astype("float32")
    out = predictor.predict_arrays(x)
    assert set(out) == set(HEADS) and all(np.isfinite(v).all() for v in out.values())


def test_method_variables_stay_out_of_the_model_weights():
    """The learned log-variances are not model weights: the float32 inference copy takes get_weights() as is."""
    import keras

    from mtl_core.control.modelspec import ModelSpec
    from mtl_core.engine.models.builder import build_model
    from mtl_core.engine.weighting.model import AdaptiveModel
    from mtl_core.engine.weighting.uncertainty import Uncertainty

    spec = ModelSpec.from_dict(PRESET.model.to_dict())
    tasks = {h.task: PRESET.task(h.task) for h in spec.heads}
    net = build_model(spec, tasks)
    model = AdaptiveModel(net.input, dict(zip(net.output_names, net.outputs, strict=True)))
    model.setup(Uncertainty(list(tasks), {}), {h: t.loss for h, t in tasks.items()}, keras.optimizers.Adam)
    assert [w.path for w in model.weights] == [w.path for w in net.weights]
    build_model(spec, tasks).set_weights(model.get_weights())


def test_pcgrad_projects_conflicting_gradients_to_non_negative_inner_products():
    import tensorflow as tf

    from mtl_core.engine.weighting.pcgrad import pcgrad_project

    grads = tf.constant([[1.0, 0.0], [-1.0, 1.0]])  # g1 . g2 = -1: a conflict
    projected = pcgrad_project(grads).numpy()
    assert projected[0] @ grads.numpy()[1] >= -1e-6 and projected[1] @ grads.numpy()[0] >= -1e-6
    assert projected[0] == pytest.approx([0.5, 0.5]) and projected[1] == pytest.approx([0.0, 1.0])
    agreeing = tf.constant([[1.0, 0.0], [1.0, 1.0]])
    assert pcgrad_project(agreeing).numpy() == pytest.approx(agreeing.numpy())  # no conflict, no change


def test_gradnorm_moves_weights_toward_equal_gradient_norms():
    import tensorflow as tf

    from mtl_core.engine.weighting.gradnorm import gradnorm_weight_gradient

    norms = tf.constant([1.0, 4.0, 2.0])  # |grad_W L_i| of three heads training at the same rate
    ratios = tf.ones(3)
    w = tf.ones(3)
    spread = float(tf.math.reduce_std(w * norms))
    for _ in range(50):
        w = w - 0.02 * gradnorm_weight_gradient(w, norms, ratios, alpha=1.5)
        w = 3.0 * w / tf.reduce_sum(w)  # renormalised to sum K, as after every step
    assert float(tf.math.reduce_std(w * norms)) < 0.2 * spread
    assert float(w[0]) > float(w[2]) > float(w[1])  # the smallest gradient norm earns the largest weight
    # a head that trains slower (larger loss ratio) gets a larger target norm, hence more weight
    slow = gradnorm_weight_gradient(tf.ones(2), tf.constant([1.0, 1.0]), tf.constant([1.5, 0.5]), alpha=1.5)
    assert float(slow[0]) < 0 < float(slow[1])


# -- the gradient-combining methods and FAMO: hand-computed cases ----------------------------------------------


def _gram(rows):
    import tensorflow as tf

    from mtl_core.engine.weighting.combine import gram

    return gram(tf.constant(rows, tf.float32))


def test_mgda_finds_the_minimum_norm_point_of_the_gradients_hull():
    from mtl_core.engine.weighting.combine import min_norm_weights

    # two heads: a1 = (g2 - g1).g2 / |g1 - g2|^2 = ((-2, 1).(-1, 1)) / 5 = 3/5
    assert min_norm_weights(_gram([[1.0, 0.0], [-1.0, 1.0]])).numpy() == pytest.approx([0.6, 0.4], abs=1e-6)
    # three heads: the third only adds length (its extra axis), so the point is (g1 + g2) / 2
    rows = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 1.0]])
    a = min_norm_weights(_gram(rows)).numpy()
    assert a == pytest.approx([0.5, 0.5, 0.0], abs=1e-5)
    # a gradient inside the others' hull's far side: all weight on the shortest
    assert min_norm_weights(_gram([[1.0, 0.0], [3.0, 0.0]])).numpy() == pytest.approx([1.0, 0.0], abs=1e-6)


def test_cagrad_matches_a_brute_force_solution_of_its_dual():
    from mtl_core.engine.weighting.cagrad import cagrad_weights

    rng = np.random.default_rng(3)
    for rows, c in [(np.array([[1.0, 0.0], [-1.0, 1.0]]), 0.5), (rng.normal(size=(2, 6)) * [[1.0], [4.0]], 0.4)]:
        g0, phi = rows.mean(axis=0), c * c * float(rows.mean(axis=0) @ rows.mean(axis=0))
        t = np.linspace(0.0, 1.0, 200001)[:, None]
        gw = t * rows[0] + (1 - t) * rows[1]
        objective = gw @ g0 + np.sqrt(phi) * np.linalg.norm(gw, axis=1)
        best = gw[np.argmin(objective)]
        expected = g0 + np.sqrt(phi) * best / np.linalg.norm(best)
        d = cagrad_weights(_gram(rows), c).numpy() @ rows
        assert d == pytest.approx(expected, abs=2e-3)
    # c = 0 is the average gradient
    assert cagrad_weights(_gram([[1.0, 0.0], [-1.0, 1.0]]), 0.0).numpy() == pytest.approx([0.5, 0.5])


def test_nash_mtl_solves_the_bargaining_condition():
    from mtl_core.engine.weighting.nash_mtl import nash_weights

    # orthogonal gradients of lengths 2 and 1: a_i = 1 / |g_i|, and the update is (1, 1)
    a = nash_weights(_gram([[2.0, 0.0], [0.0, 1.0]])).numpy()
    assert a == pytest.approx([0.5, 1.0], abs=1e-5)
    rows = np.array([[1.0, 0.0, 0.2], [-1.0, 1.0, 0.0], [0.3, 0.3, 1.0]])
    a = nash_weights(_gram(rows)).numpy()
    m = rows @ rows.T
    assert (a > 0).all() and m @ a == pytest.approx(1.0 / a, rel=1e-4)  # G G^T a = 1/a
    # invariant to a head's gradient scale: its weight scales inversely, the update stays
    scaled = rows * [[10.0], [1.0], [1.0]]
    b = nash_weights(_gram(scaled)).numpy()
    assert b @ scaled == pytest.approx(a @ rows, rel=1e-4)


def test_aligned_mtl_makes_the_gradients_orthogonal_and_of_one_length():
    import tensorflow as tf

    from mtl_core.engine.weighting.aligned_mtl import aligned_weights

    # orthogonal gradients of lengths 2 and 1: both scaled to length sigma_min = 1, the update is (1, 1)
    assert aligned_weights(_gram([[2.0, 0.0], [0.0, 1.0]]), tf.ones(2)).numpy() == pytest.approx([0.5, 1.0])
    rows = np.array([[1.0, 0.0, 0.0], [-0.8, 0.6, 0.0], [0.1, 0.1, 2.0]])
    columns = [aligned_weights(_gram(rows), tf.one_hot(i, 3)).numpy() for i in range(3)]
    aligned = np.stack(columns) @ rows  # row i: the aligned gradient g'_i
    sigma_min = np.linalg.svd(rows, compute_uv=False).min()
    assert aligned @ aligned.T == pytest.approx(sigma_min ** 2 * np.eye(3), abs=1e-4)


def test_imtl_update_projects_equally_on_every_heads_direction():
    from mtl_core.engine.weighting.imtl import imtl_weights

    # g1 = (1, 0), g2 = (0, 2): a = (2/3, 1/3) gives (2/3, 2/3), projection 2/3 on both unit vectors
    assert imtl_weights(_gram([[1.0, 0.0], [0.0, 2.0]])).numpy() == pytest.approx([2 / 3, 1 / 3], abs=1e-6)
    rows = np.random.default_rng(1).normal(size=(3, 5))
    a = imtl_weights(_gram(rows)).numpy()
    g = a @ rows
    projections = [g @ r / np.linalg.norm(r) for r in rows]
    assert a.sum() == pytest.approx(1.0) and projections == pytest.approx([projections[0]] * 3, rel=1e-4)


def test_famo_weights_and_its_logit_update_by_hand():
    from keras import ops

    from mtl_core.engine.weighting.famo import famo_logit_gradient, famo_weights

    # equal logits: weights proportional to 1 / L, scaled to sum K
    w = ops.convert_to_numpy(famo_weights(ops.zeros(2), ops.convert_to_tensor([1.0, 3.0])))
    assert w == pytest.approx([1.5, 0.5], rel=1e-6)
    # head 1's log loss fell by log 2, head 2's not at all: z = (1/2, 1/2), delta = (log 2, 0),
    # J^T delta = z * (delta - z.delta) = (log 2 / 4, -log 2 / 4): descent lowers head 1's logit
    grad = ops.convert_to_numpy(famo_logit_gradient(ops.zeros(2), ops.convert_to_tensor([2.0, 1.0]),
                                                    ops.convert_to_tensor([1.0, 1.0]), gamma=0.0))
    assert grad == pytest.approx([math.log(2) / 4, -math.log(2) / 4], rel=1e-5)
    decay = ops.convert_to_numpy(famo_logit_gradient(ops.convert_to_tensor([1.0, -1.0]), ops.ones(2), ops.ones(2),
                                                     gamma=0.1))
    assert decay == pytest.approx([0.1, -0.1], rel=1e-5)  # no change in the losses: only the decay


@pytest.mark.parametrize("method", [m for m in WEIGHTING_METHODS if m != "static"])
def test_one_step_trains_every_weight_of_the_model(method):
    """Each method's train step gives every weight a gradient: the backbone, every head's own layers, the
    detached intensity head's too (a sum of the heads' losses taken outside the tape once gave the heads' own
    weights silent zeros). On the seed's head C, which reads the backbone's end: with the preset's, branched
    after the first block, MGDA's min-norm combination can be intensity's gradient alone for a step, which
    rightly leaves the later backbone layers where they are."""
    import keras

    from mtl_core.engine.models.builder import build_model
    from mtl_core.engine.weighting import get_method
    from mtl_core.engine.weighting.model import AdaptiveModel

    keras.utils.set_random_seed(0)
    spec = PRESET.model.with_options(detach={"intensity": True}, branch_at={"intensity": None})
    tasks = {h.task: PRESET.task(h.task) for h in spec.heads}
    net = build_model(spec, tasks)
    model = AdaptiveModel(net.input, dict(zip(net.output_names, net.outputs, strict=True)))
    model.setup(get_method(method)(list(tasks), STATIC), {h: t.loss for h, t in tasks.items()},
                lambda: keras.optimizers.Adam(1e-3))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss={h: t.loss for h, t in tasks.items()})
    data = PRESET.load_data({"source": "generated", "n": 64, "noise": 0.3, "seed": 0})
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(data.x, {h: data.y[h] for h in tasks}, batch_size=64, epochs=1, verbose=0)
    moved = {w.path for w, b in zip(model.trainable_weights, before, strict=True) if not np.allclose(w.numpy(), b)}
    assert moved == {w.path for w in model.trainable_weights}
