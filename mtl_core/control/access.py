"""Who may do what: the owner of the machine and, when the app is public, its visitors, with their quotas.

A local ``streamlit run`` serves its owner: everyone who can reach it may do everything. The app is *public*
when ``SPACE_ID`` is set (a Hugging Face Space) or ``MTL_PUBLIC=1``: then a session is a visitor's unless its
user signed in (Streamlit's OIDC login against Hugging Face, see :func:`auth_secrets`) under a name listed as
an owner (``MTL_OWNERS``, else the Space's owner ``SPACE_AUTHOR_NAME``).

:data:`ACTIONS` is the one table of the app's actions and who may do each; pages ask :func:`allowed` and
show only what is allowed, and the functions that act check again. Visitors act within :class:`Quotas`, set
by the owner through ``MTL_VISITOR_*`` variables. Nothing here imports Streamlit or TensorFlow.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, fields
from pathlib import Path

from mtl_core.errors import UserError

OWNER, VISITOR = "owner", "visitor"


@dataclass(frozen=True)
class Action:
    name: str
    who: str  # OWNER: the owner only; VISITOR: anyone (visitors within their quotas)
    what: str


ACTIONS = {a.name: a for a in (
    Action("browse", VISITOR, "open every page, read model cards, curves, confusion matrices and test samples"),
    Action("predict", VISITOR, "predict uploaded images or CSV rows and test samples (files, pixels, rate)"),
    Action("compare", VISITOR, "compare models and explore trade-offs between heads"),
    Action("train", VISITOR, "queue a training or a sweep (jobs, epochs, training-set size)"),
    Action("cancel-own", VISITOR, "cancel a job this session queued"),
    Action("download", VISITOR, "download a model's files, unless it was pulled from a private repository"),
    Action("pull-public", VISITOR, "pull a model from a public Hub repository, without any token"),
    Action("cancel-any", OWNER, "cancel anyone's job"),
    Action("download-private", OWNER, "download a model pulled from a private repository"),
    Action("pull-private", OWNER, "pull from a private repository (with the server's HF_TOKEN or a typed one)"),
    Action("push", OWNER, "publish a model on the Hugging Face Hub"),
    Action("delete", OWNER, "delete a stored model"),
    Action("make-default", OWNER, "make a model its preset's default, the one every visitor sees first"),
    Action("use-server-token", OWNER, "act on the Hub with the server's HF_TOKEN"),
)}


def public_mode(env=os.environ) -> bool:
    """Served to the public: a Hugging Face Space (``SPACE_ID``) or ``MTL_PUBLIC=1``."""
    return bool(env.get("SPACE_ID")) or env.get("MTL_PUBLIC", "").strip().lower() in ("1", "true", "yes", "on")


def owners(env=os.environ) -> set[str]:
    """Hugging Face user names that are the owner: ``MTL_OWNERS`` (comma-separated), else ``SPACE_AUTHOR_NAME``."""
    names = env.get("MTL_OWNERS") or env.get("SPACE_AUTHOR_NAME") or ""
    return {n.strip().lower() for n in names.split(",") if n.strip()}


def role(user_name: str | None, env=os.environ) -> str:
    """OWNER on a private (local) server; on a public one, OWNER only for a signed-in owner's name."""
    if not public_mode(env):
        return OWNER
    return OWNER if user_name and user_name.strip().lower() in owners(env) else VISITOR


def allowed(who: str, action: str) -> bool:
    rule = ACTIONS[action]  # a KeyError here is a page asking for an action that is not in the table
    return who == OWNER or rule.who == VISITOR


def require(who: str, action: str) -> None:
    if not allowed(who, action):
        raise UserError(f"only the owner of this app may {ACTIONS[action].what.split(' (')[0]}; "
                        "sign in with Hugging Face as the owner")


# ----------------------------------------------------------------------------- quotas


@dataclass(frozen=True)
class Quotas:
    """Visitors' limits (the owner has none). Defaults keep one T4 Space responsive for everyone: one job
    runs at a time, so a few short ones per session and a short queue; uploads of a handful of photos."""

    jobs_per_session: int = 5  # queued or running jobs of one session (a 5-point sweep fits)
    jobs_in_queue: int = 10  # queued or running jobs of all visitors together
    epochs: int = 20
    train_examples: int = 5000  # the training-set size (--limit) a visitor's job must stay within
    files_per_upload: int = 8
    megapixels_per_request: float = 16.0  # decoded pixels of all images of one prediction
    requests_per_minute: int = 30  # predictions, trainings and pulls of one session

    ENV = {"jobs_per_session": "MTL_VISITOR_JOBS", "jobs_in_queue": "MTL_VISITOR_QUEUE",
           "epochs": "MTL_VISITOR_EPOCHS", "train_examples": "MTL_VISITOR_TRAIN_EXAMPLES",
           "files_per_upload": "MTL_VISITOR_FILES", "megapixels_per_request": "MTL_VISITOR_MEGAPIXELS",
           "requests_per_minute": "MTL_VISITOR_RPM"}

    @classmethod
    def from_env(cls, env=os.environ) -> Quotas:
        values = {}
        for f in fields(cls):
            name = cls.ENV[f.name]
            text = env.get(name, "").strip()
            if not text:
                continue
            kind = float if f.type in ("float", float) else int
            try:
                value = kind(text)
            except ValueError:
                raise UserError(f"{name}: {text!r} is not a number") from None
            if value <= 0:
                raise UserError(f"{name}: {text} must be above 0")
            values[f.name] = value
        return cls(**values)


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}" if n == 1 else f"{n:,} {what}s"


