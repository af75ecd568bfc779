"""The Hugging Face Hub in the app: pull a preset's model, push the selected one, and the pulls at start.

Widgets only; ``mtl_core.engine.hub`` does the work. Downloads run in the script thread (huggingface_hub downloads a
single file synchronously), so the progress bar is updated with ordinary ``st`` calls. The push token lives in
a password field, i.e. in this session's memory; it is handed to ``hub.push`` and never written anywhere.
"""

from __future__ import annotations

import threading

import streamlit as st

from mtl_core.engine import hub
from mtl_core.errors import UserError
from pages import _access
from pages import _ui as ui


def _bar(label: str):
    """A progress callback drawing one bar: bytes of the file being downloaded, with its size."""
    bar = st.progress(0.0, text=label)
    last = {"shown": -1.0}

    def update(name: str, done: int, total: int | None) -> None:
        fraction = min(done / total, 1.0) if total else 0.0
        if fraction - last["shown"] >= 0.01 or fraction == 1.0:
            last["shown"] = fraction
            size = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
            bar.progress(fraction, text=f"{label}: {name}, {size}")

    return update


def _pull(preset: str, repo: str, revision: str | None):
    # The owner's pull may use the server's HF_TOKEN (private repositories); a visitor's sends no token at all.
    token = None if _access.allowed("use-server-token") else False
    with st.status(f"Pulling `{repo}` ({revision or 'main'}) from the Hugging Face Hub…", expanded=True) as status:
        try:
            result = hub.pull(preset, repo, revision or None, progress=_bar("Downloading"), token=token)
        except UserError:
            status.update(label=f"Pulling `{repo}` failed", state="error", expanded=False)
            raise
        status.update(label=f"Pulled `{result.model}`", state="complete", expanded=False)
    return result


def pull_section(preset) -> None:
    """Pull a model of ``preset`` from a Hub repo into the store; it becomes the page's chosen model."""
    with st.expander("Get a model from the Hugging Face Hub", icon=":material/cloud_download:"):
        configured = None
        with ui.guard("the hub configuration"):
            configured = hub.configured_sources().get(preset.name)
        private = ("A private repository needs `HF_TOKEN` in the app's environment." if _access.allowed("pull-private")
                   else "Visitors pull from public repositories only: no token is sent.")
        st.caption("Downloads `model.keras` and `card.json` of one commit, checks the sha256 the card records and "
                   "that its id is the hash of its config, loads the model with `safe_mode=True` and adds it to the "
                   "store. " + private
                   + (" Offline (`HF_HUB_OFFLINE`): only what the local cache holds." if hub.offline_mode() else ""))
        left, right = st.columns([3, 2])
        repo = left.text_input("Repository (OWNER/NAME)", value=configured.repo if configured else "",
                               key="hub-pull-repo", placeholder="alice/shapes-3head")
        revision = right.text_input("Revision (branch, tag or commit sha)", value="", key="hub-pull-revision",
                                    placeholder="main")
        if st.button("Pull", key="hub-pull", icon=":material/download:", disabled=False):
            with ui.guard("pulling from the Hub"):
                _access.count_request()
                result = _pull(preset.name, repo, revision.strip() or None)
                ui.choose_model(preset.name, result.model)
                what = "was already in the store" if result.already else "is now in the store"
                cache = " (from the local cache)" if result.from_cache else ""
                st.session_state["models-flash"] = (f"Pulled {result.model} from {result.repo}@{result.commit[:12]}"
                                                    f"{cache}: it {what}.")
                st.rerun()


def push_section(model) -> None:
    """Push the selected model with a generated model card."""
    with st.expander("Publish this model on the Hugging Face Hub", icon=":material/cloud_upload:"):
        st.caption("Uploads `model.keras`, `card.json` and a generated model card (`README.md`) in one commit; "
                   "the repository is created if needed. The token (a write token from "
                   "huggingface.co/settings/tokens, or `HF_TOKEN` in the app's environment) stays in this "
                   "session's memory and is never written to disk.")
        left, right = st.columns([3, 2])
        repo = left.text_input("Repository (OWNER/NAME)", key="hub-push-repo", placeholder="alice/shapes-3head")
        token = right.text_input("Token", type="password", key="hub-push-token", placeholder="HF_TOKEN if empty")
        private = st.checkbox("Private repository", key="hub-push-private")
        if st.button(f"Push `{model.id}`", key="hub-push", icon=":material/upload:"):
            st.session_state.pop("hub-push-token", None)  # used for this one push, then forgotten
            with ui.guard("pushing to the Hub"), st.spinner(f"Uploading {model.id} to {repo}…"):
                _access.require("push")
                result = hub.push(model.id, repo, private=private, token=token or None, store=ui.store())
                st.success(f"Pushed {result.model} to {result.url} (commit {result.commit[:12]}, "
                           f"{'private' if result.private else 'public'}).")


_START = {"done": False}
_START_LOCK = threading.Lock()


def pull_at_start() -> None:
    """Once per app process: pull the configured repos (weights/hub.json, ``MTL_HUB_<PRESET>``) that have nothing
    in the store yet, showing progress; failures (offline, unreachable) are warnings, the app goes on."""
    if _START["done"] or not _START_LOCK.acquire(blocking=False):
        return  # done, or another session is pulling right now
    try:
        try:
            plan = hub.startup_plan(ui.store())
        except UserError as exc:
            st.warning(f"Hub configuration: {exc}")
            plan = []
        if plan:
            with st.status(f"Getting {len(plan)} configured model(s) from the Hugging Face Hub…",
                           expanded=True) as status:
                failed = 0
                for source in plan:
                    try:
                        result = hub.pull(source.preset, source.repo, source.revision,
                                          progress=_bar(f"{source.preset} from {source.repo}"))
                        # The owner configured this repo for the preset: that is choosing its default (once, at
                        # the first pull; a later "Make default" is not undone by a restart).
                        ui.store().set_default(result.model)
                        st.write(f"{source.preset}: `{result.model}` from {result.repo}@{result.commit[:12]}, "
                                 "now the preset's default")
                    except UserError as exc:
                        failed += 1
                        st.warning(f"{source.preset}: {exc}. The app works on with the models it has.")
                    except Exception as exc:  # noqa: BLE001 - a start-up extra must never stop the app
                        failed += 1
                        ui.log.exception("pulling %s at start", source.repo)
                        st.warning(f"{source.preset}: unexpected {type(exc).__name__} while pulling {source.repo}")
                status.update(label=f"Configured Hub models: {len(plan) - failed} of {len(plan)} ready",
                              state="error" if failed else "complete", expanded=bool(failed))
        _START["done"] = True
    finally:
        _START_LOCK.release()
