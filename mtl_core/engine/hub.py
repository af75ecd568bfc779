"""Hugging Face Hub: pull a preset's model into the store, push a stored model with a model card.

A pull is two steps so that nothing slow or unsafe happens before the download is known to be good:

1. ``fetch`` (no TensorFlow): resolve the revision to a commit (``/api/models/{repo}/revision/{rev}``),
   download ``card.json`` then ``model.keras`` of *that commit* through ``huggingface_hub`` (its cache,
   resumable downloads, ``HF_ENDPOINT``/``HF_HUB_OFFLINE``/``HF_TOKEN``), check the card's preset and id,
   and the sha256 it records for ``model.keras``.
2. ``register``: copy both files into a temporary folder beside the store's target, load the model there
   with ``safe_mode=True`` through the same ``Predictor`` the app uses (so a Lambda layer is refused) and run
   one blank input through it, then move the folder in with one ``os.replace``. Any failure removes the
   temporary folder: the store never holds half a model.

Without a network (``HF_HUB_OFFLINE=1``, or the Hub unreachable) a pull is served from the Hugging Face
cache when the files are there, else it fails with one line; nothing local depends on the Hub.

A push takes its token from the caller (the Models page's password field) or ``HF_TOKEN`` and hands it to
``HfApi`` in memory only: it is never written to the store, the card, a log or an error message.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from mtl_core.control.config import id_from_card
from mtl_core.control.store import ModelStore, read_card, sha256_file, shipped_dir
from mtl_core.errors import UserError

FILES = ("card.json", "model.keras")
# OWNER/NAME as the Hub accepts them (huggingface_hub's own rule, plus a required owner).
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}", re.ASCII)
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_COMMIT = re.compile(r"[0-9a-f]{40}")

Progress = Callable[[str, int, "int | None"], None]  # (file name, bytes done, bytes total or None)


@dataclass
class HubSource:
    """A repo configured for a preset (weights/hub.json or ``MTL_HUB_<PRESET>``)."""

    preset: str
    repo: str
    revision: str = "main"


@dataclass
class Fetched:
    repo: str
    revision: str
    commit: str
    card: dict
    model_file: Path  # in the Hugging Face cache: read-only for us
    from_cache: bool  # both files were in the local Hugging Face cache: nothing downloaded
    private: bool | None = None  # the repository's visibility, None when the Hub was not asked (offline)


@dataclass
class PullResult:
    model: str
    preset: str
    repo: str
    revision: str
    commit: str
    path: str
    already: bool  # the store held this very model already (same id and sha256)
    from_cache: bool  # nothing downloaded: the local Hugging Face cache had both files

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PushResult:
    model: str
    repo: str
    commit: str
    url: str
    private: bool
    files: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- checks and errors


def check_repo(repo: str | None, flag: str = "--repo") -> str:
    repo = (repo or "").strip()
    if not _REPO_ID.fullmatch(repo) or "--" in repo or ".." in repo or repo.endswith((".git", ".")):
        raise UserError(f"{flag}: {repo!r} is not a Hugging Face repo id of the form OWNER/NAME "
                        "(letters, digits, '-', '_', '.'; e.g. alice/shapes-3head)")
    return repo


def check_revision(revision: str | None) -> str:
    revision = (revision or "main").strip()
    if len(revision) > 255 or any(c.isspace() for c in revision) or ".." in revision or revision.startswith("/"):
        raise UserError(f"--revision: {revision!r} is not a branch, tag or commit sha")
    return revision


def offline_mode() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub read it at import, or as set since (the app's environment)."""
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


def _endpoint(endpoint: str | None) -> str:
    from huggingface_hub import constants

    return (endpoint or constants.ENDPOINT).rstrip("/")


