"""Hub pull and push against a local fake Hub (tests/fake_hub.py) that the real huggingface_hub client talks to.

Pull by branch and by commit, from the cache with the server stopped, refusals (corrupted file, missing file,
unknown repo, private repo without a token, server dying mid-download, a card of another preset, a Lambda layer,
malformed repo ids, unknown revisions) that leave the store untouched, a push → pull round trip with identical
predictions and no token in any file written, the CLI's exit codes and ``--json``, the configured repos the app
pulls at start, and the Models page's Hub section. Nothing here reaches the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from fake_hub import FakeHub

from mtl_core.control.store import ModelStore, sha256_file
from mtl_core.engine import hub
from mtl_core.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hf_test_secret_token_123"
REPO = "alice/tiny-shapes"


@pytest.fixture()
def fake():
    server = FakeHub({TOKEN: "alice"}).start()
    yield server
    server.stop()


@pytest.fixture()
def env(monkeypatch, tmp_path):
    """No token, no endpoint from the environment: each test says what it uses. A private HF_HOME."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_HUB_CACHE",
                 "MTL_HUB_MANIFEST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))  # no saved login
    return tmp_path


@pytest.fixture()
def files(tiny_store) -> dict[str, bytes]:
    """The tiny trained model as a repo's files."""
    store, model_id, _ = tiny_store
    folder = store.root / model_id
    return {"model.keras": (folder / "model.keras").read_bytes(), "card.json": (folder / "card.json").read_bytes()}


def new_store(tmp_path: Path, name: str = "store") -> ModelStore:
    return ModelStore(root=tmp_path / name / "models", shipped=None)


def untouched(store: ModelStore) -> bool:
    """No model and no leftover temporary folder."""
    return not store.root.exists() or not any(store.root.iterdir())


def pull(fake, store, repo=REPO, revision=None, preset="shapes-3head", **kw):
    return hub.pull(preset, repo, revision, endpoint=fake.endpoint, store=store, **kw)


# ----------------------------------------------------------------------------- pull


def test_pull_by_branch_then_by_commit_after_the_branch_moved(fake, env, files):
    first = fake.commit(REPO, files)
    card = json.loads(files["card.json"])
    second = fake.commit(REPO, {"card.json": json.dumps({**card, "note": "v2"}).encode()})
    seen = []
    result = pull(fake, new_store(env, "a"), progress=lambda name, done, total: seen.append((name, done, total)))
    assert (result.commit, result.already, result.from_cache) == (second, False, False)
    stored = json.loads((Path(result.path) / "card.json").read_text())
    assert stored["note"] == "v2" and stored["hub"]["repo"] == REPO and stored["hub"]["commit"] == second
    assert ("model.keras", len(files["model.keras"]), len(files["model.keras"])) in seen  # progress reached the end

    pinned = pull(fake, new_store(env, "b"), revision=first)
    assert pinned.commit == first
    assert "note" not in json.loads((Path(pinned.path) / "card.json").read_text())
    assert any(f"/resolve/{first}/model.keras" in path for _, path, _ in fake.requests)
    models = ModelStore(root=env / "b" / "models", shipped=None).list()
    assert [(m.id, m.origin) for m in models] == [(card["id"], "hub")]


def test_second_pull_is_served_from_the_cache_with_the_server_stopped(fake, env, files):
    sha = fake.commit(REPO, files)
    pull(fake, new_store(env, "a"))
    endpoint = fake.endpoint
    fake.stop()
    for revision in (None, sha):  # the branch (through the cache's ref) and the commit
        result = hub.pull("shapes-3head", REPO, revision, endpoint=endpoint, store=new_store(env, f"b{revision}"))
        assert (result.commit, result.from_cache, result.already) == (sha, True, False)
    with pytest.raises(UserError, match=r"alice/other@main: card.json: not in the local Hugging Face cache and the "
                                        r"Hub at http://127.0.0.1:\d+ cannot be reached"):
        hub.pull("shapes-3head", "alice/other", endpoint=endpoint, store=new_store(env, "c"))


