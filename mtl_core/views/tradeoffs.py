"""What the Trade-offs page computes and draws: sweeps among the stored models, their front as a scatter
(two heads) or a scatter matrix (three or more), the loss-conditioned models of a preset, lambda from the
page's sliders, and the lambda-grid metrics of a conditioned model's card as curves (two heads) or ternary
plots (three heads). Plain numbers and plotly figures; no Streamlit here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mtl_core.control import loss_weights as cond
from mtl_core.control import pareto
from mtl_core.control.sweeps import SweepGroup, sweep_groups  # noqa: F401  (the page's entry points, re-exported)
from mtl_core.control.tasks import HEAD_KINDS
from mtl_core.errors import UserError
from mtl_core.views import charts
from mtl_core.views.charts import metric_range

FRONT, DOMINATED, CURRENT = charts.ACCENT, charts.MUTED, charts.WARNING


def _layout(fig: go.Figure, height: int, title: str | None = None) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=8, r=8, t=40 if title else 10, b=8), font=charts.FONT,
                      title=dict(text=title, font=dict(size=13), x=0, xanchor="left") if title else None,
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1))
    return fig


def axis_title(head: str, metric: str) -> str:
    return f"{head} {metric.upper() if metric in ('mae', 'auc') else metric}" + (" (lower is better)"
                                                                                 if metric == "mae" else "")


def weights_text(weights: dict[str, float]) -> str:
    return ", ".join(f"{h}={w:.2f}" for h, w in weights.items())


def points_table(doc: dict) -> pd.DataFrame:
    """One row per model of a sweep: Pareto-optimal, the loss weights, the front metric of each head."""
    rows = []
    for p in doc["points"]:
        row = {"Pareto": "★" if p["pareto"] else "", "model": p["model"]}
        row.update({f"w {h}": round(w, 3) for h, w in p["weights"].items()})
        row.update({f"{h} {m}": round(v, 4) if v is not None else None
                    for h, values in p["metrics"].items() for m, v in values.items()})
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sort_values(["Pareto", "model"], ascending=[False, True]).reset_index(drop=True) if rows else frame


def front_figure(doc: dict, selected: str | None = None) -> go.Figure:
    """Validation metrics of a sweep's models against each other, Pareto-optimal models marked (blue, a star)
    and the selected model ringed. Two heads: one scatter with the front's staircase; more: a scatter matrix.
    Each marker's ``customdata`` is its model id (the page reads it from a plotly selection)."""
    points = doc["points"]
    heads = list(doc["objectives"])
    metrics = doc["objectives"]
    values = {h: [p["metrics"][h].get(metrics[h], np.nan) for p in points] for h in heads}
    colours = [FRONT if p["pareto"] else DOMINATED for p in points]
    symbols = ["star" if p["pareto"] else "circle" for p in points]
    sizes = [16 if p["model"] == selected else 11 for p in points]
    lines = [dict(width=3, color=CURRENT) if p["model"] == selected else dict(width=0.5, color="white")
             for p in points]
    hover = [f"{p['model']}<br>weights {weights_text(p['weights'])}<br>"
             + "<br>".join(f"{h} {metrics[h]} {values[h][i]:.4f}" for h in heads)
             + ("<br><b>Pareto-optimal</b>" if p["pareto"] else "") for i, p in enumerate(points)]
    ids = [p["model"] for p in points]
    marker = dict(color=colours, symbol=symbols, size=sizes, line=dict(width=[m["width"] for m in lines],
                                                                         color=[m["color"] for m in lines]))
    if len(heads) == 2:
        a, b = heads
        fig = go.Figure()
        front = sorted((i for i, p in enumerate(points) if p["pareto"]), key=lambda i: values[a][i])
        if len(front) > 1:
            fig.add_trace(go.Scatter(x=[values[a][i] for i in front], y=[values[b][i] for i in front],
                                     mode="lines", line=dict(color=FRONT, width=1, dash="dot"), hoverinfo="skip",
                                     name="front", showlegend=False))
        fig.add_trace(go.Scatter(x=values[a], y=values[b], mode="markers", marker=marker, customdata=ids,
                                 hovertext=hover, hoverinfo="text", name="models", showlegend=False))
        fig.update_xaxes(title=axis_title(a, metrics[a]), **front_axis(metrics[a], values[a]))
        fig.update_yaxes(title=axis_title(b, metrics[b]), **front_axis(metrics[b], values[b]))
        return _layout(fig, 380)
    fig = go.Figure(go.Splom(
        dimensions=[dict(label=axis_title(h, metrics[h]).replace(" (lower is better)", " ↓"), values=values[h])
                    for h in heads],
        marker=marker, customdata=ids, hovertext=hover, hoverinfo="text", diagonal_visible=False,
        showupperhalf=False))
    # The grid's axes: xaxis1..N along the columns, yaxis1..N down the rows, each bounded like a metric's
    # (Plotly's autorange drew accuracies from 0 to 2 and below 0 for a few close points).
    for i, h in enumerate(heads, start=1):
        suffix = "" if i == 1 else str(i)
        fig.update_layout({f"xaxis{suffix}": front_axis(metrics[h], values[h]),
                           f"yaxis{suffix}": front_axis(metrics[h], values[h])})
    return _layout(fig, 520)


