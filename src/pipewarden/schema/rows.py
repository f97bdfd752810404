"""Rows against the planned schema: which rows fit, and typed values ready to load.

:func:`check_rows` returns the sentinel's :class:`~pipewarden.verdict.Verdict`: every row with
a value the planned schema cannot hold becomes a :class:`~pipewarden.verdict.RowIssue`
(``type_mismatch``, ``new_column``, ``not_null``, ``no_table``; ``discarded_row`` when the
contract says ``discard_row``) or a patch (``discard_value``: the value becomes NULL); the
batch is blocked when the plan rejects it. :func:`coerce_row` turns a record into typed Python
values keyed by the columns' identifiers.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import TYPE_CHECKING, Any

from .. import ddl as ddl_mod  # the module: pipewarden.ddl imports schema.types, a cycle
from ..batch import Batch, json_bytes
from ..shown import Shower
from ..verdict import RowIssue, Verdict
from . import lattice
from .infer import _BOOL, VECTOR_MIN, double_holds, parse_datetime, value_type
from .plan import Plan
from .types import Column, DataType, Schema

if TYPE_CHECKING:
    from ..ddl.base import Dialect

T = DataType
UTC = dt.UTC

# Python types whose values always fit a column type (no per-value look needed)
_ALWAYS = {
    T.BOOLEAN: {bool},
    T.BIGINT: set(),
    T.DOUBLE: {float},
    T.DECIMAL: set(),
    T.TEXT: {str},
    T.DATE: {dt.date},
    T.TIMESTAMP: set(),
    T.TIMESTAMPTZ: set(),
    T.JSON: {bool, int, float},
}


_TEMPORAL = (T.DATE, T.TIMESTAMP, T.TIMESTAMPTZ)


class _Fit:
    """Does a value fit a column of one type, in one dialect? Strings are cached."""

    def __init__(self, ctype: DataType, numbers: bool, d: Dialect) -> None:
        self.ctype, self.numbers, self.d = ctype, numbers, d
        self.always = set(_ALWAYS[ctype])
        if d.rejects_nul and ctype == T.TEXT:
            self.always.discard(str)
        self.cache: dict[str, bool] = {}

    def bad_indexes(
        self, values: Sequence, types: frozenset | None = None, temporal: Callable | None = None
    ) -> list[int]:
        """The indexes of the values that do not fit (``types``: theirs, where known;
        ``temporal()``: their texts parsed, ``Batch.temporal``)."""
        if self.ctype == T.JSON and not self.d.rejects_nul:
            return []  # a JSON column holds any value
        types = set(map(type, values)) if types is None else set(types)
        types.discard(type(None))
        if types <= self.always:
            return []
        if types == {int} and self.ctype in (T.BIGINT, T.DOUBLE, T.DECIMAL):
            ints = [v for v in values if v is not None]
            if self._int_ok(min(ints)) and self._int_ok(max(ints)):
                return []
        if self.d.rejects_nul and self.ctype in (T.TEXT, T.JSON):
            # one C-level look for U+0000 over the whole column; per value only when found
            if self.ctype == T.TEXT and types == {str}:
                if "\x00" not in "".join(filter(None, values)):
                    return []
            elif self.ctype == T.JSON and b"\\u0000" not in json_bytes(list(values)):
                return []
        if types == {str} and self.ctype in _TEMPORAL and len(values) > VECTOR_MIN:
            return self._temporal_bad(values, temporal)
        always, fits = self.always, self.fits
        return [
            i
            for i, v in enumerate(values)
            if v is not None and type(v) not in always and not fits(v)
        ]

    def _temporal_bad(self, values: Sequence, temporal: Callable | None = None) -> list[int]:
        """Dates and timestamps checked at once by Arrow; the values it does not decide (or
        that do not fit) are looked at one by one."""
        import numpy as np

        from ..columnar import DATE, NONE, TIMESTAMP, parse_temporal

        kinds, _ = parse_temporal(values) if temporal is None else temporal()
        if self.ctype == T.DATE:
            ok = kinds == DATE
        elif self.ctype == T.TIMESTAMP:
            ok = (kinds == DATE) | (kinds == TIMESTAMP)
        else:
            ok = kinds != NONE
        fits = self.fits
        return [
            int(i) for i in np.flatnonzero(~ok) if values[i] is not None and not fits(values[i])
        ]

    def _int_ok(self, v: int) -> bool:
        if self.ctype == T.BIGINT:
            return lattice.INT64_MIN <= v <= lattice.INT64_MAX
        if self.ctype == T.DOUBLE:
            return -lattice.EXACT_DOUBLE_INT <= v <= lattice.EXACT_DOUBLE_INT
        return self.d.fits_decimal(Decimal(v))

    def fits(self, v: Any) -> bool:
        t = type(v)
        if t is str:
            ok = self.cache.get(v)
            if ok is None:
                ok = self.cache[v] = self._fits(v)
            return ok
        return self._fits(v)

    def _fits(self, v: Any) -> bool:
        ct = self.ctype
        t = type(v)
        if ct == T.JSON:
            if not self.d.rejects_nul:
                return True
            return b"\\u0000" not in json_bytes(v)
        if t is int and ct in (T.BIGINT, T.DOUBLE, T.DECIMAL):
            return self._int_ok(v)
        vt = value_type(v, self.numbers)
        if ct == T.DOUBLE and t is str and vt in lattice.NUMERIC:
            return _text_fits_double(v, vt)
        if lattice.join(vt, ct) != ct:
            return False
        if ct == T.DECIMAL:
            try:
                return self.d.fits_decimal(_to_decimal(v))
            except (InvalidOperation, ValueError):
                return False
        if ct == T.TEXT and t is str:
            return self.d.fits_text(v)
        return True


def _text_fits_double(text: str, vt: DataType) -> bool:
    """Number text (a CSV cell) fits a double column when the double holds it: within range
    (not ``1e400``, not ``1e-400``, which would be stored as 0) and, for an integer, exactly
    (not beyond 2**53, as for JSON integers)."""
    if vt == T.BIGINT or (vt == T.DECIMAL and lattice.is_int_text(text)):
        return abs(int(text)) <= lattice.EXACT_DOUBLE_INT
    return double_holds(text)


def _to_decimal(v: Any) -> Decimal:
    if type(v) is float:
        return Decimal(repr(v))
    return Decimal(v)


_REASONS = {
    "discard_row": "discarded_row",
}


def check_rows(batch: Batch, plan: Plan) -> Verdict:
    """The sentinel's verdict on ``batch`` under ``plan`` (see the module docstring)."""
    verdict = Verdict("sentinel")
    n = len(batch.records)
    verdict.report = {"rows": n, "decision": plan.decision, "schema_version": plan.schema.version}
    if plan.decision == "reject":
        verdict.decision = "block"
        verdict.reason = plan.reason
        return verdict
    contract = plan.contract
    if not plan.table_exists:
        reason = (
            "discarded_row" if contract.tables in ("discard_row", "discard_value") else "no_table"
        )
        why = (
            f"the table {plan.table!r} does not exist and the contract says {contract.tables}"
            if contract.tables != "evolve"
            else f"the table {plan.table!r} does not exist: no key has a typed value yet"
        )
        verdict.issues = [RowIssue(i, reason, why) for i in range(n)]
        return _finish(verdict)
    d = ddl_mod.get_dialect(plan.dialect)
    numbers = batch.fmt == "csv"
    schema = plan.schema
    held: dict[int, RowIssue] = {}
    blocked: list[str] = []
    records = batch.records
    if not records:
        return _finish(verdict)
    columns = batch.columns()
    keys = columns.keys()

    def hold(i: int, issue: RowIssue) -> None:
        if i not in held:
            held[i] = issue

    width = batch.meta.get("header_fields")
    for i, fields in (batch.meta.get("short_rows") or {}).items():
        hold(i, RowIssue(i, "short_row", f"the row has {fields} fields, the header has "
                         f"{width}: the last {width - fields} were left off"))  # fmt: skip

    for key, values in columns.items():
        _check_column(key, values, schema.columns.get(key), contract, numbers, d, hold, verdict,
                      blocked, batch.types(key), partial(batch.temporal, key))  # fmt: skip
    for name, col in schema.columns.items():
        if not col.nullable and name not in keys:
            _not_null([None] * n, col, contract, hold, blocked)
    return _decide(verdict, held, blocked)