def test_a_corrupted_model_file_is_refused_and_forgotten(fake, env, files):
    fake.commit(REPO, files)
    fake.corrupt.add((REPO, "model.keras"))
    store = new_store(env)
    with pytest.raises(UserError, match=r"^alice/tiny-shapes@main: model.keras does not match the sha256 in "
                                        r"card.json \(corrupted or replaced\); nothing was stored$"):
        pull(fake, store)
    assert untouched(store)
    fake.corrupt.clear()  # the bad blob was dropped from the cache: the next pull downloads it again
    assert sha256_file(Path(pull(fake, store).path) / "model.keras") == json.loads(files["card.json"])["model_sha256"]


def test_missing_file_unknown_repo_and_unknown_revision(fake, env, files):
    fake.commit(REPO, {"card.json": files["card.json"]})
    store = new_store(env)
    with pytest.raises(UserError, match=r"^alice/tiny-shapes@main: model.keras: no such file in the repository"):
        pull(fake, store)
    with pytest.raises(UserError, match=r"^alice/nothing: no such model repository on http://127.0.0.1"):
        pull(fake, store, repo="alice/nothing")
    with pytest.raises(UserError, match=r"^alice/tiny-shapes: no revision 'v9'"):
        pull(fake, store, revision="v9")
    assert untouched(store)


def test_private_repo_needs_a_token(fake, env, files, monkeypatch):
    fake.commit(REPO, files, private=True)
    store = new_store(env)
    with pytest.raises(UserError, match=r"^alice/tiny-shapes: not found on .*, or private and no token was given "
                                        r"\(set HF_TOKEN\)$"):
        pull(fake, store)
    with pytest.raises(UserError, match="refused the token|no access"):
        pull(fake, store, token="hf_wrong")
    assert untouched(store)
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # what users do
    assert pull(fake, store).already is False
    assert all(auth == f"Bearer {TOKEN}" for _, path, auth in fake.requests[-4:])


def test_server_dying_mid_download_leaves_nothing(fake, env, files, monkeypatch):
    import huggingface_hub.file_download as fd

    monkeypatch.setattr(fd.time, "sleep", lambda s: None)  # the client's 5 resume attempts, without waiting
    fake.commit(REPO, files)
    fake.die_after[(REPO, "model.keras")] = 5000
    store = new_store(env)
    with pytest.raises(UserError, match=r"^alice/tiny-shapes@main: model.keras: (download interrupted|the Hub at .* "
                                        r"cannot be reached)"):
        pull(fake, store)
    assert fake.server is None  # it really died
    assert untouched(store)
    cached = [p.name for p in (env / "hf" / "hub").rglob("*") if p.is_file()]
    assert not [n for n in cached if n.endswith(".incomplete")]
    assert len(files["model.keras"]) not in [p.stat().st_size for p in (env / "hf" / "hub").rglob("*") if p.is_file()]


def test_card_of_another_preset_is_refused_before_the_model_downloads(fake, env, files):
    fake.commit(REPO, files)
    store = new_store(env)
    with pytest.raises(UserError, match=r"^alice/tiny-shapes@main: card.json is a 'shapes-3head' model, not "
                                        r"color-digits$"):
        pull(fake, store, preset="color-digits")
    assert not any(path.endswith("model.keras") for _, path, _ in fake.requests)
    assert untouched(store)


def test_a_card_naming_a_path_is_refused(fake, env, files):
    card = json.loads(files["card.json"])
    fake.commit(REPO, {**files, "card.json": json.dumps({**card, "id": "../../escape"}).encode()})
    with pytest.raises(UserError, match="card.json has no usable model id"):
        pull(fake, new_store(env))
    assert not (env / "escape").exists()


