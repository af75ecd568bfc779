"""Seed ensembles (seed 002, section 6.2, experiment 5): train K seeds, keep the models whose
validation metric passes a per-head threshold, then soft-vote (``Predictor`` with several ids)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mtl_core.control.config import TrainConfig
from mtl_core.control.presets import get_preset
from mtl_core.errors import UserError


@dataclass
class EnsembleResult:
    kept: list[str]
    dropped: list[str]
    members: dict  # id -> {"seed", "validation": {head: metrics}, "kept": bool, "cached": bool}


def passes(card: dict, thresholds: dict[str, float], preset) -> bool:
    """A head's primary validation metric must reach its threshold (>= for accuracy, <= for MAE)."""
    for head, threshold in thresholds.items():
        metric, mode = preset.task(head).primary_metric
        value = card["metrics"]["validation"][head][metric]
        if (mode == "max" and value < threshold) or (mode == "min" and value > threshold):
            return False
    return True


def train_ensemble(config: TrainConfig, seeds: list[int], thresholds: dict[str, float], *, store=None,
                   subscribers=()) -> EnsembleResult:
    from mtl_core.engine.training import train

    preset = get_preset(config.preset).for_data(config.data)
    for head in thresholds:
        if head not in preset.task_names:
            raise UserError(f"--keep: unknown head {head!r} (heads: {', '.join(preset.task_names)})")
    if not seeds:
        raise UserError("--seeds: give at least one seed")
    result = EnsembleResult([], [], {})
    for seed in seeds:
        model_id, card, cached = train(config.preset, replace(config, seed=seed), store=store,
                                       subscribers=subscribers)
        ok = passes(card, thresholds, preset)
        (result.kept if ok else result.dropped).append(model_id)
        result.members[model_id] = {"seed": seed, "kept": ok, "cached": cached,
                                    "validation": card["metrics"]["validation"]}
    return result