def _decide(verdict: Verdict, held: dict[int, RowIssue], blocked: list[str]) -> Verdict:
    if blocked:
        verdict.decision = "block"
        verdict.reason = "the contract freezes this: " + "; ".join(dict.fromkeys(blocked))
        verdict.issues, verdict.patches = [], {}
        return _finish(verdict)
    verdict.issues = [held[i] for i in sorted(held)]
    for i in held:
        verdict.patches.pop(i, None)
    return _finish(verdict)


def check_column(plan: Plan, fmt: str, key: str, values: Sequence) -> Verdict:
    """The sentinel's verdict on values of one top-level key as :func:`check_rows` judges a
    column (a row of the verdict is an index into ``values``): for values a step put in place
    of the key's, e.g. the distinct masked texts of a column. Passes where the plan rejects
    the batch or has no table (:func:`check_rows` already held or blocked every row)."""
    verdict = Verdict("sentinel")
    verdict.report = {"rows": len(values), "decision": plan.decision,
                      "schema_version": plan.schema.version}  # fmt: skip
    if plan.decision == "reject" or not plan.table_exists:
        return _finish(verdict)
    held: dict[int, RowIssue] = {}
    blocked: list[str] = []

    def hold(i: int, issue: RowIssue) -> None:
        if i not in held:
            held[i] = issue

    d = ddl_mod.get_dialect(plan.dialect)
    _check_column(key, values, plan.schema.columns.get(key), plan.contract, fmt == "csv", d,
                  hold, verdict, blocked)  # fmt: skip
    return _decide(verdict, held, blocked)


