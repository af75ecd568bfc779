"""The session's role (owner or visitor) and the visitor quotas, as the pages see them.

``mtl_core.control.access`` holds the rules; this module finds who the session is (Streamlit's ``st.user``
after "Sign in with Hugging Face"), shows the sign-in box on a public app, and counts a visitor's requests.
"""

from __future__ import annotations

import functools
import secrets

import streamlit as st

from mtl_core.control import access
from mtl_core.control.jobs import Job

SESSION_KEY = "studio-session"


def _user_name() -> str | None:
    try:
        if st.user.is_logged_in:
            return st.user.get("preferred_username") or st.user.get("name")
    except Exception:  # noqa: BLE001 - no auth configured: nobody is signed in
        return None
    return None


def who() -> str:
    """OWNER or VISITOR for this session (always OWNER on a private, local server)."""
    return access.role(_user_name())


def allowed(action: str) -> bool:
    return access.allowed(who(), action)


def require(action: str) -> None:
    """Checked again where a page acts, not only where it shows a button."""
    access.require(who(), action)


def session_tag() -> str:
    """Who submitted a job: "owner", or "visitor:<this session's random id>" (counted by the quotas)."""
    if who() == access.OWNER:
        return access.OWNER
    return f"{access.VISITOR}:{st.session_state.setdefault(SESSION_KEY, secrets.token_hex(8))}"


def owns(job: Job) -> bool:
    """Whether this session may cancel ``job``: the owner any, a visitor those it queued."""
    return allowed("cancel-any") or job.submitter == session_tag()


def quotas() -> access.Quotas:
    return access.Quotas.from_env()  # read each time (a few variables): the owner may change them between runs


@functools.cache
def _limiter(per_minute: int) -> access.RateLimiter:
    return access.RateLimiter(per_minute)  # one per server process, shared by every session


def count_request() -> None:
    """One prediction, training or pull of this session: a visitor's beyond the rate limit is refused."""
    if who() == access.VISITOR:
        _limiter(quotas().requests_per_minute).hit(session_tag())


def check_upload(files: list[bytes], names: list[str]) -> None:
    """A visitor's upload (images, a camera photo, a CSV) within the quotas: the number of files, the pixels of
    the images together, and the requests per minute (a rerun showing the same files again is not a new one)."""
    if who() != access.VISITOR:
        return
    from mtl_core.control.data.images import header_pixels

    q = quotas()
    access.check_upload(q, len(files))
    access.check_pixels(q, sum(header_pixels(data) for data in files))  # 0 for a CSV
    seen = hash((tuple(names), tuple(len(data) for data in files)))
    if st.session_state.get("studio-last-upload") != seen:
        count_request()
        st.session_state["studio-last-upload"] = seen


def check_jobs(config: dict, jobs: list[Job], new_jobs: int = 1) -> None:
    """A visitor's training (or sweep of ``new_jobs`` points) within the quotas, else a UserError saying which."""
    if who() == access.VISITOR:
        access.check_job(quotas(), config, jobs, session_tag(), new_jobs)


def visitor_args(epochs: int | None = None) -> list[str]:
    """`train` flags that keep a visitor's job of a page without a size field (sweeps, the conditioned model)
    within the quotas: the training-set cap, and ``epochs`` lowered to the cap; none for the owner."""
    caps = visitor_caps()
    if caps is None:
        return []
    return ["--limit", str(caps.train_examples)] + (["--epochs", str(min(epochs, caps.epochs))] if epochs else [])


def sweep_check():
    """``submit_sweep``'s check of a visitor's quotas (config, new jobs); None for the owner."""
    if who() != access.VISITOR:
        return None
    from mtl_core.control.jobs import JobQueue

    return lambda config, new_jobs: access.check_job(quotas(), config, JobQueue().list(), session_tag(), new_jobs)


def visitor_caps() -> access.Quotas | None:
    """The quotas a form should start within, for a visitor; None for the owner."""
    return quotas() if who() == access.VISITOR else None


def sign_in_box() -> None:
    """Sidebar: on a public app, who this session is and the sign-in (or sign-out) button."""
    if not access.public_mode():
        return
    name = _user_name()
    if who() == access.OWNER:
        st.caption(f"Signed in as **{name}**, the owner: every action is open.")
        if st.button("Sign out", key="sign-out", icon=":material/logout:"):
            st.logout()
        return
    q = quotas()
    st.caption(f"{'Signed in as **' + name + '**, a visitor' if name else 'Visitor'}: predict, browse, compare "
               f"and train within limits ({q.jobs_per_session} jobs, {q.epochs} epochs, {q.train_examples:,} "
               f"examples, {q.files_per_upload} files per upload). Pushing, deleting and private repositories are "
               "the owner's.")
    if name:
        if st.button("Sign out", key="sign-out", icon=":material/logout:"):
            st.logout()
    elif _auth_configured():
        if st.button("Sign in with Hugging Face", key="sign-in", icon=":material/login:"):
            st.login("huggingface")


def _auth_configured() -> bool:
    try:
        return "huggingface" in st.secrets.get("auth", {})
    except Exception:  # noqa: BLE001 - no secrets file at all
        return False
