"""Owner and visitors: who may do what (control/access.py), the visitors' quotas with their messages, and the
app in public mode (MTL_PUBLIC=1) with a server token set and the local fake Hub: a visitor's Models page offers
no delete, push or private pull, no request it makes carries the server's token, and the quotas refuse uploads,
trainings and requests with their message. The owner's path (a local server) is the rest of the suite."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from fake_hub import FakeHub
from PIL import Image
from streamlit.testing.v1 import AppTest

from mtl_core.control import access
from mtl_core.control.jobs import Job
from mtl_core.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hf_server_secret_token_456"


# ----------------------------------------------------------------------------- the rules


@pytest.mark.parametrize(("env", "user", "expected"), [
    ({}, None, access.OWNER),  # a local server: its user is the owner
    ({"MTL_PUBLIC": "1"}, None, access.VISITOR),
    ({"SPACE_ID": "alice/studio", "SPACE_AUTHOR_NAME": "alice"}, None, access.VISITOR),
    ({"SPACE_ID": "alice/studio", "SPACE_AUTHOR_NAME": "alice"}, "bob", access.VISITOR),
    ({"SPACE_ID": "alice/studio", "SPACE_AUTHOR_NAME": "alice"}, "Alice", access.OWNER),
    ({"SPACE_ID": "acme/studio", "SPACE_AUTHOR_NAME": "acme", "MTL_OWNERS": "alice, bob"}, "bob", access.OWNER),
    ({"SPACE_ID": "acme/studio", "SPACE_AUTHOR_NAME": "acme", "MTL_OWNERS": "alice, bob"}, "acme", access.VISITOR),
    ({"MTL_PUBLIC": "1"}, "anyone", access.VISITOR),  # public without any owner name: nobody is the owner
])
def test_role(env, user, expected):
    assert access.role(user, env) == expected


def test_visitors_may_look_predict_and_train_but_not_publish_delete_or_use_the_server_token():
    visitor = {name for name in access.ACTIONS if access.allowed(access.VISITOR, name)}
    assert visitor == {"browse", "predict", "compare", "train", "cancel-own", "download", "pull-public"}
    assert all(access.allowed(access.OWNER, name) for name in access.ACTIONS)
    with pytest.raises(UserError, match="^only the owner of this app may delete a stored model; sign in"):
        access.require(access.VISITOR, "delete")
    access.require(access.OWNER, "delete")


def test_quotas_come_from_the_environment_and_bad_values_are_named():
    assert access.Quotas.from_env({}) == access.Quotas()
    q = access.Quotas.from_env({"MTL_VISITOR_EPOCHS": "3", "MTL_VISITOR_MEGAPIXELS": "0.5"})
    assert (q.epochs, q.megapixels_per_request, q.jobs_per_session) == (3, 0.5, access.Quotas().jobs_per_session)
    for value, why in (("many", "is not a number"), ("0", "must be above 0")):
        with pytest.raises(UserError, match=f"^MTL_VISITOR_JOBS: .* {why}"):
            access.Quotas.from_env({"MTL_VISITOR_JOBS": value})


def job(submitter: str | None, state: str = "queued") -> Job:
    return Job(id="j", preset="shapes-3head", argv=[], state=state, submitter=submitter)


def test_job_quotas_refuse_with_a_message_naming_the_limit():
    q = access.Quotas(jobs_per_session=2, jobs_in_queue=3, epochs=5, train_examples=1000)
    ok = {"epochs": 5, "limit": 1000}
    access.check_job(q, ok, [job("visitor:me", "done")] * 9, "visitor:me")  # finished jobs do not count
    cases = [
        ({"epochs": 6, "limit": 10}, [], 1, r"Visitors train for at most 5 epochs \(6 asked\): lower the epochs"),
        ({"epochs": 1, "limit": None}, [], 1, "Visitors train on at most 1,000 examples: set the training-set"),
        ({"epochs": 1, "limit": 1001}, [], 1, r"to 1,000 or less \(1,001 asked\)"),
        (ok, [job("visitor:me"), job("visitor:me", "running")], 1, "This session has 2 jobs queued or running and "
                                                                   "may have 2: wait"),
        (ok, [job("visitor:me")], 2, r"has 1 job queued or running and may have 2 \(2 more asked\)"),
        (ok, [job("visitor:a"), job("visitor:b"), job("visitor:c"), job("owner")], 1,
         "The queue holds 3 visitor jobs and its limit is 3"),
    ]
    for config, jobs, new, message in cases:
        with pytest.raises(UserError, match=message):
            access.check_job(q, config, jobs, "visitor:me", new)
    access.check_job(q, ok, [job("owner")] * 5 + [job("visitor:a")], "visitor:me", 2)  # the owner's are not counted


def test_upload_pixel_and_rate_quotas():
    q = access.Quotas(files_per_upload=2, megapixels_per_request=1.0)
    access.check_upload(q, 2)
    with pytest.raises(UserError, match="^3 files uploaded: visitors predict at most 2 at a time"):
        access.check_upload(q, 3)
    access.check_pixels(q, 1_000_000)
    with pytest.raises(UserError, match="hold 1 megapixels together: visitors predict at most 1 megapixels"):
        access.check_pixels(q, 1_000_001)
    now = [0.0]
    limiter = access.RateLimiter(2, clock=lambda: now[0])
    limiter.hit("a"), limiter.hit("a"), limiter.hit("b")  # per session
    now[0] = 45.0
    with pytest.raises(UserError, match="^2 requests in the last minute is the limit for visitors: try again in 15 s"):
        limiter.hit("a")
    now[0] = 60.0
    limiter.hit("a")  # the first two are a minute old


def test_no_sign_in_secrets_without_the_spaces_oauth_variables(tmp_path):
    assert access.auth_secrets({"SPACE_ID": "alice/studio"}) is None
    assert access.write_auth_secrets(tmp_path / "secrets.toml", {}) is False
    assert not (tmp_path / "secrets.toml").exists()


def test_header_pixels_reads_the_size_without_decoding():
    from mtl_core.control.data.images import header_pixels

    data = io.BytesIO()
    Image.new("RGB", (640, 480)).save(data, format="PNG")
    assert header_pixels(data.getvalue()) == 640 * 480
    assert header_pixels(b"not an image") == 0


# ----------------------------------------------------------------------------- the app in public mode


@pytest.fixture()
def public(monkeypatch, tmp_path):
    """A public app (MTL_PUBLIC=1) holding the server's HF_TOKEN, the shipped models, an empty store, the fake Hub."""
    hub = FakeHub({TOKEN: "alice"}).start()
    for name in ("HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_HUB_CACHE", "MTL_HUB_MANIFEST", "SPACE_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MTL_PUBLIC", "1")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MTL_WEIGHTS", str(ROOT / "weights"))
    yield hub
    hub.stop()


