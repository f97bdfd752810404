"""Columns of a chunk as Arrow arrays: vectorised parses, typed columns, binary COPY.

The sentinel types values per column. What costs per value in Python (a timestamp string
parsed in inference, again to check it fits, and again to load it) is done here on a whole
column at once, with Arrow's parsers; Python looks only at the residue Arrow does not take.

- :func:`parse_temporal` classifies strings as dates, timestamps and timestamps with a zone
  and gives their instants. A string is taken only when a strict ASCII pattern (ranges of
  months, days, hours, minutes, seconds and offsets included) matches it *and* Arrow parses it;
  whatever else (``2024-02-30``, a year 0, ``+05:60``, digits of other scripts, ...) is left to
  :func:`pipewarden.schema.infer.string_type`, so the answer is the Python parser's answer.
  Fractions past microseconds are dropped (not rounded), as :func:`parse_datetime` does.
- :func:`typed_table` builds the typed columns of the rows a chunk loads, as Arrow arrays of the
  column types (:data:`ARROW`), the same values as :func:`pipewarden.schema.rows.coerce_row`.
- :func:`copy_binary` writes an Arrow table as PostgreSQL's binary ``COPY`` format, column by
  column (no Python object per row or value), for the column types the store makes: each
  value's field (length, body) built with numpy, the fields of a row joined by Arrow.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .schema.types import DataType

T = DataType

# the Arrow type each column type travels as (decimals as text: the store casts them)
ARROW: dict[DataType, pa.DataType] = {
    T.NULL: pa.string(),
    T.BOOLEAN: pa.bool_(),
    T.BIGINT: pa.int64(),
    T.DOUBLE: pa.float64(),
    T.DECIMAL: pa.string(),
    T.TEXT: pa.string(),
    T.DATE: pa.date32(),
    T.TIMESTAMP: pa.timestamp("us"),
    T.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
    T.JSON: pa.string(),
}

# -- temporal strings ------------------------------------------------------------------------

NONE, DATE, TIMESTAMP, TIMESTAMPTZ = 0, 1, 2, 3
KIND_TYPE = {DATE: T.DATE, TIMESTAMP: T.TIMESTAMP, TIMESTAMPTZ: T.TIMESTAMPTZ}

_YMD = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_HMS = r"[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?"
_ZONE = r"(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)"
_DATE_RE = _YMD + "$"
_NAIVE_RE = _YMD + _HMS + "$"
_ZONED_RE = _YMD + _HMS + _ZONE + "$"
_LONG_FRACTION = r"(\.[0-9]{6})[0-9]+"
_LONG_FRACTION_BYTES = len("2024-01-31T10:00:00.1234567")
_YEAR_ZERO = "0000-"


def _mask(a: pa.Array) -> np.ndarray:
    return a.fill_null(False).to_numpy(zero_copy_only=False)


def _cast_each(arr: pa.Array, to: pa.DataType) -> tuple[np.ndarray, np.ndarray]:
    """Cast strings to ``to``; where the whole array does not cast, halves are cast apart
    (the few values Arrow refuses are found in log steps). Returns int64 values and an ok
    mask."""
    n = len(arr)
    values = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    todo = [(0, n)]
    while todo:
        lo, hi = todo.pop()
        try:
            got = arr.slice(lo, hi - lo).cast(to)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            if hi - lo > 1:
                mid = (lo + hi) // 2
                todo += [(lo, mid), (mid, hi)]
            continue
        values[lo:hi] = got.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        ok[lo:hi] = True
    return values, ok


def parse_temporal(strings: pa.Array | Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """For each string: its kind (:data:`NONE`, :data:`DATE`, :data:`TIMESTAMP`,
    :data:`TIMESTAMPTZ`) and its value in microseconds since 1970-01-01 (UTC for a zoned one,
    wall time for a naive one or a date). :data:`NONE` means "not decided here": the caller asks
    the Python parser (the value may still be a date Arrow does not take)."""
    arr = strings if isinstance(strings, pa.Array) else pa.array(strings, type=pa.string())
    if arr.type != pa.string():
        arr = arr.cast(pa.string())
    n = len(arr)
    kinds = np.zeros(n, dtype=np.int8)
    micros = np.zeros(n, dtype=np.int64)
    if not n:
        return kinds, micros
    # the forms are tried in turn, each on the strings no form before it took (the patterns
    # exclude each other): a column of one form pays for one pattern (zoned first, the most
    # common in sources), not for three
    todo = np.flatnonzero(_mask(arr.is_valid()) & ~_mask(pc.starts_with(arr, _YEAR_ZERO)))
    forms = (
        (_ZONED_RE, pa.timestamp("us", tz="UTC"), TIMESTAMPTZ),
        (_NAIVE_RE, pa.timestamp("us"), TIMESTAMP),
        (_DATE_RE, pa.timestamp("us"), DATE),
    )
    for pattern, to, kind in forms:
        if not todo.size:
            break
        sub = arr if todo.size == n else arr.take(pa.array(todo))
        hit = _mask(pc.match_substring_regex(sub, pattern))
        idx, todo = todo[hit], todo[~hit]
        if not idx.size:
            continue
        part = sub.filter(pa.array(hit))
        # a fraction past microseconds needs 27 bytes at least (seconds, a point, 7 digits)
        if pc.max(pc.binary_length(part)).as_py() >= _LONG_FRACTION_BYTES:
            part = pc.replace_substring_regex(part, _LONG_FRACTION, r"\1")
        values, ok = _cast_each(part, to)
        good = idx[ok]
        micros[good] = values[ok]
        kinds[good] = kind
    return kinds, micros


_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)


def micros_of(v: dt.datetime | dt.date) -> int:
    """Microseconds since 1970-01-01 (an aware timestamp: its UTC instant)."""
    if type(v) is dt.date:
        v = dt.datetime.combine(v, dt.time())
    if v.tzinfo is not None:
        return (v - _EPOCH_UTC) // _US
    return (v - _EPOCH) // _US


# -- typed columns -------------------------------------------------------------------------

_FAST = {
    T.BOOLEAN: {bool},
    T.BIGINT: {int},
    T.DOUBLE: {int, float},
    T.TEXT: {str},
}
_NONE = type(None)


def typed_array(
    values: Sequence[Any],
    ctype: DataType,
    types: frozenset | None = None,
    temporal: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None,
) -> pa.Array:
    """The values of one column (Python values as read, checked to fit ``ctype``) as an Arrow
    array of ``ARROW[ctype]``, the same values as ``coerce_row`` gives. ``types`` and
    ``temporal()``: the values' types and :func:`parse_temporal` of their texts, where the
    caller knows them (``Batch.types``, ``Batch.temporal``)."""
    from .schema.rows import _CONVERT, _to_decimal

    to = ARROW[ctype]
    types = set(map(type, values)) if types is None else set(types)
    types.discard(_NONE)
    if not types:
        return pa.nulls(len(values), type=to)
    fast = _FAST.get(ctype)
    if fast is not None and types <= fast:
        return pa.array(values, type=to)
    if ctype in (T.BIGINT, T.DOUBLE) and types <= {str}:  # CSV number text
        try:
            return pa.array(values, type=pa.string()).cast(to)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    if ctype in (T.DATE, T.TIMESTAMP, T.TIMESTAMPTZ):
        return _temporal_array(values, ctype, types, temporal)
    if ctype == T.DECIMAL:
        return pa.array([None if v is None else str(_to_decimal(v)) for v in values], type=to)
    if ctype == T.JSON:  # JSON text of each value, in one loop (what _to_json gives)
        from .batch import json_array

        nulls = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
        return json_array(values, nulls)
    conv = _CONVERT[ctype]
    return pa.array([None if v is None else conv(v) for v in values], type=to)


def _temporal_array(
    values: Sequence[Any], ctype: DataType, types: set, temporal: Callable | None = None
) -> pa.Array:
    from .schema.rows import _CONVERT

    n = len(values)
    nulls = np.fromiter((v is None for v in values), dtype=bool, count=n)
    micros = np.zeros(n, dtype=np.int64)
    residue: np.ndarray
    if str in types:
        if temporal is not None:
            kinds, parsed = temporal()
        else:
            kinds, parsed = parse_temporal([v if type(v) is str else None for v in values])
        take = kinds != NONE if ctype != T.DATE else kinds == DATE
        micros[take] = parsed[take]
        residue = ~take & ~nulls
    else:
        residue = ~nulls
    conv = _CONVERT[ctype]
    for i in np.flatnonzero(residue):
        micros[i] = micros_of(conv(values[i]))
    mask = nulls if nulls.any() else None
    if ctype == T.DATE:
        days = micros // 86_400_000_000
        return pa.array(days.astype(np.int32), type=pa.date32(), mask=mask)
    return pa.array(micros, type=ARROW[ctype], mask=mask)


def typed_table(
    columns: dict[str, Sequence[Any]],
    schema_columns: Sequence[Any],
    n: int,
    chunk: Any = None,
):
    """An Arrow table of columns c0..cN: for each column of the schema (in order), its values
    from ``columns`` (name -> values of the loaded rows; a missing name is all null).
    ``chunk``: the :class:`~pipewarden.batch.Batch` they come from, whose types and parsed
    texts are taken for a column that is the chunk's own (every row, unchanged)."""
    own = chunk.columns() if chunk is not None else {}
    arrays = []
    for c in schema_columns:
        values = columns.get(c.name)
        if values is None:
            arrays.append(pa.nulls(n, ARROW[c.type]))
            continue
        if own.get(c.name) is values:
            arrays.append(
                typed_array(values, c.type, chunk.types(c.name), partial(chunk.temporal, c.name))
            )
        else:
            arrays.append(typed_array(values, c.type))
    return pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])


