"""Plotly figures of the app: built here from plain numbers, shown by the pages with ``st.plotly_chart``.

No Streamlit here; every function returns a ``plotly.graph_objects.Figure`` with a compact layout that
reads in a narrow column (one panel per head, side by side).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

ACCENT = "#2563eb"  # the top class, the prediction
MUTED = "#94a3b8"  # other classes, "other (N classes)", dominated points
WARNING = "#dc2626"  # what the user has chosen now (the current lambda)
GOOD, BAD = "#16a34a", "#dc2626"
SPLIT_COLOURS = {"train": "#2563eb", "val": "#f59e0b", "test": "#10b981"}
FONT = dict(size=12)


# Metrics that live in [0, 1] (accuracy, AUC, ...): their axes never leave it, and span at least MIN_SPAN so that a
# change of 0.008 looks like one, not like a cliff. Losses and errors are drawn from 0.
BOUNDED_METRICS = ("accuracy", "auc", "f1", "precision", "recall")  # (not R², which can be negative)
MIN_SPAN = 0.1


def is_bounded(metric: str) -> bool:
    return any(metric == m or metric.endswith("_" + m) or metric.endswith(" " + m) for m in BOUNDED_METRICS)


def metric_range(metric: str, values) -> list[float] | None:
    """The y (or x) range of a metric's axis: inside [0, 1] and at least MIN_SPAN wide for a bounded metric,
    from 0 to a little over the largest value for a loss or an error; None (Plotly's own) when nothing is
    finite, or for a value that can be negative."""
    finite = [float(v) for v in np.ravel(np.asarray(values, dtype=float)) if np.isfinite(v)]
    if not finite:
        return None
    lo, hi = min(finite), max(finite)
    if is_bounded(metric):
        pad = max(MIN_SPAN - (hi - lo), 0) / 2 + 0.05 * (hi - lo)
        lo, hi = lo - pad, hi + pad
        if lo < 0:
            lo, hi = 0.0, min(1.0, hi - lo)
        if hi > 1:
            lo, hi = max(0.0, lo - (hi - 1)), 1.0
        return [lo, hi + 0.01 * (hi == 1.0)]  # a point at 1.0 is drawn whole, not cut in half
    if lo >= 0:
        return [0.0, hi * 1.08 if hi > 0 else 1.0]
    return None


def _compact(fig: go.Figure, height: int, *, legend: bool = False, title: str | None = None) -> go.Figure:
    top = 44 if title or legend else 8
    fig.update_layout(height=height, margin=dict(l=8, r=8, t=top, b=8), font=FONT, showlegend=legend,
                      title=dict(text=title, font=dict(size=13), x=0, xanchor="left", y=1, yanchor="top",
                                 pad=dict(t=8, l=4)) if title else None,
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1,
                                  font=dict(size=11)))
    # room for the tick labels and titles whatever the template: Streamlit's own ("streamlit", the default once
    # it is imported) does not make it, and the 8-px margins above would cut the numbers off
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig


def _mode(values) -> str:
    """Lines, with markers when there are too few epochs for a line to show (one epoch is one point)."""
    return "lines+markers" if len(values) <= 5 else "lines"


def _epoch_ticks(epochs) -> dict:
    """Whole epochs on the axis: one tick per epoch for a short run, never 0.5."""
    return {"dtick": 1} if len(epochs) <= 10 else {"tickformat": "d"}


def probability_bars(items: list[tuple[str, float]], *, title: str | None = None) -> go.Figure:
    """Horizontal bars of class probabilities, highest on top (``items`` sorted highest first, e.g. by
    ``views.top_probabilities``, whose folded "other (N classes)" bar is drawn grey)."""
    labels = [c for c, _ in items][::-1]
    values = [p for _, p in items][::-1]
    colours = [MUTED if c.startswith("other (") else ACCENT if i == len(items) - 1 else "#93c5fd"
               for i, c in enumerate(labels)]
    fig = go.Figure(go.Bar(x=values, y=labels, orientation="h", marker_color=colours,
                           text=[f"{v:.1%}" for v in values], cliponaxis=False,
                           textposition=["inside" if v > 0.6 else "outside" for v in values],
                           insidetextanchor="end", hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    fig.update_xaxes(range=[0, 1.32], showticklabels=False, showgrid=True, dtick=0.25, zeroline=False)
    fig.update_yaxes(type="category", automargin=True)
    return _compact(fig, 40 + 22 * len(items), title=title)


def binary_bar(p_positive: float, class_names: tuple[str, str] | list[str]) -> go.Figure:
    """One bar split into P(negative) and P(positive), with the 0.5 decision threshold marked. Each class keeps its
    colour whatever the answer (grey: the negative class, blue: the positive one), so a colour means one class."""
    neg, pos = class_names
    fig = go.Figure()
    winner = pos if p_positive >= 0.5 else neg
    for name, value, colour in ((neg, 1 - p_positive, "#cbd5e1"), (pos, p_positive, ACCENT)):
        label = f"<b>{name} {value:.1%}</b>" if name == winner else f"{name} {value:.1%}"
        fig.add_trace(go.Bar(x=[value], y=[""], orientation="h", name=name, marker_color=colour,
                             text=label if value >= 0.2 else "", textposition="inside",
                             insidetextanchor="middle",
                             hovertemplate=f"{name}: %{{x:.2%}}<extra></extra>"))
    fig.add_vline(x=0.5, line_dash="dot", line_color="#475569")
    fig.update_layout(barmode="stack")
    fig.update_xaxes(range=[0, 1], tickformat=".0%", dtick=0.25)
    fig.update_yaxes(showticklabels=False)
    return _compact(fig, 90)


def value_in_range(value: float, low: float, high: float, unit: str = "") -> go.Figure:
    """Where a regression prediction sits in the training range (a band from low to high, a marker)."""
    lo, hi = min(low, value), max(high, value)
    pad = 0.05 * (hi - lo or 1.0)
    fig = go.Figure()
    fig.add_shape(type="rect", x0=low, x1=high, y0=-0.3, y1=0.3, fillcolor="#e2e8f0", line_width=0, layer="below")
    fig.add_trace(go.Scatter(x=[value], y=[0], mode="markers", marker=dict(size=14, color=ACCENT, symbol="diamond"),
                             hovertemplate=f"%{{x:.4g}} {unit}<extra></extra>"))
    fig.update_xaxes(range=[lo - pad, hi + pad], title=dict(text=unit or None, font=dict(size=11)))
    fig.update_yaxes(visible=False, range=[-1, 1])
    return _compact(fig, 90)


SHORT_LABEL = 16  # characters of a class name on an axis; the hover shows it whole


def short_labels(names) -> list[str]:
    """Class names cut to ``SHORT_LABEL`` characters ("large_man-made_…") for a crowded axis, each still
    unique (a name whose cut form another name shares stays whole)."""
    names = [str(c) for c in names]
    cut = [c if len(c) <= SHORT_LABEL else c[:SHORT_LABEL - 1] + "…" for c in names]
    return [c if cut.count(c) == 1 else full for c, full in zip(cut, names, strict=True)]


def _category_axis(labels) -> dict:
    """A category axis whose tick labels never overlap: Plotly turns them (0°, 30° or 90°) and leaves some out
    when they do not fit, and makes room for them (an explicit angle would stop it doing either)."""
    return dict(type="category", automargin=True, autotickangles=[0, 30, 90],
                tickfont=dict(size=11 if max((len(c) for c in labels), default=0) > 8 else 12))


def class_balance(counts, *, title: str | None = None) -> go.Figure:
    """Examples per class, stacked by split (``counts``: DataFrame with class, split, count)."""
    fig = go.Figure()
    classes = [str(c) for c in counts["class"].unique()]
    shown = dict(zip(classes, short_labels(classes), strict=True))  # one cut per class, whichever split it is in
    for split in ("train", "val", "test"):
        part = counts[counts["split"] == split]
        if len(part):
            fig.add_trace(go.Bar(x=[shown[str(c)] for c in part["class"]], y=part["count"], name=split,
                                 customdata=[str(c) for c in part["class"]], marker_color=SPLIT_COLOURS[split],
                                 hovertemplate=f"%{{customdata}}: %{{y:,}} ({split})<extra></extra>"))
    fig.update_layout(barmode="stack")
    fig.update_xaxes(**_category_axis(list(shown.values())))
    fig.update_yaxes(title="examples")
    return _compact(fig, 320, legend=True, title=title)


def label_counts(counts: dict[str, int], *, title: str | None = None) -> go.Figure:
    """Rows per class of one target (a user's table, before any split)."""
    labels = short_labels(counts)
    fig = go.Figure(go.Bar(x=labels, y=list(counts.values()), marker_color=ACCENT, customdata=[str(c) for c in counts],
                           text=[f"{n:,}" for n in counts.values()], textposition="outside", cliponaxis=False,
                           hovertemplate="%{customdata}: %{y:,} rows<extra></extra>"))
    fig.update_xaxes(**_category_axis(labels))
    fig.update_yaxes(title="rows", rangemode="tozero")
    return _compact(fig, 300, title=title)


def histogram(values, *, name: str, unit: str = "", title: str | None = None) -> go.Figure:
    fig = go.Figure(go.Histogram(x=np.asarray(values), nbinsx=40, marker_color=ACCENT, name=name))
    fig.update_xaxes(title=f"{name} ({unit})" if unit else name)
    fig.update_yaxes(title="examples")
    return _compact(fig, 320, title=title)


def training_curves(curves: dict, epochs: list[int], *, title: str | None = None) -> go.Figure:
    """One subplot per metric of a head, train solid and validation dashed (``curves``: split ->
    {metric: [per epoch]}, e.g. {"train": {"loss": [...], "accuracy": [...]}, "val": {...}})."""
    metrics = list(dict.fromkeys([*curves.get("train", {}), *curves.get("val", {})]))
    fig = make_subplots(rows=1, cols=max(len(metrics), 1), horizontal_spacing=0.06)
    for col, metric in enumerate(metrics, start=1):
        for split, dash in (("train", "solid"), ("val", "dash")):
            values = curves.get(split, {}).get(metric)
            if values:
                fig.add_trace(go.Scatter(x=epochs[:len(values)], y=values, mode=_mode(values), name=split,
                                         line=dict(color=SPLIT_COLOURS[split], dash=dash),
                                         legendgroup=split, showlegend=col == 1), row=1, col=col)
        fig.update_xaxes(title_text="epoch", row=1, col=col, **_epoch_ticks(epochs))
        both = [v for split in ("train", "val") for v in curves.get(split, {}).get(metric) or []]
        fig.update_yaxes(title_text=metric, row=1, col=col, range=metric_range(metric, both))
    return _compact(fig, 280, legend=True, title=title)


def loss_and_lr(history: dict) -> go.Figure:
    """The weighted total loss (train and validation) and the learning rate (right axis, log scale)."""
    epochs = history.get("epochs", [])
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for split, dash in (("train", "solid"), ("val", "dash")):
        values = history.get(split, {}).get("loss")
        if isinstance(values, list) and values:
            fig.add_trace(go.Scatter(x=epochs, y=values, mode=_mode(values), name=f"{split} loss",
                                     line=dict(color=SPLIT_COLOURS[split], dash=dash)), secondary_y=False)
    rates = history.get("lr") or []
    title = "total loss and learning rate"
    if rates and len(set(rates)) == 1:  # a constant rate is a fact, not a curve (and no log axis around it)
        title = f"total loss (learning rate constant at {rates[0]:g})"
    elif rates:  # reduced on plateaus: factors of 10 read best on a log axis
        fig.add_trace(go.Scatter(x=epochs, y=rates, mode=_mode(rates), name="learning rate",
                                 line=dict(color="#64748b", dash="dot")), secondary_y=True)
        fig.update_yaxes(type="log", title_text="learning rate", secondary_y=True, showgrid=False,
                         tickformat=".0e")
    losses = [v for split in ("train", "val") for v in (history.get(split, {}).get("loss") or [])
              if isinstance(history.get(split, {}).get("loss"), list)]
    fig.update_yaxes(title_text="total loss", secondary_y=False, range=metric_range("loss", losses))
    fig.update_xaxes(title_text="epoch", **_epoch_ticks(epochs))
    return _compact(fig, 280, legend=True, title=title)


def confusion_heatmap(matrix, class_names, *, title: str | None = None) -> go.Figure:
    """Counts, true class down, predicted across; cells are shaded by the share of their row (recall)."""
    m = np.asarray(matrix, dtype=float)
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    full = [str(c) for c in class_names]
    names = short_labels(full)
    n = len(names)
    # hover: the whole names and the count of each cell (customdata[i][j] = [true, predicted, count])
    cells = [[[full[i], full[j], int(m[i, j])] for j in range(n)] for i in range(n)]
    fig = go.Figure(go.Heatmap(
        z=share, x=names, y=names, colorscale="Blues", zmin=0, zmax=1, showscale=False,
        text=m.astype(int) if n <= 32 else None, texttemplate="%{text}" if n <= 12 else None,
        customdata=cells,
        hovertemplate="true %{customdata[0]}, predicted %{customdata[1]}: %{customdata[2]} "
                      "(%{z:.0%} of the row)<extra></extra>"))
    fig.update_xaxes(title="predicted", side="bottom", **_category_axis(names))
    fig.update_yaxes(title="true", autorange="reversed", **_category_axis(names))
    size = min(max(260, 26 * n + 120), 720)
    return _compact(fig, size, title=title)


def roc_curve(fpr, tpr, auc: float, *, title: str | None = None) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"model (AUC {auc:.3f})",
                             line=dict(color=ACCENT, width=2)))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance",
                             line=dict(color=MUTED, dash="dash")))
    fig.update_xaxes(title="false-positive rate", range=[0, 1])
    fig.update_yaxes(title="true-positive rate", range=[0, 1.02])
    return _compact(fig, 340, legend=True, title=title)


