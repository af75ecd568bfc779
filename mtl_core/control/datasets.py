"""A model's data and its split, rebuilt exactly as its training made them.

Training, evaluation and the pages (test gallery, the Models page's test plots) all call
:func:`rebuild`, so the same config always gives the same examples in the same split, and a model
whose data changed since training is refused with one line instead of being scored on other data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtl_core.control.config import TrainConfig
from mtl_core.control.data.splits import Split, stratified_split
from mtl_core.control.presets.base import Dataset, Preset, take
from mtl_core.errors import UserError


def limit_dataset(data: Dataset, limit: int | None, seed: int) -> Dataset:
    """A random subset of ``limit`` examples (the same subset for the same seed)."""
    if not limit or limit >= len(data):
        return data
    idx = np.sort(np.random.default_rng(seed).choice(len(data), size=limit, replace=False))
    return Dataset(take(data.x, idx), {k: v[idx] for k, v in data.y.items()}, data.source + f", limit {limit}",
                   notes={**data.notes, "rows": len(idx)} if data.notes else {})


def load_training_data(preset: Preset, config: TrainConfig) -> Dataset:
    """The examples a config trains on: its data source, then its ``--limit`` subset."""
    return limit_dataset(preset.load_data(config.data), config.limit, config.seed)


def split(preset: Preset, data: Dataset, config: TrainConfig) -> Split:
    """Train / validation / test indices, stratified by the preset's stratify head when it has labels."""
    return stratified_split(data.y.get(preset.stratify), len(data), val_fraction=config.val_fraction,
                            test_fraction=config.test_fraction, seed=config.seed)


def on_this_machine(preset: Preset, options: dict | None = None) -> bool:
    """Whether data ``options`` (a config's ``data``; default: the preset's) load without a download."""
    options = options or preset.data_defaults
    if options.get("dir"):
        return Path(options["dir"]).exists()
    return options.get("source", "") in preset.offline_sources


def rebuild(preset: Preset, config: TrainConfig | dict, fingerprint: str | None = None, *,
            model: str = "", hint: str = "", offline: bool = False) -> tuple[Dataset, Split, TrainConfig]:
    """(data, split, config) of a model's training. ``fingerprint``: the card's; data that no longer
    matches it is refused (``hint`` says what to do instead). ``offline``: refuse data that would need a
    download (the pages never start one on their own)."""
    config = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    who = model or preset.name
    if offline and not on_this_machine(preset, config.data):
        source = config.data.get("source", "?")
        raise UserError(f"{who}: the data of this model is not on this machine "
                        f"({preset.data_sources.get(source, source)})")
    data = load_training_data(preset, config)
    if fingerprint and data.fingerprint != fingerprint:
        raise UserError(f"{who}: its training data has changed since training ({data.source})"
                        + (f"; {hint}" if hint else ""))
    return data, split(preset, data, config), config


def data_notes(data_card: dict) -> list[str]:
    """One line per thing a user should know about the data a model was trained on, from its card's
    ``data``: columns left out or flagged, values imputed, labels mapped (tables)."""
    lines = [f"left out column {col!r}: {why}" for col, why in (data_card.get("excluded") or {}).items()]
    lines += [f"column {col!r} {why}" for col, why in (data_card.get("flagged") or {}).items()]
    for col, n in (data_card.get("imputed") or {}).items():
        lines.append(f"column {col!r}: {n:,} missing value{'s' if n != 1 else ''} imputed "
                     "(training median or most frequent value)")
    for file, why in (data_card.get("skipped") or {}).items():
        lines.append(f"skipped {file}: {why}")
    for head, mapping in (data_card.get("labels") or {}).items():
        lines.append(f"{head} labels: " + ", ".join(f"{value!r} = {label}" for value, label in mapping.items()))
    return lines
