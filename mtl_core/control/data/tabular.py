"""Tables: reading a user's CSV with clear errors, and the feature encoder saved with a model.

The encoder (standardised numeric columns, one-hot categorical columns) is fitted on the
training split only and stored as JSON in the model card, not pickled: a model pulled from the
Hub can then be loaded without running anyone's code. A category never seen in training encodes
as all zeros and is reported as a warning beside that row's prediction.

A missing feature value (an empty cell, NA, ...) is imputed with the training split's median (numbers) or
most frequent value (categories); a numeric column that had missing values in training also gets a
missing-indicator input, so the network can tell an imputed median from a real one. Encoders saved before
imputation existed (no ``impute`` in the card) still refuse a missing number, as they did.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mtl_core.errors import UserError

DELIMITERS = ",;\t|"


def read_csv(source, name: str | None = None, *, row_errors: dict[int, str] | None = None) -> pd.DataFrame:
    """A CSV (path, bytes or file object) as a DataFrame of strings; every problem is one line naming it.

    With ``row_errors`` (a dict to fill), a row with the wrong number of fields is kept (padded or cut)
    and its message stored under its position in the frame, instead of failing the whole file: a
    batch prediction then reports that row and still predicts the others."""
    if isinstance(source, (bytes, bytearray)):
        raw, name = bytes(source), name or "<csv>"
    elif hasattr(source, "read"):  # an open file or an upload
        raw, name = source.read(), name or str(getattr(source, "name", "<csv>"))
        raw = raw.encode() if isinstance(raw, str) else raw
    else:
        path = Path(source)
        name = name or path.name
        if not path.is_file():
            raise UserError(f"{name}: no such file")
        raw = path.read_bytes()
    if not raw.strip():
        raise UserError(f"{name}: empty file ({len(raw)} bytes)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{name}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                        f"save it as UTF-8 CSV") from None
    header = text.splitlines()[0]
    delimiter = ","
    if "," not in header:
        delimiter = next((d for d in DELIMITERS if d in header), ",")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows, starts, ended = [], [], 0  # each kept record and the file line it starts on (blank lines are skipped)
    for record in reader:
        if any(cell.strip() for cell in record):
            rows.append(record)
            starts.append(ended + 1)
        ended = reader.line_num
    if not rows:
        raise UserError(f"{name}: no header row (every cell is empty)")
    columns = [c.strip() for c in rows[0]]
    seen = set()
    for col in columns:
        if not col:
            raise UserError(f"{name}: a column has an empty name in the header")
        if col in seen:
            raise UserError(f"{name}: column name {col!r} appears twice in the header")
        seen.add(col)
    if len(rows) < 2:
        raise UserError(f"{name}: header only, no data rows")
    body = []
    for line, row in zip(starts[1:], rows[1:], strict=True):
        if len(row) != len(columns):
            message = f"{name}: line {line} has {len(row)} fields, the header has {len(columns)}"
            if row_errors is None:
                raise UserError(message)
            row_errors[len(body)] = message
            row = (row + [""] * len(columns))[:len(columns)]
        body.append([c.strip() for c in row])
    frame = pd.DataFrame(body, columns=columns, dtype=str)
    frame.attrs[LINES] = starts[1:]
    return frame


LINES = "csv_lines"  # DataFrame.attrs key: the file line of each row of read_csv's frame


def csv_line(frame: pd.DataFrame, row: int) -> int:
    """The file line (the header is line 1, blank lines count) of ``frame``'s row ``row`` (its index label
    in the frame read_csv returned), as an editor or a spreadsheet numbers it; errors name lines, not
    positions, so that "line 5" is found where the user looks."""
    lines = frame.attrs.get(LINES)
    return int(lines[row]) if lines is not None and 0 <= row < len(lines) else int(row) + 2


MISSING_CELLS = ("", "nan", "na", "n/a", "null", "none", "?")  # in a number column
MISSING_TEXT = ("", "nan", "n/a", "null", "?")  # in a text column: "none" and "NA" can be real categories


def to_number(value: str) -> float:
    """A cell as a float; '' and 'nan' give NaN (a missing value); text raises ValueError."""
    if value.strip().lower() in MISSING_CELLS:
        return math.nan
    return float(value)


def is_missing(value, numeric: bool = False) -> bool:
    """An empty cell or a usual "no value" mark (more of them count in a number column than in a text one)."""
    return str(value).strip().lower() in (MISSING_CELLS if numeric else MISSING_TEXT)


NUMERIC_SHARE = 0.9  # a column whose cells are at least 90% numbers is numeric; its other cells are errors


def numeric_or_none(values) -> tuple[np.ndarray | None, int | None]:
    """(numbers, position of the first non-number) for a mostly numeric column; (None, None) for a
    categorical one. A stray word in a numeric column is an error to report, not a reason to one-hot
    the whole column."""
    numbers, bad = [], []
    for i, v in enumerate(values):
        try:
            numbers.append(to_number(v))
        except ValueError:
            numbers.append(math.nan)
            bad.append(i)
    known = sum(1 for x in numbers if not math.isnan(x))
    if known == 0 or known < NUMERIC_SHARE * (known + len(bad)):
        return None, None
    return np.asarray(numbers, dtype=np.float64), (bad[0] if bad else None)


@dataclass
class TabularEncoder:
    """Numeric columns -> (x - mean) / std; categorical columns -> one-hot of the training categories."""

    numeric: dict[str, tuple[float, float]] = field(default_factory=dict)  # column -> (mean, std)
    categorical: dict[str, list[str]] = field(default_factory=dict)  # column -> categories
    order: list[str] = field(default_factory=list)  # feature columns in input order
    impute: dict[str, float | str] | None = None  # column -> training median / most frequent; None: refuse
    indicators: list[str] = field(default_factory=list)  # numeric columns with a missing-indicator input
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # numeric column -> training (min, max)

    @classmethod
    def fit(cls, frame: pd.DataFrame, features: list[str], name: str = "<csv>") -> TabularEncoder:
        enc = cls(order=list(features), impute={})
        for col in features:
            values = frame[col].tolist()
            x, bad = numeric_or_none(values)
            present = [v for v in values if not is_missing(v, numeric=x is not None)]
            if not present:
                raise UserError(f"{name}: column {col!r} has no values in the training split")
            if x is None:
                counts = pd.Series(present).value_counts()
                enc.categorical[col] = sorted(counts.index)
                enc.impute[col] = str(sorted(counts[counts == counts.max()].index)[0])  # ties: the first by name
                continue
            if bad is not None:
                raise UserError(f"{name}: line {csv_line(frame, frame.index[bad])}, column {col!r}: "
                                f"{values[bad]!r} is not a number")
            known = x[np.isfinite(x)]
            enc.numeric[col] = (float(known.mean()), float(known.std() + 1e-6))
            enc.ranges[col] = (float(known.min()), float(known.max()))
            enc.impute[col] = float(np.median(known))
            if len(known) < len(x):
                enc.indicators.append(col)
        return enc

    @property
    def width(self) -> int:
        return len(self.numeric) + len(self.indicators) + sum(len(c) for c in self.categorical.values())

    @property
    def feature_names(self) -> list[str]:
        names = []
        for col in self.order:
            if col in self.numeric:
                names.append(col)
                if col in self.indicators:
                    names.append(f"{col} missing")
            else:
                names += [f"{col}={cat}" for cat in self.categorical[col]]
        return names

    def column_groups(self) -> dict[str, list[int]]:
        """Each feature column's positions in the encoded vector (its value, indicator or one-hot inputs)."""
        groups, i = {}, 0
        for col in self.order:
            width = (1 + (col in self.indicators)) if col in self.numeric else len(self.categorical[col])
            groups[col] = list(range(i, i + width))
            i += width
        return groups

    def missing_counts(self, frame: pd.DataFrame) -> dict[str, int]:
        """Missing cells per feature column of ``frame`` (those imputed when it is encoded)."""
        counts = {col: int(sum(is_missing(v, numeric=col in self.numeric) for v in frame[col].tolist()))
                  for col in self.order}
        return {col: n for col, n in counts.items() if n}

    def encode_row(self, row: dict, where: str) -> tuple[np.ndarray, list[str]]:
        """One row -> (features, warnings). A bad numeric cell raises UserError naming row and column."""
        out, warnings = [], []
        for col in self.order:
            if col not in row:
                raise UserError(f"{where}: column {col!r} is missing")
            value = str(row[col]).strip()
            missing = is_missing(value, numeric=col in self.numeric)
            if missing and self.impute is not None and col in self.impute:
                warnings.append(f"column {col!r}: missing, imputed with the training "
                                f"{'median' if col in self.numeric else 'most frequent value'} {self.impute[col]!r}")
                value = str(self.impute[col])
            if col in self.numeric:
                try:
                    x = to_number(value)
                except ValueError:
                    raise UserError(f"{where}, column {col!r}: {value!r} is not a number") from None
                if not math.isfinite(x):
                    raise UserError(f"{where}, column {col!r}: missing or infinite value ({value!r})")
                low, high = self.ranges.get(col, (-math.inf, math.inf))
                if not missing and not low <= x <= high:
                    warnings.append(f"column {col!r}: {value} is outside the training range {low:g} to {high:g} "
                                    f"(the model was never shown such a value: treat this answer with care)")
                mean, std = self.numeric[col]
                out.append((x - mean) / std)
                if col in self.indicators:
                    out.append(1.0 if missing else 0.0)
            else:
                cats = self.categorical[col]
                onehot = [1.0 if value == c else 0.0 for c in cats]
                if value not in cats:
                    warnings.append(f"column {col!r}: {value!r} was never seen in training (encoded as unknown)")
                out += onehot
        return np.asarray(out, dtype=np.float32), warnings

    def encode_frame(self, frame: pd.DataFrame, name: str = "<csv>") -> np.ndarray:
        """Every row, all-or-nothing (training data): the first bad row raises."""
        rows = frame.to_dict("records")
        return np.stack([self.encode_row(r, f"{name}: line {csv_line(frame, i)}")[0]
                         for i, r in zip(frame.index, rows, strict=True)])

    def to_dict(self) -> dict:
        out = {"numeric": {k: list(v) for k, v in self.numeric.items()}, "categorical": self.categorical,
               "order": self.order}
        if self.impute is not None:
            out |= {"impute": self.impute, "indicators": self.indicators}
        if self.ranges:
            out["ranges"] = {k: list(v) for k, v in self.ranges.items()}
        return out

    @classmethod
    def from_dict(cls, d: dict) -> TabularEncoder:
        return cls({k: tuple(v) for k, v in d["numeric"].items()}, {k: list(v) for k, v in d["categorical"].items()},
                   list(d["order"]), d.get("impute"), list(d.get("indicators", [])),
                   {k: tuple(v) for k, v in d.get("ranges", {}).items()})  # older cards have no ranges


