"""The Home page: every preset with its default model's headline metrics beside the seed's reference."""

from __future__ import annotations

from mtl_core.control.presets.base import Preset
from mtl_core.control.store import StoredModel
from mtl_core.control.tasks import card_tasks


def headline_metrics(preset: Preset, model: StoredModel) -> list[dict]:
    """One row per head of ``model``: its primary test metric, and the seed's number for it when the seed
    reported one ("reference (seed)": the author's result on the author's data, never ours)."""
    test = model.card.get("metrics", {}).get("test", {})
    reference = preset.reference.get("metrics", {})
    rows = []
    for task in card_tasks(model.card):
        metric, _ = task.primary_metric
        value = test.get(task.name, {}).get(metric)
        if value is not None:
            rows.append({"head": task.name, "metric": metric, "this model (test)": round(value, 4),
                         "reference (seed)": reference.get(task.name, {}).get(metric)})
    return rows
