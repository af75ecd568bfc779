"""A public app in the browser: `streamlit run app.py` with MTL_PUBLIC=1, the server's HF_TOKEN set and the local
fake Hub. A visitor's Models page says who they are, offers no delete and no publish, pulls a public repository
through the page, and no request the page made to the Hub carried the server's token."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _browser import ROOT, choose_preset, free_port, start_streamlit, stop_streamlit, wait_idle

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/fake_hub.py, tests/fake_oidc.py
from fake_hub import FakeHub  # noqa: E402

pytestmark = pytest.mark.browser
TOKEN = "hf_server_secret_token_789"
SCREENSHOTS = ROOT / "out" / "e2e"


@pytest.fixture(scope="module")
def public_app(tmp_path_factory, tiny_store):
    from conftest import require_browser

    require_browser()
    store, model_id, _ = tiny_store
    hub = FakeHub({TOKEN: "alice"}).start()
    files = {name: (store.root / model_id / name).read_bytes() for name in ("model.keras", "card.json")}
    hub.commit("alice/public-shapes", files)
    home = tmp_path_factory.mktemp("public-home")
    env = {"MTL_PUBLIC": "1", "HF_TOKEN": TOKEN, "HF_ENDPOINT": hub.endpoint, "HF_HOME": str(home / "hf"),
           "HF_HUB_OFFLINE": "0"}
    proc, url = start_streamlit(home, home / "streamlit.log", env=env)
    yield url, hub, home, model_id
    stop_streamlit(proc)
    hub.stop()


def test_a_visitor_sees_no_delete_or_publish_and_pulls_without_the_server_token(public_app, page):
    url, hub, home, model_id = public_app
    page.goto(f"{url}/models")
    page.get_by_role("heading", name="Models").first.wait_for()
    wait_idle(page)
    choose_preset(page, "shapes-3head")
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Visitor: predict, browse, compare and train within limits").wait_for()
    page.get_by_text("Only the owner of this app can delete models.").wait_for()
    wait_idle(page)
    assert page.get_by_role("button", name="Delete this model…").count() == 0
    assert page.get_by_text("Publish this model on the Hugging Face Hub").count() == 0

    page.get_by_text("Get a model from the Hugging Face Hub").click()
    page.get_by_text("Visitors pull from public repositories only: no token is sent.").wait_for()
    box = page.get_by_label("Repository (OWNER/NAME)")
    box.fill("alice/public-shapes")
    box.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Pull").click()
    page.get_by_text(f"Pulled {model_id} from alice/public-shapes").wait_for()
    wait_idle(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "public-models-visitor.png"), full_page=True)
    assert (home / "models" / model_id / "model.keras").is_file()
    shown = page.get_by_role("combobox", name="Model").input_value()
    assert shown.endswith(model_id) and " · hub " in shown, shown  # the picker shows the model the pull opened
    page.get_by_text("Only the owner of this app can change the default model.").wait_for()  # not the default
    assert page.get_by_role("button", name="Make default").count() == 0  # a visitor cannot change it for everyone
    assert hub.requests and [auth for _, _, auth in hub.requests if auth] == []
    assert page.get_by_test_id("stException").count() == 0


@pytest.fixture(scope="module")
def owner_app(tmp_path_factory, tiny_store):
    """The public app with "Sign in with Hugging Face" against a local OpenID Connect provider (tests/fake_oidc.py)
    that signs in alice, the owner (MTL_OWNERS). The secrets are what space/start.sh writes, for this address."""
    import shutil

    from conftest import require_browser
    from fake_oidc import FakeOIDC

    from mtl_core.control.access import write_auth_secrets

    require_browser()
    store, model_id, _ = tiny_store
    home = tmp_path_factory.mktemp("owner-home")
    shutil.copytree(store.root / model_id, home / "models" / model_id)  # a stored model the owner may delete
    oidc = FakeOIDC("client-abc", "secret-xyz", user="alice").start()
    port = free_port()
    space = {"OAUTH_CLIENT_ID": "client-abc", "OAUTH_CLIENT_SECRET": "secret-xyz", "OPENID_PROVIDER_URL": oidc.url}
    assert write_auth_secrets(home / "user" / ".streamlit" / "secrets.toml", space, f"http://127.0.0.1:{port}")
    env = {"MTL_PUBLIC": "1", "MTL_OWNERS": "alice", "HOME": str(home / "user"), "HF_HOME": str(home / "hf")}
    proc, url = start_streamlit(home, home / "streamlit.log", env=env, port=port)
    yield url, oidc, model_id
    stop_streamlit(proc)
    oidc.stop()


def test_the_owner_signs_in_with_hugging_face_and_gets_delete_and_publish(owner_app, page):
    url, oidc, model_id = owner_app
    page.goto(url)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Visitor: predict, browse").wait_for()  # before signing in
    wait_idle(page)
    sidebar.get_by_role("button", name="Sign in with Hugging Face").click()
    sidebar.get_by_text("Signed in as alice, the owner: every action is open.").wait_for()
    assert oidc.tokens_issued == 1  # the code was exchanged at the token endpoint, the ID token checked

    page.goto(f"{url}/models?preset=shapes-3head&model={model_id}")  # the stored model (the shipped one is default)
    page.get_by_role("heading", name="Models").first.wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Delete this model…").wait_for()
    page.get_by_role("button", name="Make default").wait_for()  # the owner may change what every visitor sees
    page.get_by_text("Publish this model on the Hugging Face Hub").wait_for()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "public-models-owner.png"), full_page=True)

    sidebar.get_by_role("button", name="Sign out").click()
    sidebar.get_by_text("Visitor: predict, browse").wait_for()
    assert page.get_by_test_id("stException").count() == 0
