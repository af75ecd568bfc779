"""`python -m mtl_core`: JSON on stdout (one line), progress and errors on stderr, exit codes 0 / 2.

Most checks run the real CLI in a subprocess. User errors that must fail before TensorFlow is
imported are checked in-process with ``main([...])`` (fast), and once in a subprocess in which
importing TensorFlow or Keras fails, which proves they never reach that import.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _images import save_png, shapes, truncated_png

from mtl_core.cli import main
from mtl_core.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
PRESET = "shapes-3head"
HEADS = ["shape", "orientation", "intensity"]
TRAIN_ARGS = ["train", "--preset", PRESET, "--data-option", "n=200", "--epochs", "1", "--batch-size", "32"]


def run_cli(args: list[str], env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtl_core", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def one_json_line(stdout: str) -> dict:
    """``--json`` output: exactly one JSON document on exactly one line."""
    assert stdout.endswith("\n") and stdout.count("\n") == 1, stdout
    return json.loads(stdout)


def assert_ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def assert_user_error(rc: int, stdout: str, stderr: str, *needles: str) -> str:
    """Exit 2, nothing on stdout, one line ``error: ...`` on stderr naming the problem."""
    assert rc == 2, stderr
    assert stdout == ""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def own_env(home: Path) -> dict:
    """An environment whose store is ``home`` (empty at first) and which has no shipped weights."""
    empty = home / "no-shipped-weights"
    empty.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "MTL_HOME": str(home), "MTL_WEIGHTS": str(empty), "PYTHONPATH": str(ROOT)}


@pytest.fixture()
def two_pngs(tmp_path) -> list[Path]:
    x, _ = shapes(n=2, seed=5)
    return [save_png(x[0], tmp_path / "a.png"), save_png(x[1], tmp_path / "b.png")]


# ----------------------------------------------------------------------------- listing commands


def test_presets_json_lists_heads_and_the_available_model(cli_env, tiny_store):
    _, model_id, _ = tiny_store

    proc = run_cli(["presets", "--json"], cli_env)

    assert_ok(proc)
    doc = one_json_line(proc.stdout)
    [preset] = [p for p in doc["presets"] if p["name"] == PRESET]
    assert [(h["name"], h["kind"]) for h in preset["heads"]] == [
        ("shape", "multiclass"), ("orientation", "multiclass"), ("intensity", "regression")]
    assert preset["model_available"] is True
    assert preset["default_model"] == model_id


def test_models_make_default_makes_a_new_model_the_default_and_a_wrong_id_exits_2(cli_env, tiny_store, tmp_path):
    from pathlib import Path

    store, model_id, _ = tiny_store
    env = {**cli_env, "MTL_HOME": str(tmp_path), "MTL_WEIGHTS": str(Path(__file__).resolve().parents[1] / "weights")}
    shutil.copytree(store.find(model_id).path, tmp_path / "models" / model_id)  # newer than the shipped model
    before = {m["id"]: m["default"] for m in one_json_line(run_cli(["models", "--json"], env).stdout)["models"]}
    assert before[model_id] is False  # a new model is not the default until someone says so

    proc = run_cli(["models", "--make-default", model_id, "--json"], env)

    assert_ok(proc)
    assert f"{model_id} is now the default model of {PRESET}" in proc.stderr
    after = {m["id"]: m["default"] for m in one_json_line(proc.stdout)["models"]}
    assert after[model_id] is True and sum(after.values()) == 3  # one default per preset with a model
    wrong = run_cli(["models", "--make-default", "shapes-3head-000000000000"], env)
    assert wrong.returncode == 2 and "no model 'shapes-3head-000000000000'" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1


def test_models_json_lists_the_tiny_model_as_default(cli_env, tiny_store):
    _, model_id, card = tiny_store

    proc = run_cli(["models", "--json"], cli_env)

    assert_ok(proc)
    [model] = one_json_line(proc.stdout)["models"]
    assert model["id"] == model_id
    assert model["preset"] == PRESET
    assert model["source"] == "store"
    assert model["default"] is True
    assert sorted(model["metrics"]) == sorted(HEADS)
    assert model["metrics"]["shape"]["accuracy"] == pytest.approx(card["metrics"]["test"]["shape"]["accuracy"])
    assert model["metrics"]["intensity"]["mae"] == pytest.approx(card["metrics"]["test"]["intensity"]["mae"])


# ----------------------------------------------------------------------------- train


@pytest.fixture(scope="module")
def first_train(tmp_path_factory):
    """One real training run in its own store, with --events: (process, env, events file)."""
    home = tmp_path_factory.mktemp("cli-train-home")
    env = own_env(home)
    events = home / "events.jsonl"
    proc = run_cli([*TRAIN_ARGS, "--events", str(events), "--json"], env)
    return proc, env, events


def test_train_prints_one_json_line_and_progress_on_stderr(first_train):
    proc, env, _ = first_train

    assert_ok(proc)
    doc = one_json_line(proc.stdout)
    assert set(doc) == {"model", "metrics", "cached"}
    assert doc["model"].startswith(f"{PRESET}-")
    assert doc["cached"] is False
    assert sorted(doc["metrics"]) == sorted(HEADS)
    assert 0.0 <= doc["metrics"]["shape"]["accuracy"] <= 1.0
    assert 0.0 <= doc["metrics"]["orientation"]["accuracy"] <= 1.0
    assert doc["metrics"]["intensity"]["mae"] >= 0.0
    assert f"training {PRESET}" in proc.stderr and "epoch 1/1" in proc.stderr  # progress goes to stderr ...
    assert "epoch" not in proc.stdout  # ... never into the JSON
    folder = Path(env["MTL_HOME"]) / "models" / doc["model"]
    assert (folder / "model.keras").is_file() and (folder / "card.json").is_file()


def test_train_events_file_holds_json_lines_with_per_head_epoch_metrics(first_train):
    proc, _, events = first_train
    assert_ok(proc)

    lines = events.read_text().splitlines()
    records = [json.loads(line) for line in lines]

    kinds = [r["event"] for r in records]
    assert kinds[0] == "start" and kinds[-1] == "end"
    [epoch] = [r for r in records if r["event"] == "epoch"]
    assert epoch["epoch"] == 1 and epoch["epochs"] == 1
    for split in ("train", "val"):
        assert 0.0 <= epoch[split]["shape"]["accuracy"] <= 1.0
        assert 0.0 <= epoch[split]["orientation"]["accuracy"] <= 1.0
        assert epoch[split]["intensity"]["mae"] >= 0.0


def test_train_same_config_again_returns_the_stored_model(first_train):
    first, env, _ = first_train
    assert_ok(first)
    before = one_json_line(first.stdout)

    proc = run_cli([*TRAIN_ARGS, "--json"], env)

    assert_ok(proc)
    doc = one_json_line(proc.stdout)
    assert doc["cached"] is True
    assert doc["model"] == before["model"]
    assert doc["metrics"] == before["metrics"]
    assert "epoch 1/1" not in proc.stderr  # not trained again
    assert sorted(p.name for p in (Path(env["MTL_HOME"]) / "models").iterdir()) == [doc["model"]]


# ----------------------------------------------------------------------------- predict / evaluate


def test_predict_two_images_json(cli_env, tiny_store, two_pngs):
    from mtl_core.engine.inference import Predictor

    store, model_id, _ = tiny_store

    proc = run_cli(["predict", "--preset", PRESET, *map(str, two_pngs), "--json"], cli_env)

    assert_ok(proc)
    assert "error" not in proc.stderr
    doc = one_json_line(proc.stdout)
    assert doc["preset"] == PRESET
    assert doc["model"] == model_id
    assert [item["input"] for item in doc["predictions"]] == ["a.png", "b.png"]
    assert all(list(item["outputs"]) == HEADS for item in doc["predictions"])
    # the CLI prints what the library predicts
    expected = Predictor([store.find(model_id)]).predict(two_pngs).to_dict()["predictions"]
    for got, want in zip(doc["predictions"], expected, strict=True):
        for head in ("shape", "orientation"):
            assert got["outputs"][head]["label"] == want["outputs"][head]["label"]
            assert got["outputs"][head]["probabilities"] == pytest.approx(want["outputs"][head]["probabilities"],
                                                                          abs=1e-5)
        assert got["outputs"]["intensity"]["value"] == pytest.approx(want["outputs"]["intensity"]["value"], abs=1e-5)


def test_predict_with_a_broken_file_exits_2_and_keeps_the_good_one(cli_env, two_pngs, tmp_path):
    broken = truncated_png(tmp_path / "broken.png")

    proc = run_cli(["predict", "--preset", PRESET, str(two_pngs[0]), str(broken), "--json"], cli_env)

    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    good, bad = one_json_line(proc.stdout)["predictions"]
    assert good["input"] == "a.png" and list(good["outputs"]) == HEADS
    assert bad["input"] == "broken.png" and "outputs" not in bad
    assert bad["error"].startswith("broken.png: ")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {bad['error']}"]


def test_evaluate_json_gives_per_head_metrics_of_the_test_split(cli_env, tiny_store):
    _, model_id, card = tiny_store

    proc = run_cli(["evaluate", "--preset", PRESET, "--json"], cli_env)

    assert_ok(proc)
    doc = one_json_line(proc.stdout)
    assert doc["model"] == model_id
    assert doc["n"] == card["data"]["sizes"]["test"]
    assert sorted(doc["metrics"]) == sorted(HEADS)
    stored = card["metrics"]["test"]  # the same model on the same rebuilt split: the same numbers
    assert doc["metrics"]["shape"]["accuracy"] == pytest.approx(stored["shape"]["accuracy"])
    assert doc["metrics"]["orientation"]["accuracy"] == pytest.approx(stored["orientation"]["accuracy"])
    assert doc["metrics"]["intensity"]["mae"] == pytest.approx(stored["intensity"]["mae"], abs=1e-5)


# ----------------------------------------------------------------------------- user errors: exit 2


def test_unknown_preset_subprocess(cli_env):
    proc = run_cli(["train", "--preset", "nope", "--json"], cli_env)
    assert_user_error(proc.returncode, proc.stdout, proc.stderr, "unknown preset 'nope'", PRESET)


def test_unknown_command_subprocess(cli_env):
    proc = run_cli(["frobnicate"], cli_env)
    assert_user_error(proc.returncode, proc.stdout, proc.stderr, "frobnicate")


def test_predict_unknown_model_subprocess(cli_env, two_pngs):
    proc = run_cli(["predict", "--preset", PRESET, "--model", "doesnotexist", str(two_pngs[0]), "--json"], cli_env)
    assert_user_error(proc.returncode, proc.stdout, proc.stderr, "doesnotexist")


def test_predict_without_any_model_says_how_to_train_one(tmp_path, two_pngs):
    env = own_env(tmp_path / "empty-home")

    proc = run_cli(["predict", "--preset", PRESET, str(two_pngs[0]), "--json"], env)

    assert_user_error(proc.returncode, proc.stdout, proc.stderr, "no trained model",
                      f"python -m mtl_core train --preset {PRESET}")


PRE_TF_ERRORS = {
    "unknown preset": (["train", "--preset", "nope"], ["unknown preset 'nope'"]),
    "unknown command": (["frobnicate"], ["invalid choice", "frobnicate"]),
    "negative weight": (["train", "--preset", PRESET, "--loss-weights", "shape=-1"], ["--loss-weights", "negative"]),
    "weight not a number": (["train", "--preset", PRESET, "--loss-weights", "shape=abc"],
                            ["--loss-weights", "not a number", "abc"]),
    "weight of an unknown head": (["train", "--preset", PRESET, "--loss-weights", "nohead=1"],
                                  ["--loss-weights", "unknown head 'nohead'"]),
    "zero epochs": (["train", "--preset", PRESET, "--epochs", "0"], ["--epochs", "out of range"]),
    "unknown model": (["predict", "--preset", PRESET, "--model", "doesnotexist", "x.png"], ["'doesnotexist'"]),
    "evaluate unknown model": (["evaluate", "--preset", PRESET, "--model", "doesnotexist"], ["'doesnotexist'"]),
    "alpha without gradnorm": (["train", "--preset", PRESET, "--gradnorm-alpha", "1"],
                               ["--gradnorm-alpha", "gradnorm"]),
    "alpha out of range": (["train", "--preset", PRESET, "--weighting", "gradnorm", "--gradnorm-alpha", "-2"],
                           ["--gradnorm-alpha", "out of range"]),
    "freeze without a pretrained backbone": (["train", "--preset", PRESET, "--freeze", "0.5"],
                                             ["--freeze", "no pretrained network"]),
    "freeze out of range": (["train", "--preset", "cifar10-aqi", "--freeze", "1.5"], ["--freeze", "0..1"]),
    "unknown device": (["train", "--preset", PRESET, "--device", "tpu"], ["--device", "invalid choice"]),
}


@pytest.mark.parametrize("case", list(PRE_TF_ERRORS))
def test_user_errors_exit_2_with_one_line(case, cli_env, monkeypatch, capsys):
    argv, needles = PRE_TF_ERRORS[case]
    monkeypatch.setenv("MTL_HOME", cli_env["MTL_HOME"])
    monkeypatch.setenv("MTL_WEIGHTS", cli_env["MTL_WEIGHTS"])

    rc = main(argv)

    out, err = capsys.readouterr()
    assert_user_error(rc, out, err, *needles)


def test_missing_data_dir_is_a_user_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "home"))
    missing = tmp_path / "no-such-folder"

    rc = main(["train", "--preset", PRESET, "--data-dir", str(missing), "--json"])

    out, err = capsys.readouterr()
    assert_user_error(rc, out, err, str(missing))


def test_predict_without_any_model_in_process(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MTL_WEIGHTS", str(tmp_path / "weights"))
    (tmp_path / "weights").mkdir()

    rc = main(["predict", "--preset", PRESET, "x.png"])

    out, err = capsys.readouterr()
    assert_user_error(rc, out, err, "no trained model", f"python -m mtl_core train --preset {PRESET}")


# A subprocess in which importing TensorFlow or Keras fails: a user error found before that import
# still exits 2; one found after it would exit 1 ("unexpected ImportError").
NO_TF_SCRIPT = r"""
import io, json, sys

class BlockTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("tensorflow", "keras"):
            raise ImportError("blocked by the test: " + name)
        return None

sys.meta_path.insert(0, BlockTensorFlow())
from mtl_core.cli import main

results = []
for argv in json.loads(sys.argv[1]):
    err, saved = io.StringIO(), sys.stderr
    sys.stderr = err
    try:
        rc = main(argv)
    finally:
        sys.stderr = saved
    results.append([rc, err.getvalue()])
print(json.dumps(results))
"""


def run_without_tensorflow(argvs: list[list[str]], env: dict) -> list[tuple[int, str]]:
    proc = subprocess.run([sys.executable, "-c", NO_TF_SCRIPT, json.dumps(argvs)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [tuple(r) for r in json.loads(proc.stdout)]


def test_flag_and_name_errors_are_found_before_tensorflow_is_imported(cli_env):
    argvs = [argv for argv, _ in PRE_TF_ERRORS.values()]

    results = run_without_tensorflow(argvs, cli_env)

    for case, (rc, err) in zip(PRE_TF_ERRORS, results, strict=True):
        assert rc == 2, f"{case}: {err}"
        assert err.startswith("error: ") and "blocked by the test" not in err, f"{case}: {err}"


def test_missing_data_dir_is_found_before_tensorflow_is_imported(tmp_path):
    env = own_env(tmp_path / "home")

    [(rc, err)] = run_without_tensorflow([["train", "--preset", PRESET, "--data-dir", str(tmp_path / "nope")]], env)

    assert rc == 2, err
    assert str(tmp_path / "nope") in err


def test_data_options_are_typed_like_the_defaults_so_the_default_config_keeps_its_id():
    from mtl_core.control import options
    from mtl_core.control.presets import get_preset

    preset = get_preset(PRESET)
    spelled = ",".join(f"{k}={v}" for k, v in preset.data_defaults.items() if k != "source")
    _, _, config = options.validate(["--preset", PRESET, "--data-option", spelled])
    assert config["data"] == preset.data_defaults  # numbers, not the text "8000"
    for bad, message in (("n=lots", "n='lots' is not an integer"), ("n=2.5", "n='2.5' is not an integer"),
                         ("noise=x", "noise='x' is not a number")):
        with pytest.raises(UserError, match=f"--data-option: {message}"):
            options.validate(["--preset", PRESET, "--data-option", bad])


@pytest.mark.parametrize(("value", "needle"), [
    ("colour=0", "--link-gradient: unknown head 'colour'"),
    ("shape=0", "--link-gradient: head 'shape' takes no other head's features"),
    ("orientation=maybe", "--link-gradient: orientation=maybe: use 1"),
])
def test_a_wrong_link_gradient_is_one_line_naming_the_flag(value, needle):
    from mtl_core.control import options
    from mtl_core.errors import UserError

    with pytest.raises(UserError, match=needle):
        options.validate(["--preset", "shapes-3head", "--link-gradient", value])


@pytest.mark.parametrize(("value", "needle"), [
    ("colour=0", "--branch-at: unknown head 'colour'"),
    ("intensity=9", r"--branch-at: intensity=9: use a layer count 0\.\.8 \(the backbone: conv:32, bn"),
    ("intensity=x", "--branch-at: intensity=x: use a layer count"),
    ("intensity", "--branch-at: 'intensity' is not of the form name=value"),
])
def test_a_wrong_branch_point_is_one_line_naming_the_flag(value, needle):
    from mtl_core.control import options
    from mtl_core.errors import UserError

    with pytest.raises(UserError, match=needle):
        options.validate(["--preset", "shapes-3head", "--branch-at", value])


def test_branch_at_reaches_the_config_and_changes_the_model_id():
    from mtl_core.control import options

    _, _, plain = options.validate(["--preset", "shapes-3head"])
    _, _, branched = options.validate(["--preset", "shapes-3head", "--branch-at", "shape=5"])
    heads = {h["task"]: h for h in branched["model"]["heads"]}
    assert heads["shape"]["branch_at"] == 5 and "branch_at" not in heads["orientation"]
    assert branched["model"] != plain["model"]
