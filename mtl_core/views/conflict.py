"""Reading the gradient-conflict monitor (card ``history.gradients``, engine/conflict.py) for people: a line per
pair of heads, and the per-pair series the Compare page overlays. No TensorFlow."""

from __future__ import annotations

from mtl_core.control.store import StoredModel


def card_gradients(card: dict) -> dict:
    """The card's conflict figures, or {} for a model trained before the monitor existed (or with one head)."""
    return (card.get("history") or {}).get("gradients") or {}


def summary(gradients: dict) -> list[str]:
    """One line per pair: how often and how strongly its gradients conflicted (cosine < 0), and the last value."""
    lines = []
    for pair, values in (gradients.get("cosine") or {}).items():
        known = [v for v in values if v is not None]
        if not known:
            continue
        negative = [v for v in known if v < 0]
        if negative:
            lines.append(f"{pair}: conflict in {len(negative)} of {len(known)} epochs (lowest {min(negative):+.2f}, "
                         f"last {known[-1]:+.2f})")
        else:
            lines.append(f"{pair}: no conflict (cosine {min(known):+.2f} to {max(known):+.2f}, last {known[-1]:+.2f})")
    for head in gradients.get("detached") or []:
        lines.append(f"{head}: detached from the backbone (stop-gradient), so it cannot conflict")
    return lines


def pairs(models: list[StoredModel]) -> list[str]:
    """The head pairs any of the models recorded, in first-seen order."""
    return list(dict.fromkeys(p for m in models for p in card_gradients(m.card).get("cosine", {})))


def cosine_series(models: list[StoredModel], pair: str) -> dict:
    """{model id: (epochs, cosine per epoch)} of one pair, epochs without a value left out."""
    series = {}
    for m in models:
        values = card_gradients(m.card).get("cosine", {}).get(pair)
        points = [(e, v) for e, v in enumerate(values or [], start=1) if v is not None]
        if points:
            series[m.id] = ([e for e, _ in points], [v for _, v in points])
    return series