def check_job(quotas: Quotas, config: dict, jobs: list, session: str, new_jobs: int = 1) -> None:
    """Refuse a visitor's training (one job, or ``new_jobs`` for a sweep) beyond the quotas, saying which.
    ``jobs`` is the queue's list; ``session`` the submitter tag of the visitor's session."""
    if config.get("epochs", 0) > quotas.epochs:
        raise UserError(f"Visitors train for at most {_count(quotas.epochs, 'epoch')} ({config['epochs']} asked): "
                        "lower the epochs")
    limit = config.get("limit")
    if limit is None or limit > quotas.train_examples:
        raise UserError(f"Visitors train on at most {quotas.train_examples:,} examples: set the training-set size "
                        f"to {quotas.train_examples:,} or less" + (f" ({limit:,} asked)" if limit else ""))
    active = [j for j in jobs if not j.finished]
    mine = sum(j.submitter == session for j in active)
    visitors = sum((j.submitter or "").startswith(VISITOR) for j in active)
    if mine + new_jobs > quotas.jobs_per_session:
        raise UserError(f"This session has {_count(mine, 'job')} queued or running and may have "
                        f"{quotas.jobs_per_session}" + (f" ({new_jobs} more asked)" if new_jobs > 1 else "")
                        + ": wait for one to end, or cancel one")
    if visitors + new_jobs > quotas.jobs_in_queue:
        raise UserError(f"The queue holds {_count(visitors, 'visitor job')} and its limit is {quotas.jobs_in_queue}: "
                        "try again when some have ended")


def check_upload(quotas: Quotas, files: int) -> None:
    if files > quotas.files_per_upload:
        raise UserError(f"{files} files uploaded: visitors predict at most {quotas.files_per_upload} at a time; "
                        "the first ones can be predicted by uploading fewer")


def check_pixels(quotas: Quotas, pixels: int) -> None:
    if pixels > quotas.megapixels_per_request * 1e6:
        raise UserError(f"these images hold {pixels / 1e6:.3g} megapixels together: visitors predict at most "
                        f"{quotas.megapixels_per_request:g} megapixels at a time (fewer or smaller images)")


class RateLimiter:
    """At most ``per_minute`` requests per key (a session) in any 60 s; thread-safe (sessions share a process)."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.per_minute, self.clock = per_minute, clock
        self._seen: dict[str, deque] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> None:
        """Count one request of ``key``, or refuse it (UserError saying when to try again)."""
        now = self.clock()
        with self._lock:
            seen = self._seen.setdefault(key, deque())
            while seen and now - seen[0] >= 60:
                seen.popleft()
            if len(seen) >= self.per_minute:
                wait = 60 - (now - seen[0])
                raise UserError(f"{self.per_minute} requests in the last minute is the limit for visitors: "
                                f"try again in {max(1, round(wait))} s")
            seen.append(now)


# ----------------------------------------------------------------------------- signing in on a Space


def auth_secrets(env=os.environ, base_url: str | None = None) -> str | None:
    """The ``[auth]`` section of Streamlit's secrets for "Sign in with Hugging Face" on a Space with
    ``hf_oauth: true`` (the Space sets ``OAUTH_CLIENT_ID``, ``OAUTH_CLIENT_SECRET``, ``OPENID_PROVIDER_URL``,
    ``SPACE_HOST``); None when those are missing. ``base_url``: the app's address, if not the Space's
    ``https://SPACE_HOST``. The cookie secret is new at every start (signing in again after a restart is the
    price of never storing one)."""
    client, secret = env.get("OAUTH_CLIENT_ID"), env.get("OAUTH_CLIENT_SECRET")
    provider = env.get("OPENID_PROVIDER_URL")
    base_url = base_url or (f"https://{env['SPACE_HOST']}" if env.get("SPACE_HOST") else None)
    if not (client and secret and provider and base_url):
        return None

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "\n".join([
        "[auth]",
        f"redirect_uri = {q(base_url.rstrip('/') + '/oauth2callback')}",
        f"cookie_secret = {q(secrets.token_urlsafe(32))}",
        "",
        "[auth.huggingface]",
        f"client_id = {q(client)}",
        f"client_secret = {q(secret)}",
        f"server_metadata_url = {q(provider.rstrip('/') + '/.well-known/openid-configuration')}",
        'client_kwargs = { scope = "openid profile" }',
        "",
    ])


def write_auth_secrets(path: Path | str, env=os.environ, base_url: str | None = None) -> bool:
    """Write :func:`auth_secrets` to ``path`` (mode 600) when the Space provides OAuth; True if written."""
    text = auth_secrets(env, base_url)
    if text is None:
        return False
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return True


if __name__ == "__main__":  # space/start.sh: python -m mtl_core.control.access SECRETS_FILE
    import sys

    print("Sign in with Hugging Face: " + ("on" if write_auth_secrets(sys.argv[1]) else
                                           "off (the Space has no hf_oauth: true)"), file=sys.stderr)
