"""Properties: every row the sentinel accepts converts and loads into the table it planned."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipewarden.batch import Batch
from pipewarden.ddl import get_dialect
from pipewarden.schema import check_rows, coerce_row, infer, plan
from pipewarden.verdict import merge

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**66), max_value=2**66),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(max_size=6),
    st.sampled_from(
        ["2024-02-29", "2024-01-01T10:00:00.5", "2024-01-01 10:00:00+05:30", "007", "1.5"]
    ),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=2),
    st.dictionaries(st.sampled_from(["k", "\x00"]), st.text(max_size=3), max_size=2),
)
rows = st.lists(
    st.dictionaries(st.sampled_from(["a", "b", "c", "Ä"]), values, max_size=4),
    min_size=1,
    max_size=12,
)


def _accepted(b: Batch, p):
    v = check_rows(b, p)
    out = merge(len(b), [v])
    assert out.rows_loaded + out.rows_quarantined == len(b)
    recs = []
    for i in out.loaded:
        rec = {**b.records[i], **out.patches.get(i, {})}
        recs.append(coerce_row(rec, p.schema))  # never raises for an accepted row
    return recs


@settings(max_examples=200, deadline=None)
@given(first=rows, second=rows, fmt=st.sampled_from(["json", "csv"]))
def test_accepted_rows_always_coerce(first, second, fmt):
    if fmt == "csv":  # CSV has strings only
        first = [{k: None if v is None else str(v) for k, v in r.items()} for r in first]
        second = [{k: None if v is None else str(v) for k, v in r.items()} for r in second]
    for dialect in ("postgres", "duckdb"):
        b1, b2 = Batch(first, "1", fmt=fmt), Batch(second, "2", fmt=fmt)
        p1 = plan(None, infer(b1), None, dialect, "t")
        _accepted(b1, p1)
        p2 = plan(p1.schema, infer(b2), "quarantine", dialect, "t")
        _accepted(b2, p2)


@pytest.mark.postgres
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=rows, second=rows)
def test_accepted_rows_load_into_postgres(pg_schema, first, second):
    dsn, ns = pg_schema
    d = get_dialect("postgres")
    b1, b2 = Batch(first, "1", fmt="json"), Batch(second, "2", fmt="json")
    p1 = plan(None, infer(b1), None, "postgres", "t", ns)
    p2 = plan(p1.schema, infer(b2), None, "postgres", "t", ns)
    with psycopg.connect(dsn) as conn:
        try:
            for stmt in p1.ddl + p2.ddl:
                conn.execute(stmt)
            for p, b in ((p1, b1), (p2, b2)):
                cols = list(p.schema.columns.values())
                if not cols:
                    continue
                names = ", ".join(d.quote(c.ident) for c in cols)
                marks = ", ".join("%s::jsonb" if c.type.value == "json" else "%s" for c in cols)
                for rec in _accepted(b, p):
                    conn.execute(
                        f"insert into {d.qualify(ns, 't')} ({names}) values ({marks})",
                        [rec[c.ident] for c in cols],
                    )
        finally:
            conn.rollback()
