"""The Train page: its form's defaults, the `train` arguments a form stands for, whether that config was
trained before, and a job's live curves. No Streamlit, no TensorFlow: every rerun of the page (one per
slider move, one per poll while a job trains) must stay cheap.

Every option of the form is a flag of ``python -m mtl_core train``; the page turns the form into those
arguments and validates them exactly as the CLI does (:func:`mtl_core.control.options.validate`), so the
page and the CLI cannot disagree about what a setting means. The weighting methods and their options come
from their catalogue (:mod:`mtl_core.control.methods`).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

import pandas as pd

from mtl_core.control import methods, options
from mtl_core.control.jobs import Job, events_of, progress
from mtl_core.control.plan import APPLICATIONS
from mtl_core.control.presets.base import Preset
from mtl_core.control.store import ModelStore, StoredModel

SLIDER = {"min_value": 0.0, "max_value": 5.0, "step": 0.05}  # a head's loss weight on the page


@dataclass
class TrainForm:
    """The page's settings; the defaults are the preset's (what `train --preset P` alone would do)."""

    loss_weights: dict[str, float]
    weighting: str = methods.DEFAULT
    weighting_options: dict[str, float] = field(default_factory=dict)  # the chosen method's, by option name
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 42
    limit: int | None = None  # training-set size: None = all examples
    detach: dict[str, bool] = field(default_factory=dict)
    links: dict[str, list[str]] = field(default_factory=dict)
    link_gradient: dict[str, bool] = field(default_factory=dict)  # False: a head reads its links without training them
    branch_at: dict[str, int | None] = field(default_factory=dict)  # where a head leaves the backbone (None: its end)
    freeze: float | None = None  # fraction of a pretrained backbone kept frozen (None: no pretrained backbone)
    precision: str = "auto"
    device: str = "auto"
    conditioned: bool = False  # one model for every weighting (the sliders give its default lambda)
    data_args: list[str] = field(default_factory=list)  # the user's data: --data-dir FILE --target COL ... (tables)
    workers: int = 1  # on a Ray cluster ($MTL_CLUSTER): Ray Train workers for one training (--workers)


def form_defaults(preset: Preset) -> TrainForm:
    spec, train = preset.model, preset.train
    freeze = None
    if spec.pretrained_steps:
        parts = spec.pretrained_steps[0].split(":")
        freeze = float(parts[2]) if len(parts) > 2 else APPLICATIONS[parts[1]]["freeze"]
    return TrainForm(
        loss_weights={t.name: t.loss_weight for t in preset.tasks}, epochs=train.epochs,
        batch_size=train.batch_size, lr=train.lr, seed=42,
        detach={h.task: h.detach for h in spec.heads}, links={h.task: list(h.inputs_from) for h in spec.heads},
        link_gradient={h.task: h.link_gradient for h in spec.heads},
        branch_at={h.task: h.branch_at for h in spec.heads}, freeze=freeze)


def branch_choices(preset: Preset) -> dict[str, int | None]:
    """The Train page's labels for where a head can leave the backbone -> ``branch_at``."""
    backbone = preset.model.backbone
    return {"after the whole backbone": None, "at the input (layers of its own)": 0,
            **{f"after layer {k}: {backbone[k - 1]}": k for k in range(1, len(backbone))}}


def method_choices() -> dict[str, str]:
    """Method name -> one line for the caption under the picker (the picker shows the name alone: the lines are
    too long for a select box, which cut them off)."""
    return {m.name: m.help for m in methods.methods().values()}