BINARY_VALUES = {"0": 0, "1": 1, "false": 0, "true": 1, "no": 0, "yes": 1, "0.0": 0, "1.0": 1}


def labels_from_column(frame: pd.DataFrame, column: str, kind: str, name: str,
                       class_names: tuple[str, ...] = ()) -> np.ndarray:
    """A label column -> array; an empty cell is a missing label (-1 for a class, NaN for a value).

    Binary columns take 0/1, true/false, yes/no or the task's two class names.
    """
    values = frame[column].tolist()

    def at(i: int) -> str:
        return f"{name}: line {csv_line(frame, frame.index[i])}, column {column!r}"

    if kind == "regression":
        out = np.empty(len(values), dtype=np.float32)
        for i, v in enumerate(values):
            try:
                out[i] = to_number(v)
            except ValueError:
                raise UserError(f"{at(i)}: {v!r} is not a number") from None
            if np.isinf(out[i]):
                raise UserError(f"{at(i)}: infinite value")
        known = out[np.isfinite(out)]
        if len(known) == 0:
            raise UserError(f"{name}: column {column!r} has no values")
        if len(np.unique(known)) < 2:
            raise UserError(f"{name}: column {column!r} has a single value ({known[0]:g}); nothing to learn")
        return out
    mapping = dict(BINARY_VALUES) if kind == "binary" else {}
    mapping.update({c.lower(): i for i, c in enumerate(class_names)})
    out = np.full(len(values), -1, dtype=np.int32)
    for i, v in enumerate(values):
        key = v.strip().lower()
        if key in ("", "nan", "na", "null", "none"):
            continue
        if key not in mapping:
            allowed = "0/1, true/false, yes/no" if kind == "binary" else ", ".join(class_names)
            raise UserError(f"{at(i)}: {v!r} is not a label ({allowed})")
        out[i] = mapping[key]
    present = np.unique(out[out >= 0])
    if len(present) < 2:
        raise UserError(f"{name}: column {column!r} has only one class "
                        f"({', '.join(map(str, present)) or 'no labels'}); a classifier needs two")
    return out


def table_dataset_parts(frame: pd.DataFrame, label_columns: dict[str, str], features: list[str] | None,
                        name: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """Check the named columns exist and pick the features (default: every other column)."""
    for head, col in label_columns.items():
        if col not in frame.columns:
            raise UserError(f"{name}: no column {col!r} for head {head!r} (columns: {', '.join(frame.columns)})")
    if features:
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise UserError(f"{name}: no feature column {missing[0]!r} (columns: {', '.join(frame.columns)})")
    else:
        features = [c for c in frame.columns if c not in label_columns.values()]
    if not features:
        raise UserError(f"{name}: no feature columns left besides the label columns")
    return frame[features].reset_index(drop=True), label_columns
