"""The Streamlit home page (app.py): presets, the default model's test metrics beside the seed's
reference, a warning with the train command when there is no model, and no TensorFlow import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
PRESET = "shapes-3head"
TRAIN_COMMAND = f"python -m mtl_core train --preset {PRESET}"
REFERENCE = {"shape": ("accuracy", 0.2550), "orientation": ("accuracy", 0.0733), "intensity": ("mae", 0.1902)}


def run_app(monkeypatch, home: Path, weights: Path) -> AppTest:
    monkeypatch.setenv("MTL_HOME", str(home))
    monkeypatch.setenv("MTL_WEIGHTS", str(weights))
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    return at


def page_text(at: AppTest) -> str:
    parts = [e.value for kind in ("title", "subheader", "markdown", "caption", "warning") for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


@pytest.fixture()
def empty_dirs(tmp_path) -> tuple[Path, Path]:
    (tmp_path / "home").mkdir()
    (tmp_path / "weights").mkdir()
    return tmp_path / "home", tmp_path / "weights"


def test_home_page_shows_the_model_and_its_metrics_beside_the_reference(monkeypatch, tiny_store, empty_dirs):
    store, model_id, card = tiny_store

    at = run_app(monkeypatch, store.root.parent, empty_dirs[1])

    assert not at.exception
    assert any(PRESET in s.value for s in at.subheader)
    assert any(model_id in c.value for c in at.caption)
    assert not [w for w in at.warning if PRESET in w.value]  # this preset has a model
    [table] = at.dataframe
    rows = table.value.set_index("head")
    assert list(rows.columns) == ["metric", "this model (test)", "reference (seed)"]
    assert sorted(rows.index) == sorted(REFERENCE)
    for head, (metric, reference) in REFERENCE.items():
        assert rows.loc[head, "metric"] == metric
        assert rows.loc[head, "reference (seed)"] == pytest.approx(reference)
        assert rows.loc[head, "this model (test)"] == pytest.approx(card["metrics"]["test"][head][metric], abs=1e-4)


def test_home_page_without_models_says_how_to_train_one(monkeypatch, empty_dirs):
    at = run_app(monkeypatch, *empty_dirs)

    assert not at.exception
    assert any(PRESET in s.value for s in at.subheader)
    [warning] = [w.value for w in at.warning if PRESET in w.value]
    assert "No trained model" in warning
    assert TRAIN_COMMAND in warning
    assert not at.dataframe
    assert "Traceback" not in page_text(at)


NO_TF_SCRIPT = r"""
import json, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=30)
at.run()
print(json.dumps({"exceptions": len(at.exception), "tables": len(at.dataframe),
                  "imported": sorted(m for m in ("tensorflow", "keras", "sklearn") if m in sys.modules)}))
"""


def test_home_page_never_imports_tensorflow_nor_scikit_learn(tiny_store, empty_dirs):
    """The first page a visitor waits for: TensorFlow (5 s) and scikit-learn (1.3 s here) are for other pages."""
    store, _, _ = tiny_store
    env = {**os.environ, "MTL_HOME": str(store.root.parent), "MTL_WEIGHTS": str(empty_dirs[1]),
           "PYTHONPATH": str(ROOT)}

    proc = subprocess.run([sys.executable, "-c", NO_TF_SCRIPT, str(APP)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)

    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"exceptions": 0, "tables": 1, "imported": []}  # the page ran, with the model's table