def train_args(preset: Preset, form: TrainForm) -> list[str]:
    """The `train` arguments for ``form``: only what differs from the preset's defaults, so the command
    shown on the page is the shortest one that trains the same model."""
    base = form_defaults(preset)
    chosen = {}
    if form.loss_weights != base.loss_weights:
        chosen["loss_weights"] = form.loss_weights
    chosen["conditioned"] = form.conditioned
    if form.weighting != methods.DEFAULT:
        chosen["weighting"] = form.weighting
        method = methods.methods()[form.weighting]
        for option in method.options:
            value = form.weighting_options.get(option.name, option.default)
            if value != option.default:
                chosen[f"{method.name}_{option.name}"] = float(value)
    for name in ("epochs", "batch_size", "lr", "seed"):
        if getattr(form, name) != getattr(base, name):
            chosen[name] = getattr(form, name)
    if form.limit:
        chosen["limit"] = int(form.limit)
    chosen["detach"] = {h: v for h, v in form.detach.items() if v != base.detach.get(h)} or None
    chosen["link"] = {h: v for h, v in form.links.items() if list(v) != base.links.get(h)} or None
    chosen["link_gradient"] = {h: v for h, v in form.link_gradient.items()
                               if form.links.get(h) and v != base.link_gradient.get(h, True)} or None
    branches = {h: v for h, v in form.branch_at.items() if v != base.branch_at.get(h)}
    chosen["branch_at"] = {h: "" if v is None else v for h, v in branches.items()} or None
    if form.freeze is not None and base.freeze is not None and form.freeze != base.freeze:
        chosen["freeze"] = float(form.freeze)
    for name in ("precision", "device"):
        if getattr(form, name) != "auto":
            chosen[name] = getattr(form, name)
    where = ["--workers", str(int(form.workers))] if form.workers > 1 else []
    return options.train_argv(preset.name, **chosen) + list(form.data_args) + where


def command_line(argv: list[str]) -> str:
    return "python -m mtl_core train " + " ".join(shlex.quote(a) for a in argv)


def check(argv: list[str]) -> dict:
    """The validated TrainConfig (as a dict) of ``argv``; raises UserError with the CLI's own message."""
    return options.validate(argv)[2]


# The form's field for each `train` flag, so the page's errors speak of what the user sees, not of the CLI.
FIELD_NAMES = {"--loss-weights": "Loss weights", "--epochs": "Epochs", "--batch-size": "Batch size",
               "--lr": "Learning rate", "--seed": "Seed", "--limit": "Training-set size",
               "--weighting": "Weighting method", "--weighting-option": "Weighting method option",
               "--precision": "Precision", "--device": "Device", "--detach": "Stop-gradient",
               "--link": "Head options", "--freeze": "Frozen share of the pretrained backbone",
               "--workers": "Workers per training", "--conditioned": "One model for every weighting"}


def plain_words(message: str) -> str:
    """A `train` error as the form says it: "--loss-weights: ..." -> "Loss weights: ..."."""
    for flag, label in sorted(FIELD_NAMES.items(), key=lambda kv: -len(kv[0])):
        message = message.replace(flag, label)
    return message


def split_sizes(n: int, val_fraction: float = 0.2, test_fraction: float = 0.15) -> dict[str, int]:
    """How a data set of ``n`` examples is split (the split the Trainer makes: test first, then validation)."""
    from mtl_core.control.data.splits import stratified_split

    split = stratified_split(None, n, val_fraction=val_fraction, test_fraction=test_fraction)
    return {"train": len(split.train), "validation": len(split.val), "test": len(split.test)}


def _plain(value):
    return json.loads(json.dumps(value))  # tuples -> lists, as in a card read from disk


def find_trained(store: ModelStore, config: dict) -> StoredModel | None:
    """A stored model trained with exactly this config. A config reading a user's folder is never
    matched here: its files may have changed, which only the training's data fingerprint can tell."""
    if config.get("data", {}).get("dir"):
        return None
    wanted = _plain(config)
    return next((m for m in store.list(config["preset"]) if m.card.get("config") == wanted), None)


def job_curves(job: Job) -> dict:
    """A job's epochs so far in the card-history shape (charts.training_curves per head), plus the
    adaptive loss weights and the gradient-conflict figures per epoch: {"epochs", "train": {head: {metric: []}},
    "val": ..., "loss_weights", "gradients": {"cosine": {pair: []}, "norm": {head: []}}, "warnings": [message]}."""
    out: dict = {"epochs": [], "train": {}, "val": {}, "loss_weights": {}, "gradients": {"cosine": {}, "norm": {}},
                 "warnings": []}
    found = events_of(job, "epoch", "warning")  # one read of the events file for both
    out["warnings"] = [e["message"] for e in found["warning"]]
    for event in found["epoch"]:
        out["epochs"].append(event["epoch"])
        for kind in ("cosine", "norm"):  # the conflict monitor's figures (engine/conflict.py)
            for key, value in ((event.get("gradients") or {}).get(kind) or {}).items():
                out["gradients"][kind].setdefault(key, []).append(value)
        for split in ("train", "val"):
            for head, values in (event.get(split) or {}).items():
                if isinstance(values, dict):
                    for metric, x in values.items():
                        out[split].setdefault(head, {}).setdefault(metric, []).append(x)
        for head, w in (event.get("loss_weights") or {}).items():
            out["loss_weights"].setdefault(head, []).append(w)
    return out


