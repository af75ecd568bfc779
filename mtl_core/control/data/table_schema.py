"""What a user's table means: which columns are targets and of what kind, which are features, and which
columns to leave out (ids, constants) or to look at twice (a feature that gives a target away).

Kinds, when the user names none (``--target COL``): a column with two distinct values of any type is
**binary** (its own values are the class names, a no/false/0-like value first); a few distinct texts are
**multiclass**; numbers are **regression**. A head is named after its column, and a unit in the name
("spend (USD)", "price [EUR]") becomes the head's unit. Every problem is one line naming the column.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mtl_core.control.data.tabular import BINARY_VALUES, is_missing, numeric_or_none
from mtl_core.control.tasks import KINDS, TaskSpec
from mtl_core.errors import UserError

MAX_CLASSES = 50  # more distinct texts than this is not a class column (an id, free text)
_UNIT = re.compile(r"^(?P<name>.*?)\s*[\(\[](?P<unit>[^\)\]]{1,16})[\)\]]\s*$")


def head_name(column: str) -> tuple[str, str]:
    """(head name, unit) for a column: ``"spend (USD)"`` -> ``("spend", "USD")``. The name keeps letters,
    digits, ``_`` and ``-`` (a Keras layer and a JSON key), other characters become ``_``."""
    match = _UNIT.match(column)
    name, unit = (match["name"], match["unit"].strip()) if match and match["name"] else (column, "")
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", name.strip()).strip("_") or "target"
    return (safe if safe[0].isalpha() else f"t_{safe}"), unit


@dataclass(frozen=True)
class Target:
    column: str
    kind: str
    class_names: tuple[str, ...] = ()
    label_map: dict = field(default_factory=dict)  # cell text (lower-cased) -> class index
    head: str = ""
    unit: str = ""

    def task(self) -> TaskSpec:
        what = {"binary": "binary cross-entropy", "multiclass": "cross-entropy",
                "regression": "MSE, in units of the training std"}[self.kind]
        return TaskSpec(self.head, self.kind, class_names=self.class_names, unit=self.unit,
                        description=f"column {self.column!r} ({what})")


def parse_targets(specs: list[str] | str) -> list[tuple[str, str | None]]:
    """``["churn=binary", "spend"]`` (or the same joined by ``+``) -> ``[("churn", "binary"), ("spend", None)]``."""
    items = specs.split("+") if isinstance(specs, str) else list(specs)
    out = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        column, _, kind = item.rpartition("=") if "=" in item else (item, "", "")
        column, kind = column.strip(), kind.strip().lower() or None
        if kind is not None and kind not in KINDS:
            raise UserError(f"--target {item}: unknown kind {kind!r} (binary, multiclass or regression)")
        out.append((column, kind))
    if not out:
        raise UserError("--target: name at least one target column (COLUMN or COLUMN=kind)")
    return out


def _binary_order(values: list[str]) -> list[str]:
    """Two class names, the negative first: by the usual words (0/1, no/yes, false/true), else sorted."""
    known = [BINARY_VALUES.get(v.lower()) for v in values]
    if None not in known and sorted(known) == [0, 1]:
        return [v for _, v in sorted(zip(known, values, strict=True))]
    return sorted(values, key=lambda v: (_number_or_inf(v), v))


def _number_or_inf(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.inf


def infer_target(frame: pd.DataFrame, column: str, kind: str | None, name: str) -> Target:
    """The target of ``column``: its kind (given or inferred), class names and label map; a one-line
    UserError for a column that does not exist, has one value, or is text asked to be regression."""
    if column not in frame.columns:
        raise UserError(f"{name}: no column {column!r} (columns: {', '.join(frame.columns)})")
    cells = [v.strip() for v in frame[column].tolist()]
    numbers, bad = numeric_or_none(cells)  # a number column counts more marks ("NA", "none") as missing
    values = [v for v in cells if not is_missing(v, numeric=numbers is not None and bad is None)]
    distinct = sorted(set(values))
    head, unit = head_name(column)
    if not distinct:
        raise UserError(f"{name}: column {column!r} has no values")
    if len(distinct) == 1:
        raise UserError(f"{name}: column {column!r} has a single value ({distinct[0]!r}); nothing to learn")
    numbers, bad = numeric_or_none(values)
    if kind is None:
        kind = "binary" if len(distinct) == 2 else "regression" if numbers is not None else "multiclass"
    if kind == "regression":
        if numbers is None or bad is not None:
            example = values[bad] if bad is not None else next(v for v in values if _number_or_inf(v) == math.inf)
            raise UserError(f"{name}: column {column!r} holds text ({example!r}), so it cannot be a regression "
                            "target (give =binary or =multiclass)")
        return Target(column, kind, head=head, unit=unit)
    if kind == "binary" and len(distinct) != 2:
        raise UserError(f"{name}: column {column!r} has {len(distinct)} distinct values, a binary target has 2 "
                        "(give =multiclass)")
    if kind == "multiclass" and len(distinct) > MAX_CLASSES:
        raise UserError(f"{name}: column {column!r} has {len(distinct)} distinct values, more than the "
                        f"{MAX_CLASSES} classes a multiclass head takes (an id or free text?)")
    classes = _binary_order(distinct) if kind == "binary" else sorted(distinct, key=lambda v: (_number_or_inf(v), v))
    label_map = {c.lower(): i for i, c in enumerate(classes)}
    if len(label_map) != len(classes):
        raise UserError(f"{name}: column {column!r} has values that differ only in case ({', '.join(classes)})")
    return Target(column, kind, tuple(classes), label_map, head, "")


def labels(frame: pd.DataFrame, target: Target) -> np.ndarray:
    """The target's column as labels: class indices (-1 where missing) or values (NaN where missing)."""
    cells = frame[target.column].tolist()
    if target.kind == "regression":
        return np.asarray([math.nan if is_missing(v, numeric=True) else float(v) for v in cells], dtype=np.float32)
    return np.asarray([target.label_map.get(v.strip().lower(), -1) for v in cells], dtype=np.int32)  # -1: missing