def front_axis(metric: str, values) -> dict:
    """A front's axis: bounded as the metric is (charts.metric_range), an error's reversed so that better is
    always up and to the right."""
    bounds = metric_range(metric, values)
    if bounds is None:
        return {"autorange": "reversed" if metric == "mae" else True}
    return {"range": bounds[::-1] if metric == "mae" else bounds}


def conditioned_models(store, preset_name: str) -> list:
    """The preset's loss-conditioned models (those whose card holds a lambda grid), newest first."""
    return [m for m in store.list(preset_name) if cond.is_conditioned(m.card) and "conditioned" in m.card]


def lambda_from_sliders(values: dict[str, float], heads: list[str]) -> dict[str, float]:
    """The sliders' raw weights on the simplex; all at zero is the user's error (nothing to weigh)."""
    if not any(values.get(h, 0) > 0 for h in heads):
        raise UserError("every weight is zero: give at least one head some weight")
    return pareto.normalise(values, heads)


def grid_frame(card: dict) -> pd.DataFrame:
    """The card's lambda grid as a table: lambda of each head, then each head's front metric."""
    info = card["conditioned"]
    tasks = {t["name"]: t["kind"] for t in card["tasks"]}
    rows = []
    for g in info["grid"]:
        row = {f"λ {h}": g["weights"][h] for h in info["heads"]}
        for h in info["heads"]:
            metric, value = HEAD_KINDS[tasks[h]].front_metric(g["metrics"][h])
            row[f"{h} {metric}"] = value
        rows.append(row)
    return pd.DataFrame(rows)


def grid_figures(card: dict, current: dict[str, float]) -> list[go.Figure]:
    """Validation metric against lambda from the card's grid, the current lambda marked. Two heads: one line
    chart over lambda of the first head with both heads' metrics; three: one ternary plot per head, coloured
    by that head's metric."""
    info = card["conditioned"]
    heads = info["heads"]
    frame = grid_frame(card)
    metric_cols = [c for c in frame.columns if not c.startswith("λ ")]
    if len(heads) == 2:
        a = heads[0]
        order = frame.sort_values(f"λ {a}")
        fig = make_subplots(rows=1, cols=2, subplot_titles=metric_cols, horizontal_spacing=0.12)
        for i, col in enumerate(metric_cols, start=1):
            fig.add_trace(go.Scatter(x=order[f"λ {a}"], y=order[col], mode="lines+markers", name=col,
                                     line=dict(color=FRONT)), row=1, col=i)
            fig.update_yaxes(range=metric_range(col, order[col]), row=1, col=i)
            fig.add_vline(x=current[a], line=dict(color=CURRENT, dash="dash"), row=1, col=i)
            fig.update_xaxes(title=f"λ {a} (λ {heads[1]} = 1 − λ {a})", row=1, col=i)
        fig.update_layout(showlegend=False)
        fig = _layout(fig, 320, "Validation metrics along λ (computed after training; dashed: your λ)")
        fig.update_layout(margin=dict(t=64))  # room for the panel titles under the figure's title
        return [fig]
    if len(heads) != 3:
        return []
    figs = []
    for col in metric_cols:
        lo, hi = float(frame[col].min()), float(frame[col].max())
        fig = go.Figure(go.Scatterternary(
            a=frame[f"λ {heads[0]}"], b=frame[f"λ {heads[1]}"], c=frame[f"λ {heads[2]}"], mode="markers",
            marker=dict(color=frame[col], colorscale="Viridis", size=11, showscale=True,
                        reversescale="mae" in col, colorbar=dict(thickness=10, len=0.8),
                        # a head whose metric does not move with lambda: a narrow scale around its value
                        cmin=min(lo, hi - 1e-3), cmax=max(hi, lo + 1e-3)),
            hovertemplate=f"{col} %{{marker.color:.4f}}<extra></extra>", name=col))
        fig.add_trace(go.Scatterternary(a=[current[heads[0]]], b=[current[heads[1]]], c=[current[heads[2]]],
                                        mode="markers", marker=dict(symbol="x", size=14, color=CURRENT),
                                        name="your λ", hoverinfo="skip"))
        fig.update_layout(ternary=dict(aaxis=dict(title=heads[0]), baxis=dict(title=heads[1]),
                                       caxis=dict(title=heads[2])),
                          showlegend=False)
        fig = _layout(fig, 320, col)
        fig.update_layout(margin=dict(l=70, r=30, t=48, b=30))  # room for the corner labels outside the triangle
        figs.append(fig)
    return figs


def grid_document(card: dict) -> dict:
    """The conditioned model's lambda grid as a sweep document (front, hypervolume): the same picture as a
    sweep of static models, from one model."""
    from mtl_core.control.sweeps import summarise
    from mtl_core.control.tasks import TaskSpec

    tasks = [TaskSpec.from_dict(t) for t in card["tasks"]]
    rows = []
    for g in card["conditioned"]["grid"]:
        metrics = {}
        for t in tasks:
            metric, value = t.head_kind.front_metric(g["metrics"][t.name])
            metrics[t.name] = {metric: value}
        base = card.get("metrics", {}).get("validation", {})
        for t in tasks:
            if "baseline_mae" in base.get(t.name, {}):
                metrics[t.name]["baseline_mae"] = base[t.name]["baseline_mae"]
        rows.append({"weights": g["weights"], "model": "λ " + weights_text(g["weights"]), "metrics": metrics})
    return summarise(tasks, rows)
