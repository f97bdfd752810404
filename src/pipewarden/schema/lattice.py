"""The type lattice: how values are typed and how types combine.

Every value of a batch is mapped to a :class:`~pipewarden.schema.types.DataType`; the type of
a column is the *join* (least upper bound) of the types of all its values. The order is::

    NULL  <  everything
    BIGINT  <  DOUBLE  <  DECIMAL          (numbers; an integer beyond int64 is DECIMAL)
    DATE  <  TIMESTAMP  <  TIMESTAMPTZ  <  TEXT   (strings that look like dates stay strings)
    BOOLEAN                                (alone)
    anything  <  JSON                      (objects and arrays; a scalar is a JSON value too)

Types from different families (a boolean and a number, a number and a string, ...) have no
order: their join is TEXT and the column is marked as a *conflict*, which the delta reports.
``TIMESTAMP`` joined with ``TIMESTAMPTZ`` is ``TIMESTAMPTZ``: a timestamp without an offset
is read as UTC.
"""

from __future__ import annotations

from .types import DataType as T

NUMERIC = (T.BIGINT, T.DOUBLE, T.DECIMAL)
TEMPORAL = (T.DATE, T.TIMESTAMP, T.TIMESTAMPTZ)
STRINGY = (*TEMPORAL, T.TEXT)

_RANK = {t: i for i, t in enumerate(NUMERIC)} | {t: i for i, t in enumerate(STRINGY)}
_FAMILY = {T.BOOLEAN: "boolean", T.JSON: "json"}
_FAMILY |= {t: "number" for t in NUMERIC} | {t: "string" for t in STRINGY}

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
EXACT_DOUBLE_INT = 2**53  # integers beyond this lose digits as a double


def is_int_text(text: str) -> bool:
    """``text`` is an integer written in digits (an optional sign)."""
    body = text[1:] if text[:1] in "+-" else text
    return body.isdigit() and body.isascii()


def family(t: T) -> str:
    return _FAMILY.get(t, "null")


def join(a: T, b: T) -> T:
    """The least upper bound of two types (TEXT for types of different families)."""
    if a == b or b == T.NULL:
        return a
    if a == T.NULL:
        return b
    if T.JSON in (a, b):
        return T.JSON
    fa, fb = _FAMILY[a], _FAMILY[b]
    if fa == fb and fa in ("number", "string"):
        return a if _RANK[a] >= _RANK[b] else b
    return T.TEXT


def conflicts(a: T, b: T) -> bool:
    """True when ``a`` and ``b`` are from different scalar families (e.g. BIGINT and TEXT)."""
    if T.NULL in (a, b) or T.JSON in (a, b) or a == b:
        return False
    return _FAMILY[a] != _FAMILY[b]


def join_all(types) -> tuple[T, bool]:
    """Join of an iterable of types, and whether any two of them conflict."""
    out, conflict = T.NULL, False
    for t in types:
        conflict = conflict or conflicts(out, t)
        out = join(out, t)
    return out, conflict


def le(a: T, b: T) -> bool:
    """``a <= b`` in the lattice: a value of type ``a`` can be stored as ``b`` without loss
    of meaning (a number is not silently turned into text)."""
    return join(a, b) == b and not conflicts(a, b)


def is_widening(old: T, new: T) -> bool:
    """``old -> new`` keeps every old value's meaning (numbers to wider numbers, dates to
    timestamps, date-like strings to text); anything else is an incompatible type change."""
    return old != new and le(old, new) and new != T.JSON