@dataclass
class ColumnReport:
    """Feature columns chosen, and why others were left out or flagged (for the card and the user)."""

    features: list[str]
    excluded: dict[str, str] = field(default_factory=dict)  # column -> reason (id, constant)
    flagged: dict[str, str] = field(default_factory=dict)  # column -> warning (a possible leak)


def choose_features(frame: pd.DataFrame, targets: list[Target], named: list[str] | None, name: str) -> ColumnReport:
    """The feature columns: ``named`` (``--features``), else every other column but ids and constants. A
    feature that predicts a target (almost) perfectly is flagged as a possible leak."""
    taken = {t.column for t in targets}
    if named:
        missing = [c for c in named if c not in frame.columns]
        if missing:
            raise UserError(f"{name}: no feature column {missing[0]!r} (columns: {', '.join(frame.columns)})")
        both = [c for c in named if c in taken]
        if both:
            raise UserError(f"{name}: column {both[0]!r} is a target, it cannot also be a feature")
        report = ColumnReport(list(named))
    else:
        report = ColumnReport([])
        for column in (c for c in frame.columns if c not in taken):
            why = _useless(frame[column])
            if why:
                report.excluded[column] = why
            else:
                report.features.append(column)
    if not report.features:
        raise UserError(f"{name}: no feature columns left besides the targets"
                        + (f" (left out: {', '.join(f'{c}: {w}' for c, w in report.excluded.items())})"
                           if report.excluded else ""))
    for column in report.features:
        for target in targets:
            warning = _leak(frame[column], frame[target.column], target)
            if warning:
                report.flagged[column] = warning
    return report


def _useless(cells: pd.Series) -> str:
    present = [v for v in cells.tolist() if not is_missing(v)]
    distinct = set(present)
    if len(distinct) <= 1:
        return "constant" if distinct else "empty"
    if len(present) >= 20 and len(distinct) == len(present):
        numbers, _ = numeric_or_none(present)
        if numbers is None or np.all(numbers == np.round(numbers)):
            return "an id (a different value in every row)"
    return ""


def _leak(feature: pd.Series, target_cells: pd.Series, target: Target) -> str:
    rows = [(f, t) for f, t in zip(feature.tolist(), target_cells.tolist(), strict=True)
            if not is_missing(f) and not is_missing(t)]
    if len(rows) < 20:
        return ""
    if target.kind == "regression":
        x, _ = numeric_or_none([f for f, _ in rows])
        if x is None:
            return ""
        y = np.asarray([float(t) for _, t in rows])
        if np.std(x) == 0 or np.std(y) == 0:
            return ""
        r = float(np.corrcoef(x, y)[0, 1])
        return f"correlates {r:+.3f} with target {target.column!r}: a leak?" if abs(r) > 0.99 else ""
    by_value: dict[str, set] = {}
    for f, t in rows:
        by_value.setdefault(f, set()).add(t.strip().lower())
    if len(by_value) < len(rows) / 2 and all(len(s) == 1 for s in by_value.values()):
        return f"determines target {target.column!r} exactly: a leak?"
    return ""