def _check_column(
    key, values, col, contract, numbers, d, hold, verdict, blocked, types=None, temporal=None
) -> None:
    """The values of one key against its column (``col``: None when the table has none):
    rows held through ``hold``, values discarded as ``verdict.patches``, freezes in
    ``blocked``; ``types`` and ``temporal``: what the batch knows of the values
    (``Batch.types``, ``Batch.temporal``), where it does."""
    if col is None:
        mode = contract.mode("columns", key)
        for i, v in enumerate(values):
            if v is None:
                continue
            if mode == "discard_value":
                break  # the value is not loaded: the table has no such column
            if mode == "freeze":
                blocked.append(f"new column {key!r}")
                break
            hold(i, RowIssue(i, _REASONS.get(mode, "new_column"),
                             "a key the table does not have", key))  # fmt: skip
        return
    bad = _Fit(col.type, numbers, d).bad_indexes(values, types, temporal)
    if bad:
        mode = contract.mode("data_type", key)
        if mode == "freeze":
            blocked.append(f"values of {key!r} that do not fit {col.type.value}")
        show = Shower(key)  # the value, unless it or the column's name says PII
        for i in bad:
            message = (
                f"a {value_type(values[i], numbers).value} value "
                f"({show(values[i])}) does not fit the {col.type.value} column"
                + _why_not(values[i], col.type, d)
            )
            if mode == "discard_value" and col.nullable:
                verdict.patches.setdefault(i, {})[key] = None
            else:
                hold(i, RowIssue(i, _REASONS.get(mode, "type_mismatch"), message, key))
    if not col.nullable:
        _not_null(values, col, contract, hold, blocked)


def _why_not(value: Any, ctype: DataType, d: Any) -> str:
    """Why a value of the column's own type still does not fit, when it is not the type."""
    if ctype == T.DOUBLE and isinstance(value, str | Decimal):
        text = str(value)
        if lattice.is_int_text(text):
            return ": a double keeps integers exact up to 2**53 only"
        if not double_holds(text):
            return ": it is beyond the range of a double (a double would store it as 0 or infinity)"
    if d.rejects_nul and ctype in (T.TEXT, T.JSON):
        nul = "\x00" in value if isinstance(value, str) else b"\\u0000" in json_bytes(value)
        if nul:
            return ": it holds a NUL character (\\x00), which the database cannot store"
    return ""


