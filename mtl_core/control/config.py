"""TrainConfig: everything that decides what a training produces; its hash is the model id."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace

from mtl_core.control.presets.base import Preset
from mtl_core.errors import UserError

# Bumped when the meaning of a config changes (e.g. a layer-plan step builds different layers),
# so models trained by older code get new ids instead of being mistaken for current ones.
ENGINE_VERSION = 2
# Bumped when only what a loss-conditioned model is changes (hashed for conditioned configs only, so the
# static models keep their ids): 1, FiLM at scale 1; 2, FiLM at scale 0.1 (models/conditioned.py FILM_SCALE).
CONDITIONED_VERSION = 2
# the methods of mtl_core.engine.weighting (issue 5); kept here as names so validating a config imports no TensorFlow
WEIGHTING_METHODS = ("static", "uncertainty", "gradnorm", "dwa", "rlw", "pcgrad")
LIMITS = {"epochs": (1, 1000), "batch_size": (1, 8192)}


@dataclass(frozen=True)
class TrainConfig:
    preset: str
    data: dict
    model: dict
    loss_weights: dict[str, float]
    weighting: str = "static"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    clipnorm: float = 1.0
    seed: int = 42
    limit: int | None = None
    monitor: str = ""
    patience: int = 8
    lr_patience: int = 10
    lr_factor: float = 0.7
    min_lr: float = 1e-6
    val_fraction: float = 0.2
    test_fraction: float = 0.15
    extra: dict = field(default_factory=dict)
    # a loss-conditioned model (mtl_core.control.loss_weights): one model for every weighting, lambda as an input
    conditioned: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return cls(**d)

    def hash_key(self, data_fingerprint: str) -> dict:
        """What the id covers: the config, with a user folder's path replaced by its content hash
        (the same files elsewhere are the same data; changed files are new data)."""
        key = self.to_dict()
        key["data"] = {k: v for k, v in self.data.items() if k != "dir"}
        key["data"]["fingerprint"] = data_fingerprint
        key["engine_version"] = ENGINE_VERSION
        if not self.conditioned:  # added after models were shipped: hashed only when set, so their ids stay
            del key["conditioned"]
        else:  # what a conditioned model is (its FiLM scale, ...) changed: new ids, the static models' kept
            key["conditioned"] = {"version": CONDITIONED_VERSION}
        return key

    def model_id(self, data_fingerprint: str) -> str:
        blob = json.dumps(self.hash_key(data_fingerprint), sort_keys=True, separators=(",", ":"))
        return f"{self.preset}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def parse_loss_weights(text: str) -> dict[str, float]:
    """``"shape=1,orientation=1.5"`` -> dict; the values are checked by make_config."""
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--loss-weights: {part!r} is not of the form head=weight")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise UserError(f"--loss-weights: weight of {name.strip()!r} is not a number ({value!r})") from None
    return weights


def check_loss_weights(preset: Preset, weights: dict[str, float]) -> None:
    for name, w in weights.items():
        if name not in preset.task_names:
            raise UserError(f"--loss-weights: unknown head {name!r} for {preset.name} "
                            f"(heads: {', '.join(preset.task_names)})")
        if not isinstance(w, (int, float)) or math.isnan(w) or math.isinf(w):
            raise UserError(f"--loss-weights: weight of {name!r} is not a finite number ({w!r})")
        if w < 0:
            raise UserError(f"--loss-weights: weight of {name!r} is negative ({w:g})")


def make_config(preset: Preset, *, loss_weights: dict[str, float] | None = None,
                data: dict | None = None, model: dict | None = None, **overrides) -> TrainConfig:
    """The preset's defaults with the user's overrides, validated before anything runs."""
    weights = {t.name: t.loss_weight for t in preset.tasks}
    if loss_weights:
        check_loss_weights(preset, loss_weights)
        weights.update({k: float(v) for k, v in loss_weights.items()})
    if model is None:
        model = preset.model.to_dict()
    active = [h["task"] for h in model["heads"]]
    weights = {k: v for k, v in weights.items() if k in active}
    if not any(w > 0 for w in weights.values()):
        raise UserError("--loss-weights: every weight is zero, so nothing would be trained")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    for name, (lo, hi) in LIMITS.items():
        if name in overrides and not lo <= int(overrides[name]) <= hi:
            raise UserError(f"--{name.replace('_', '-')}: {overrides[name]} is out of range ({lo}..{hi})")
    if "lr" in overrides and not 0 < float(overrides["lr"]) < 10:
        raise UserError(f"--lr: {overrides['lr']} is out of range (0..10)")
    if overrides.get("conditioned"):
        if overrides.get("weighting", "static") != "static":
            raise UserError("--conditioned: the loss weights are the model's input, drawn per example; "
                            f"it cannot be combined with --weighting {overrides['weighting']}")
        if len(active) < 2:
            raise UserError("--conditioned: a loss-conditioned model needs at least two heads")
    if "limit" in overrides and int(overrides["limit"]) < 10:
        raise UserError(f"--limit: {overrides['limit']} is too small (at least 10 examples)")
    if overrides.get("weighting", "static") not in WEIGHTING_METHODS:
        raise UserError(f"--weighting: unknown method {overrides['weighting']!r} "
                        f"(known: {', '.join(WEIGHTING_METHODS)})")
    options = overrides.pop("weighting_options", None) or {}
    if "alpha" in options and not 0 <= float(options["alpha"]) <= 10:
        raise UserError(f"--gradnorm-alpha: {options['alpha']} is out of range (0..10)")
    if options:
        overrides["extra"] = {"weighting_options": {k: float(v) for k, v in options.items()}}
    defaults = preset.train
    base = TrainConfig(
        preset=preset.name, data=dict(data or preset.data_defaults), model=model, loss_weights=weights,
        epochs=defaults.epochs, batch_size=defaults.batch_size, lr=defaults.lr, clipnorm=defaults.clipnorm,
        monitor=defaults.monitor or "loss", patience=defaults.patience,
        lr_patience=defaults.lr_patience, lr_factor=defaults.lr_factor, min_lr=defaults.min_lr,
    )
    if overrides.get("monitor") and overrides["monitor"] not in (*active, "loss"):
        raise UserError(f"--monitor: unknown head {overrides['monitor']!r} (heads: {', '.join(active)}, or loss)")
    config = replace(base, **overrides)
    if config.monitor not in (*active, "loss"):  # the preset's monitored head was dropped (--heads)
        config = replace(config, monitor="loss")
    return config
