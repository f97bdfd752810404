"""Records -> the columns an imputer can use, and their values as numbers.

Each top-level column of the training records is classified once (the anomaly encoder's
``classify``, so both parts agree on what an id, a free text or a timestamp is):

- ``numeric`` / ``integer``: numbers (and strings that all parse as numbers, as CSV gives them);
  an ``integer`` column is filled with whole numbers;
- ``boolean`` and ``category`` (strings with few distinct values; at most ``MAX_CATEGORIES`` of
  them, the most frequent; a value that holds PII is never kept as a category, so it is never
  written as a fill);
- ``date`` / ``timestamp``: ISO-8601 strings or date values, as days or seconds since the epoch;
  as predictors they also give their parts (month of the year, day of the week) when the
  history spans those cycles;
- left out, with the reason: ``pii`` (a column whose values are emails, SSNs, card numbers,
  ...: never a predictor, never filled), ``id``, ``text``, ``nested``, ``all_null``,
  ``constant`` (one value in the whole history: nothing to learn, and a guess to fill),
  ``excluded`` (by the caller).

A cell is *missing* when the record has no value for the column (null or no key). A value that
is present but cannot be read (an unseen category, a malformed date) is not missing: it is never
replaced, and reads as unknown when it predicts another column.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np

from ..anomaly.encode import classify
from ..compliance.classify import holds_pii, pii_column

MAX_CATEGORIES = 30
NUMERIC_KINDS = ("numeric", "integer", "date", "timestamp")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class ColumnSpec:
    name: str
    kind: str  # numeric | integer | boolean | category | date | timestamp
    mean: float = 0.0  # of the numeric value (dates: days, timestamps: seconds since the epoch)
    std: float = 1.0
    lo: float = -math.inf  # the range seen in the history; fills stay inside it
    hi: float = math.inf
    categories: list[Any] = field(default_factory=list)  # boolean: [False, True]
    shares: list[float] = field(default_factory=list)  # of each category in the history
    as_text: bool = True  # dates and timestamps were strings (fills are written as strings)
    tz: bool = False  # timestamps carried a UTC offset
    parts: list[str] = field(default_factory=list)  # date parts used as predictors

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lo"], d["hi"] = _finite(self.lo), _finite(self.hi)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnSpec:
        d = dict(d)
        d["lo"] = -math.inf if d.get("lo") is None else float(d["lo"])
        d["hi"] = math.inf if d.get("hi") is None else float(d["hi"])
        return cls(**d)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _time_value(v: Any) -> tuple[float, bool, bool]:
    """(days or seconds since the epoch, is a date only, carried a UTC offset); NaN when the
    value is not a date or timestamp."""
    if isinstance(v, datetime):
        dt = v
    elif isinstance(v, date):
        return float((v - date(1970, 1, 1)).days), True, False
    elif isinstance(v, str):
        s = v.strip()
        try:
            if len(s) == 10:
                d = date.fromisoformat(s)
                return float((d - date(1970, 1, 1)).days), True, False
            dt = datetime.fromisoformat(s)
        except ValueError:
            return math.nan, False, False
    else:
        return math.nan, False, False
    tz = dt.tzinfo is not None
    if not tz:
        dt = dt.replace(tzinfo=UTC)
    return (dt - EPOCH).total_seconds(), False, tz


def _number(v: Any) -> float:
    if v is None or isinstance(v, bool):
        return math.nan
    if isinstance(v, int | float | Decimal):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return math.nan
    return math.nan


def _missing(v: Any) -> bool:
    return v is None


@dataclass
class Analysis:
    specs: list[ColumnSpec]
    excluded: dict[str, str]  # column -> why it is neither predictor nor filled


def analyse(
    records: list[dict[str, Any]],
    columns: list[str] | None = None,
    exclude: list[str] | tuple[str, ...] = (),
    region: str = "US",
) -> Analysis:
    """The usable columns of the training records (every row is read)."""
    names: dict[str, None] = {}
    for r in records:
        for k in r:
            names.setdefault(k, None)
    specs: list[ColumnSpec] = []
    excluded: dict[str, str] = {}
    for name in columns or list(names):
        if name in exclude:
            excluded[name] = "excluded"
            continue
        values = [r.get(name) for r in records]
        kind, why = classify(name, values)
        present = [v for v in values if v is not None]
        if why in ("numeric", "category", "id", "text") and pii_column(
            name, present, region=region
        ):
            excluded[name] = "pii"  # said first: an email column is unique too, but PII
            continue
        if kind is None:
            excluded[name] = why
            continue
        spec = _spec(name, kind, present, region)
        if spec is None:
            excluded[name] = "constant"
            continue
        specs.append(spec)
    return Analysis(specs, excluded)


def _spec(name: str, kind: str, present: list[Any], region: str) -> ColumnSpec | None:
    if kind == "bool":
        n_true = sum(1 for v in present if v is True)
        if n_true in (0, len(present)):
            return None
        share = n_true / len(present)
        return ColumnSpec(name, "boolean", categories=[False, True], shares=[1 - share, share])
    if kind == "category":
        counts: dict[Any, int] = {}
        for v in present:
            key = v if isinstance(v, str | int | float) else str(v)
            counts[key] = counts.get(key, 0) + 1
        if len(counts) < 2:
            return None
        top = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
        kept = [(k, c) for k, c in top if not holds_pii(k, name, region=region)][:MAX_CATEGORIES]
        if len(kept) < 2:
            return None
        total = sum(c for _, c in kept)
        return ColumnSpec(
            name, "category", categories=[k for k, _ in kept], shares=[c / total for _, c in kept]
        )
    if kind == "timestamp":
        parsed = [_time_value(v) for v in present]
        vals = np.array([p[0] for p in parsed], dtype=float)
        vals = vals[np.isfinite(vals)]
        all_dates = all(p[1] for p in parsed)
        spec = _numeric_spec(name, "date" if all_dates else "timestamp", vals)
        if spec is None:
            return None
        spec.as_text = all(isinstance(v, str) for v in present[:1000])
        spec.tz = any(p[2] for p in parsed)
        day = 1.0 if all_dates else 86400.0
        span = (spec.hi - spec.lo) / day
        spec.parts = [p for p, cycle in (("weekday", 7), ("month", 365)) if span >= cycle]
        if not all_dates:
            spec.mean, spec.std, spec.lo, spec.hi = (
                spec.mean / day, spec.std / day, spec.lo / day, spec.hi / day
            )  # fmt: skip
        return spec
    vals = np.array([_number(v) for v in present], dtype=float)
    vals = vals[np.isfinite(vals)]
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in present) or (
        vals.size > 0 and bool(np.all(vals == np.round(vals))) and _all_int_text(present)
    )
    return _numeric_spec(name, "integer" if ints else "numeric", vals)


def _all_int_text(present: list[Any]) -> bool:
    return all(isinstance(v, int) or (isinstance(v, str) and v.strip().lstrip("-").isdigit())
               for v in present)  # fmt: skip


def _numeric_spec(name: str, kind: str, vals: np.ndarray) -> ColumnSpec | None:
    if vals.size == 0:
        return None
    std = float(vals.std())
    if not std > 0:
        return None
    return ColumnSpec(
        name, kind, mean=float(vals.mean()), std=std, lo=float(vals.min()), hi=float(vals.max())
    )


def encode(records: list[dict[str, Any]], specs: list[ColumnSpec]) -> tuple[np.ndarray, np.ndarray]:
    """(values, missing): values is n x p (numeric value, category index, NaN when missing or
    unreadable), missing marks the cells that have no value at all (the ones to fill)."""
    n, p = len(records), len(specs)
    X = np.full((n, p), np.nan)
    M = np.zeros((n, p), dtype=bool)
    for j, s in enumerate(specs):
        col = [r.get(s.name) for r in records]
        M[:, j] = [_missing(v) for v in col]
        if s.kind in ("numeric", "integer"):
            try:
                X[:, j] = np.array([np.nan if v is None else v for v in col], dtype=float)
                X[M[:, j], j] = np.nan
            except (TypeError, ValueError):
                X[:, j] = [_number(v) for v in col]
        elif s.kind in ("date", "timestamp"):
            scale = 86400.0 if s.kind == "timestamp" else 1.0
            for i, v in enumerate(col):
                if v is not None:
                    t, only_date, _ = _time_value(v)
                    if s.kind == "timestamp" and only_date:
                        t *= 86400.0
                    X[i, j] = t / scale
        else:
            index = {_cat_key(c): k for k, c in enumerate(s.categories)}
            for i, v in enumerate(col):
                if v is not None:
                    k = index.get(_cat_key(v))
                    if k is not None:
                        X[i, j] = k
    return X, M


def _cat_key(v: Any) -> Any:
    return ("b", v) if isinstance(v, bool) else ("v", str(v))


def decode(spec: ColumnSpec, x: float) -> Any:
    """The value to write for a fill of ``x`` (numeric value or category index)."""
    if spec.kind == "integer":
        return int(round(x))
    if spec.kind == "numeric":
        return float(x)
    if spec.kind in ("boolean", "category"):
        return spec.categories[int(x)]
    if spec.kind == "date":
        d = date(1970, 1, 1) + timedelta(days=int(round(x)))
        return d.isoformat() if spec.as_text else d
    dt = EPOCH + timedelta(seconds=round(x * 86400.0))
    if not spec.tz:
        dt = dt.replace(tzinfo=None)
    return dt.isoformat() if spec.as_text else dt


def part_values(spec: ColumnSpec, x: np.ndarray) -> list[np.ndarray]:
    """The date parts of day values ``x`` (NaN stays NaN), as cos/sin pairs."""
    out = []
    for part in spec.parts:
        if part == "weekday":
            angle = 2 * np.pi * np.mod(np.floor(x) + 3, 7) / 7  # 1970-01-01 was a Thursday
        else:
            angle = 2 * np.pi * np.mod(x, 365.2425) / 365.2425
        out += [np.cos(angle), np.sin(angle)]
    return out
