"""The model store: atomic saves, config-hash cache hits, what a saved model holds, shipped models,
and the errors users see when a model cannot be found."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from mtl_core.control.store import ModelStore
from mtl_core.errors import UserError

PRESET = "shapes-3head"
SMALL_DATA = {"source": "generated", "n": 200, "noise": 0.3, "seed": 0}


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in root.iterdir()] if root.exists() else []


def _copy_model(src: Path, dest_root: Path, name: str | None = None, **card_changes) -> Path:
    dest = dest_root / (name or src.name)
    shutil.copytree(src, dest)
    if card_changes or name:
        card = json.loads((dest / "card.json").read_text())
        card.update({"id": dest.name, **card_changes})
        (dest / "card.json").write_text(json.dumps(card))
    return dest


@pytest.fixture(scope="module")
def small_model():
    from mtl_core.control.presets import get_preset
    from mtl_core.engine.models.builder import build_model

    preset = get_preset(PRESET)
    return build_model(preset.model, preset.tasks_by_name, 0.5, 0.25)


# -- atomic writes -----------------------------------------------------------------------------------------


def _fail_hash(path):
    raise OSError("disk full while hashing")


class _FailingJson:
    @staticmethod
    def dumps(*args, **kwargs):
        raise OSError("disk full while writing card.json")

    loads = staticmethod(json.loads)


@pytest.mark.parametrize("where", ["hash", "card", "interrupt"])
def test_a_failed_save_leaves_nothing_behind(tmp_path, monkeypatch, small_model, where):
    import mtl_core.control.store as store_mod

    root = tmp_path / "models"
    store = ModelStore(root=root, shipped=None)
    if where == "hash":
        monkeypatch.setattr(store_mod, "sha256_file", _fail_hash)
        expected = OSError
    elif where == "card":
        monkeypatch.setattr(store_mod, "json", _FailingJson)
        expected = OSError
    else:
        def interrupt(path):
            raise KeyboardInterrupt

        monkeypatch.setattr(store_mod, "sha256_file", interrupt)
        expected = KeyboardInterrupt
    with pytest.raises(expected):
        store.save(f"{PRESET}-000000000000", small_model, {"preset": PRESET})
    assert _leftovers(root) == []
    assert store.find(f"{PRESET}-000000000000") is None
    assert store.list() == []


def test_a_successful_save_leaves_only_the_model_folder(tmp_path, small_model):
    root = tmp_path / "models"
    store = ModelStore(root=root, shipped=None)
    card = store.save(f"{PRESET}-111111111111", small_model, {"preset": PRESET, "note": "first"})
    assert _leftovers(root) == [f"{PRESET}-111111111111"]
    assert sorted(p.name for p in (root / card["id"]).iterdir()) == ["card.json", "model.keras"]
    # Saving the same id again (a concurrent run of the same config) keeps the first and leaves no temp folder.
    again = store.save(f"{PRESET}-111111111111", small_model, {"preset": PRESET, "note": "second"})
    assert again["note"] == "first"
    assert _leftovers(root) == [f"{PRESET}-111111111111"]


# -- cache hits --------------------------------------------------------------------------------------------


def test_same_config_is_a_cache_hit_and_changed_configs_get_new_ids(tmp_path):
    from mtl_core.control.config import make_config
    from mtl_core.control.datasets import load_training_data
    from mtl_core.control.presets import get_preset
    from mtl_core.engine.training import train

    preset = get_preset(PRESET)
    store = ModelStore(root=tmp_path / "models", shipped=None)
    config = make_config(preset, data=SMALL_DATA, epochs=1, batch_size=32, seed=0)
    first_events: list[dict] = []
    model_id, card, cached = train(PRESET, config, store=store, subscribers=[first_events.append])
    assert cached is False
    assert first_events and first_events[0]["event"] == "start"
    assert store.find(model_id) is not None

    events: list[dict] = []
    again_id, again_card, again_cached = train(PRESET, make_config(preset, data=dict(SMALL_DATA), epochs=1,
                                                                   batch_size=32, seed=0),
                                               store=store, subscribers=[events.append])
    assert again_cached is True
    assert again_id == model_id
    assert events == []  # nothing was trained
    assert again_card["model_sha256"] == card["model_sha256"]
    assert [m.id for m in store.list()] == [model_id]

    fingerprint = load_training_data(preset, config).fingerprint
    assert config.model_id(fingerprint) == model_id
    changed = [
        make_config(preset, data=SMALL_DATA, epochs=1, batch_size=32, seed=1),
        make_config(preset, data=SMALL_DATA, epochs=1, batch_size=32, seed=0, loss_weights={"intensity": 0.5}),
        make_config(preset, data=SMALL_DATA, epochs=2, batch_size=32, seed=0),
        make_config(preset, data=SMALL_DATA, epochs=1, batch_size=32, seed=0,
                    model=preset.model.with_options(detach={"intensity": True}).to_dict()),
    ]
    ids = {c.model_id(fingerprint) for c in changed}
    assert len(ids) == len(changed) and model_id not in ids
    assert config.model_id("another-fingerprint") != model_id  # other data, other model


# -- what a saved model holds ------------------------------------------------------------------------------


def test_model_file_holds_no_optimizer_state(tiny_store, tmp_path):
    import keras

    import mtl_core.engine.models.layers  # noqa: F401

    store, model_id, _ = tiny_store
    path = store.find(model_id).model_file
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert "model.weights.h5" in names
        config = json.loads(archive.read("config.json"))
        (tmp_path / "w.h5").write_bytes(archive.read("model.weights.h5"))
    assert not config.get("compile_config")
    groups: list[str] = []
    with h5py.File(tmp_path / "w.h5") as h5:
        h5.visit(groups.append)
    assert groups and not [g for g in groups if "optimizer" in g.lower()]

    # The same size as a fresh, never-compiled copy of the same weights.
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    fresh = keras.models.clone_model(loaded)
    fresh.set_weights(loaded.get_weights())
    fresh.save(tmp_path / "fresh.keras")
    assert path.stat().st_size <= 1.05 * (tmp_path / "fresh.keras").stat().st_size


def test_card_describes_the_model(tiny_store):
    from mtl_core.control.config import TrainConfig

    store, model_id, card = tiny_store
    found = store.find(model_id)
    on_disk = json.loads((found.path / "card.json").read_text())
    assert on_disk == json.loads(json.dumps(card))
    assert on_disk["id"] == model_id == found.path.name
    assert on_disk["preset"] == PRESET
    config = TrainConfig.from_dict(on_disk["config"])
    assert config.preset == PRESET and config.epochs == 2 and config.batch_size == 32
    norm = on_disk["normalisation"]
    assert 0 < norm["mean"] < 1 and norm["std"] > 0
    for part in ("validation", "test"):
        metrics = on_disk["metrics"][part]
        assert set(metrics) == {"shape", "orientation", "intensity"}
        assert 0 <= metrics["shape"]["accuracy"] <= 1
        assert 0 <= metrics["orientation"]["accuracy"] <= 1
        assert metrics["intensity"]["mae"] >= 0
    assert on_disk["history"]
    assert len(on_disk["data"]["fingerprint"]) == 64
    assert on_disk["versions"]["tensorflow"] and on_disk["versions"]["keras"]
    digest = hashlib.sha256(found.model_file.read_bytes()).hexdigest()
    assert on_disk["model_sha256"] == digest
    created = time.strptime(on_disk["created"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(time.mktime(created) - time.mktime(time.gmtime())) < 24 * 3600


# -- shipped models ----------------------------------------------------------------------------------------


@pytest.fixture()
def shipped_store(tiny_store, tmp_path):
    store, model_id, _ = tiny_store
    shipped = tmp_path / "weights"
    shipped.mkdir()
    _copy_model(store.find(model_id).path, shipped)
    return ModelStore(root=tmp_path / "models", shipped=shipped), model_id


def test_shipped_model_is_found_listed_and_default_when_store_is_empty(shipped_store):
    store, model_id = shipped_store
    found = store.find(model_id)
    assert found is not None and found.source == "shipped"
    assert found.path == store.shipped / model_id
    listed = store.list()
    assert [(m.id, m.source) for m in listed] == [(model_id, "shipped")]
    assert store.list("color-digits") == []
    assert store.default(PRESET).id == model_id
    assert store.resolve(PRESET).id == model_id
    assert store.resolve(PRESET, model_id).source == "shipped"


def test_a_new_training_does_not_replace_the_default_until_someone_makes_it_the_default(shipped_store):
    store, model_id = shipped_store
    store.root.mkdir(parents=True)
    mine = _copy_model(store.shipped / model_id, store.root, f"{PRESET}-aaaaaaaaaaaa", created="2099-01-01T00:00:00Z")
    assert store.list(PRESET)[0].id == mine.name  # the newest is listed first...
    assert store.default(PRESET).id == model_id  # ...but the shipped model stays the default
    assert store.default_reason(PRESET) == "the shipped model"

    assert store.set_default(mine.name).id == mine.name
    assert store.default(PRESET).id == mine.name and store.resolve(PRESET).id == mine.name
    assert store.default_reason(PRESET) == "chosen as the default"
    assert json.loads(store.defaults_file.read_text()) == {PRESET: mine.name}
    assert ModelStore(root=store.root, shipped=store.shipped).default(PRESET).id == mine.name  # another process
    assert [n for n in _leftovers(store.root) if n.startswith(".")] == []  # through a temporary file, none left

    store.delete(mine.name)  # the chosen model is gone: back to the shipped one
    assert store.default(PRESET).id == model_id
    with pytest.raises(UserError, match="no model 'nope-000000000000'"):
        store.set_default("nope-000000000000")


def test_without_a_shipped_model_the_first_model_trained_stays_the_default(tiny_store, tmp_path):
    store, model_id, _ = tiny_store
    source = store.find(model_id).path
    root = tmp_path / "models"
    root.mkdir()
    first = _copy_model(source, root, f"{PRESET}-111111111111", created="2026-01-01T00:00:00Z")
    _copy_model(source, root, f"{PRESET}-222222222222", created="2026-06-01T00:00:00Z")  # a later experiment
    mine = ModelStore(root=root, shipped=False)
    assert mine.default(PRESET).id == first.name
    assert mine.default_reason(PRESET) == "the first model trained (none was chosen)"
    (root / "defaults.json").write_text("{not json")  # a damaged file counts as no choice
    assert mine.default(PRESET).id == first.name


def test_a_store_copy_hides_the_shipped_model_of_the_same_id(shipped_store):
    store, model_id = shipped_store
    store.root.mkdir(parents=True)
    _copy_model(store.shipped / model_id, store.root)
    assert store.find(model_id).source == "store"
    assert [(m.id, m.source) for m in store.list()] == [(model_id, "store")]


def test_shipped_models_cannot_be_deleted_but_store_models_can(shipped_store):
    store, model_id = shipped_store
    with pytest.raises(UserError, match="shipped"):
        store.delete(model_id)
    assert (store.shipped / model_id / "model.keras").is_file()
    store.root.mkdir(parents=True)
    mine = _copy_model(store.shipped / model_id, store.root, f"{PRESET}-cccccccccccc")
    store.delete(mine.name)
    assert not mine.exists()
    assert store.find(mine.name) is None
    assert _leftovers(store.root) == []
    with pytest.raises(UserError):
        store.delete(mine.name)


def test_half_written_folders_are_ignored(shipped_store):
    store, model_id = shipped_store
    store.root.mkdir(parents=True)
    (store.root / ".tmp-x-123").mkdir()
    broken = store.root / f"{PRESET}-dddddddddddd"
    broken.mkdir()
    (broken / "card.json").write_text("{not json")
    no_model = _copy_model(store.shipped / model_id, store.root, f"{PRESET}-eeeeeeeeeeee")
    (no_model / "model.keras").unlink()
    assert [m.id for m in store.list()] == [model_id]
    assert store.find(broken.name) is None and store.find(no_model.name) is None


# -- errors when there is no usable model ------------------------------------------------------------------


def _resolve_error(store: ModelStore, ref: str | None) -> str:
    with pytest.raises(UserError) as info:
        store.resolve(PRESET, ref)
    message = str(info.value)
    assert message and "\n" not in message
    return message


_NO_HINT = ("the message names the problem but not how to get a model; proposed: append "
            "'(list models with `python -m mtl_core models`, or train one with `python -m mtl_core train --preset P`)'")


def test_resolve_with_no_model_at_all_says_how_to_train_one(tmp_path):
    store = ModelStore(root=tmp_path / "models", shipped=tmp_path / "weights")
    message = _resolve_error(store, None)
    assert PRESET in message
    assert f"python -m mtl_core train --preset {PRESET}" in message


def test_resolve_unknown_id_names_it(shipped_store):
    store, _ = shipped_store
    message = _resolve_error(store, f"{PRESET}-ffffffffffff")
    assert f"{PRESET}-ffffffffffff" in message


def test_resolve_unknown_id_says_how_to_get_a_model(shipped_store):
    store, _ = shipped_store
    assert "python -m mtl_core" in _resolve_error(store, f"{PRESET}-ffffffffffff")


def _other_preset_store(shipped_store) -> tuple[ModelStore, str]:
    store, model_id = shipped_store
    store.root.mkdir(parents=True)
    other = _copy_model(store.shipped / model_id, store.root, "color-digits-123456789abc", preset="color-digits")
    return store, other.name


def test_resolve_a_model_of_another_preset_names_both(shipped_store):
    store, other = _other_preset_store(shipped_store)
    message = _resolve_error(store, other)
    assert other in message and "color-digits" in message and PRESET in message


def test_resolve_a_model_of_another_preset_says_how_to_get_one(shipped_store):
    store, other = _other_preset_store(shipped_store)
    assert "python -m mtl_core" in _resolve_error(store, other)


def test_resolve_a_folder_path(shipped_store, tmp_path):
    store, model_id = shipped_store
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    folder = _copy_model(store.shipped / model_id, elsewhere)
    found = store.resolve(PRESET, str(folder))
    assert found.path == folder and found.card["preset"] == PRESET
    assert np.isfinite(found.card["normalisation"]["mean"])
    (tmp_path / "empty").mkdir()
    assert "not a model folder" in _resolve_error(store, str(tmp_path / "empty"))


def test_an_id_from_any_input_never_becomes_a_path_outside_the_store(shipped_store, tmp_path):
    """A model folder elsewhere on disk (here: beside the store) is not reachable, nor deletable, through an
    "id" holding a separator or .. ; only a real folder path given as --model opens it, as a path."""
    store, model_id = shipped_store
    outside = _copy_model(store.shipped / model_id, tmp_path / "elsewhere")
    for ref in (f"../elsewhere/{model_id}", str(outside), "..", ".", f"{model_id}/..", ""):
        assert store.find(ref) is None, ref
        with pytest.raises(UserError, match="no model"):
            store.delete(ref)
    assert (outside / "model.keras").is_file()
    opened = store.resolve(PRESET, str(outside))  # an explicit folder path: opened as a path, not as a store id
    assert opened.source == "path" and opened.id == model_id and opened.path == outside


def test_a_card_without_a_sha256_is_refused_before_loading(shipped_store, tmp_path):
    from mtl_core.engine.inference import Predictor

    store, model_id = shipped_store
    folder = _copy_model(store.shipped / model_id, tmp_path / "unverified")
    card = json.loads((folder / "card.json").read_text())
    del card["model_sha256"]
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(UserError, match="records no sha256 of model.keras"):
        Predictor(store.resolve(PRESET, str(folder)))


# -- replacing, and what a killed save leaves -----------------------------------------------------------------


def test_replace_puts_the_new_model_in_place_of_the_old_one(tmp_path, small_model):
    """`train --force` saves with replace=True: the new weights and card take the folder, nothing else stays;
    without it a second save of the same id keeps the first (a concurrent run of the same config)."""
    store = ModelStore(root=tmp_path / "models", shipped=None)
    first = store.save(f"{PRESET}-ffffffffffff", small_model, {"preset": PRESET, "note": "first"})
    kept = store.save(f"{PRESET}-ffffffffffff", small_model, {"preset": PRESET, "note": "second"})
    assert kept["note"] == "first"
    replaced = store.save(f"{PRESET}-ffffffffffff", small_model, {"preset": PRESET, "note": "third"}, replace=True)
    on_disk = json.loads((store.root / f"{PRESET}-ffffffffffff" / "card.json").read_text())
    assert replaced["note"] == on_disk["note"] == "third" and first["note"] == "first"
    assert _leftovers(store.root) == [f"{PRESET}-ffffffffffff"]
    with pytest.raises(UserError, match="not a model id"):
        store.save("../escape", small_model, {"preset": PRESET})


_SLOW_SAVE = """
import sys, time
from pathlib import Path
from mtl_core.control.store import ModelStore