def to_rows(table: pa.Table, types: Sequence[DataType]) -> list[tuple]:
    """An Arrow table of typed columns back as row tuples of Python values (decimals as
    ``Decimal``), for the paths that still take tuples."""
    cols = []
    for col, t in zip(table.columns, types, strict=True):
        values = col.to_pylist()
        if t == T.DECIMAL:
            values = [None if v is None else Decimal(v) for v in values]
        cols.append(values)
    return list(zip(*cols, strict=True)) if cols else [()] * table.num_rows


# -- PostgreSQL binary COPY ----------------------------------------------------------------

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
COPY_TRAILER = b"\xff\xff"
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970
_PG_EPOCH_DAYS = 10_957
# type oids the encoder writes: int8, float8, bool, date, timestamp, timestamptz, text,
# varchar, json, jsonb, numeric
OID_INT8, OID_FLOAT8, OID_BOOL, OID_DATE = 20, 701, 16, 1082
OID_TS, OID_TSTZ, OID_TEXT, OID_VARCHAR = 1114, 1184, 25, 1043
OID_JSON, OID_JSONB, OID_NUMERIC = 114, 3802, 1700
SUPPORTED_OIDS = frozenset(
    (OID_INT8, OID_FLOAT8, OID_BOOL, OID_DATE, OID_TS, OID_TSTZ, OID_TEXT, OID_VARCHAR,
     OID_JSON, OID_JSONB, OID_NUMERIC)
)  # fmt: skip
COPY_SLICE_ROWS = 16_384  # rows encoded at a time
_NO_SEP = pa.scalar(b"", pa.large_binary())  # fields are joined with nothing between them


