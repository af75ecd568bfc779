"""The app's figures say what the numbers say: a metric in [0, 1] is drawn inside [0, 1] on an axis wide enough
that a 0.008 change is not a cliff, losses and errors start at 0, a constant learning rate is not a log axis,
the Pareto grid's axes stay bounded, and a binary head's colours keep their meaning between predictions."""

from __future__ import annotations

import pytest

from mtl_core.control.sweeps import summarise
from mtl_core.control.tasks import TaskSpec
from mtl_core.views import charts, tradeoffs


@pytest.mark.parametrize("metric, values, want", [
    ("accuracy", [0.960, 0.968], (0.899, 1.0)),  # a 0.008 change: at least 0.1 of axis, and never over 1
    ("auc", [0.02, 0.03], (0.0, 0.1)),  # never under 0
    ("shape accuracy", [0.2, 0.9], (0.165, 0.935)),  # wide data: 5% padding each side
    ("mae", [0.08, 0.2], (0.0, 0.216)),  # errors and losses from 0
])
def test_metric_axes_are_bounded_and_wide_enough(metric, values, want):
    lo, hi = charts.metric_range(metric, values)
    assert lo == pytest.approx(want[0], abs=1e-3) and hi == pytest.approx(want[1], abs=0.011)
    assert 0 <= lo and (hi <= 1.011 or metric == "mae")
    assert hi - lo >= charts.MIN_SPAN


def test_a_value_that_can_be_negative_or_nothing_finite_keeps_plotlys_own_range():
    assert charts.metric_range("loss", [-0.5, 0.2]) is None
    assert charts.metric_range("accuracy", [float("nan")]) is None


def test_training_curves_of_a_bounded_metric_stay_in_the_unit_interval():
    curves = {"train": {"loss": [0.9, 0.5, 0.4], "accuracy": [0.95, 0.96, 0.958]},
              "val": {"loss": [1.0, 0.6, 0.5], "accuracy": [0.955, 0.957, 0.956]}}
    fig = charts.training_curves(curves, [1, 2, 3])
    loss_axis, accuracy_axis = fig.layout.yaxis.range, fig.layout.yaxis2.range
    assert loss_axis[0] == 0 and loss_axis[1] == pytest.approx(1.08)
    assert 0 <= accuracy_axis[0] and accuracy_axis[1] <= 1.01 and accuracy_axis[1] - accuracy_axis[0] >= 0.1


def test_a_constant_learning_rate_is_named_in_the_title_not_drawn_on_a_log_axis():
    history = {"epochs": [1, 2, 3], "train": {"loss": [1.0, 0.8, 0.7]}, "val": {"loss": [1.1, 0.9, 0.8]},
               "lr": [0.001, 0.001, 0.001]}
    fig = charts.loss_and_lr(history)
    assert [t.name for t in fig.data] == ["train loss", "val loss"]
    assert "constant at 0.001" in fig.layout.title.text
    reduced = charts.loss_and_lr({**history, "lr": [0.001, 0.001, 0.0005]})
    assert reduced.data[-1].name == "learning rate" and reduced.layout.yaxis2.type == "log"


def test_the_binary_bar_keeps_each_class_colour_whichever_wins():
    stays, churns = charts.binary_bar(0.1, ("stays", "churns")), charts.binary_bar(0.9, ("stays", "churns"))
    for fig in (stays, churns):
        assert {t.name: t.marker.color for t in fig.data} == {"stays": "#cbd5e1", "churns": charts.ACCENT}
    assert "<b>stays" in stays.data[0].text and "<b>" not in stays.data[1].text  # the answer is in bold
    assert "<b>churns" in churns.data[1].text


def test_the_pareto_grid_of_three_heads_keeps_every_axis_bounded():
    tasks = [TaskSpec("shape", "multiclass", class_names=("a", "b")),
             TaskSpec("kind", "binary", class_names=("no", "yes")),
             TaskSpec("size", "regression")]
    rows = [{"weights": {"shape": w, "kind": 1.0, "size": 1.0}, "model": f"m{i}",
             "metrics": {"shape": {"accuracy": a}, "kind": {"auc": b}, "size": {"mae": c}}}
            for i, (w, a, b, c) in enumerate([(0.5, 0.97, 0.93, 0.20), (1.0, 0.975, 0.92, 0.25),
                                              (2.0, 0.972, 0.935, 0.22)])]
    fig = tradeoffs.front_figure(summarise(tasks, rows))
    for axis in ("xaxis", "xaxis2", "yaxis", "yaxis2"):  # accuracy, then AUC
        lo, hi = fig.layout[axis].range
        assert 0 <= lo < hi <= 1.01 and hi - lo >= charts.MIN_SPAN
    lo_err, hi_err = fig.layout.xaxis3.range[::-1]  # the error's axis is reversed: better is to the right
    assert lo_err == 0 and hi_err > 0.25


def test_long_class_names_are_cut_on_the_axis_and_whole_in_the_hover():
    from mtl_core.views.charts import SHORT_LABEL, confusion_heatmap, short_labels

    names = ["large_man-made_outdoor_things", "large_natural_outdoor_scenes", "fish",
             "aaaaaaaaaaaaaaaX1", "aaaaaaaaaaaaaaaX2"]
    cut = short_labels(names)
    assert cut[0] == "large_man-made_…" and len(cut[0]) == SHORT_LABEL and cut[2] == "fish"
    assert cut[3:] == names[3:]  # their cut forms would be equal: kept whole, so every label stays unique
    fig = confusion_heatmap([[int(i == j) for j in range(5)] for i in range(5)], names)
    assert list(fig.data[0].x) == cut
    assert list(fig.data[0].customdata[0][1][:2]) == ["large_man-made_outdoor_things", "large_natural_outdoor_scenes"]
