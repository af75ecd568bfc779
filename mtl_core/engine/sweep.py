"""Running a sweep from this process (the CLI's ``sweep``): one training per loss-weight vector, here one
after the other, or on a Ray cluster all at once (``cluster``: :mod:`mtl_core.engine.remote`).

Planning a sweep, queueing it as background jobs and summarising its front are in
:mod:`mtl_core.control.sweeps` (no TensorFlow).
"""

from __future__ import annotations

from collections.abc import Callable

from mtl_core.control import datasets
from mtl_core.control.config import TrainConfig
from mtl_core.control.presets import preset_for
from mtl_core.control.sweeps import primary_metrics, summarise, sweep_configs
from mtl_core.control.tasks import card_tasks
from mtl_core.engine.training import Trainer, train


def run_sweep(preset_name: str, base: TrainConfig, vectors: list[dict[str, float]], *, store=None,
              subscribers=(), on_point: Callable[[int, dict, bool], None] | None = None, cluster=None) -> dict:
    """Train (or reuse) one model per vector; the sweep document (see :func:`summarise`), each point with
    ``cached`` (True: the stored model of that config was reused, nothing trained). On a cluster a point
    that fails is left out of the front and listed under ``failed`` with its reason; the others are kept."""
    from mtl_core.control.store import ModelStore

    store = store or ModelStore()
    configs = sweep_configs(base, vectors)
    if cluster is not None:
        return _on_cluster(preset_name, configs, store, cluster, subscribers, on_point)
    rows, tasks = [], None
    for i, config in enumerate(configs):
        model_id, card, cached = train(preset_name, config, store=store, subscribers=subscribers)
        tasks = tasks or card_tasks(card)
        rows.append({"weights": dict(config.loss_weights), "model": model_id, "metrics": primary_metrics(card),
                     "cached": cached})
        if on_point is not None:
            on_point(i, rows[-1], cached)
    return summarise(tasks or [], rows)


def _on_cluster(preset_name: str, configs: list[TrainConfig], store, cluster, subscribers, on_point) -> dict:
    from mtl_core.engine import remote

    preset = preset_for(preset_name, configs[0].data)
    data = datasets.load_training_data(preset, configs[0])  # the points differ only in their loss weights
    rows: dict[int, dict] = {}
    failed, todo, tasks = [], [], None
    for i, config in enumerate(configs):
        model_id = config.model_id(data.fingerprint)
        found = store.find(model_id)
        if found is not None and store.is_cache_hit(found):
            tasks = tasks or card_tasks(found.card)
            rows[i] = {"weights": dict(config.loss_weights), "model": model_id,
                       "metrics": primary_metrics(found.card), "cached": True}
            if on_point is not None:
                on_point(i, rows[i], True)
        else:
            todo.append((i, config, list(subscribers)))
    trainings = remote.submit(Trainer, preset_name, todo, data, cluster) if todo else []
    for training, outcome in remote.results(trainings, cluster):
        i = training.key
        config = configs[i]
        model_id = config.model_id(data.fingerprint)
        row = {"weights": dict(config.loss_weights), "model": model_id}
        if isinstance(outcome, KeyboardInterrupt):
            raise outcome
        if isinstance(outcome, BaseException):
            failed.append({**row, "error": str(outcome)})
            if on_point is not None:
                on_point(i, failed[-1], False)
            continue
        blob, card = outcome
        card = store.save_file(model_id, blob, card, replace=store.find(model_id) is not None)
        tasks = tasks or card_tasks(card)
        rows[i] = {**row, "metrics": primary_metrics(card), "cached": False, "node": card["training"].get("node")}
        if on_point is not None:
            on_point(i, rows[i], False)
    result = summarise(tasks or [], [rows[i] for i in sorted(rows)])
    if failed:
        result["failed"] = failed
    return result
