"""Model store: one folder per trained model, named by the hash of its config.

``$MTL_HOME/models/<id>/`` holds ``model.keras`` (inference weights only) and ``card.json``. The
repository's ``weights/`` folder holds shipped models in the same layout, read-only, found by the
same lookup. Writes go to a temporary folder beside the target and are moved in with one
``os.replace``, so a crash mid-save leaves no half model behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mtl_core.errors import UserError

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "weights"
SHIPPED_PACKAGE = "mtl_studio_weights"  # weights/ as a wheel installs it (setup.py)
MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # a folder name: no separator, not "." or ".."


def shipped_dir() -> Path:
    """The read-only shipped models.

    ``MTL_WEIGHTS`` if set (tests, a Space's volume); else the repository's ``weights/`` beside the
    package (a checkout, an editable install, the Docker image); else the copy that a wheel
    (``pip install .``) installs as the package ``mtl_studio_weights``.
    """
    if os.environ.get("MTL_WEIGHTS"):
        return Path(os.environ["MTL_WEIGHTS"])
    if (SHIPPED_DIR / "hub.json").is_file():  # ours, not some other distribution's site-packages/weights
        return SHIPPED_DIR
    try:
        return Path(os.fspath(resources.files(SHIPPED_PACKAGE)))
    except (ImportError, TypeError):  # not installed, or not on a file system (a zip)
        return SHIPPED_DIR


def mtl_home() -> Path:
    return Path(os.environ.get("MTL_HOME") or Path.home() / ".cache" / "mtl-studio")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for dist in ("tensorflow", "keras", "numpy", "scikit-learn", "pillow"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    from mtl_core import __version__

    versions["mtl_core"] = __version__
    return versions


@dataclass
class StoredModel:
    id: str
    path: Path  # the folder
    card: dict
    source: str  # "store" or "shipped"

    @property
    def preset(self) -> str:
        return self.card["preset"]

    @property
    def model_file(self) -> Path:
        return self.path / "model.keras"

    @property
    def origin(self) -> str:
        """What users see as the source: "hub" for a store model pulled from the Hub (its card says where)."""
        return "hub" if self.source == "store" and self.card.get("hub") else self.source

    def summary(self) -> dict:
        return {"id": self.id, "preset": self.preset, "source": self.origin, "path": str(self.path),
                "created": self.card.get("created"), "metrics": self.card.get("metrics", {}).get("test", {})}


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_model_id(text: str) -> bool:
    """Whether ``text`` can be a model id (``<preset>-<hash>``, or a folder name of the same alphabet),
    checked before an id from any input (CLI, page, Hub card) becomes a path in the store."""
    return bool(MODEL_ID.fullmatch(text or ""))


def read_card(folder: Path) -> dict | None:
    try:
        card = json.loads((folder / "card.json").read_text())
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) and "preset" in card and (folder / "model.keras").is_file() else None


class ModelStore:
    def __init__(self, root: Path | str | None = None, shipped: Path | str | None | bool = True):
        self.root = Path(root) if root else mtl_home() / "models"
        if shipped is True:
            shipped = shipped_dir()
        self.shipped = Path(shipped) if shipped else None
        self.clean_up()  # what a killed save left behind does not survive the next start

    def _folders(self):
        for source, base in (("store", self.root), ("shipped", self.shipped)):
            if base and base.is_dir():
                for folder in sorted(base.iterdir()):
                    if folder.is_dir() and not folder.name.startswith("."):
                        yield source, folder

    def find(self, model_id: str) -> StoredModel | None:
        """The model of this id in the store, else among the shipped ones. Anything that is not an id (a
        path, ``..``, a separator) is never joined onto a store folder: it finds nothing."""
        if not is_model_id(model_id):
            return None
        for source, base in (("store", self.root), ("shipped", self.shipped)):
            if base:
                card = read_card(base / model_id)
                if card is not None:
                    return StoredModel(model_id, base / model_id, card, source)
        return None

    @staticmethod
    def is_cache_hit(model: StoredModel) -> bool:
        """Whether `train` may answer with ``model`` instead of training: one trained here or shipped, never
        one pulled from the Hub (what it claims to be trained on is not known to be true)."""
        return model.origin != "hub"

    def list(self, preset: str | None = None) -> list[StoredModel]:
        """Every readable model, newest first; a store copy hides a shipped one of the same id."""
        seen: dict[str, StoredModel] = {}
        for source, folder in self._folders():
            card = read_card(folder)
            if card is not None and folder.name not in seen and (preset is None or card["preset"] == preset):
                seen[folder.name] = StoredModel(folder.name, folder, card, source)
        return sorted(seen.values(), key=lambda m: (m.source == "store", m.card.get("created", "")), reverse=True)

    # -- the default model of each preset ------------------------------------------------------------
    # A training never changes what everyone sees: the default is the model someone chose ("Make default" on
    # the Models page, `models --make-default`), else the shipped one, else the first one trained. A 2-epoch
    # experiment or a sweep's last point must not replace a good model on Home, Predict and Models.

    @property
    def defaults_file(self) -> Path:
        return self.root / "defaults.json"

    def chosen_defaults(self) -> dict[str, str]:
        """{preset: model id} as chosen; an unreadable file counts as no choice (it is rewritten on the next)."""
        try:
            data = json.loads(self.defaults_file.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def default(self, preset: str) -> StoredModel | None:
        """The chosen default of ``preset`` when it still exists, else its newest shipped model, else the
        first model trained for it (the oldest in the store)."""
        models = self.list(preset)
        chosen = self.chosen_defaults().get(preset)
        for model in models:
            if model.id == chosen:
                return model
        shipped = [m for m in models if m.source == "shipped"]
        if shipped:
            return shipped[0]
        return min(models, key=lambda m: m.card.get("created", "")) if models else None

    def default_reason(self, preset: str, found: StoredModel | None = None) -> str:
        """Why :meth:`default` is the one it is, in words for a caption (``found``: that default, when the caller
        has it already, so the store is not listed twice)."""
        found = found or self.default(preset)
        if found is None:
            return "no model yet"
        if self.chosen_defaults().get(preset) == found.id:
            return "chosen as the default"
        return "the shipped model" if found.source == "shipped" else "the first model trained (none was chosen)"

    def set_default(self, model_id: str) -> StoredModel:
        """Make ``model_id`` its preset's default, for every page and command (written atomically)."""
        found = self.find(model_id)
        if found is None:
            raise UserError(f"--make-default: no model {model_id!r} in the store ({self.root}) or in weights/")
        chosen = {**self.chosen_defaults(), found.preset: found.id}
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-defaults-{os.getpid()}-json"  # the name clean_up knows (pid before the end)
        tmp.write_text(json.dumps(chosen, indent=1, sort_keys=True))
        os.replace(tmp, self.defaults_file)
        return found

    def resolve(self, preset: str, ref: str | None = None) -> StoredModel:
        """A model by id, by folder path, or the preset's default; a clear error when there is none."""
        if ref:
            found = self.find(ref)
            if found is None and Path(ref).is_dir():
                card = read_card(Path(ref))
                if card is None:
                    raise UserError(f"{ref}: not a model folder (needs model.keras and card.json)")
                found = StoredModel(card.get("id", Path(ref).name), Path(ref), card, "path")
            how = (f"list models with `python -m mtl_core models`, or train one with "
                   f"`python -m mtl_core train --preset {preset}`")
            if found is None:
                raise UserError(f"--model: no model {ref!r} in the store ({self.root}) or in weights/ ({how})")
            if found.preset != preset:
                raise UserError(f"--model: {ref} is a {found.preset} model, not {preset} ({how})")
            return found
        found = self.default(preset)
        if found is None:
            raise UserError(f"no trained model for {preset} yet: train one with "
                            f"`python -m mtl_core train --preset {preset}` (its data sources: "
                            f"`python -m mtl_core presets`)")
        return found

    def save(self, model_id: str, model, card: dict, *, replace: bool = False) -> dict:
        """Write model.keras + card.json atomically; return the completed card. A model of the same id
        already stored is kept (a concurrent run of the same config saved it first), unless ``replace``
        (``train --force``): then the new folder takes its place and the old one is removed."""
        return self._install(model_id, model.save, card, replace=replace)

    def save_file(self, model_id: str, model_bytes: bytes, card: dict, *, replace: bool = False) -> dict:
        """As :meth:`save` for a model.keras written elsewhere (a cluster node): its bytes and its card."""
        return self._install(model_id, lambda path: Path(path).write_bytes(model_bytes), card, replace=replace)

    def _install(self, model_id: str, write_model, card: dict, *, replace: bool) -> dict:
        if not is_model_id(model_id):
            raise UserError(f"{model_id!r} is not a model id")
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / model_id
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{model_id}-{os.getpid()}-", dir=self.root))
        try:
            write_model(tmp / "model.keras")
            card = {"id": model_id, **card, "model_sha256": sha256_file(tmp / "model.keras"),
                    "model_bytes": (tmp / "model.keras").stat().st_size,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "versions": library_versions()}
            (tmp / "card.json").write_text(json.dumps(card, indent=1, allow_nan=True))
            if final.exists() and not replace:  # a concurrent run saved the same config first: keep theirs
                shutil.rmtree(tmp)
                return read_card(final) or card
            if final.exists():  # two renames: the old folder is set aside (restored by clean_up if we die here)
                trash = self.root / f".del-{model_id}-{os.getpid()}"
                os.replace(final, trash)
                os.replace(tmp, final)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return card

    def clean_up(self) -> list[str]:
        """Remove what a save or delete killed midway left (``.tmp-ID-PID-*``, ``.rm-ID-PID``) once its
        process is gone; a model set aside by a replacing save (``.del-ID-PID``) that died before the new
        one was in place is put back. Runs when a store is opened. Returns the names removed or restored."""
        done = []
        if not self.root.is_dir():
            return done
        for entry in self.root.iterdir():
            kind, _, rest = entry.name[1:].partition("-") if entry.name.startswith(".") else ("", "", "")
            if kind not in ("tmp", "del", "rm"):
                continue
            parts = rest.split("-")
            pid = next((int(x) for x in reversed(parts[:-1] if kind == "tmp" else parts) if x.isdigit()), None)
            if pid is not None and _pid_alive(pid):
                continue
            if kind == "del":
                model_id = "-".join(parts[:-1])
                if is_model_id(model_id) and not (self.root / model_id).exists():
                    os.replace(entry, self.root / model_id)
                    done.append(entry.name)
                    continue
            try:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            except OSError:
                continue  # another process is cleaning it up, or the store is read-only
            done.append(entry.name)
        return done

    def delete(self, model_id: str) -> None:
        found = self.find(model_id)
        if found is None:
            raise UserError(f"no model {model_id!r} in the store")
        if found.source != "store":
            raise UserError(f"{model_id} is a shipped model (weights/): it cannot be deleted")
        trash = self.root / f".rm-{model_id}-{os.getpid()}"  # removed by clean_up if we die before rmtree
        os.replace(found.path, trash)
        shutil.rmtree(trash, ignore_errors=True)
