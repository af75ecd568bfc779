"""Training: progress events and the event file, config validation, seed ensembles with soft voting,
and that the seed's architecture really learns every head (the one slow test)."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from mtl_core.control.config import TrainConfig, make_config
from mtl_core.control.loss_weights import parse_loss_weights
from mtl_core.control.presets import get_preset
from mtl_core.control.store import ModelStore
from mtl_core.errors import UserError

PRESET = get_preset("shapes-3head")
PRIMARY = {"shape": "accuracy", "orientation": "accuracy", "intensity": "mae"}


# -- one real training: seed 2 of a two-seed ensemble whose seed 1 is the session's tiny model --------------


@pytest.fixture(scope="module")
def ensemble_run(tiny_store, tmp_path_factory):
    from mtl_core.control.progress import EventFile
    from mtl_core.engine.ensemble import train_ensemble

    tiny, tiny_id, tiny_card = tiny_store
    home = tmp_path_factory.mktemp("ensemble")
    store = ModelStore(root=home / "models", shipped=None)
    store.root.mkdir()
    shutil.copytree(tiny.find(tiny_id).path, store.root / tiny_id)  # seed 1 is already trained
    config = TrainConfig.from_dict(tiny_card["config"])
    events: list[dict] = []
    event_file = home / "events.jsonl"
    event_file.write_text(json.dumps({"event": "written before"}) + "\n")
    result = train_ensemble(config, [1, 2], {"orientation": 0.0}, store=store,
                            subscribers=[events.append, EventFile(str(event_file))])
    return {"store": store, "config": config, "result": result, "events": events, "event_file": event_file,
            "tiny_id": tiny_id}


def test_training_emits_start_batches_epochs_and_end(ensemble_run):
    events = ensemble_run["events"]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert kinds.count("start") == 1 and kinds.count("end") == 1  # seed 1 was cached: one training only
    config = ensemble_run["config"]
    start = events[0]
    assert start["preset"] == "shapes-3head" and start["epochs"] == config.epochs
    assert sum(start["sizes"].values()) == config.data["n"]
    assert start["device"]["kind"] in ("CPU", "GPU")

    epochs = [e for e in events if e["event"] == "epoch"]
    end = events[-1]
    assert [e["epoch"] for e in epochs] == list(range(1, end["epochs_run"] + 1))
    assert end["epochs_run"] == config.epochs  # 2 epochs, far below the early-stopping patience
    for e in epochs:
        assert e["epochs"] == config.epochs and e["lr"] > 0 and e["seconds"] >= 0
        for split in ("train", "val"):
            for head, metric in PRIMARY.items():
                value = e[split][head][metric]
                assert isinstance(value, float) and math.isfinite(value), (split, head, e[split])
        assert 0 <= e["val"]["shape"]["accuracy"] <= 1 and e["val"]["intensity"]["mae"] >= 0

    batches = [e for e in events if e["event"] == "batch"]
    for number in range(1, config.epochs + 1):
        mine = [b for b in batches if b["epoch"] == number]
        assert mine, f"no batch event in epoch {number}"
        assert all(b["batch"] >= 1 and b["batches"] == start["batches"] for b in mine)
        assert all(b["epochs"] == config.epochs and math.isfinite(b["loss"]) for b in mine)
        # batch events of an epoch come before its epoch event
        assert kinds.index("epoch", events.index(mine[-1])) == events.index(epochs[number - 1])
    for head, metric in PRIMARY.items():
        assert metric in end["metrics"][head]


def test_batch_events_count_up_to_the_number_of_batches(ensemble_run):
    events = ensemble_run["events"]
    batches = [e for e in events if e["event"] == "batch"]
    for number in range(1, ensemble_run["config"].epochs + 1):
        mine = [b["batch"] for b in batches if b["epoch"] == number]
        assert mine == sorted(mine)
        assert all(1 <= b <= events[0]["batches"] for b in mine), mine
        assert mine[-1] == events[0]["batches"], mine  # the bar reaches 100% at the end of each epoch


def test_event_file_holds_one_json_object_per_line(ensemble_run):
    lines = ensemble_run["event_file"].read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records[0] == {"event": "written before"}  # appended, not overwritten
    written = records[1:]
    assert [r["event"] for r in written] == [e["event"] for e in ensemble_run["events"]]
    assert all(isinstance(r["time"], float) for r in written)
    times = [r["time"] for r in written]
    assert times == sorted(times)
    assert written[-1]["metrics"] == json.loads(json.dumps(ensemble_run["events"][-1]["metrics"]))


# -- seed ensembles ----------------------------------------------------------------------------------------


def test_ensemble_keeps_every_seed_that_passes(ensemble_run):
    result = ensemble_run["result"]
    assert len(result.kept) == 2 and result.dropped == []
    assert result.kept[0] == ensemble_run["tiny_id"]
    assert result.kept[1] != result.kept[0]
    assert result.members[result.kept[0]]["cached"] is True
    assert result.members[result.kept[1]]["cached"] is False
    assert [result.members[k]["seed"] for k in result.kept] == [1, 2]
    card = ensemble_run["store"].find(result.kept[1]).card
    assert card["config"]["seed"] == 2
    assert result.members[result.kept[1]]["validation"]["orientation"]["accuracy"] == \
        card["metrics"]["validation"]["orientation"]["accuracy"]


@pytest.mark.parametrize("thresholds", [{"shape": 1.01}, {"intensity": -0.01}, {"orientation": 0.0, "shape": 1.01}])
def test_ensemble_with_an_impossible_threshold_keeps_none(ensemble_run, thresholds):
    from mtl_core.engine.ensemble import train_ensemble

    events: list[dict] = []
    result = train_ensemble(ensemble_run["config"], [1, 2], thresholds, store=ensemble_run["store"],
                            subscribers=[events.append])
    assert result.kept == []
    assert result.dropped == ensemble_run["result"].kept
    assert events == []  # both seeds were cached
    assert all(m["cached"] and not m["kept"] for m in result.members.values())


def test_ensemble_refuses_unknown_heads_and_no_seeds(ensemble_run):
    from mtl_core.engine.ensemble import train_ensemble

    with pytest.raises(UserError, match="colour"):
        train_ensemble(ensemble_run["config"], [1], {"colour": 0.5}, store=ensemble_run["store"])
    with pytest.raises(UserError, match="seed"):
        train_ensemble(ensemble_run["config"], [], {}, store=ensemble_run["store"])


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    from mtl_core.control.data.shapes import generate_shapes

    x, _ = generate_shapes(n=24, seed=11, noise=0.3)
    return x


def test_ensemble_predictor_averages_its_members(ensemble_run, images):
    from mtl_core.engine.inference import Predictor

    store = ensemble_run["store"]
    members = [store.find(i) for i in ensemble_run["result"].kept]
    both = Predictor(members).predict_arrays(images[..., None])
    singles = [Predictor(m).predict_arrays(images[..., None]) for m in members]
    assert set(both) == {"shape", "orientation", "intensity"}
    for head in both:
        np.testing.assert_allclose(both[head], (singles[0][head] + singles[1][head]) / 2, atol=1e-6)
    assert not np.allclose(singles[0]["shape"], singles[1]["shape"])  # two different models


def test_predict_fn_with_an_ensemble_gives_indices_and_values(ensemble_run, images):
    from mtl_core.engine.inference import Predictor, predict_fn

    store = ensemble_run["store"]
    ids = ensemble_run["result"].kept
    out = predict_fn(images, model=",".join(ids), store=store)
    assert out.shape == (len(images), 3)
    shape_idx, orient_idx, intensity = out[:, 0], out[:, 1], out[:, 2]
    np.testing.assert_array_equal(shape_idx, np.round(shape_idx))
    np.testing.assert_array_equal(orient_idx, np.round(orient_idx))
    assert shape_idx.min() >= 0 and shape_idx.max() <= 9
    assert orient_idx.min() >= 0 and orient_idx.max() <= 31
    assert intensity.min() >= 0 and intensity.max() <= 1
    mean = Predictor([store.find(i) for i in ids]).predict_arrays(images[..., None])
    np.testing.assert_array_equal(shape_idx, mean["shape"].argmax(axis=1))
    np.testing.assert_allclose(intensity, mean["intensity"], atol=1e-6)


# -- configuration checks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "field"), [
    ({"loss_weights": {"shape": -1.0}}, "--loss-weights"),
    ({"loss_weights": {"shape": float("nan")}}, "--loss-weights"),
    ({"loss_weights": {"orientation": float("inf")}}, "--loss-weights"),
    ({"loss_weights": {"shape": 0.0, "orientation": 0.0, "intensity": 0.0}}, "--loss-weights"),
    ({"loss_weights": {"colour": 1.0}}, "--loss-weights"),
    ({"epochs": 0}, "--epochs"),
    ({"epochs": -3}, "--epochs"),
    ({"batch_size": 0}, "--batch-size"),
    ({"weighting": "magic"}, "--weighting"),
    ({"lr": 0.0}, "--lr"),
    ({"limit": 3}, "--limit"),
])
def test_make_config_refuses_bad_options(overrides, field):
    with pytest.raises(UserError) as info:
        make_config(PRESET, **overrides)
    message = str(info.value)
    assert message.startswith(field) and "\n" not in message


def test_make_config_accepts_zero_for_some_heads_and_keeps_defaults_otherwise():
    config = make_config(PRESET, loss_weights={"shape": 0.0}, epochs=3)
    assert config.loss_weights == {"shape": 0.0, "orientation": 1.5, "intensity": 0.3}
    assert config.epochs == 3 and config.batch_size == PRESET.train.batch_size
    assert config.weighting == "static" and config.seed == TrainConfig.seed


@pytest.mark.parametrize("text", ["shape", "shape=abc", "=1"])
def test_parse_loss_weights_refuses_malformed_text(text):
    with pytest.raises(UserError, match="--loss-weights"):
        parse_loss_weights(text)


def test_parse_loss_weights_reads_pairs():
    assert parse_loss_weights(" shape=1, orientation=1.5 ,") == {"shape": 1.0, "orientation": 1.5}


# -- learnability (slow: ~20-30 s on 2 CPU cores) ----------------------------------------------------------


def test_seed_architecture_learns_every_head_on_a_short_run():
    from mtl_core.control.datasets import load_training_data
    from mtl_core.engine.training import Trainer

    config = make_config(PRESET, data={"source": "generated", "n": 1500, "noise": 0.3, "seed": 0},
                         epochs=4, batch_size=32, seed=0)
    assert config.model == PRESET.model.to_dict()
    result = Trainer(PRESET, config).run(load_training_data(PRESET, config))
    test = result.card["metrics"]["test"]
    assert test["shape"]["accuracy"] >= 0.3, test["shape"]  # chance 0.1
    assert test["orientation"]["accuracy"] >= 0.15, test["orientation"]  # chance 1/32
    assert test["intensity"]["mae"] < 0.9 * test["intensity"]["baseline_mae"], test["intensity"]
    # the preset monitors every head (--monitor heads): the kept weights are those of that figure's best epoch
    val = result.card["history"]["val"]
    assert config.monitor == "heads" and len(val["heads_error"]) == 4
    best = int(np.argmin(val["heads_error"]))
    kept = result.card["metrics"]["validation"]
    for head, metric in PRIMARY.items():
        assert kept[head][metric] == pytest.approx(val[head][metric][best], abs=1e-4), head


# -- options: GradNorm's alpha, freezing a pretrained backbone, several devices ------------------------------


def test_gradnorm_alpha_reaches_the_config_and_changes_the_model_id():
    plain = make_config(PRESET, weighting="gradnorm")
    strong = make_config(PRESET, weighting="gradnorm", weighting_options={"alpha": 0.5})
    assert strong.extra == {"weighting_options": {"alpha": 0.5}}
    assert plain.model_id("d") != strong.model_id("d")


def test_freeze_rewrites_the_pretrained_step_only():
    spec = get_preset("cifar10-aqi").model
    frozen = spec.with_freeze(0.25)
    assert frozen.pretrained_steps == ["app:mobilenetv2:0.25"]
    assert [s for s in frozen.backbone if not s.startswith("app:")] == \
        [s for s in spec.backbone if not s.startswith("app:")]
    with pytest.raises(ValueError, match="no pretrained network"):
        PRESET.model.with_freeze(0.5)


MIRRORED_SCRIPT = r"""
import json, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from mtl_core.control.config import make_config
from mtl_core.control.presets import get_preset
from mtl_core.engine.training import Trainer
from mtl_core.control.datasets import load_training_data
preset = get_preset("shapes-3head")
config = make_config(preset, data={"source": "generated", "n": 240, "noise": 0.3, "seed": 0}, epochs=1,
                     batch_size=32, weighting=WEIGHTING)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
result = Trainer(preset, config, strategy=strategy).run(load_training_data(preset, config))
print(json.dumps({"device": result.card["training"]["device"], "test": result.card["metrics"]["test"]["shape"]}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("weighting", ["static", "uncertainty", "mgda"])
def test_training_under_a_mirrored_strategy_with_two_replicas(weighting):
    """What several GPUs get (MirroredStrategy), on two logical CPU devices: trains with any weighting method
    (tests/test_replicas.py checks they train what one device trains), and the card says so. The test passes
    the strategy in; on a machine with several GPUs, device.distribution_strategy picks it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    script = MIRRORED_SCRIPT.replace("WEIGHTING", repr(weighting))
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["device"]["strategy"] == "MirroredStrategy" and out["device"]["replicas"] == 2
    assert "note" not in out["device"]
    assert 0.0 <= out["test"]["accuracy"] <= 1.0
