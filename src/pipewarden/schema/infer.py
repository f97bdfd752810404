"""Inference over every row of a batch, no sampling.

The :class:`Inferrer` is fed batch after batch (``update``) and keeps, per column, the join of
the types of every value seen (see :mod:`pipewarden.schema.lattice`), whether a null or a
missing key was seen, and whether two types conflicted. It is fast because it works column by
column: ``set(map(type, values))`` tells in one C-level pass which Python types a column holds,
and only the *distinct* strings of a column are looked at for sub-types (dates, timestamps and,
for CSV, numbers and booleans). A column whose strings already joined to TEXT is not looked at
again.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from ..batch import Batch, Exact
from . import lattice
from .types import Column, DataType, Schema

T = DataType

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TS = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?")
_TSTZ = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}(:?\d{2})?)"
)
_INT = re.compile(r"[+-]?(0|[1-9]\d*)")
_DEC = re.compile(r"[+-]?(0|[1-9]\d*)\.\d+")
_FLOAT = re.compile(r"[+-]?(0|[1-9]\d*)(\.\d+)?[eE][+-]?\d+")
_BOOL = {"true": True, "false": False}  # any case


def parse_datetime(text: str) -> dt.datetime:
    """ISO 8601 timestamp with up to nanoseconds (digits past microseconds are dropped)."""
    frac = text.find(".")
    if frac != -1:
        end = frac + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        if end - frac > 7:
            text = text[: frac + 7] + text[end:]
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    return dt.datetime.fromisoformat(text)


def string_type(s: str, numbers: bool) -> DataType:
    """The sub-type of one string: a date, a timestamp(tz), or (``numbers``, for CSV) a
    boolean, an integer, a decimal or a double; TEXT otherwise. Integers with leading zeros
    (zip codes, ids) stay TEXT."""
    if not s:
        return T.TEXT
    c = s[0]
    if c.isdigit() and len(s) >= 10 and s[4:5] == "-":
        try:
            if len(s) == 10 and _DATE.fullmatch(s):
                dt.date.fromisoformat(s)
                return T.DATE
            if _TS.fullmatch(s):
                parse_datetime(s)
                return T.TIMESTAMP
            if _TSTZ.fullmatch(s):
                parse_datetime(s)
                return T.TIMESTAMPTZ
        except ValueError:
            return T.TEXT
    if numbers:
        if c.isdigit() or c in "+-":
            if _INT.fullmatch(s):
                v = int(s)
                return T.BIGINT if lattice.INT64_MIN <= v <= lattice.INT64_MAX else T.DECIMAL
            if _DEC.fullmatch(s):
                return T.DECIMAL
            if _FLOAT.fullmatch(s):
                return T.DOUBLE if double_holds(s) else T.DECIMAL
        elif len(s) <= 5 and s.lower() in _BOOL:
            return T.BOOLEAN
    return T.TEXT


def double_holds(text: str) -> bool:
    """True when a double holds the number ``text`` (its nearest double): not beyond its range
    (``1e400``) and not below it (``1e-400``, which it would store as 0)."""
    try:
        f = float(text)
    except ValueError:
        return False
    if f in (_INF, -_INF):
        return False
    return f != 0.0 or not any(c in "123456789" for c in text.partition("e")[0].partition("E")[0])


_INF = float("inf")

_SIMPLE = {
    type(None): T.NULL,
    bool: T.BOOLEAN,
    float: T.DOUBLE,
    Decimal: T.DECIMAL,
    Exact: T.DECIMAL,
    dict: T.JSON,
    list: T.JSON,
    tuple: T.JSON,
    dt.date: T.DATE,
    bytes: T.TEXT,
    dt.time: T.TEXT,
    dt.timedelta: T.TEXT,
}


def value_type(v: Any, numbers: bool = False) -> DataType:
    """The type of one value (strings are sub-typed, see :func:`string_type`)."""
    t = type(v)
    if t is str:
        return string_type(v, numbers)
    if t is int:
        return T.BIGINT if lattice.INT64_MIN <= v <= lattice.INT64_MAX else T.DECIMAL
    if t is dt.datetime:
        return T.TIMESTAMP if v.tzinfo is None else T.TIMESTAMPTZ
    return _SIMPLE.get(t, T.TEXT)


@dataclass
class ColumnStats:
    """What the inferrer knows about one column. Native values (numbers, booleans, nested)
    and strings are joined apart: strings never conflict with each other (in a CSV file
    ``"12"`` and ``"abc"`` make TEXT), a string and a number do."""

    name: str
    native: DataType = T.NULL  # join of the non-string values
    strings: DataType = T.NULL  # join of the strings' sub-types
    nullable: bool = False
    native_conflict: bool = False
    big_ints: bool = False  # an integer beyond 2**53 (loses digits as a double)
    families: set[str] = field(default_factory=set)  # boolean, number, string, json
    non_null: int = 0
    nulls: int = 0  # nulls and missing keys

    def add_native(self, t: DataType) -> None:
        self.families.add(lattice.family(t))
        if t != self.native:
            self.native_conflict = self.native_conflict or lattice.conflicts(self.native, t)
            self.native = lattice.join(self.native, t)

    @property
    def type(self) -> DataType:
        t = lattice.join(self.native, self.strings)
        return T.DECIMAL if t == T.DOUBLE and self.big_ints else t

    @property
    def conflict(self) -> bool:
        return self.native_conflict or lattice.conflicts(self.native, self.strings)


class Inferrer:
    """Infers a schema from every row of every batch it is given.

    ``numeric_strings``: sub-type strings that look like numbers or booleans (the default for
    CSV, where every value is a string; JSON strings stay strings, but date-like strings are
    dates in every format).
    """

    def __init__(self, numeric_strings: bool | None = None) -> None:
        self.numeric_strings = numeric_strings
        self.columns: dict[str, ColumnStats] = {}
        self.rows = 0

    def update(self, batch: Batch | Iterable[dict]) -> Inferrer:
        if not isinstance(batch, Batch):  # records: their columns and types as a chunk's
            batch = Batch(batch if isinstance(batch, list) else list(batch), "")
        n = len(batch.records)
        numbers = self.numeric_strings if self.numeric_strings is not None else batch.fmt == "csv"
        if not n:
            return self
        cols = self.columns
        columns = batch.columns()
        for k, stats in cols.items():
            if k not in columns:
                stats.nulls += n
                stats.nullable = True
        for k, values in columns.items():
            stats = cols.get(k)
            if stats is None:
                stats = cols[k] = ColumnStats(k, nullable=self.rows > 0, nulls=self.rows)
            self._column(stats, values, numbers, set(batch.types(k)))
        self.rows += n
        return self

    def _column(self, stats: ColumnStats, values: Sequence, numbers: bool, types: set) -> None:
        """Add a column's ``values`` to its statistics; ``types``: a set of their types (a
        copy: it is changed)."""
        pure = len(types) == 1
        if type(None) in types:
            nulls = values.count(None)
            stats.nulls += nulls
            stats.non_null += len(values) - nulls
            stats.nullable = True
            types.discard(type(None))
        else:
            stats.non_null += len(values)
        for t in types:
            if t is str:
                if stats.strings == T.TEXT:
                    continue  # nothing a string can add
                distinct = set(values) if pure else {v for v in values if type(v) is str}
                st = stats.strings
                if len(distinct) > VECTOR_MIN:
                    distinct, st = _temporal_join(distinct, st)
                for s in distinct:
                    st = lattice.join(st, string_type(s, numbers))
                    if st == T.TEXT:
                        break
                stats.strings = st
                stats.families.add("string")
            elif t is int:
                ints = values if pure else [v for v in values if type(v) is int]
                lo, hi = min(ints), max(ints)
                if hi > lattice.EXACT_DOUBLE_INT or lo < -lattice.EXACT_DOUBLE_INT:
                    stats.big_ints = True
                in64 = lo >= lattice.INT64_MIN and hi <= lattice.INT64_MAX
                stats.add_native(T.BIGINT if in64 else T.DECIMAL)
            elif t is dt.datetime:
                for v in values:
                    if type(v) is dt.datetime:
                        stats.add_native(T.TIMESTAMP if v.tzinfo is None else T.TIMESTAMPTZ)
            else:
                stats.add_native(_SIMPLE.get(t, T.TEXT))

    def conflicts(self) -> dict[str, list[str]]:
        """Keys whose values had types of different families, with those families."""
        return {k: sorted(s.families) for k, s in self.columns.items() if s.conflict}

    def stats(self) -> list[ColumnStats]:
        return list(self.columns.values())

    def schema(self) -> Schema:
        """The observed schema: every key seen, with the join of its values' types.
        ``nullable`` is True when some row had a null or lacked the key."""
        out = Schema({k: Column(k, s.type, s.nullable) for k, s in self.columns.items()})
        for k, s in self.columns.items():
            # number text only (CSV): a double column holds it too, see schema.plan
            out.columns[k].text_number = s.native == T.NULL and s.strings in lattice.NUMERIC
        return out


VECTOR_MIN = 64  # distinct strings from which dates and timestamps are parsed by Arrow


def _temporal_join(distinct: set[str], st: DataType) -> tuple[list[str], DataType]:
    """The dates and timestamps among ``distinct`` parsed at once by Arrow
    (:func:`pipewarden.columnar.parse_temporal`): ``st`` joined with their types, and the
    strings it left for :func:`string_type` (everything else, and any date Arrow refused)."""
    import numpy as np

    from ..columnar import KIND_TYPE, NONE, parse_temporal

    strings = list(distinct)
    kinds, _ = parse_temporal(strings)
    for k in np.unique(kinds):
        if k != NONE:
            st = lattice.join(st, KIND_TYPE[int(k)])
    rest = np.flatnonzero(kinds == NONE)
    return [strings[i] for i in rest], st


def _transpose(records: list[dict]) -> dict[str, Sequence]:
    """Column name -> values (None where a record lacks the key), every key of every record
    in order of first appearance. When every record has the same keys (the usual case) the
    transposition runs in C: ``itemgetter`` per row, ``zip`` per column (call it with the
    garbage collector paused: the row tuples would trigger its passes). Otherwise a key that
    every record has is still read by ``map(itemgetter(key), records)``, and only a key some
    records lack takes ``r.get(key)``."""
    first = list(records[0])
    width = len(first)
    if width and all(n == width for n in map(len, records)):
        try:
            if width == 1:
                return {first[0]: list(map(itemgetter(first[0]), records))}
            rows = map(itemgetter(*first), records)
            return dict(zip(first, zip(*rows, strict=True), strict=True))
        except KeyError:
            pass  # same width, other keys: the general path below
    # the distinct key sequences in order of first appearance (a tuple a record, hashed in C),
    # then their keys in that order: each key where the first record that has it puts it
    shapes = dict.fromkeys(map(tuple, records))
    everywhere = set(first).intersection(*shapes)
    out: dict[str, Sequence] = {}
    for k in dict.fromkeys(chain.from_iterable(shapes)):
        if k in everywhere:
            out[k] = list(map(itemgetter(k), records))
        else:
            out[k] = list(map(dict.get, records, repeat(k)))
    return out


def infer(batches: Batch | Iterable[Batch] | Iterable[dict]) -> Schema:
    """The schema of one batch, of several batches, or of a list of records."""
    inf = Inferrer()
    if isinstance(batches, Batch):
        inf.update(batches)
        return inf.schema()
    items = list(batches) if not isinstance(batches, list) else batches
    if items and all(isinstance(b, Batch) for b in items):
        for b in items:
            inf.update(b)
    else:
        inf.update(items)
    return inf.schema()
