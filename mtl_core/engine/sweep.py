"""Running a sweep in this process (the CLI's ``sweep``): one training per loss-weight vector.

Planning a sweep, queueing it as background jobs and summarising its front are in
:mod:`mtl_core.control.sweeps` (no TensorFlow).
"""

from __future__ import annotations

from collections.abc import Callable

from mtl_core.control.config import TrainConfig
from mtl_core.control.sweeps import primary_metrics, summarise, sweep_configs
from mtl_core.control.tasks import card_tasks
from mtl_core.engine.training import train


def run_sweep(preset_name: str, base: TrainConfig, vectors: list[dict[str, float]], *, store=None,
              subscribers=(),
              on_point: Callable[[int, dict, bool], None] | None = None) -> dict:
    """Train (or reuse) one model per vector in this process; the sweep document (see :func:`summarise`),
    each point with ``cached`` (True: the stored model of that config was reused, nothing trained)."""
    from mtl_core.control.store import ModelStore

    store = store or ModelStore()
    rows, tasks = [], None
    for i, config in enumerate(sweep_configs(base, vectors)):
        model_id, card, cached = train(preset_name, config, store=store, subscribers=subscribers)
        tasks = tasks or card_tasks(card)
        rows.append({"weights": dict(config.loss_weights), "model": model_id, "metrics": primary_metrics(card),
                     "cached": cached})
        if on_point is not None:
            on_point(i, rows[-1], cached)
    return summarise(tasks or [], rows)