def predicted_vs_actual(actual, predicted, *, unit: str = "", title: str | None = None) -> go.Figure:
    """Each test example as a point; the diagonal is a perfect prediction."""
    a, p = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    keep = np.isfinite(a) & np.isfinite(p)
    a, p = a[keep], p[keep]
    lo = float(min(a.min(), p.min())) if len(a) else 0.0
    hi = float(max(a.max(), p.max())) if len(a) else 1.0
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=a, y=p, mode="markers", name="test examples",
                             marker=dict(size=5, color=ACCENT, opacity=0.5),
                             hovertemplate="actual %{x:.4g}, predicted %{y:.4g}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="perfect",
                             line=dict(color=MUTED, dash="dash")))
    suffix = f" ({unit})" if unit else ""
    fig.update_xaxes(title=f"actual{suffix}")
    fig.update_yaxes(title=f"predicted{suffix}")
    return _compact(fig, 340, legend=True, title=title)


def loss_weight_curves(weights: dict[str, list[float]], epochs: list[int], *, title: str | None = None) -> go.Figure:
    """An adaptive method's effective loss weight of each head per epoch (static x adaptive, epoch mean)."""
    fig = go.Figure()
    for head, values in weights.items():
        fig.add_trace(go.Scatter(x=epochs[:len(values)], y=values, mode=_mode(values), name=head))
    fig.update_xaxes(title_text="epoch", **_epoch_ticks(epochs))
    fig.update_yaxes(title_text="effective loss weight")
    return _compact(fig, 260, legend=True, title=title or "loss weights per epoch")