def test_a_card_whose_id_does_not_match_its_config_is_refused(fake, env, files):
    card = json.loads(files["card.json"])
    other = "shapes-3head-0123456789ab"  # a well-formed id, not the hash of this config and data
    fake.commit(REPO, {**files, "card.json": json.dumps({**card, "id": other}).encode()})
    store = new_store(env)
    with pytest.raises(UserError, match=rf"^alice/tiny-shapes@main: card.json claims the id {other}, but its config "
                                        rf"and data hash to {card['id']} \(edited"):
        pull(fake, store)
    assert untouched(store)
    changed = {**card, "config": {**card["config"], "epochs": 99}}  # a config nobody trained, under the old id
    fake.commit(REPO, {**files, "card.json": json.dumps(changed).encode()})
    with pytest.raises(UserError, match=f"card.json claims the id {card['id']}, but its config"):
        pull(fake, store)
    assert untouched(store)


def shipped_like(files: dict, tmp_path: Path) -> tuple[ModelStore, dict]:
    """A store whose shipped folder holds the tiny model under its own id (as weights/ holds the shipped ones)."""
    card = json.loads(files["card.json"])
    shipped = tmp_path / "weights" / card["id"]
    shipped.mkdir(parents=True)
    for name, data in files.items():
        (shipped / name).write_bytes(data)
    return ModelStore(root=tmp_path / "store" / "models", shipped=tmp_path / "weights"), card


def test_a_pulled_model_never_takes_a_shipped_models_id(fake, env, files, tmp_path):
    store, card = shipped_like(files, tmp_path)
    other = bytearray(files["model.keras"])
    other[-1] ^= 1  # another file under the shipped id (its card's sha256 says so: only the id collides)
    fake.commit(REPO, {"model.keras": bytes(other), "card.json": json.dumps(
        {**card, "model_sha256": hashlib.sha256(bytes(other)).hexdigest()}).encode()})
    with pytest.raises(UserError, match=rf"claims the id {card['id']} of a shipped model but is a different file; "
                                        "refused, nothing was stored"):
        pull(fake, store)
    assert untouched(store) and store.find(card["id"]).source == "shipped"

    fake.commit(REPO, files)  # the shipped model itself, published: nothing to write, the shipped copy answers
    result = pull(fake, store)
    assert result.already and Path(result.path) == tmp_path / "weights" / card["id"] and untouched(store)


def test_a_pulled_model_is_never_a_cache_hit_for_train(fake, env, files, tiny_store):
    from mtl_core.control.config import TrainConfig
    from mtl_core.engine.training import train

    _, model_id, tiny_card = tiny_store
    fake.commit(REPO, files)
    store = new_store(env)
    pull(fake, store)
    assert store.find(model_id).origin == "hub"
    trained_id, card, cached = train("shapes-3head", TrainConfig.from_dict(tiny_card["config"]), store=store)
    assert (trained_id, cached) == (model_id, False)  # trained here, taking the pulled model's place
    assert "hub" not in card and store.find(model_id).origin == "store" and [m.id for m in store.list()] == [model_id]
    assert train("shapes-3head", TrainConfig.from_dict(tiny_card["config"]), store=store)[2] is True  # now it is


def test_lambda_layer_is_refused_under_safe_mode(fake, env, files, tmp_path):
    import keras

    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, {"shape": keras.layers.Dense(10, activation="softmax", name="shape")(x)})
    model.save(tmp_path / "model.keras")
    data = (tmp_path / "model.keras").read_bytes()
    card = {**json.loads(files["card.json"]), "model_sha256": sha256_file(tmp_path / "model.keras")}
    fake.commit(REPO, {"model.keras": data, "card.json": json.dumps(card).encode()})
    store = new_store(env)
    with pytest.raises(UserError, match=r"^alice/tiny-shapes@main: model.keras: cannot load under safe_mode \(it "
                                        r"contains a Lambda layer"):
        pull(fake, store)
    assert untouched(store)


@pytest.mark.parametrize("repo", ["noslash", "a/b/c", "a//b", "-a/b", "a/b--c", "a/..", "a/b.git", "a b/c", ""])
def test_malformed_repo_ids_are_refused_before_any_request(fake, env, repo):
    with pytest.raises(UserError, match=r"^--repo: .* is not a Hugging Face repo id of the form OWNER/NAME"):
        pull(fake, new_store(env), repo=repo)
    with pytest.raises(UserError, match=r"^--repo: "):
        hub.push("whatever", repo, token=TOKEN, endpoint=fake.endpoint)
    assert fake.requests == []


