"""The shipped models in weights/ are what their cards say: the same file (sha256), trained on data that the
card's config still regenerates bit for bit (fingerprint, model id), stored as a float32 inference copy,
and scoring the card's test metrics when re-evaluated here on the rebuilt test split.

Every folder of weights/ is checked, so a newly shipped model is covered without touching this file.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from pathlib import Path

import pytest

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
# Float32 inference on another CPU (or oneDNN kernel, or batch split) moves the regression metrics by ~1e-8
# relative (measured: intensity MAE 1.3e-8, MSE 7.4e-8); 1e-4 still catches any real change. An accuracy
# or AUC moves by at least 1/n_test (>= 1.7e-3 here) when one prediction flips, so for them this is exact.
REL = 1e-4


def shipped_folders() -> list[Path]:
    """Every model folder of weights/ (hidden or underscore folders aside), whatever it holds."""
    if not WEIGHTS.is_dir():
        return []
    return sorted(p for p in WEIGHTS.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


FOLDERS = shipped_folders()
each_model = pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])


def read_card(folder: Path) -> dict:
    return json.loads((folder / "card.json").read_text())


def rebuilt_data(card: dict):
    """The card's training data, regenerated from its config the way training loads it."""
    from mtl_core.control.config import TrainConfig
    from mtl_core.control.datasets import load_training_data
    from mtl_core.control.presets import get_preset

    config, preset = TrainConfig.from_dict(card["config"]), get_preset(card["preset"])
    return config, preset, load_training_data(preset, config)


def test_weights_ships_models():
    assert FOLDERS, f"no shipped model in {WEIGHTS}: the shipped-model checks below would test nothing"


@each_model
def test_folder_is_a_complete_model(folder):
    assert (folder / "model.keras").is_file(), f"{folder.name}: no model.keras"
    card = read_card(folder)
    assert card["id"] == folder.name, f"{folder.name}: the card says id {card['id']!r}"
    for key in ("preset", "config", "data", "metrics", "model_sha256", "preprocessing"):
        assert key in card, f"{folder.name}: card.json has no {key!r}"
    assert card["metrics"].get("test"), f"{folder.name}: the card records no test metrics"


@each_model
def test_model_file_matches_the_cards_sha256(folder):
    card = read_card(folder)
    assert hashlib.sha256((folder / "model.keras").read_bytes()).hexdigest() == card["model_sha256"], \
        f"{folder.name}: model.keras is not the file its card describes (replaced or corrupted)"
    assert (folder / "model.keras").stat().st_size == card["model_bytes"]


@each_model
def test_model_file_is_a_float32_inference_copy(folder):
    """Trained under mixed precision maybe, but saved float32 and without optimizer state (weights/README.md)."""
    import h5py  # a dependency of Keras 3: its .keras weights are HDF5

    with zipfile.ZipFile(folder / "model.keras") as z:
        config = json.loads(z.read("config.json"))
        weights = z.read("model.weights.h5")
    policies: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            dtype = node.get("dtype")
            if isinstance(dtype, str):
                policies.add(dtype)
            elif isinstance(dtype, dict):
                policies.add(dtype.get("config", {}).get("name", repr(dtype)))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    assert policies == {"float32"}, f"{folder.name}: layer dtype policies {sorted(policies)}"
    assert not config.get("compile_config"), f"{folder.name}: saved compiled ({config['compile_config']})"
    dtypes, names = set(), []
    with h5py.File(io.BytesIO(weights), "r") as h5:
        h5.visititems(lambda name, obj: (names.append(name), dtypes.add(str(obj.dtype)))
                      if isinstance(obj, h5py.Dataset) else None)
    assert names, f"{folder.name}: model.weights.h5 holds no weights"
    assert dtypes == {"float32"}, f"{folder.name}: weight dtypes {sorted(dtypes)}"
    assert not [n for n in names if n.startswith("optimizer")], f"{folder.name}: optimizer state saved"


@each_model
def test_config_regenerates_the_training_data(folder):
    """The card's config still rebuilds exactly the data the model was trained on, and it is the preset's
    default data (weights/README.md: each shipped model is `train --preset <name>` with the defaults)."""
    card = read_card(folder)
    config, preset, data = rebuilt_data(card)  # TrainConfig.from_dict refuses a key it does not know
    assert data.fingerprint == card["data"]["fingerprint"], \
        f"{folder.name}: {card['data']['source']} no longer regenerates the data it was trained on"
    assert len(data) == sum(card["data"]["sizes"].values())
    assert config.data == preset.data_defaults, \
        f"{folder.name}: trained on {config.data}, but {preset.name}'s default data is {preset.data_defaults}"
    # the store finds a model by the hash of its config and data: `train` with the same settings reuses it
    assert config.model_id(data.fingerprint) == folder.name, \
        f"{folder.name}: its config and data now hash to {config.model_id(data.fingerprint)}"


def numbers(metrics: dict) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k != "confusion_matrix"}


@each_model
def test_reevaluation_reproduces_the_cards_test_metrics(folder, tmp_path):
    from mtl_core.control.store import ModelStore
    from mtl_core.engine.evaluation import evaluate

    card = read_card(folder)
    store = ModelStore(root=tmp_path / "models", shipped=WEIGHTS)  # an empty store: the id is the shipped model
    out = evaluate(card["preset"], model=folder.name, store=store)
    assert out["model"] == folder.name and out["split"] == "test split"
    assert out["n"] == card["data"]["sizes"]["test"]
    recorded, measured = card["metrics"]["test"], out["metrics"]
    assert list(measured) == list(recorded), f"{folder.name}: heads {list(measured)}, card {list(recorded)}"
    for head, on_card in recorded.items():
        now = measured[head]
        assert set(numbers(now)) == set(numbers(on_card)), f"{folder.name} {head}: metrics differ in kind"
        for name, value in numbers(on_card).items():
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(now[name]), f"{folder.name} {head} {name}: card NaN, now {now[name]}"
                continue
            assert now[name] == pytest.approx(value, rel=REL, abs=1e-12), \
                f"{folder.name} {head} {name}: card {value!r}, re-evaluated {now[name]!r}"
        if "confusion_matrix" in on_card:
            assert now["confusion_matrix"] == on_card["confusion_matrix"], f"{folder.name} {head}: confusion"