def gradient_conflict(gradients: dict, epochs: list[int], *, title: str | None = None) -> go.Figure:
    """The conflict monitor's figures (card ``history.gradients`` or live events): left, the cosine between
    each pair of heads' backbone gradients on a fixed [-1, 1] axis with the conflict side (below 0) shaded;
    right, each head's gradient norm on a log axis (a detached head, norm 0, is not drawn)."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("cosine between heads' gradients", "gradient norm per head"))
    # (exclude_empty_subplots=False: plotly skips a subplot without traces yet, and the traces come below)
    fig.add_hrect(y0=-1.05, y1=0, fillcolor=BAD, opacity=0.1, line_width=0, row=1, col=1,
                  annotation_text="conflict", annotation_position="bottom left",
                  annotation_font=dict(size=11, color=BAD), exclude_empty_subplots=False)
    fig.add_hline(y=0, line=dict(color=MUTED, width=1), row=1, col=1, exclude_empty_subplots=False)
    for pair, values in (gradients.get("cosine") or {}).items():
        points = [(e, v) for e, v in zip(epochs, values, strict=False) if v is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            fig.add_trace(go.Scatter(x=xs, y=ys, mode=_mode(ys), name=pair, legendgroup="pairs"), row=1, col=1)
    for head, values in (gradients.get("norm") or {}).items():
        points = [(e, v) for e, v in zip(epochs, values, strict=False) if v and v > 0]
        if points:
            xs, ys = zip(*points, strict=True)
            fig.add_trace(go.Scatter(x=xs, y=ys, mode=_mode(ys), name=head, line=dict(dash="dot"),
                                     legendgroup="norms"), row=1, col=2)
    fig.update_yaxes(range=[-1.05, 1.05], title_text="cosine", row=1, col=1)
    fig.update_yaxes(type="log", dtick=1, exponentformat="power", title_text="norm", row=1, col=2)
    for col in (1, 2):
        fig.update_xaxes(title_text="epoch", row=1, col=col, **_epoch_ticks(epochs))
    fig = _compact(fig, 300, legend=True, title=title)
    fig.update_annotations(font=dict(size=12))
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.3, xanchor="left", x=0), margin=dict(b=8))
    return fig


def overlaid_curves(series: dict[str, tuple[list[int], list[float]]], *, metric: str,
                    title: str | None = None, y_range: tuple[float, float] | None = None) -> go.Figure:
    """Several models' curves of one metric on one axis: ``series`` maps a model's label to (epochs, values)."""
    fig = go.Figure()
    longest: list[int] = []
    for label, (epochs, values) in series.items():
        fig.add_trace(go.Scatter(x=epochs[:len(values)], y=values, mode=_mode(values), name=label))
        longest = max(longest, epochs, key=len)
    fig.update_xaxes(title_text="epoch", **_epoch_ticks(longest))
    every = [v for _, values in series.values() for v in values]
    fig.update_yaxes(title_text=metric, range=list(y_range) if y_range else metric_range(metric, every))
    fig = _compact(fig, 300 + 18 * len(series), legend=True, title=title)
    # model ids are long: the legend goes under the plot, one per line, instead of over the title
    fig.update_layout(legend=dict(orientation="v", yanchor="top", y=-0.25, xanchor="left", x=0),
                      margin=dict(t=36))
    return fig
