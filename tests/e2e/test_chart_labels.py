"""Class names on chart axes stay readable in a real browser: on every preset's class-labelled charts (class
balance, confusion matrix, probability bars, a table's label counts), at a phone's width and a desktop
column's, no two tick labels of an axis overlap and none leaves the figure. CIFAR-100's 100 fine classes and
its long superclass names ("large_man-made_outdoor_things") are the hard cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import SCREENSHOTS

from mtl_core.control.presets import get_preset
from mtl_core.views import charts
from mtl_core.views.common import top_probabilities

pytestmark = pytest.mark.browser

PRESETS = ("shapes-3head", "cifar10-aqi", "cifar100-fine-coarse", "color-digits")
WIDTHS = (360, 700)  # a phone; a column of the desktop page

# Every tick label of every axis in the figure: its axis ("x", "y", "x2", ...), its box on the page, and, for
# labels Plotly turned, the box as the text runs: its centre, its length and height, its angle.
TICK_BOXES = """el => [...el.querySelectorAll('g.xtick > text, g.ytick > text')]
  .filter(t => t.textContent.trim() && getComputedStyle(t).display !== 'none')
  .map(t => { const r = t.getBoundingClientRect(), b = t.getBBox(), m = t.getCTM();
              return {axis: t.parentNode.getAttribute('class').split(' ').find(c => /^[xy]\\d*tick$/.test(c)),
                      text: t.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom,
                      cx: (r.left + r.right) / 2, cy: (r.top + r.bottom) / 2, length: b.width, height: b.height,
                      angle: Math.atan2(m.b, m.a)}; })"""


def figures() -> dict[str, object]:
    rng = np.random.default_rng(0)
    out = {}
    for preset in PRESETS:
        for task in get_preset(preset).tasks:
            if task.kind != "multiclass":
                continue
            names, n = list(task.class_names), len(task.class_names)
            matrix = rng.integers(0, 5, (n, n)) + 40 * np.eye(n, dtype=int)
            counts = pd.DataFrame([{"class": c, "split": s, "count": int(rng.integers(5, 60))}
                                   for c in names for s in ("train", "val", "test")])
            probabilities = dict(zip(names, rng.dirichlet(np.full(n, 0.3)), strict=True))
            out[f"{preset}-{task.name}-confusion"] = charts.confusion_heatmap(matrix, names, title="confusion")
            out[f"{preset}-{task.name}-balance"] = charts.class_balance(counts, title="balance")
            out[f"{preset}-{task.name}-bars"] = charts.probability_bars(top_probabilities(probabilities))
            out[f"{preset}-{task.name}-counts"] = charts.label_counts({c: int(rng.integers(1, 900)) for c in names})
    return out


def overlaps(boxes: list[dict]) -> list[tuple[str, str]]:
    """Pairs of labels of one axis whose text crosses by more than a pixel. Labels of an axis share one angle,
    so two cross when their centres are closer than half their lengths along the text and half their heights
    across it (the page boxes of slanted labels would cross where the letters do not)."""
    pairs = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if a["axis"] != b["axis"]:
                continue
            cos, sin = math.cos(a["angle"]), math.sin(a["angle"])
            dx, dy = b["cx"] - a["cx"], b["cy"] - a["cy"]
            along, across = abs(dx * cos + dy * sin), abs(-dx * sin + dy * cos)
            if (a["length"] + b["length"]) / 2 - along > 1 and (a["height"] + b["height"]) / 2 - across > 1:
                pairs.append((a["text"], b["text"]))
    return pairs


def settled(page, figure, timeout_s: float = 20.0) -> tuple[dict, list[dict]]:
    """The figure's box and its tick labels once Plotly has stopped moving them: it draws, then makes room for the
    labels (automargin) in later passes, which take longer on a busy machine. Read until two reads agree."""
    import time

    read = "el => ({box: el.getBoundingClientRect().toJSON(), ticks: (" + TICK_BOXES + ")(el)})"
    last, deadline = None, time.monotonic() + timeout_s
    while True:
        now = figure.evaluate(read)
        if now == last or time.monotonic() > deadline:
            return now["box"], now["ticks"]
        last = now
        page.wait_for_timeout(300)


@pytest.mark.parametrize("width", WIDTHS)
def test_class_names_on_axes_never_overlap_nor_leave_the_figure(browser, width):
    import plotly.io as pio
    import streamlit.elements.plotly_chart  # noqa: F401  (its import makes "streamlit" the default template, as
    # in the app: the figures are drawn with the template the app draws them with, whatever ran before)

    figs = figures()
    html = "".join(f"<div id='{name}' style='width:{width}px'>"
                   + pio.to_html(fig, include_plotlyjs=i == 0, full_html=False) + "</div>"
                   for i, (name, fig) in enumerate(figs.items()))
    page = browser.new_page(viewport={"width": width + 40, "height": 900})
    try:
        page.set_content(f"<html><body style='margin:0'>{html}</body></html>")
        page.wait_for_function(f"document.querySelectorAll('.main-svg').length >= {2 * len(figs)}")
        problems, failed = [], []
        for name in figs:
            figure = page.locator(f"#{name}")
            box, ticks = settled(page, figure)
            assert ticks, f"{name}: no tick labels drawn"
            if crossing := overlaps(ticks):
                problems.append(f"{name}: {len(crossing)} overlapping labels, e.g. {crossing[0]}")
            outside = [t["text"] for t in ticks if t["left"] < box["left"] - 1 or t["right"] > box["right"] + 1
                       or t["bottom"] > box["bottom"] + 1]
            if outside:
                problems.append(f"{name}: labels outside the figure: {outside[:3]}")
            if problems and problems[-1].startswith(name):
                failed.append(name)
        for name in failed:  # after the checks: a screenshot scrolls the page
            page.locator(f"#{name}").screenshot(path=str(SCREENSHOTS / f"chart-labels-{name}-{width}.png"))
        assert not problems, "\n".join(problems)
    finally:
        page.close()