def _binary(n: int, offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    """A large_binary array of ``n`` values from int64 offsets and the bytes they index."""
    return pa.Array.from_buffers(
        pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _valid(arr: pa.Array) -> np.ndarray:
    if arr.null_count == 0:
        return np.ones(len(arr), dtype=bool)
    return arr.is_valid().to_numpy(zero_copy_only=False)


def _fixed(arr: pa.Array, values: np.ndarray, be: str) -> pa.Array:
    """Each value of a fixed-width column as its COPY field: the length (-1 for null), then
    the big-endian body (none for null); built as one (n, 4 + width) byte matrix."""
    n = len(arr)
    valid = _valid(arr)
    width = np.dtype(be).itemsize
    m = np.empty((n, 4 + width), dtype=np.uint8)
    m[:, :4] = np.where(valid, width, -1).astype(">i4").view(np.uint8).reshape(n, 4)
    m[:, 4:] = np.ascontiguousarray(values.astype(be)).view(np.uint8).reshape(n, width)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.where(valid, 4 + width, 4), out=offsets[1:])
    if valid.all():
        return _binary(n, offsets, m.reshape(-1))
    keep = np.ones((n, 4 + width), dtype=bool)
    keep[~valid, 4:] = False
    return _binary(n, offsets, m[keep])


def _variable(arr: pa.Array, prefix: bytes = b"") -> pa.Array:
    """Each value of a string or binary column as its COPY field: the length (-1 for null),
    ``prefix`` (jsonb's version byte) and the bytes, joined by Arrow's element-wise
    concatenation (no Python object per value)."""
    n = len(arr)
    valid = _valid(arr)
    sizes = pc.binary_length(arr).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    lens = np.where(valid, sizes + len(prefix), -1).astype(">i4").view(np.uint8)
    parts = [_binary(n, np.arange(0, 4 * n + 1, 4, dtype=np.int64), lens)]
    if prefix:
        parts.append(
            pc.if_else(
                pa.array(valid),
                pa.scalar(prefix, pa.large_binary()),
                pa.scalar(b"", pa.large_binary()),
            )
        )
    parts.append(arr.cast(pa.large_binary()))
    return pc.binary_join_element_wise(
        *parts, _NO_SEP, null_handling="replace", null_replacement=b""
    )


def _encode_field(arr: pa.Array, oid: int, numeric_dump) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if oid == OID_INT8:
        return _fixed(arr, arr.fill_null(0).to_numpy(zero_copy_only=False), ">i8")
    if oid == OID_FLOAT8:
        return _fixed(arr, arr.fill_null(0).to_numpy(zero_copy_only=False), ">f8")
    if oid == OID_BOOL:
        return _fixed(arr, arr.fill_null(False).to_numpy(zero_copy_only=False), "u1")
    if oid == OID_DATE:
        days = arr.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False)
        return _fixed(arr, days.astype(np.int64) - _PG_EPOCH_DAYS, ">i4")
    if oid in (OID_TS, OID_TSTZ):
        us = arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        return _fixed(arr, us - _PG_EPOCH_US, ">i8")
    if oid == OID_NUMERIC:  # per value: PostgreSQL's base-10000 digits
        dumped = [None if v is None else bytes(numeric_dump(Decimal(v))) for v in arr.to_pylist()]
        return _variable(pa.array(dumped, type=pa.binary()))
    if arr.type not in (pa.string(), pa.binary(), pa.large_string(), pa.large_binary()):
        arr = arr.cast(pa.string())
    return _variable(arr, b"\x01" if oid == OID_JSONB else b"")


