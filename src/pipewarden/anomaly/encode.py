"""Feature encoding: JSON-like records -> a float matrix every engine reads.

Each top-level column is classified once, on the reference (training) records:

- ``numeric``: numbers, and strings that all parse as numbers (CSV); a null stays missing (the
  engines read it as the median, and the default engine's distance leaves it out) and, when
  the reference has nulls, a ``<col>__null`` indicator feature is added;
- ``bool``: 0/1;
- ``timestamp``: ISO-8601 strings or datetime values -> two features, ``<col>__hour`` (hour of
  day with minutes as a fraction, UTC) and ``<col>__weekday`` (0 = Monday): the time of day and
  week a record usually has. Absolute time is left to the freshness monitor: as epoch seconds,
  every new batch would lie beyond its training data and look anomalous. A part is kept only
  when the reference spans its whole cycle (``TS_CYCLE``: a day for the hour, a week for the
  weekday):
  a model trained on one afternoon cannot know that the evening is ordinary, and would flag
  every row of the next day; with no part kept the column is left out (``short_time_span``);
- ``category``: strings with few distinct values -> the value's share in the reference
  (frequency encoding; an unseen value has share 0, the rarest possible); at most
  ``MAX_CATEGORIES`` shares are kept, the rest pool into one "other" share; the shares are
  keyed by digests under a key drawn per model, and a value holding PII is not kept;
- left out, with the reason in ``excluded``: ``id`` (integers or strings unique per row, or a
  name like ``id``/``*_id`` with more than ``max(50, 5%)`` distinct values, since keys recur
  across the batches a model is trained on), ``text`` (strings with many distinct values),
  ``pii`` (numbers or categories whose values are emails, SSNs, card numbers, ...: a saved
  model keeps medians and category shares, and must not keep those), ``nested`` (objects and
  arrays), ``all_null``.

``include`` forces columns in (an id becomes numeric, text a category, a ``pii`` column is
kept); ``exclude`` drops them.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import operator
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import repeat
from typing import Any

import numpy as np

from ..compliance.classify import holds_pii, pii_column

MAX_CATEGORIES = 1000
ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key)$", re.I)
MIN_ROWS_FOR_HEURISTICS = 20


@dataclass
class Feature:
    name: str  # feature name, e.g. "amount" or "amount__null"
    column: str  # the source column
    kind: str  # numeric | bool | ts_hour | ts_weekday | category | null
    shares: dict[str, float] = field(default_factory=dict)  # category -> share
    other: float = 0.0  # share of categories beyond the cap
    salt: str = ""  # set: the shares are keyed by digest(salt, value), not by the value (PII)

    def key(self, value: Any) -> str:
        """The key of a category value in ``shares``."""
        if value is None:
            return "\x00null"
        if not self.salt:
            return str(value)
        return _digest(self.salt, str(value))

    @property
    def sided(self) -> int:
        """+1: only high values are unusual; -1: only low ones; 0: both."""
        return {"category": -1, "null": 1}.get(self.kind, 0)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "column": self.column, "kind": self.kind}
        if self.kind == "category":
            d["shares"] = self.shares
            d["other"] = self.other
            if self.salt:
                d["salt"] = self.salt
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Feature:
        return cls(
            d["name"],
            d["column"],
            d["kind"],
            dict(d.get("shares", {})),
            float(d.get("other", 0.0)),
            str(d.get("salt", "")),
        )


class Columns(list):
    """A chunk's records (a list) that also carry its columns (``columns``: key -> every
    record's value, ``Batch.columns()``) and their types (``types(key)``, ``Batch.types``):
    the encoder and the monitors read a column from them instead of going through the
    records again."""

    def __init__(self, batch: Any):
        super().__init__(batch.records)
        self.columns: dict[str, Sequence[Any]] = batch.columns()
        self.types: Callable[[str], frozenset] = batch.types


def _digest(salt: str, value: str) -> str:
    return hmac.new(
        bytes.fromhex(salt), value.encode("utf-8", "surrogatepass"), hashlib.sha256
    ).hexdigest()[:24]


TS_PARTS = ("hour", "weekday")
TS_CYCLE = {"hour": 86400.0, "weekday": 7 * 86400.0}  # span the reference must cover


def _ts_parts(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hour of day (fractional) and weekday (0 = Monday) of epoch seconds, UTC; NaN stays."""
    hour = np.mod(t, 86400.0) / 3600.0
    weekday = np.mod(np.floor(t / 86400.0) + 3, 7)  # 1970-01-01 was a Thursday
    return hour, weekday


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _parse_float(v: Any) -> float:
    if v is None:
        return math.nan
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        s = v.strip()
        if not s:
            return math.nan
        try:
            return float(s)
        except ValueError:
            return math.nan
    return math.nan