def open_page(preset: str, page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state["preset"] = preset
    at.run()
    sidebar = [c.value for c in at.sidebar.caption]  # (AppTest drops the sidebar after switch_page)
    assert any(c.startswith("Visitor: predict, browse, compare and train within limits") for c in sidebar), sidebar
    assert not [b for b in at.sidebar.button if b.key == "sign-in"]  # no OAuth configured: no sign-in button
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "error", "warning", "success", "info")
                     for e in getattr(at, kind))


def test_a_visitors_models_page_has_no_delete_push_or_private_pull_and_never_sends_the_server_token(
        public, tiny_store, tmp_path):
    store, model_id, _ = tiny_store
    folder = store.root / model_id
    files = {name: (folder / name).read_bytes() for name in ("model.keras", "card.json")}
    public.commit("alice/public-shapes", files)
    public.commit("alice/private-shapes", files, private=True)

    at = open_page("shapes-3head", "models")
    assert not [b for b in at.button if b.key in ("hub-push", "sign-out")]
    assert not [b for b in at.button if (b.key or "").startswith("delete-")]
    assert "Only the owner of this app can delete models." in shown(at)
    assert "Visitors pull from public repositories only: no token is sent." in shown(at)

    at.text_input(key="hub-pull-repo").input("alice/private-shapes")
    at.button(key="hub-pull").click().run()
    assert any("alice/private-shapes: not found on" in e.value for e in at.error), shown(at)
    at.text_input(key="hub-pull-repo").input("alice/public-shapes")
    at.button(key="hub-pull").click().run()
    assert not at.error, shown(at)
    assert (tmp_path / "home" / "models" / model_id / "model.keras").is_file()
    assert public.requests and all(auth is None for _, _, auth in public.requests)  # nor any other token
    card = json.loads((tmp_path / "home" / "models" / model_id / "card.json").read_text())
    assert card["hub"]["private"] is False  # so a visitor may download it
    assert [b for b in at.get("download_button") if b.proto.label == "Download this model (zip)"]


def test_a_model_pulled_from_a_private_repo_is_not_offered_to_a_visitor_for_download(public, tiny_store, monkeypatch):
    from mtl_core.control.store import ModelStore
    from mtl_core.engine import hub

    store, model_id, _ = tiny_store
    folder = store.root / model_id
    public.commit("alice/private-shapes", {n: (folder / n).read_bytes() for n in ("model.keras", "card.json")},
                  private=True)
    hub.pull("shapes-3head", "alice/private-shapes", store=ModelStore())  # the owner's pull, with HF_TOKEN
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state["preset"] = "shapes-3head"
    at.session_state["studio-chosen-model"] = {"shapes-3head": model_id}
    at.run()
    at.switch_page("pages/models.py").run()
    assert "Pulled from a private Hub repository: only the owner can download it." in shown(at)
    assert not [b for b in at.get("download_button") if b.proto.label == "Download this model (zip)"]


