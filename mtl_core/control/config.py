"""TrainConfig: everything that decides what a training produces; its hash is the model id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace

from mtl_core.control import methods
from mtl_core.control.loss_weights import check_weights
from mtl_core.control.presets.base import Preset
from mtl_core.errors import UserError

# Bumped when the meaning of a config changes (e.g. a layer-plan step builds different layers),
# so models trained by older code get new ids instead of being mistaken for current ones.
ENGINE_VERSION = 2
# Bumped when only what a loss-conditioned model is changes (hashed for conditioned configs only, so the
# static models keep their ids): 1, FiLM at scale 1; 2, FiLM at scale 0.1 (models/conditioned.py FILM_SCALE);
# 3, its curves, and so early stopping, count only the examples a head has labels for (engine/training.py).
CONDITIONED_VERSION = 3
LIMITS = {"epochs": (1, 1000), "batch_size": (1, 8192)}
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


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
    # "auto": the training machine's best (mtl_core.engine.device.choose_precision; the card says which);
    # a precision asked for by name is part of the id, so `--precision float32` is never served a bf16 model
    precision: str = "auto"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """A config from a card; keys this version does not know (a newer card's) are left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def hash_key(self, data_fingerprint: str) -> dict:
        """What the id covers: the config, with a user folder's path replaced by its content hash
        (the same files elsewhere are the same data; changed files are new data)."""
        key = self.to_dict()
        key["data"] = {k: v for k, v in self.data.items() if k != "dir"}
        key["data"]["fingerprint"] = data_fingerprint
        key["engine_version"] = ENGINE_VERSION
        if self.precision == "auto":  # added after models were shipped: hashed only when named, so their ids stay
            del key["precision"]
        if not self.conditioned:  # added after models were shipped: hashed only when set, so their ids stay
            del key["conditioned"]
        else:  # what a conditioned model is (its FiLM scale, ...) changed: new ids, the static models' kept
            key["conditioned"] = {"version": CONDITIONED_VERSION}
        return key

    def model_id(self, data_fingerprint: str) -> str:
        blob = json.dumps(self.hash_key(data_fingerprint), sort_keys=True, separators=(",", ":"))
        return f"{self.preset}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def id_from_card(card: dict) -> str | None:
    """The id that a card's config and data fingerprint hash to, i.e. what `train` names a model of that config
    and data; None when the card has no usable config or fingerprint. A pulled card must claim this id."""
    config, data = card.get("config"), card.get("data")
    fingerprint = data.get("fingerprint") if isinstance(data, dict) else None
    if not isinstance(config, dict) or not isinstance(fingerprint, str):
        return None
    try:
        return TrainConfig.from_dict(config).model_id(fingerprint)
    except (TypeError, ValueError, AttributeError):  # missing fields, or values of the wrong type
        return None


def make_config(preset: Preset, *, loss_weights: dict[str, float] | None = None,
                data: dict | None = None, model: dict | None = None, **overrides) -> TrainConfig:
    """The preset's defaults with the user's overrides, validated before anything runs."""
    weights = {t.name: t.loss_weight for t in preset.tasks}
    if loss_weights:
        check_weights(loss_weights, preset.task_names, owner=preset.name)
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
    if overrides.get("precision", "auto") not in PRECISIONS:
        raise UserError(f"--precision: unknown precision {overrides['precision']!r} (known: {', '.join(PRECISIONS)})")
    if "limit" in overrides and int(overrides["limit"]) < 10:
        raise UserError(f"--limit: {overrides['limit']} is too small (at least 10 examples)")
    method = methods.methods().get(overrides.get("weighting", methods.DEFAULT))
    if method is None:
        raise UserError(f"--weighting: unknown method {overrides['weighting']!r} "
                        f"(known: {', '.join(methods.names())})")
    options = overrides.pop("weighting_options", None) or {}
    known = {o.name: o for o in method.options}
    for name, value in options.items():
        if name not in known:
            raise UserError(f"--weighting {method.name}: unknown option {name!r} "
                            f"(known: {', '.join(known) or 'none'})")
        if not known[name].low <= float(value) <= known[name].high:
            raise UserError(f"{method.option_flag(known[name])}: {value:g} is out of range "
                            f"({known[name].low:g}..{known[name].high:g})")
    if options:
        overrides["extra"] = {"weighting_options": {k: float(v) for k, v in options.items()}}
    defaults = preset.train
    base = TrainConfig(
        preset=preset.name, data=dict(data or preset.data_defaults), model=model, loss_weights=weights,
        epochs=defaults.epochs, batch_size=defaults.batch_size, lr=defaults.lr, clipnorm=defaults.clipnorm,
        monitor=defaults.monitor or "loss", patience=defaults.patience,
        lr_patience=defaults.lr_patience, lr_factor=defaults.lr_factor, min_lr=defaults.min_lr,
    )
    if overrides.get("monitor") and overrides["monitor"] not in (*active, "loss", "heads"):
        raise UserError(f"--monitor: unknown head {overrides['monitor']!r} "
                        f"(heads: {', '.join(active)}, or loss, or heads)")
    config = replace(base, **overrides)
    if config.monitor not in (*active, "loss", "heads"):  # the preset's monitored head was dropped (--heads)
        config = replace(config, monitor="loss")
    if config.monitor == "heads" and len(active) == 1:  # one head: its own metric is the same figure
        config = replace(config, monitor=active[0])
    return config