def _from_env(endpoint: str | None, cache_dir: str | Path | None) -> tuple[str | None, str | None]:
    """``HF_ENDPOINT`` and ``HF_HUB_CACHE``/``HF_HOME`` as they are now: huggingface_hub reads them once, at its
    import, but the app's process (or a test) may set them later. Explicit arguments win."""
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or "").rstrip("/") or None
    if cache_dir is None and os.environ.get("HF_HUB_CACHE"):
        cache_dir = os.environ["HF_HUB_CACHE"]
    elif cache_dir is None and os.environ.get("HF_HOME"):
        cache_dir = Path(os.environ["HF_HOME"]) / "hub"
    return endpoint, (str(cache_dir) if cache_dir is not None else None)


def _hub_error(exc: BaseException, repo: str, revision: str, endpoint: str, filename: str | None = None,
               token_given: bool = False) -> UserError:
    """One line naming the repo (and file) and the problem. Never the exception's own text where it could carry
    request headers; only status codes and our words."""
    import httpx2
    from huggingface_hub import errors

    where = f"{repo}@{revision}" + (f": {filename}" if filename else "")
    if isinstance(exc, errors.GatedRepoError):
        return UserError(f"{repo}: a gated repository; accept its conditions on the Hub and set HF_TOKEN")
    if isinstance(exc, errors.RepositoryNotFoundError):
        status = exc.response.status_code if exc.response is not None else 404
        if status == 401:
            why = "the token given has no access to it" if token_given else "no token was given (set HF_TOKEN)"
            return UserError(f"{repo}: not found on {endpoint}, or private and {why}")
        return UserError(f"{repo}: no such model repository on {endpoint}")
    if isinstance(exc, errors.RevisionNotFoundError):
        return UserError(f"{repo}: no revision {revision!r} (give a branch, tag or commit sha that exists)")
    if isinstance(exc, errors.RemoteEntryNotFoundError):
        return UserError(f"{where}: no such file in the repository (a studio model needs {' and '.join(FILES)})")
    if isinstance(exc, (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled)):
        why = "HF_HUB_OFFLINE is set" if offline_mode() else f"the Hub at {endpoint} cannot be reached"
        return UserError(f"{where}: not in the local Hugging Face cache and {why}")
    if isinstance(exc, (httpx2.ConnectError, httpx2.TimeoutException)):
        return UserError(f"{where}: the Hub at {endpoint} cannot be reached ({type(exc).__name__}); "
                         "nothing was stored, try again")
    if isinstance(exc, (httpx2.TransportError, OSError)) and not isinstance(exc, errors.HfHubHTTPError):
        return UserError(f"{where}: download interrupted ({type(exc).__name__}); nothing was stored, try again")
    if isinstance(exc, errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        if status == 403:
            return UserError(f"{repo}: the token has no write access to this repository or its owner (403)")
        if status == 401:
            return UserError(f"{repo}: the Hub refused the token (401): check HF_TOKEN")
        return UserError(f"{where}: the Hub answered HTTP {status}")
    if isinstance(exc, errors.HFValidationError):
        return UserError(f"--repo: {repo!r} is not a valid Hugging Face repo id")
    return UserError(f"{where}: {type(exc).__name__}")


def _progress_class(progress: Progress, filename: str):
    """A tqdm class huggingface_hub fills while downloading; it forwards bytes to ``progress``."""
    from huggingface_hub.utils import tqdm as hf_tqdm

    class _Bar(hf_tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._done, self._total = kwargs.get("initial") or 0, kwargs.get("total")
            progress(filename, self._done, self._total)

        def update(self, n=1):
            self._done += n or 0
            progress(filename, self._done, self._total)
            return super().update(n)

    return _Bar


# ----------------------------------------------------------------------------- pull


def _valid_card(card, preset: str, where: str) -> dict:
    if not isinstance(card, dict):
        raise UserError(f"{where}: card.json is not a JSON object")
    if card.get("preset") != preset:
        raise UserError(f"{where}: card.json is a {card.get('preset')!r} model, not {preset}")
    model_id = card.get("id")
    if not isinstance(model_id, str) or not _MODEL_ID.fullmatch(model_id):
        raise UserError(f"{where}: card.json has no usable model id ({str(model_id)[:40]!r})")
    sha = card.get("model_sha256")
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise UserError(f"{where}: card.json records no sha256 of model.keras, so it cannot be verified")
    for key in ("tasks", "input"):
        if key not in card:
            raise UserError(f"{where}: card.json has no {key!r}: not a Multi-Task Studio model card")
    expected = id_from_card(card)  # the id is a hash of config + data: a card may not pick its own
    if expected is None:
        raise UserError(f"{where}: card.json has no config and data fingerprint, so its id {model_id} cannot be "
                        "checked; refused")
    if expected != model_id:
        raise UserError(f"{where}: card.json claims the id {model_id}, but its config and data hash to {expected} "
                        "(edited, or written by another version of the studio); refused, nothing was stored")
    return card


def _forget_cached(path: str) -> None:
    """Drop a bad file from the Hugging Face cache (snapshot link and blob), so the next pull downloads again."""
    p = Path(path)
    try:
        blob = p.resolve()
        p.unlink(missing_ok=True)
        if blob != p and blob.parent.name == "blobs":
            blob.unlink(missing_ok=True)
    except OSError:
        pass


def fetch(preset: str, repo: str, revision: str | None = None, *, token: str | bool | None = None,
          endpoint: str | None = None, cache_dir: str | Path | None = None,
          progress: Progress | None = None) -> Fetched:
    """Download and verify ``card.json`` and ``model.keras`` of one commit (no TensorFlow here). ``token``: a
    token, None for the environment's (``HF_TOKEN``, a saved login), False for none at all."""
    from huggingface_hub import HfApi, hf_hub_download, try_to_load_from_cache
    from huggingface_hub import errors as hf_errors

    from mtl_core.control.presets import get_preset

    get_preset(preset)
    repo, revision = check_repo(repo), check_revision(revision)
    endpoint, cache_dir = _from_env(endpoint, cache_dir)
    url = _endpoint(endpoint)
    token = None if token == "" else token  # False: send no token at all (a visitor; never the server's)
    given = bool(token) or (token is None and bool(os.environ.get("HF_TOKEN")))
    offline = offline_mode()
    private = None
    if not offline:
        try:  # a quick look first: a clear error for a wrong repo/revision/token, and no retries when unreachable
            private = HfApi(endpoint=endpoint).model_info(repo, revision=revision, token=token).private
        except (hf_errors.RepositoryNotFoundError, hf_errors.RevisionNotFoundError) as exc:
            raise _hub_error(exc, repo, revision, url, token_given=given) from None
        except hf_errors.HfHubHTTPError as exc:
            if exc.response is not None and exc.response.status_code < 500:
                raise _hub_error(exc, repo, revision, url, token_given=given) from None
            offline = True  # the Hub is down: the cache may still have this revision
        except Exception:  # noqa: BLE001  (no connection: fall back to the cache below)
            offline = True
    cached = all(isinstance(try_to_load_from_cache(repo, name, cache_dir=cache_dir, revision=revision), str)
                 for name in FILES)
    paths: dict[str, str] = {}
    commit = revision
    for name in FILES:
        try:  # card.json by the revision asked for (the cache remembers the branch), model.keras by its commit
            paths[name] = hf_hub_download(
                repo, name, revision=commit, endpoint=endpoint, token=token, cache_dir=cache_dir,
                local_files_only=offline, tqdm_class=_progress_class(progress, name) if progress else None)
        except Exception as exc:  # noqa: BLE001  (huggingface_hub and httpx raise many types)
            raise _hub_error(exc, repo, revision, url, name, token_given=given) from None
        if name == "card.json":
            try:
                card = json.loads(Path(paths[name]).read_text())
            except (OSError, ValueError):
                _forget_cached(paths[name])
                raise UserError(f"{repo}@{revision}: card.json is not valid JSON") from None
            _valid_card(card, preset, f"{repo}@{revision}")
            snapshot = Path(paths[name]).parent.name  # .../snapshots/<commit>/card.json
            commit = snapshot if _COMMIT.fullmatch(snapshot) else revision  # both files of one commit
    if sha256_file(Path(paths["model.keras"])) != card["model_sha256"]:
        _forget_cached(paths["model.keras"])
        raise UserError(f"{repo}@{revision}: model.keras does not match the sha256 in card.json "
                        "(corrupted or replaced); nothing was stored")
    return Fetched(repo, revision, commit, card, Path(paths["model.keras"]), cached, private)


def register(fetched: Fetched, store: ModelStore | None = None) -> PullResult:
    """Load the fetched model under safe_mode in a temporary folder of the store, then move it in atomically."""
    from mtl_core.control.store import StoredModel
    from mtl_core.engine.inference import Predictor

    store = store or ModelStore()
    card = fetched.card
    model_id = card["id"]
    final = store.root / model_id

    def result(already: bool, path: Path = final) -> PullResult:
        return PullResult(model_id, card["preset"], fetched.repo, fetched.revision, fetched.commit, str(path),
                          already, fetched.from_cache)

    shipped = store.shipped / model_id if store.shipped else None
    for folder in (shipped, final):
        existing = read_card(folder) if folder is not None else None
        if existing is None:
            continue
        if existing.get("model_sha256") == card["model_sha256"]:
            return result(True, folder)  # the very same file: nothing to write
        if folder == shipped:  # a store copy would hide the shipped model: never
            raise UserError(f"{fetched.repo}@{fetched.revision}: its model claims the id {model_id} of a shipped "
                            "model but is a different file; refused, nothing was stored")
        raise UserError(f"{model_id}: the store already holds a different model with this id ({final}); "
                        "delete it first (Models page) to replace it with the Hub's")
    store.root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{model_id}-{os.getpid()}-", dir=store.root))
    try:
        shutil.copyfile(fetched.model_file, tmp / "model.keras")
        stored = {**card, "hub": {"repo": fetched.repo, "revision": fetched.revision, "commit": fetched.commit,
                                  "private": fetched.private,
                                  "pulled": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
        (tmp / "card.json").write_text(json.dumps(stored, indent=1, allow_nan=True))
        where = f"{fetched.repo}@{fetched.revision}: model.keras"
        try:  # Predictor checks the sha256 again (the copy) and loads with safe_mode=True
            predictor = Predictor(StoredModel(model_id, tmp, stored, "hub"))
        except UserError as exc:
            raise UserError(f"{where}: {str(exc).split(': ', 1)[-1]}") from None
        import numpy as np

        try:
            predictor.predict_arrays(np.zeros((1, *predictor.input_shape), dtype=np.float32))
        except Exception as exc:  # noqa: BLE001  (a model whose outputs do not match its card)
            raise UserError(f"{where}: does not fit its card.json ({type(exc).__name__})") from None
        if final.exists():  # a concurrent pull finished first: keep theirs
            shutil.rmtree(tmp)
            return result(True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result(False)


def pull(preset: str, repo: str, revision: str | None = None, *, token: str | bool | None = None,
         endpoint: str | None = None, cache_dir: str | Path | None = None, store: ModelStore | None = None,
         progress: Progress | None = None) -> PullResult:
    """``fetch`` then ``register``: a verified model of the Hub in the store, or a UserError and no change."""
    fetched = fetch(preset, repo, revision, token=token, endpoint=endpoint, cache_dir=cache_dir, progress=progress)
    return register(fetched, store)


# ----------------------------------------------------------------------------- push


def push(model_id: str, repo: str, *, private: bool = False, token: str | None = None, endpoint: str | None = None,
         store: ModelStore | None = None) -> PushResult:
    """Create the repo if needed and upload model.keras, card.json and a README.md model card in one commit."""
    from huggingface_hub import CommitOperationAdd, HfApi, get_token

    from mtl_core.control.hub_card import model_card

    repo = check_repo(repo)
    store = store or ModelStore()
    model = store.find(model_id)
    if model is None:
        raise UserError(f"--model: no model {model_id!r} in the store or in weights/ "
                        "(list them with `python -m mtl_core models`)")
    if offline_mode():
        raise UserError(f"{repo}: cannot push while HF_HUB_OFFLINE is set")
    token = token or os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise UserError(f"{repo}: pushing needs a Hugging Face write token: set HF_TOKEN or enter one on the "
                        "Models page (https://huggingface.co/settings/tokens)")
    if sha256_file(model.model_file) != model.card.get("model_sha256", ""):
        raise UserError(f"{model.model_file}: sha256 does not match its card (corrupted or replaced); not pushed")
    card = {k: v for k, v in model.card.items() if k != "hub"}  # where we pulled it from is local history
    endpoint, _ = _from_env(endpoint, None)
    url = _endpoint(endpoint)
    api = HfApi(endpoint=endpoint, token=token)
    operations = [
        CommitOperationAdd("model.keras", str(model.model_file)),
        CommitOperationAdd("card.json", json.dumps(card, indent=1, allow_nan=True).encode()),
        CommitOperationAdd("README.md", model_card(card, repo, model.model_file).encode()),
    ]
    try:
        api.create_repo(repo, private=private, exist_ok=True)
        info = api.create_commit(repo, operations, commit_message=f"Upload {model.id} from Multi-Task Studio")
    except Exception as exc:  # noqa: BLE001
        raise _hub_error(exc, repo, "main", url, token_given=True) from None
    return PushResult(model.id, repo, info.oid, f"{url}/{repo}", private, [op.path_in_repo for op in operations])


# ----------------------------------------------------------------------------- configured repos


def manifest_path() -> Path:
    """``MTL_HUB_MANIFEST``, else ``hub.json`` in the shipped-weights folder (``MTL_WEIGHTS`` or weights/)."""
    return Path(os.environ.get("MTL_HUB_MANIFEST") or shipped_dir() / "hub.json")


def configured_sources() -> dict[str, HubSource]:
    """Per preset, the repo to pull from: the manifest, overridden by ``MTL_HUB_<PRESET>=OWNER/NAME[@REV]``
    (preset upper-cased, '-' as '_'; an empty value switches a preset off). A preset with no repo is absent."""
    from mtl_core.control.presets import all_presets

    entries: dict = {}
    path = manifest_path()
    if path.is_file():
        try:
            entries = json.loads(path.read_text()).get("presets", {})
        except (OSError, ValueError, AttributeError):
            raise UserError(f"{path}: not a valid hub manifest (JSON with a 'presets' object)") from None
    sources = {}
    for preset in all_presets(include_data_defined=False):  # a table model is its user's, not a preset's
        entry = entries.get(preset.name) or {}
        repo, revision = str(entry.get("repo") or ""), str(entry.get("revision") or "main")
        env = os.environ.get("MTL_HUB_" + preset.name.upper().replace("-", "_"))
        if env is not None:
            repo, _, rev = env.strip().partition("@")
            revision = rev or "main"
        if repo:
            sources[preset.name] = HubSource(preset.name, check_repo(repo, f"hub repo of {preset.name}"),
                                             check_revision(revision))
    return sources


def startup_plan(store: ModelStore | None = None) -> list[HubSource]:
    """Configured repos with nothing of theirs in the store yet: what the app pulls when it starts."""
    store = store or ModelStore()
    plan = []
    for preset, source in configured_sources().items():
        pulled = [m for m in store.list(preset) if (m.card.get("hub") or {}).get("repo") == source.repo]
        if not pulled:
            plan.append(source)
    return plan
