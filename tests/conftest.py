"""Shared fixtures. Nothing here downloads; every model is trained on tiny generated data.

MTL_HOME points at a temporary folder for the whole session, so tests never touch the user's
store; MTL_WEIGHTS points at an empty folder unless a test asks for the shipped models.
"""

import os
import tempfile
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="mtl-test-home-"))
os.environ["MTL_HOME"] = str(_SESSION_HOME)
os.environ["MTL_WEIGHTS"] = str(_SESSION_HOME / "no-shipped-weights")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["MTL_WARMUP"] = "0"  # no background model loading in the tests' apps; test_warmup.py turns it on
ROOT = Path(__file__).resolve().parent.parent

TINY_DATA = {"source": "generated", "n": 400, "noise": 0.3, "seed": 0}


@pytest.fixture(scope="session")
def tiny_store():
    """A store holding one shapes-3head model trained for 2 epochs on 400 generated images."""
    from mtl_core.control.config import make_config
    from mtl_core.control.presets import get_preset
    from mtl_core.control.store import ModelStore
    from mtl_core.engine.training import train

    store = ModelStore(root=_SESSION_HOME / "tiny" / "models", shipped=None)
    config = make_config(get_preset("shapes-3head"), data=TINY_DATA, epochs=2, batch_size=32, seed=1)
    model_id, card, _ = train("shapes-3head", config, store=store)
    return store, model_id, card


@pytest.fixture()
def cli_env(tiny_store):
    """Environment for `python -m mtl_core` subprocesses that see the tiny model as the store."""
    store, _, _ = tiny_store
    env = dict(os.environ)
    env["MTL_HOME"] = str(store.root.parent)
    env["MTL_WEIGHTS"] = str(_SESSION_HOME / "no-shipped-weights")
    env["PYTHONPATH"] = str(ROOT)
    return env
