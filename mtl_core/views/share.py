"""A view that can be shared: the page's state in its URL (``?preset=...&model=...&lambda=...``), and the
preset a first visit opens. Plain functions of strings; pages/_ui.py reads and writes ``st.query_params``."""

from __future__ import annotations

import math
from collections.abc import Callable


def first_preset(presets: list, has_model: Callable[[str], bool]) -> str:
    """The preset a first visit opens: an image preset with a model (uploading an image is the app's core),
    else any preset with a model, else the first."""
    with_model = [p for p in presets if has_model(p.name)]
    images = [p for p in with_model if p.input_kind == "image"]
    return (images or with_model or presets)[0].name


def lambda_text(lam: dict[str, float], heads: list[str]) -> str:
    """λ for a URL: "shape=0.5,orientation=0.3,intensity=0.2"."""
    return ",".join(f"{h}={lam[h]:g}" for h in heads)


def parse_lambda(text: str | None, heads: list[str]) -> dict[str, float] | None:
    """The λ of a URL for these heads, each in [0, 1]; None when it is missing, malformed or for other heads
    (a shared link from another model opens at the model's default)."""
    if not text:
        return None
    out = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            number = float(value)
        except ValueError:
            return None
        if name not in heads or not math.isfinite(number) or not 0.0 <= number <= 1.0:
            return None
        out[name] = number
    return out if set(out) == set(heads) and any(v > 0 for v in out.values()) else None