def _parse_ts(v: Any) -> float:
    if v is None:
        return math.nan
    if isinstance(v, datetime):
        dt = v
    elif isinstance(v, date):
        dt = datetime(v.year, v.month, v.day)
    elif isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v.strip())
        except ValueError:
            return math.nan
    else:
        return math.nan
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


# ISO 8601 timestamps that both datetime.fromisoformat and Arrow's cast read the same way:
# date, "T", time to the second, up to 6 fraction digits, then "Z" or an offset (zoned) or
# nothing (naive, read as UTC). Anything else is parsed value by value.
_YEAR = r"([1-9]\d{3}|0[1-9]\d{2}|00[1-9]\d|000[1-9])"  # datetime has no year 0
_ISO_ZONED = (
    "^" + _YEAR + r"-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
_ISO_NAIVE = "^" + _YEAR + r"-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?$"


def _parse_ts_many(values: Sequence[Any]) -> np.ndarray:
    """``[_parse_ts(v) for v in values]`` as an array: where the values are texts, those in the
    common ISO shapes are parsed by Arrow in C (the same instants, to the microsecond), the
    rest one by one."""
    n = len(values)
    out = np.full(n, np.nan)
    if not n:
        return out
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        arr = pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # not texts and nulls: one by one
        return np.fromiter(map(_parse_ts, values), float, n)
    done = np.zeros(n, dtype=bool)
    for pattern, tz in ((_ISO_ZONED, "UTC"), (_ISO_NAIVE, None)):
        hit = pc.match_substring_regex(arr, pattern).fill_null(False)
        hit = hit.to_numpy(zero_copy_only=False)
        hit &= ~done
        if not hit.any():
            continue
        at = np.flatnonzero(hit)
        try:
            us = arr.take(pa.array(at)).cast(pa.timestamp("us", tz))
        except pa.ArrowInvalid:  # an impossible date among them: those one by one
            continue
        us = us.cast(pa.int64()).to_numpy()
        # seconds as datetime.timestamp() gives them: microseconds / 10**6 correctly rounded,
        # which float64 division is while the microseconds are exact in a float (1685-2255)
        sec = us / 1e6
        far = np.flatnonzero(np.abs(us) >= 2**53)
        sec[far] = [u / 10**6 for u in us[far].tolist()]
        out[at] = sec
        done[at] = True
    rest = np.flatnonzero(~done & ~arr.is_null().to_numpy(zero_copy_only=False))
    if len(rest):
        out[rest] = [_parse_ts(values[i]) for i in rest.tolist()]
    return out


def _looks_like_ts(v: Any) -> bool:
    if isinstance(v, datetime | date):
        return True
    if isinstance(v, str) and len(v) >= 10 and v[4:5] == "-" and v[7:8] == "-":
        return not math.isnan(_parse_ts(v))
    return False


def _all_timestamps(values: list[Any]) -> bool:
    """``all(_looks_like_ts(v) for v in values)``, texts parsed together."""
    if not all(type(v) is str for v in values):
        return all(map(_looks_like_ts, values))
    shaped = all(len(v) >= 10 and v[4:5] == "-" and v[7:8] == "-" for v in values)
    return shaped and bool(np.isfinite(_parse_ts_many(values)).all())


def _numeric(values: list[Any]) -> np.ndarray:
    try:
        return np.array(values, dtype=float)
    except (ValueError, TypeError):
        return np.array([_parse_float(v) for v in values], dtype=float)


def classify(name: str, values: list[Any], forced: bool = False) -> tuple[str | None, str]:
    """The kind of a column (None: left out) and why."""
    present = [v for v in values if v is not None and v != ""]
    n = len(present)
    if n == 0:
        return None, "all_null"
    if any(isinstance(v, dict | list) for v in present[:1000]):
        return None, "nested"
    types = set(map(type, present))  # in C; the checks below read it where it decides
    if types == {bool}:
        return "bool", "boolean"
    sample = present[:200]
    if all(_looks_like_ts(v) for v in sample) and _all_timestamps(present):
        return "timestamp", "timestamp"
    numeric = (
        types <= {int, float}
        or all(_is_number(v) for v in present)
        or (
            all(
                isinstance(v, str | int | float) and not math.isnan(_parse_float(v)) for v in sample
            )
            and not np.isnan(_numeric(present)).any()
        )
    )
    distinct = len(set(present) if types == {str} else set(map(str, present)))
    unique = distinct == n
    cap = max(50, int(0.05 * n))
    # unique values, or a name like id/*_id with many values: keys recur in the rows a model
    # is trained on (rows sent again, upserts on a key, a file loaded twice), and an integer
    # key read as a number puts every later key beyond the model's range (three copies of
    # 20,000 rows trained a model that flagged 56,271 of the next 200,000 clean rows)
    id_like = (unique and (ID_NAME.search(name) or n >= MIN_ROWS_FOR_HEURISTICS)) or (
        ID_NAME.search(name) is not None and n >= MIN_ROWS_FOR_HEURISTICS and distinct > cap
    )
    if numeric:
        if not forced:
            ints = all(float(_parse_float(v)).is_integer() for v in present[:1000])
            if ints and id_like:
                return None, "id"
        return "numeric", "numeric"
    if forced:
        return "category", "category (included)"
    if id_like:
        return None, "id"
    if n >= MIN_ROWS_FOR_HEURISTICS and (distinct > cap or distinct > 0.5 * n):
        return None, "text"
    return "category", "category"


def _category(name: str, values: list[Any], keep_pii: bool = False, region: str = "US") -> Feature:
    """A category feature: the shares of its most common values, keyed by digests under a
    key drawn for this model (the file never holds a value in clear); a value holding PII is
    not kept at all (it reads as unseen, share 0) unless the column was asked for: a digest
    of an SSN is found again by hashing every SSN with the key beside it."""
    counts: dict[Any, int] = {}
    for v in values:
        k = "\x00null" if v is None else str(v)
        counts[k] = counts.get(k, 0) + 1
    total = len(values)
    top = sorted(counts.items(), key=lambda kv: -kv[1])
    kept = [
        (k, c)
        for k, c in top[:MAX_CATEGORIES]
        if keep_pii or k == "\x00null" or not holds_pii(k, name, region=region)
    ]
    feature = Feature(name, name, "category", salt=secrets.token_hex(16))
    feature.shares = {feature.key(None if k == "\x00null" else k): c / total for k, c in kept}
    feature.other = (total - sum(c for _, c in kept)) / total
    return feature


@dataclass
class Encoder:
    features: list[Feature]
    excluded: dict[str, str]  # column -> why it was left out

    @classmethod
    def fit(
        cls,
        records: list[dict[str, Any]],
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        columns: list[str] | None = None,
        region: str = "US",
    ) -> Encoder:
        include = list(include or [])
        exclude = set(exclude or [])
        shared = getattr(records, "columns", None)  # Columns: every key's values, made once
        names: dict[str, None] = {}
        if shared is not None:  # its keys in order of first appearance, as the loop finds them
            names.update(dict.fromkeys(shared))
        else:
            for r in records:
                for k in r:
                    names.setdefault(k, None)
        for k in include:
            names.setdefault(k, None)
        features: list[Feature] = []
        excluded: dict[str, str] = {}
        for name in columns or list(names):
            if name in exclude:
                excluded[name] = "excluded"
                continue
            got = shared.get(name) if shared is not None else None
            values = list(got) if got is not None else [r.get(name) for r in records]
            kind, why = classify(name, values, forced=name in include)
            if kind is None:
                excluded[name] = why
                continue
            if kind == "timestamp":
                t = _parse_ts_many(values)
                span = float(np.nanmax(t) - np.nanmin(t)) if np.isfinite(t).any() else 0.0
                parts = [part for part in TS_PARTS if span >= TS_CYCLE[part]]
                if not parts:
                    excluded[name] = "short_time_span"
                    continue
                for part in parts:
                    features.append(Feature(f"{name}__{part}", name, f"ts_{part}"))
                if np.isnan(t).any():
                    features.append(Feature(f"{name}__null", name, "null"))
            elif kind == "numeric":
                if name not in include and pii_column(name, values, region=region):
                    excluded[name] = "pii"  # card or phone numbers: their median is one of them
                    continue
                features.append(Feature(name, name, kind))
                if np.isnan(_numeric(values)).any():
                    features.append(Feature(f"{name}__null", name, "null"))
            elif kind == "bool":
                features.append(Feature(name, name, "bool"))
                if any(v is None for v in values):
                    features.append(Feature(f"{name}__null", name, "null"))
            else:
                if name not in include and pii_column(name, values, region=region):
                    excluded[name] = "pii"
                    continue
                features.append(_category(name, values, keep_pii=name in include, region=region))
        return cls(features, excluded)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def sided(self) -> np.ndarray:
        return np.array([f.sided for f in self.features], dtype=int)

    def transform(
        self, records: list[dict[str, Any]], report: dict[str, Any] | None = None
    ) -> np.ndarray:
        """The feature matrix of `records`. A column no record has (renamed, dropped) is
        missing in every row (NaN), not read as nulls or as an unseen category; `report`, when
        given, receives ``absent`` (those columns) and ``not_numeric`` (per numeric column, the
        values that are not numbers, which are read as missing too)."""
        n = len(records)
        X = np.empty((n, len(self.features)), dtype=float)
        cache: dict[str, Sequence[Any]] = {}
        kinds: dict[str, frozenset] = {}  # the types of a column's values
        ts_cache: dict[str, np.ndarray] = {}
        absent: list[str] = []
        not_numeric: dict[str, int] = {}
        shared = getattr(records, "columns", None)  # Columns: every key's values, made once
        for j, f in enumerate(self.features):
            values = cache.get(f.column)
            if values is None:
                if shared is not None:
                    values = shared.get(f.column)
                    if values is None:  # no record has the column
                        values = [None] * n
                        absent.extend([f.column] if n else [])
                    else:
                        kinds[f.column] = records.types(f.column)
                else:
                    values = [r.get(f.column) for r in records]
                    if (
                        n
                        and all(v is None for v in values)
                        and not any(f.column in r for r in records)
                    ):
                        absent.append(f.column)
                cache[f.column] = values
                if f.column not in kinds:
                    kinds[f.column] = frozenset(map(type, values))
            types = kinds[f.column]
            if f.column in absent:
                X[:, j] = np.nan
            elif f.kind == "numeric":
                x = X[:, j] = _numeric(values)  # a null stays NaN: the model decides
                if report is not None and f.column not in not_numeric and np.isnan(x).any():
                    bad = sum(
                        1
                        for v, xv in zip(values, x, strict=True)
                        if xv != xv and v not in (None, "")
                    )
                    if bad:
                        not_numeric[f.column] = bad
            elif f.kind in ("ts_hour", "ts_weekday"):
                t = ts_cache.get(f.column)
                if t is None:
                    t = ts_cache[f.column] = _parse_ts_many(values)
                X[:, j] = _ts_parts(t)[TS_PARTS.index(f.kind[3:])]
            elif f.kind == "bool":
                if types <= {bool, type(None)}:  # 1 for True, else 0, without str()
                    X[:, j] = np.fromiter(map(operator.is_, values, repeat(True)), bool, n)
                else:
                    X[:, j] = [
                        1.0 if v is True or str(v).lower() in ("true", "1") else 0.0 for v in values
                    ]
            elif f.kind == "null":
                if str in types:
                    X[:, j] = [1.0 if v is None or v == "" else 0.0 for v in values]
                else:
                    X[:, j] = np.fromiter(map(operator.is_, values, repeat(None)), bool, n)
            else:
                get = f.shares.get
                if f.salt and types <= {str, type(None)}:  # a text is its own str()
                    share = {t: get(f.key(t), 0.0) for t in set(values)}
                    X[:, j] = np.fromiter(map(share.__getitem__, values), float, n)
                elif f.salt:  # one digest per distinct value, not per row
                    texts = [None if v is None else str(v) for v in values]
                    share = {t: get(f.key(t), 0.0) for t in set(texts)}
                    X[:, j] = [share[t] for t in texts]
                else:  # a model saved before keys were digests
                    X[:, j] = [get("\x00null" if v is None else str(v), 0.0) for v in values]
        if report is not None:
            report.update(absent=absent, not_numeric=not_numeric)
        return X

    def to_dict(self) -> dict[str, Any]:
        return {"features": [f.to_dict() for f in self.features], "excluded": self.excluded}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Encoder:
        return cls([Feature.from_dict(f) for f in d["features"]], dict(d.get("excluded", {})))