# ----------------------------------------------------------------------------- push


def test_push_then_pull_round_trip(fake, env, tiny_store):
    store, model_id, _ = tiny_store
    pushed = hub.push(model_id, "alice/round-trip", private=True, token=TOKEN, endpoint=fake.endpoint, store=store)
    assert pushed.private and pushed.files == ["model.keras", "card.json", "README.md"]
    repo_files = fake.files("alice/round-trip")
    assert pushed.commit == fake.repos["alice/round-trip"].branches["main"]
    assert repo_files["model.keras"] == (store.root / model_id / "model.keras").read_bytes()

    readme = repo_files["README.md"].decode()
    meta = yaml.safe_load(readme.split("---")[1])
    assert meta["library_name"] == "keras" and "multi-task-learning" in meta["tags"]
    metrics = {m["name"] for r in meta["model-index"][0]["results"] for m in r["metrics"]}
    assert {"shape accuracy", "orientation accuracy", "intensity mae"} <= metrics
    assert "| shape | accuracy |" in readme and "0.2550" in readme  # beside the seed's reference
    assert "mtl_core>Standardize" in readme and "safe_mode=True" in readme

    with pytest.raises(UserError, match="private and no token"):  # private: anonymous pulls are refused
        hub.pull("shapes-3head", "alice/round-trip", endpoint=fake.endpoint, store=new_store(env, "x"))
    target = new_store(env, "pulled")
    result = hub.pull("shapes-3head", "alice/round-trip", endpoint=fake.endpoint, store=target, token=TOKEN)
    assert (result.model, result.commit) == (model_id, pushed.commit)

    from mtl_core.engine.inference import Predictor

    x = np.random.default_rng(0).random((8, 32, 32, 1), dtype=np.float32)
    before = Predictor(store.find(model_id)).predict_arrays(x)
    after = Predictor(target.find(model_id)).predict_arrays(x)
    for head in before:
        np.testing.assert_array_equal(before[head], after[head])

    # the token is in no file written: the store, the Hugging Face cache, the repo's files
    written = [p for base in (target.root, env / "hf") for p in base.rglob("*") if p.is_file()]
    assert written and not [p for p in written if TOKEN.encode() in p.read_bytes()]
    assert not [name for name, content in repo_files.items() if TOKEN.encode() in content]
    assert all(auth == f"Bearer {TOKEN}" for method, _, auth in fake.requests if method == "POST")


def test_push_needs_a_token_and_an_existing_model(fake, env, tiny_store, monkeypatch):
    store, model_id, _ = tiny_store
    with pytest.raises(UserError, match=r"^alice/x: pushing needs a Hugging Face write token: set HF_TOKEN"):
        hub.push(model_id, "alice/x", endpoint=fake.endpoint, store=store)
    with pytest.raises(UserError, match=r"^--model: no model 'nope'"):
        hub.push("nope", "alice/x", token=TOKEN, endpoint=fake.endpoint, store=store)
    with pytest.raises(UserError, match=r"^bob/x: the token has no write access"):
        hub.push(model_id, "bob/x", token=TOKEN, endpoint=fake.endpoint, store=store)
    assert "bob/x" not in fake.repos


# ----------------------------------------------------------------------------- configured repos


def test_configured_repos_and_the_start_up_plan(fake, env, files, monkeypatch):
    manifest = env / "hub.json"
    manifest.write_text(json.dumps({"presets": {"shapes-3head": {"repo": REPO, "revision": "main"},
                                                "color-digits": {"repo": ""}}}))
    monkeypatch.setenv("MTL_HUB_MANIFEST", str(manifest))
    monkeypatch.setenv("MTL_HUB_CHURN_SPEND", "alice/churn@v1")
    sources = hub.configured_sources()
    assert {p: (s.repo, s.revision) for p, s in sources.items()} == {"shapes-3head": (REPO, "main"),
                                                                     "churn-spend": ("alice/churn", "v1")}
    store = new_store(env)
    assert [s.preset for s in hub.startup_plan(store)] == ["churn-spend", "shapes-3head"]
    fake.commit(REPO, files)
    pull(fake, store)
    assert [s.preset for s in hub.startup_plan(store)] == ["churn-spend"]  # pulled once: cached from now on
    monkeypatch.setenv("MTL_HUB_SHAPES_3HEAD", "not a repo")
    with pytest.raises(UserError, match="hub repo of shapes-3head"):
        hub.configured_sources()
    manifest.write_text("{broken")
    with pytest.raises(UserError, match="not a valid hub manifest"):
        hub.configured_sources()


