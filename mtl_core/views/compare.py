"""What the Compare page computes: several trained models of one preset side by side (per-head metrics,
the loss weights and method that made each, overlaid curves). Reads model cards only: no TensorFlow."""

from __future__ import annotations

import pandas as pd

from mtl_core.control.store import StoredModel
from mtl_core.control.tasks import card_tasks
from mtl_core.views.models import history_curves


def _weights_text(config: dict) -> str:
    return ", ".join(f"{h}={w:g}" for h, w in (config.get("loss_weights") or {}).items())


def legend_label(model: StoredModel) -> str:
    """A model as a chart legend names it: how it differs (method, loss weights), then the end of its id, which
    keeps two models of the same settings apart ("pcgrad · shape=1, orientation=1.5 · …43d92f")."""
    config = model.card.get("config", {})
    how = "loss-conditioned" if config.get("conditioned") else config.get("weighting", "static")
    return f"{how} · {_weights_text(config)} · …{model.id[-6:]}"


def with_legend_labels(series: dict, models: list[StoredModel]) -> dict:
    """``series`` keyed by model id -> keyed by :func:`legend_label`."""
    by_id = {m.id: m for m in models}
    return {legend_label(by_id[k]) if k in by_id else k: v for k, v in series.items()}


def settings_table(models: list[StoredModel]) -> pd.DataFrame:
    """One row per model: how it was trained (method, loss weights, epochs, lr, seed, data, device)."""
    rows = []
    for m in models:
        config, training = m.card.get("config", {}), m.card.get("training", {})
        options = (config.get("extra") or {}).get("weighting_options") or {}
        rows.append({
            "model": m.id, "source": m.source,
            "weighting": config.get("weighting", "static") + "".join(f" {k}={v:g}" for k, v in options.items()),
            "loss weights": _weights_text(config),
            "epochs run": training.get("epochs_run"), "lr": config.get("lr"), "batch": config.get("batch_size"),
            "seed": config.get("seed"), "training examples": (m.card.get("data", {}).get("sizes") or {}).get("train"),
            "device": (training.get("device") or {}).get("kind"), "seconds": training.get("seconds"),
        })
    return pd.DataFrame(rows)


def metrics_table(models: list[StoredModel], split: str = "test") -> pd.DataFrame:
    """Heads x metrics down, models across: every number of ``split`` (test or validation) side by side,
    with the best model of each row named (highest accuracy/AUC, lowest MAE)."""
    rows = []
    heads = list(dict.fromkeys(t.name for m in models for t in card_tasks(m.card)))
    for head in heads:
        metric_names = list(dict.fromkeys(
            k for m in models for k, v in m.card.get("metrics", {}).get(split, {}).get(head, {}).items()
            if isinstance(v, (int, float)) and k != "baseline_mae"))
        for metric in metric_names:
            row = {"head": head, "metric": metric}
            values = {}
            for m in models:
                v = m.card.get("metrics", {}).get(split, {}).get(head, {}).get(metric)
                row[m.id] = v
                if isinstance(v, (int, float)) and v == v:
                    values[m.id] = v
            lower_better = metric in ("mae", "mse", "loss", "rmse")
            if len(values) > 1:
                row["best"] = (min if lower_better else max)(values, key=values.get)
            rows.append(row)
    return pd.DataFrame(rows)


def curve_series(models: list[StoredModel], head: str, metric: str, split: str = "val") -> dict:
    """{model id: (epochs, values)} of one head's metric, for charts.overlaid_curves."""
    series = {}
    for m in models:
        history = history_curves(m.card)
        values = history.get(split, {}).get(head, {}).get(metric)
        if values:
            series[m.id] = (history.get("epochs") or list(range(1, len(values) + 1)), values)
    return series


def weight_series(models: list[StoredModel], head: str) -> dict:
    """{model id: (epochs, effective weight per epoch)}: adaptive methods' recorded weights; a static
    model's weight is its constant loss weight, drawn flat over its epochs for the comparison."""
    series = {}
    for m in models:
        history = history_curves(m.card)
        epochs = history.get("epochs") or []
        recorded = (m.card.get("history") or {}).get("loss_weights", {}).get(head)
        if recorded:
            series[m.id] = (epochs, recorded)
        elif epochs and head in (m.card.get("config", {}).get("loss_weights") or {}):
            series[m.id] = (epochs, [m.card["config"]["loss_weights"][head]] * len(epochs))
    return series
