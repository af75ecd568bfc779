"""The gradient-conflict monitor (mtl_core/engine/conflict.py): cosines between the heads' backbone gradients,
per-head gradient norms, in epoch events and the card."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mtl_core.control.config import make_config
from mtl_core.control.presets import get_preset
from mtl_core.control.store import ModelStore


def _two_head_model():
    """A shared dense feature read by two heads that cannot change it (their kernels frozen at 1)."""
    import keras

    inputs = keras.Input((3,), name="input")
    feature = keras.layers.Dense(1, name="backbone_0_dense")(inputs)
    outs = {name: keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros", trainable=False,
                                     name=name)(feature) for name in ("up", "down")}
    return keras.Model(inputs, outs)


def test_opposing_tasks_give_a_negative_cosine_and_agreeing_ones_positive():
    import keras

    from mtl_core.engine.conflict import ConflictMonitor, pair_key

    keras.utils.set_random_seed(0)
    model = _two_head_model()
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    t = x @ np.array([1.0, -2.0, 0.5], "float32")
    opposing = ConflictMonitor(model, ["up", "down"], {"up": "mse", "down": "mse"}, x, {"up": t, "down": -t})
    figures = opposing.measure()
    assert figures["cosine"][pair_key("up", "down")] < -0.5  # one head's step is the other's loss
    assert all(v > 0 for v in figures["norm"].values())
    agreeing = ConflictMonitor(model, ["up", "down"], {"up": "mse", "down": "mse"}, x, {"up": t, "down": 1.1 * t})
    assert agreeing.measure()["cosine"][pair_key("up", "down")] > 0.9


def test_training_records_conflict_per_epoch_in_events_and_card(tmp_path):
    """shapes-3head with the seed's head C (behind a stop-gradient on the backbone's end): the shape/orientation
    cosine per epoch in [-1, 1]; the detached intensity head has norm 0, no cosine, and is named; the monitor's
    cost is reported."""
    from mtl_core.engine.training import train

    store = ModelStore(root=tmp_path / "models", shipped=None)
    preset = get_preset("shapes-3head")
    seeds = preset.model.with_options(detach={"intensity": True}, branch_at={"intensity": None})
    config = make_config(preset, data={"source": "generated", "n": 200, "noise": 0.3, "seed": 0},
                         epochs=2, batch_size=32, model=seeds.to_dict())
    events: list[dict] = []
    _, card, _ = train("shapes-3head", config, store=store, subscribers=[events.append])
    gradients = card["history"]["gradients"]
    epochs = card["training"]["epochs_run"]
    pair = "shape ~ orientation"
    assert len(gradients["cosine"][pair]) == epochs
    assert all(-1.0 <= c <= 1.0 for c in gradients["cosine"][pair])
    assert gradients["cosine"]["shape ~ intensity"] == [None] * epochs
    assert gradients["norm"]["intensity"] == [0.0] * epochs and gradients["detached"] == ["intensity"]
    assert all(n > 0 and math.isfinite(n) for n in gradients["norm"]["shape"])
    assert 0 < gradients["share_of_training"] < 1 and gradients["batch"] == 64
    per_epoch = [e["gradients"] for e in events if e["event"] == "epoch"]
    assert [g["cosine"][pair] for g in per_epoch] == gradients["cosine"][pair]


@pytest.mark.parametrize("weighting", ["static", "famo"])
def test_a_table_preset_and_an_adaptive_method_are_monitored_too(weighting, tmp_path):
    from mtl_core.engine.training import train

    store = ModelStore(root=tmp_path / "models", shipped=None)
    config = make_config(get_preset("churn-spend"), data={"source": "generated", "n": 300, "seed": 0},
                         epochs=2, batch_size=64, weighting=weighting)
    _, card, _ = train("churn-spend", config, store=store)
    cosine = card["history"]["gradients"]["cosine"]["churn ~ spend"]
    assert len(cosine) == card["training"]["epochs_run"] and all(-1.0 <= c <= 1.0 for c in cosine)


def test_the_reading_and_the_chart_of_the_figures():
    from mtl_core.views import charts, conflict

    gradients = {"cosine": {"a ~ b": [0.4, -0.25, -0.1], "a ~ c": [None, None, None]},
                 "norm": {"a": [1.0, 2.0, 3.0], "b": [0.5, 0.5, 0.4], "c": [0.0, 0.0, 0.0]}, "detached": ["c"]}
    assert conflict.summary(gradients) == [
        "a ~ b: conflict in 2 of 3 epochs (lowest -0.25, last -0.10)",
        "c: detached from the backbone (stop-gradient), so it cannot conflict"]
    fig = charts.gradient_conflict(gradients, [1, 2, 3])
    names = [t.name for t in fig.data]
    assert names == ["a ~ b", "a", "b"]  # no line for the pair without values, none for the zero norm
    assert tuple(fig.layout.yaxis.range) == (-1.05, 1.05) and fig.layout.yaxis2.type == "log"
    [shaded] = [s for s in fig.layout.shapes if s.type == "rect"]  # the conflict side, below 0
    assert (shaded.y0, shaded.y1) == (-1.05, 0)


def test_models_page_shows_the_conflict_of_a_trained_model(tiny_store, monkeypatch):
    from streamlit.testing.v1 import AppTest

    store, model_id, _ = tiny_store
    monkeypatch.setenv("MTL_HOME", str(store.root.parent))
    at = AppTest.from_file("../app.py", default_timeout=90)
    at.session_state["preset"] = "shapes-3head"
    at.run()
    at.switch_page("pages/models.py").run()
    assert not at.exception, [e.value for e in at.exception]
    reading = next(c.value for c in at.caption if "Cosine of two heads' loss gradients" in c.value)
    # every pair: the preset's intensity head now trains the backbone's first block with the others
    assert all(pair in reading for pair in ("shape ~ orientation", "shape ~ intensity", "orientation ~ intensity"))


# ----------------------------------------------------------------------------- a head that stopped learning


def test_a_head_is_stalled_once_its_output_has_been_the_same_for_two_epochs_in_a_row():
    from mtl_core.engine.conflict import stalled_since

    assert stalled_since([]) is None
    assert stalled_since([0.8, 0.0]) is None  # one epoch could be a passing state
    assert stalled_since([0.8, 0.0, 0.0]) == 2
    assert stalled_since([0.0, 0.0, 0.0, 0.0]) == 1
    assert stalled_since([0.8, 0.0, 0.0, 0.3]) is None  # it tells inputs apart again
    assert stalled_since([0.5, 3e-7, 1e-9]) == 2  # below 1e-6 is float noise around one answer


def _kill_the_shape_heads_units(monkeypatch):
    """Every model the trainer builds gets a shape head whose hidden units never fire (bias -1e4): what the seed-42
    float32 training of shapes-3head came to by its third epoch, planted from the start."""
    from mtl_core.engine.models import builder

    real = builder.build_model

    def build(*args, **kwargs):
        model = real(*args, **kwargs)
        dense = model.get_layer("shape_hidden_0_dense")
        kernel, bias = dense.get_weights()
        dense.set_weights([kernel, np.full_like(bias, -1e4)])
        return model

    monkeypatch.setattr(builder, "build_model", build)


def test_a_head_that_stopped_learning_is_said_while_training_and_kept_in_the_card(tmp_path, monkeypatch):
    import io

    from mtl_core.control.progress import ProgressBar
    from mtl_core.engine.training import train

    _kill_the_shape_heads_units(monkeypatch)
    store = ModelStore(root=tmp_path / "models", shipped=None)
    config = make_config(get_preset("shapes-3head"), data={"source": "generated", "n": 200, "noise": 0.3, "seed": 0},
                         epochs=3, batch_size=32)
    events: list[dict] = []
    printed = io.StringIO()
    model_id, card, _ = train("shapes-3head", config, store=store, subscribers=[events.append, ProgressBar(printed)])

    spreads = card["history"]["gradients"]["spread"]
    assert all(s < 1e-6 for s in spreads["shape"])  # the same probabilities for every image
    assert all(s > 1e-3 for s in spreads["orientation"] + spreads["intensity"])  # the healthy heads tell them apart
    warnings = [e for e in events if e["event"] == "warning"]
    assert [(w["kind"], w["head"], w["epoch"]) for w in warnings] == [("stalled_head", "shape", 1)]  # said once
    said_after = [e["epoch"] for e in events if e["event"] == "epoch" and events.index(e) < events.index(warnings[0])]
    assert said_after == [1, 2]  # as soon as two epochs show it, not at the end
    assert card["training"]["warnings"] == [{k: v for k, v in warnings[0].items() if k != "event"}]
    assert "warning: head 'shape' has given the same output for every input since epoch 1" in printed.getvalue()

    # such a model still predicts: its dead head's features never varied, which the novelty check must survive
    from _images import save_png, shapes

    from mtl_core.engine.inference import Predictor

    image = save_png(shapes(1)[0][0], tmp_path / "a.png")
    [item] = Predictor(store.find(model_id)).predict([image]).items
    assert "error" not in item, item.get("error")
    assert set(item["outputs"]) == {"shape", "orientation", "intensity"}


def test_a_healthy_training_warns_of_nothing(tiny_store):
    _, _, card = tiny_store
    assert card["training"]["warnings"] == []
    assert all(s > 1e-3 for spreads in card["history"]["gradients"]["spread"].values() for s in spreads)


def test_the_models_and_predict_pages_say_which_head_stopped_learning(tiny_store, monkeypatch, tmp_path):
    import json
    import shutil

    from streamlit.testing.v1 import AppTest

    store, model_id, _ = tiny_store
    home = tmp_path / "home"
    shutil.copytree(store.root / model_id, home / "models" / model_id)
    card_file = home / "models" / model_id / "card.json"
    card = json.loads(card_file.read_text())
    card["training"]["warnings"] = [{"kind": "stalled_head", "head": "shape", "epoch": 3,
                                     "message": "head 'shape' has given the same output for every input since "
                                                "epoch 3: it has stopped learning"}]
    card_file.write_text(json.dumps(card))
    monkeypatch.setenv("MTL_HOME", str(home))
    at = AppTest.from_file("../app.py", default_timeout=90)
    at.session_state["preset"] = "shapes-3head"
    at.run()
    at.switch_page("pages/models.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(w.value.startswith("While training: head 'shape' has given the same output")
               for w in at.warning)
    picked = at.selectbox(key="models-model-shapes-3head")
    assert any(str(o).startswith("⚠ shape stopped learning · ") for o in picked.options)  # said in the picker too

    at.switch_page("pages/predict.py").run()
    at.session_state["predict-tabs-image"] = "Samples from the test split"
    at.run()
    next(b for b in at.button if b.key and b.key.startswith("pick-")).click().run()
    assert not at.exception, [e.value for e in at.exception]
    said = [w.value for w in at.warning if "stopped learning" in w.value]
    assert said == ["This head stopped learning at epoch 3 of its training: it gives the same answer for every "
                    "input. Retrain with another seed."]  # in the shape head's panel only