def _encode_slice(fields: list[pa.Array], n: int) -> bytes:
    """Rows of COPY fields: the field count, then each field, concatenated element-wise."""
    ncols = len(fields)
    head = _binary(
        n,
        np.arange(0, 2 * n + 1, 2, dtype=np.int64),
        np.tile(np.array([ncols >> 8, ncols & 0xFF], dtype=np.uint8), n),
    )
    rows = pc.binary_join_element_wise(head, *fields, _NO_SEP)
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64, count=n + 1, offset=rows.offset * 8)
    return memoryview(rows.buffers()[2])[offsets[0] : offsets[-1]].tobytes()


def copy_binary(table: pa.Table, oids: Sequence[int], numeric_dump=None):
    """PostgreSQL's binary COPY rows of ``table`` (columns in the order of ``oids``), in
    pieces of :data:`COPY_SLICE_ROWS` rows; the caller writes :data:`COPY_HEADER` first and
    :data:`COPY_TRAILER` last. Every oid must be in :data:`SUPPORTED_OIDS`."""
    n = table.num_rows
    for lo in range(0, n, COPY_SLICE_ROWS):
        part = table.slice(lo, COPY_SLICE_ROWS)
        fields = [
            _encode_field(col.combine_chunks(), oid, numeric_dump)
            for col, oid in zip(part.columns, oids, strict=True)
        ]
        yield _encode_slice(fields, part.num_rows)