def png(size: tuple[int, int], seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (*size[::-1], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def test_a_visitors_uploads_are_refused_beyond_files_pixels_and_requests_per_minute(public, monkeypatch):
    monkeypatch.setenv("MTL_VISITOR_FILES", "2")
    monkeypatch.setenv("MTL_VISITOR_MEGAPIXELS", "0.01")  # 10,000 px: one 64x64 image (4,096) fits, 100x100 not
    monkeypatch.setenv("MTL_VISITOR_RPM", "2")
    at = open_page("shapes-3head", "predict")
    uploader = at.file_uploader(key="upload-shapes-3head")
    for i in range(3):
        uploader.upload(f"shape{i}.png", png((64, 64), i), "image/png")
    at.run()
    assert [e.value for e in at.error] == ["3 files uploaded: visitors predict at most 2 at a time; the first ones can "
                                           "be predicted by uploading fewer"]
    assert not at.metric  # nothing was predicted

    at.file_uploader(key="upload-shapes-3head").clear()
    at.file_uploader(key="upload-shapes-3head").upload("big.png", png((101, 100), 5), "image/png").run()
    assert [e.value for e in at.error] == ["these images hold 0.0101 megapixels together: visitors predict at most "
                                           "0.01 megapixels at a time (fewer or smaller images)"]

    for i, expect_refused in ((10, False), (11, False), (12, True)):  # the third new upload in one minute
        at.file_uploader(key="upload-shapes-3head").clear()
        at.file_uploader(key="upload-shapes-3head").upload(f"new{i}.png", png((64, 64), i), "image/png").run()
        refused = [e.value for e in at.error if "requests in the last minute" in e.value]
        assert bool(refused) is expect_refused, [e.value for e in at.error]
        assert bool(at.metric) is not expect_refused
    assert refused[0].startswith("2 requests in the last minute is the limit for visitors: try again in ")


def test_a_visitors_trainings_stay_within_the_quotas(public, monkeypatch):
    from mtl_core.control.jobs import JobQueue

    monkeypatch.setenv("MTL_VISITOR_JOBS", "1")
    monkeypatch.setenv("MTL_VISITOR_TRAIN_EXAMPLES", "60")
    at = open_page("shapes-3head", "train")
    assert at.number_input(key="train-shapes-3head-limit").value == 60  # the form starts within the cap
    assert at.number_input(key="train-shapes-3head-epochs").max == access.Quotas().epochs
    at.number_input(key="train-shapes-3head-epochs").set_value(1)
    queue = JobQueue()
    try:
        at.button(key="train-shapes-3head-submit").click().run()
        jobs = queue.list()
        assert len(jobs) == 1 and jobs[0].submitter.startswith("visitor:"), [e.value for e in at.error]
        at.number_input(key="train-shapes-3head-seed").set_value(7)  # another config, so it is not "trained before"
        at.button(key="train-shapes-3head-submit").click().run()
        assert any(e.value.startswith("This session has 1 job queued or running and may have 1: wait")
                   for e in at.error), ([e.value for e in at.error], [(j.state, j.error) for j in queue.list()])
        assert len(queue.list()) == 1
        other = JobQueue().submit(["--preset", "shapes-3head", "--epochs", "1", "--limit", "60"], submitter="owner")
        assert not [b for b in at.button if b.key == f"cancel-{other.id}"]  # a visitor cancels only its own
    finally:
        for j in queue.list():
            if not j.finished:
                queue.cancel(j.id)


def test_a_sweep_beyond_a_visitors_quota_queues_nothing(tmp_path):
    from mtl_core.control.jobs import JobQueue
    from mtl_core.control.store import ModelStore
    from mtl_core.control.sweeps import submit_sweep

    queue = JobQueue(tmp_path / "jobs")
    q = access.Quotas(jobs_per_session=2)
    vectors = [{"shape": w, "orientation": 1.0, "intensity": 1.0} for w in (0.5, 1.0, 2.0)]
    with pytest.raises(UserError, match=r"has 0 jobs queued or running and may have 2 \(3 more asked\)"):
        submit_sweep("shapes-3head", vectors, ["--epochs", "1", "--limit", "100", "--data-option", "n=200"],
                     queue=queue, store=ModelStore(tmp_path / "models", shipped=None), submitter="visitor:me",
                     check=lambda config, n: access.check_job(q, config, queue.list(), "visitor:me", n))
    assert queue.list() == []