class SlowModel:  # writes half a model file, then hangs: the process is killed here
    def save(self, path):
        Path(path).write_bytes(b"half a model")
        print("saving", flush=True)
        time.sleep(120)

ModelStore(root=sys.argv[1], shipped=None).save(sys.argv[2], SlowModel(), {"preset": "shapes-3head"},
                                               replace=sys.argv[3] == "replace")
"""


@pytest.mark.parametrize("mode", ["new", "replace"])
def test_a_save_killed_midway_leaves_a_clean_store_at_the_next_start(tmp_path, small_model, mode):
    import signal
    import subprocess
    import sys

    root = tmp_path / "models"
    model_id = f"{PRESET}-abababababab"
    if mode == "replace":  # a model is there already, and a replacing save of it is killed
        ModelStore(root=root, shipped=None).save(model_id, small_model, {"preset": PRESET, "note": "old"})
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_SAVE, str(root), model_id, mode],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.stdout.readline().strip() == "saving"
    assert any(p.name.startswith(".tmp-") for p in root.iterdir())  # half-written, while the process lives
    assert ModelStore(root=root, shipped=None).find(model_id) is None or mode == "replace"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    store = ModelStore(root=root, shipped=None)  # the next start
    expected = [model_id] if mode == "replace" else []
    assert _leftovers(root) == expected
    if mode == "replace":
        assert store.find(model_id).card["note"] == "old"  # the old model is still whole


def test_a_replacing_save_killed_between_its_renames_gets_the_old_model_back(tmp_path, small_model):
    root = tmp_path / "models"
    model_id = f"{PRESET}-cdcdcdcdcdcd"
    ModelStore(root=root, shipped=None).save(model_id, small_model, {"preset": PRESET, "note": "old"})
    dead = 2**22 + 12345  # above Linux's default pid_max (2**22): no such process
    (root / model_id).rename(root / f".del-{model_id}-{dead}")  # set aside, the new one not yet in place
    (root / f".rm-{PRESET}-efefefefefef-{dead}").mkdir()  # a delete that died before its rmtree
    store = ModelStore(root=root, shipped=None)
    assert _leftovers(root) == [model_id] and store.find(model_id).card["note"] == "old"


# -- identity: precision, and two runs of one config -------------------------------------------------------


def test_a_named_precision_is_part_of_the_id_so_float32_is_never_served_a_mixed_model(tiny_store, tmp_path):
    from dataclasses import replace

    from mtl_core.control.config import TrainConfig, make_config
    from mtl_core.control.presets import get_preset
    from mtl_core.engine.training import train

    tiny, tiny_id, tiny_card = tiny_store
    store = ModelStore(root=tmp_path / "models", shipped=None)
    shutil.copytree(tiny.root / tiny_id, store.root / tiny_id)  # trained at "auto" (the card says at what)
    auto = TrainConfig.from_dict(tiny_card["config"])
    assert auto.precision == "auto" and train(PRESET, auto, store=store)[:3:2] == (tiny_id, True)
    float32 = replace(auto, precision="float32")
    model_id, card, cached = train(PRESET, float32, store=store)
    assert (model_id != tiny_id, cached) == (True, False)  # its own model, trained at what was asked
    assert card["training"]["precision"] == card["config"]["precision"] == "float32"
    assert train(PRESET, float32, store=store)[:3:2] == (model_id, True)
    with pytest.raises(UserError, match="--precision: unknown precision 'float8'"):
        make_config(get_preset(PRESET), data=SMALL_DATA, precision="float8")


def _train_cli(home: Path, *extra: str):
    import os
    import subprocess
    import sys

    env = {**os.environ, "MTL_HOME": str(home), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen([sys.executable, "-m", "mtl_core", "train", "--preset", PRESET, "--data-option",
                             "n=200,noise=0.3,seed=0", "--epochs", "1", "--batch-size", "32", "--json", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_two_concurrent_runs_of_one_config_end_with_one_good_model_and_force_replaces_it(tmp_path):
    from mtl_core.control.store import sha256_file

    runs = [_train_cli(tmp_path), _train_cli(tmp_path)]  # at once, into one empty store
    results = [(run.wait(timeout=300), run.stdout.read(), run.stderr.read()) for run in runs]
    assert [rc for rc, _, _ in results] == [0, 0], [err[-500:] for _, _, err in results]
    ids = {json.loads(out)["model"] for _, out, _ in results}
    assert len(ids) == 1
    (model_id,) = ids
    root = tmp_path / "models"
    assert _leftovers(root) == [model_id]  # one folder, no temporary one left by the run that saved second
    model = ModelStore(root=root, shipped=None).find(model_id)
    assert sha256_file(model.model_file) == model.card["model_sha256"]

    before = (root / model_id).stat().st_ino, model.card["created"]
    time.sleep(1.1)  # `created` has one-second resolution
    forced = _train_cli(tmp_path, "--force")
    rc, out, err = forced.wait(timeout=300), forced.stdout.read(), forced.stderr.read()
    assert rc == 0 and json.loads(out) | {"metrics": None} == {"model": model_id, "cached": False, "metrics": None}, err
    after = ModelStore(root=root, shipped=None).find(model_id)
    assert ((root / model_id).stat().st_ino, after.card["created"]) != before  # a new folder, a new card
    assert after.card["created"] > before[1] and _leftovers(root) == [model_id]
    assert sha256_file(after.model_file) == after.card["model_sha256"]