def _not_null(values, col: Column, contract, hold, blocked) -> None:
    mode = contract.mode("data_type", col.name)
    for i, v in enumerate(values):
        if v is None:
            if mode == "freeze":
                blocked.append(f"nulls in NOT NULL column {col.name!r}")
                return
            hold(
                i,
                RowIssue(
                    i, _REASONS.get(mode, "not_null"), "no value for a NOT NULL column", col.name
                ),
            )


def _finish(verdict: Verdict) -> Verdict:
    rows = verdict.report["rows"]
    held = len({i.row for i in verdict.issues})
    verdict.report.update(
        {
            "accepted": 0 if verdict.decision == "block" else rows - held,
            "quarantined": sum(1 for i in verdict.issues if i.reason != "discarded_row"),
            "discarded": sum(1 for i in verdict.issues if i.reason == "discarded_row"),
            "values_discarded": sum(len(p) for p in verdict.patches.values()),
        }
    )
    return verdict


# -- typed values --------------------------------------------------------------------------


def _to_text(v: Any) -> str:
    t = type(v)
    if t is str:
        return v
    if t is bool:
        return "true" if v else "false"
    if t is bytes:
        return base64.b64encode(v).decode()
    if t in (dt.date, dt.datetime, dt.time):
        return v.isoformat()
    return str(v)


def _to_bool(v: Any) -> bool:
    return v if type(v) is bool else _BOOL[v.lower()]


def _to_int(v: Any) -> int:
    if type(v) is float:
        if not v.is_integer():
            raise ValueError("not an integer")
        return int(v)
    return int(v)


def _to_date(v: Any) -> dt.date:
    if type(v) is dt.date:
        return v
    return dt.date.fromisoformat(v)


def _to_ts(v: Any) -> dt.datetime:
    if type(v) is dt.datetime:
        return v
    if type(v) is dt.date:
        return dt.datetime.combine(v, dt.time())
    return parse_datetime(v)


def _to_tstz(v: Any) -> dt.datetime:
    out = _to_ts(v)
    return out if out.tzinfo is not None else out.replace(tzinfo=UTC)


def _to_json(v: Any) -> str:
    return json_bytes(v).decode()


_CONVERT = {
    T.NULL: lambda v: None,
    T.BOOLEAN: _to_bool,
    T.BIGINT: _to_int,
    T.DOUBLE: float,
    T.DECIMAL: _to_decimal,
    T.TEXT: _to_text,
    T.DATE: _to_date,
    T.TIMESTAMP: _to_ts,
    T.TIMESTAMPTZ: _to_tstz,
    T.JSON: _to_json,
}
# values of these Python types are already what the column holds
_NATIVE = {
    T.BOOLEAN: bool,
    T.BIGINT: int,
    T.DOUBLE: float,
    T.DECIMAL: Decimal,
    T.TEXT: str,
    T.DATE: dt.date,
}


def coerce_row(record: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """Typed values of ``record`` for the columns of ``schema``, keyed by identifier: dates
    as ``datetime.date``, timestamps as ``datetime`` (TIMESTAMPTZ aware, a naive one read as
    UTC), decimals as ``Decimal``, nested values as JSON text; a missing key is None. Keys
    the schema lacks are left out. Raises ``ValueError`` for a value that does not fit (the
    rows :func:`check_rows` let through always fit)."""
    out: dict[str, Any] = {}
    get = record.get
    for col in schema.columns.values():
        v = get(col.name)
        if v is None:
            out[col.ident or col.name] = None
            continue
        native = _NATIVE.get(col.type)
        if native is not None and type(v) is native:
            out[col.ident or col.name] = v
        else:
            out[col.ident or col.name] = _CONVERT[col.type](v)
    return out


def row_converter(schema: Schema):
    """A fast ``record -> tuple`` of typed values in the order of ``schema.columns`` (what
    :func:`coerce_row` gives, for bulk loads)."""
    plan = [(c.name, _NATIVE.get(c.type), _CONVERT[c.type]) for c in schema.columns.values()]

    def convert(record: dict[str, Any]) -> tuple:
        get = record.get
        out = []
        for name, native, conv in plan:
            v = get(name)
            if v is None or type(v) is native:
                out.append(v)
            else:
                out.append(conv(v))
        return tuple(out)

    return convert
