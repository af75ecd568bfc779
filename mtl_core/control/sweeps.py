"""Loss-weight sweeps: one model per weight vector, their validation metrics, the Pareto front.

A sweep is a set of configs that differ only in their loss weights. Each is trained (or, when its id is
in the store already, reused: ``training.train`` returns the stored model of an identical config), either
in this process (the CLI's ``sweep``: :func:`mtl_core.engine.sweep.run_sweep`) or as background jobs of
:class:`mtl_core.control.jobs.JobQueue` (the Trade-offs page). The page then finds sweeps among the stored
models by grouping them on everything but their loss weights (:func:`sweep_groups`), so a sweep survives a
restart and a second sweep with more points reuses the first one's models.

No TensorFlow at import: the CLI checks a sweep's options, and the page lists sweeps, without it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from mtl_core.control import datasets, pareto
from mtl_core.control.config import TrainConfig
from mtl_core.control.loss_weights import is_conditioned
from mtl_core.control.presets import get_preset
from mtl_core.control.tasks import TaskSpec, card_tasks
from mtl_core.errors import UserError


def sweep_configs(base: TrainConfig, vectors: list[dict[str, float]]) -> list[TrainConfig]:
    """``base`` with each vector as its loss weights (only the heads the model has)."""
    heads = list(base.loss_weights)
    return [replace(base, loss_weights={h: float(v[h]) for h in heads}) for v in vectors]


def check_sweep(points: int, method: str, heads: list[str]) -> None:
    """The sweep's own options, checked before anything is trained (or TensorFlow imported)."""
    if not 1 <= points <= pareto.MAX_POINTS:
        raise UserError(f"--points: {points} is out of range (1..{pareto.MAX_POINTS})")
    if method not in pareto.METHODS:
        raise UserError(f"--method: unknown method {method!r} (known: {', '.join(pareto.METHODS)})")
    if len(heads) < 2:
        raise UserError(f"sweep: a trade-off needs at least two heads (this model has {', '.join(heads)})")


def primary_metrics(card: dict, split: str = "validation") -> dict[str, dict[str, float]]:
    """Each head's front metric (``HeadKind.front_metric``) from a card, plus the regression baseline MAE
    the hypervolume's reference uses."""
    out = {}
    for task in card_tasks(card):
        metrics = card.get("metrics", {}).get(split, {}).get(task.name, {})
        metric, value = task.head_kind.front_metric(metrics)
        out[task.name] = {metric: value}
        if "baseline_mae" in metrics:
            out[task.name]["baseline_mae"] = metrics["baseline_mae"]
    return out


def summarise(tasks: list[TaskSpec], rows: list[dict]) -> dict:
    """``rows``: {"weights", "model", "metrics" (primary_metrics)} -> the sweep document of DESIGN.md:
    ``{"points": [... "pareto": bool], "hypervolume": x, "reference": {head: value}, "objectives": ...}``."""
    if not rows:
        return {"points": [], "hypervolume": 0.0, "reference": {}, "objectives": {}}
    metrics = [r["metrics"] for r in rows]
    objectives = pareto.objective_matrix(tasks, metrics)
    mask = pareto.pareto_mask(objectives)
    ref = pareto.reference_point(tasks, metrics)
    points = []
    for row, on_front in zip(rows, mask, strict=True):
        shown = {h: {k: v for k, v in m.items() if k != "baseline_mae"} for h, m in row["metrics"].items()}
        points.append({**row, "metrics": shown, "pareto": bool(on_front)})
    # the reference in the metrics' own direction (an MAE as a positive number)
    reference = {t.name: (float(r) if t.head_kind.objective[1] == "max" else -float(r))
                 for t, r in zip(tasks, ref, strict=True)}
    return {"points": points, "hypervolume": pareto.hypervolume(objectives, ref), "reference": reference,
            "objectives": {t.name: t.head_kind.objective[0] for t in tasks}}