def head_curves(curves: dict, head: str, metric: str | None = None) -> dict:
    """One head's {"train": {metric: []}, "val": {metric: []}} for charts.training_curves; only ``metric``
    when given (the live panel shows each head's primary metric, one narrow chart per head)."""
    out = {split: curves[split].get(head, {}) for split in ("train", "val")}
    if metric is not None:
        out = {split: {k: v for k, v in values.items() if k == metric} for split, values in out.items()}
    return out


def runs_on(job: Job, p: dict | None = None) -> str:
    """Where a job runs: "this machine", or the cluster and (once it started) the node."""
    if not job.cluster:
        return "this machine"
    node = (p or progress(job)).get("node") or {}
    workers = f", {node['workers']} workers led by" if (node.get("workers") or 1) > 1 else ", node"
    return f"Ray cluster {job.cluster}" + (f"{workers} {node['host']} ({node.get('ip')})" if node.get("host") else "")


def job_status(job: Job) -> tuple[float, str]:
    """(fraction done, one line) for a progress bar."""
    p = progress(job)
    device = p.get("device") or {}
    where = f" on {device.get('kind')} ({device.get('name')})" if device else ""
    if job.cluster:
        where += f" · {runs_on(job, p)}"
    if job.state == "running" and job.cluster and not p.get("epoch") and not p.get("running_epoch"):
        return 0.0, f"sent to the {runs_on(job, p)}: waiting for a node with the resources it asks for, or starting"
    if job.state == "queued":
        return 0.0, f"queued: #{job.position} in line (one training at a time on this machine)"
    if job.state == "running" and not p.get("batches") and not p.get("epoch"):  # no "start" event yet
        return 0.0, (f"starting ({p['elapsed'] or 0:.0f} s): loading TensorFlow, the data and the model; the first "
                     "epoch follows")
    if job.state == "running":  # the epoch under way: the one a batch event names, else the one after the last
        epoch = p.get("running_epoch") or min(p["epoch"] + 1, p["epochs"] or p["epoch"] + 1)
        batch = f", batch {p['batch']}/{p['batches']}" if p.get("running_epoch") and p.get("batches") else ""
        return p["fraction"], f"epoch {epoch}/{p['epochs']}{batch}{where} · {p['elapsed'] or 0:.0f} s"
    if job.state == "done":
        what = "the same config was in the store: nothing trained" if job.cached else \
            f"trained {p.get('epochs_run') or p['epoch']} epochs{where} in {p['elapsed'] or 0:.0f} s"
        return 1.0, f"done: model {job.model} ({what})"
    if job.state == "cancelled":
        return p["fraction"], "cancelled: nothing was saved"
    return p["fraction"], f"failed: {job.error or 'see the log'}"


def jobs_table(jobs: list[Job]) -> pd.DataFrame:
    """The queue and the history of jobs, newest first, for the page's table."""
    rows = []
    for job in jobs:
        p = progress(job)
        weights = job.config.get("loss_weights") or {}
        rows.append({
            "job": job.id, "preset": job.preset,
            "state": f"queued #{job.position}" if job.state == "queued" else job.state,
            "progress": p["fraction"],
            "weighting": job.config.get("weighting", "static"),
            "loss weights": ", ".join(f"{h}={w:g}" for h, w in weights.items()),
            "epochs": job.config.get("epochs"),
            "runs on": runs_on(job, p),
            "model or reason": job.model or job.error or "",
        })
    return pd.DataFrame(rows)