def test_shipped_manifest_configures_nothing_by_default(monkeypatch):
    monkeypatch.delenv("MTL_HUB_MANIFEST", raising=False)
    monkeypatch.setenv("MTL_WEIGHTS", str(ROOT / "weights"))
    data = json.loads((ROOT / "weights" / "hub.json").read_text())
    from mtl_core.control.presets import all_presets

    assert set(data["presets"]) == {p.name for p in all_presets(include_data_defined=False)}
    for name in list(os.environ):
        if name.startswith("MTL_HUB_"):
            monkeypatch.delenv(name)
    assert hub.configured_sources() == {}


# ----------------------------------------------------------------------------- CLI


def run_cli(args, env, timeout=120):
    return subprocess.run([sys.executable, "-m", "mtl_core", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=timeout)


def test_cli_pull_push_exit_codes_and_json(fake, env, files, cli_env, tiny_store):
    _, model_id, _ = tiny_store
    base = {k: v for k, v in cli_env.items() if not k.startswith(("HF_", "MTL_HUB_"))}
    base.update(HF_ENDPOINT=fake.endpoint, HF_HOME=str(env / "cli-hf"), HF_HUB_DISABLE_PROGRESS_BARS="1")

    pushed = run_cli(["push", "--model", model_id, "--repo", "alice/cli", "--json"], {**base, "HF_TOKEN": TOKEN})
    assert pushed.returncode == 0, pushed.stderr
    payload = json.loads(pushed.stdout)
    assert len(pushed.stdout.strip().splitlines()) == 1 and payload["repo"] == "alice/cli"
    assert TOKEN not in pushed.stdout + pushed.stderr

    home = {**base, "MTL_HOME": str(env / "cli-home")}
    pulled = run_cli(["pull", "--preset", "shapes-3head", "--repo", "alice/cli", "--json"], home)
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["commit"] == payload["commit"]
    assert "downloading model.keras (" in pulled.stderr and " MB) from alice/cli" in pulled.stderr
    listed = json.loads(run_cli(["models", "--json"], home).stdout)["models"]
    assert [(m["id"], m["source"]) for m in listed] == [(model_id, "hub")]

    count = len(fake.requests)  # offline: served from the cache, nothing asked of the server
    offline = {**base, "MTL_HOME": str(env / "cli-offline"), "HF_HUB_OFFLINE": "1"}
    again = run_cli(["pull", "--preset", "shapes-3head", "--repo", "alice/cli", "--revision", payload["commit"],
                     "--json"], offline)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["from_cache"] is True and len(fake.requests) == count
    assert "downloading" not in again.stderr

    card = json.loads(files["card.json"])
    forged = {**card, "id": "shapes-3head-0123456789ab"}
    fake.commit("alice/forged", {**files, "card.json": json.dumps(forged).encode()})
    weights, _ = shipped_like(files, env / "cli-shipped")  # the shipped folder holds this id already...
    other = files["model.keras"] + b"x"  # ...and the repo has another file under it
    fake.commit("alice/impostor", {"model.keras": other, "card.json": json.dumps(
        {**card, "model_sha256": hashlib.sha256(other).hexdigest()}).encode()})
    for args, extra, message in [
        (["pull", "--preset", "shapes-3head", "--repo", "alice/forged"], {},
         "error: alice/forged@main: card.json claims the id shapes-3head-0123456789ab, but its config"),
        (["pull", "--preset", "shapes-3head", "--repo", "alice/impostor"], {"MTL_WEIGHTS": str(weights.shipped),
                                                                          "MTL_HOME": str(env / "cli-imp")},
         f"error: alice/impostor@main: its model claims the id {card['id']} of a shipped model"),
        (["pull", "--preset", "shapes-3head", "--repo", "alice/nope"], {},
         "error: alice/nope: no such model repository"),
        (["pull", "--preset", "shapes-3head", "--repo", "alice/nope"], {"HF_HUB_OFFLINE": "1"},
         "error: alice/nope@main: card.json: not in the local Hugging Face cache and HF_HUB_OFFLINE is set"),
        (["pull", "--preset", "shapes-3head", "--repo", "bad id"], {}, "error: --repo: 'bad id' is not"),
        (["pull", "--preset", "nope", "--repo", "alice/cli"], {}, "error: unknown preset 'nope'"),
        (["push", "--model", model_id, "--repo", "alice/cli"], {}, "error: alice/cli: pushing needs a Hugging Face"),
    ]:
        done = run_cli([*args, "--json"], {**base, **extra})
        assert (done.returncode, done.stdout) == (2, ""), (args, done.stderr)
        lines = done.stderr.strip().splitlines()  # download progress lines, then the one error line
        assert [line for line in lines if "error" in line] == lines[-1:] and lines[-1].startswith(message), lines
    assert not (env / "cli-imp" / "models").exists() or not any((env / "cli-imp" / "models").iterdir())


# ----------------------------------------------------------------------------- the Models page


def test_models_page_hub_section_pulls_and_pushes(fake, env, files, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MTL_HOME", str(env / "page-home"))
    monkeypatch.setenv("MTL_WEIGHTS", str(ROOT / "weights"))
    monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
    fake.commit(REPO, files)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state["preset"] = "shapes-3head"
    at.run()
    at.switch_page("pages/models.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.text_input(key="hub-pull-repo").input("no/such-repo")
    at.button(key="hub-pull").click().run()
    assert any("no/such-repo: no such model repository" in e.value for e in at.error)
    at.text_input(key="hub-pull-repo").input(REPO)
    at.button(key="hub-pull").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Pulled" in s.value for s in at.success)
    card_id = json.loads(files["card.json"])["id"]
    assert (env / "page-home" / "models" / card_id / "model.keras").is_file()

    at.text_input(key="hub-push-repo").input("alice/from-page")
    at.text_input(key="hub-push-token").input(TOKEN)
    at.button(key="hub-push").click().run()
    assert not at.error, [e.value for e in at.error]
    assert any("Pushed" in s.value for s in at.success) and "alice/from-page" in fake.repos
    shown = "\n".join(str(e.value) for kind in ("markdown", "caption", "success", "info") for e in getattr(at, kind))
    assert TOKEN not in shown


def test_pull_at_start_gets_configured_models_once_and_survives_failures(fake, env, files, monkeypatch):
    """What app.py runs before each page: the configured repos with nothing in the store are pulled, with
    progress; an unreachable one is a warning; a second run does nothing."""
    from streamlit.testing.v1 import AppTest

    from pages import _hub

    monkeypatch.setenv("MTL_HOME", str(env / "start-home"))
    monkeypatch.setenv("MTL_HUB_MANIFEST", str(env / "none.json"))
    monkeypatch.setenv("MTL_HUB_SHAPES_3HEAD", f"{REPO}@main")
    monkeypatch.setenv("MTL_HUB_COLOR_DIGITS", "alice/missing")
    monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
    fake.commit(REPO, files)
    monkeypatch.setitem(_hub._START, "done", False)

    def script():
        from pages import _hub

        _hub.pull_at_start()

    at = AppTest.from_function(script, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [w.value for w in at.warning] == ["color-digits: alice/missing: no such model repository on "
                                             f"{fake.endpoint}. The app works on with the models it has."]
    card_id = json.loads(files["card.json"])["id"]
    assert (env / "start-home" / "models" / card_id / "card.json").is_file()
    from mtl_core.control.store import ModelStore

    assert ModelStore().default("shapes-3head").id == card_id  # the owner's configured repo: the default
    count = len(fake.requests)
    at.run()
    assert len(fake.requests) == count and not at.warning  # once per process