# -- background sweeps through the job queue ----------------------------------------------------------
@dataclass
class Submitted:
    """What :func:`submit_sweep` did: jobs queued, and the models that were in the store already."""

    jobs: list = field(default_factory=list)  # mtl_core.control.jobs.Job
    stored: list[str] = field(default_factory=list)  # model ids reused without a job


def submit_sweep(preset_name: str, vectors: list[dict[str, float]], train_args: list[str] = (), *,
                 queue=None, store=None, submitter: str | None = None,
                 check: Callable[[dict, int], None] | None = None) -> Submitted:
    """Queue one training job per weight vector (``train_args``: other `train` options, e.g. ``--epochs 3``),
    skipping vectors whose model is already stored. Every job is validated, and ``check(config, new jobs)`` (a
    visitor's quotas) called, before any is queued."""
    from mtl_core.control import jobs, options
    from mtl_core.control.store import ModelStore

    queue = queue or jobs.JobQueue()
    store = store or ModelStore()
    args = [str(a) for a in train_args]
    if "--loss-weights" in args:  # the sweep sets the weights
        i = args.index("--loss-weights")
        del args[i:i + 2]
    argvs, configs = [], []
    for v in vectors:
        argv = options.train_argv(preset_name, loss_weights=v) + args
        _, _, config = options.validate(argv)
        argvs.append(argv)
        configs.append(TrainConfig.from_dict(config))
    preset = get_preset(preset_name).for_data(configs[0].data) if configs else None
    data = datasets.load_training_data(preset, configs[0]) if configs else None
    out, todo = Submitted(), []
    for argv, config in zip(argvs, configs, strict=True):
        model_id = config.model_id(data.fingerprint)
        found = store.find(model_id)
        if found is not None and store.is_cache_hit(found):
            out.stored.append(model_id)
        else:
            todo.append(argv)
    if check is not None and todo:
        check(configs[0].to_dict(), len(todo))
    out.jobs = [queue.submit(argv, submitter=submitter) for argv in todo]
    queue.advance()
    return out


# -- finding sweeps among stored models -----------------------------------------------------------------
def group_key(config: dict) -> str:
    """What a sweep's models share: the config without its loss weights (12 hex of its hash)."""
    rest = {k: v for k, v in config.items() if k != "loss_weights"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class SweepGroup:
    key: str
    models: list  # StoredModel, newest first
    config: dict  # the first model's config (loss weights aside, all the same)

    @property
    def label(self) -> str:
        c, data = self.config, self.config.get("data", {})
        where = ", ".join(f"{k}={v}" for k, v in data.items() if k not in ("dir",))
        return (f"{len(self.models)} model{'s' * (len(self.models) != 1)} · {c.get('epochs')} epochs · "
                f"{c.get('weighting', 'static')} · data {where}"
                + (f" · limit {c['limit']}" if c.get("limit") else "") + f" · seed {c.get('seed')}")

    def document(self) -> dict:
        """The sweep document of these models (validation metrics, front, hypervolume)."""
        rows = [{"weights": m.card["config"]["loss_weights"], "model": m.id, "metrics": primary_metrics(m.card)}
                for m in self.models]
        return summarise(card_tasks(self.models[0].card), rows)


def sweep_groups(store, preset_name: str) -> list[SweepGroup]:
    """The preset's ordinary (not loss-conditioned) multi-head models grouped by everything but their loss
    weights, largest group first: each group is a sweep (a lone model is a sweep of one)."""
    groups: dict[str, SweepGroup] = {}
    for model in store.list(preset_name):
        config = model.card.get("config", {})
        if is_conditioned(model.card) or len(config.get("loss_weights", {})) < 2:
            continue
        if "validation" not in model.card.get("metrics", {}):
            continue
        key = group_key(config)
        groups.setdefault(key, SweepGroup(key, [], config)).models.append(model)
    return sorted(groups.values(), key=lambda g: len(g.models), reverse=True)
