"""The columnar path gives what the per-value path gives: Arrow's parses of dates and
timestamps against the Python parser, typed columns against ``coerce_row``, the binary COPY
encoder against psycopg's row COPY, on generated inputs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
import test_sentinel_properties as props
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipewarden import columnar
from pipewarden.batch import Batch
from pipewarden.schema import check_rows, coerce_row, infer, plan
from pipewarden.schema.infer import Inferrer, parse_datetime, string_type
from pipewarden.schema.types import Column, DataType, Schema
from pipewarden.verdict import merge

T = DataType
UTC = dt.UTC

digits = st.text(alphabet="0123456789", min_size=1, max_size=3)
two = st.sampled_from(
    ["00", "01", "09", "12", "13", "23", "24", "29", "30", "31", "59", "60", "99"]
)
year = st.sampled_from(["0000", "0001", "1677", "1969", "1970", "2024", "2262", "9999", "٢٠٢٤"])
frac = st.sampled_from(["", ".5", ".123456", ".1234567", ".123456789", ".1234567891", "."])
zone = st.sampled_from(
    ["", "Z", "z", "+05", "-05", "+0530", "+05:30", "-00:00", "+23:59", "+24:00", "+05:60", "+5"]
)


@st.composite
def temporal_text(draw) -> str:
    """Strings near the ISO 8601 forms: valid ones and every way to be slightly off."""
    date = f"{draw(year)}-{draw(two)}-{draw(two)}"
    if draw(st.booleans()):
        return date + draw(st.sampled_from(["", " ", "x", "T"]))
    sep = draw(st.sampled_from(["T", " ", "t", "_"]))
    time = f"{draw(two)}:{draw(two)}"
    if draw(st.booleans()):
        time += f":{draw(two)}{draw(frac)}"
    return date + sep + time + draw(zone)


@st.composite
def iso_text(draw) -> str:
    """Real instants written in each form a source writes them."""
    v = draw(st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)))
    form = draw(st.sampled_from(["date", "minutes", "seconds", "micros", "nanos"]))
    if form == "date":
        return v.date().isoformat()
    sep = draw(st.sampled_from(["T", " "]))
    text = v.date().isoformat() + sep + v.strftime("%H:%M")
    if form != "minutes":
        text += v.strftime(":%S")
    if form == "micros":
        text += v.strftime(".%f")[: draw(st.integers(2, 7))]
    if form == "nanos":
        text += v.strftime(".%f") + draw(st.text(alphabet="0123456789", min_size=1, max_size=3))
    return text + draw(zone)


texts = st.one_of(iso_text(), temporal_text(), st.text(max_size=12), digits)


def _python(s: str):
    """The Python path's type and value of a string (None where it says TEXT)."""
    t = string_type(s, False)
    if t == T.DATE:
        return t, dt.datetime.combine(dt.date.fromisoformat(s), dt.time())
    if t in (T.TIMESTAMP, T.TIMESTAMPTZ):
        return t, parse_datetime(s)
    return t, None


@settings(max_examples=600, deadline=None)
@given(st.lists(texts, min_size=1, max_size=40))
def test_parse_temporal_agrees_with_the_python_parser(strings):
    kinds, micros = columnar.parse_temporal(strings)
    for s, k, us in zip(strings, kinds, micros, strict=True):
        if k == columnar.NONE:
            continue  # not decided by Arrow: the Python parser decides
        t, value = _python(s)
        assert t == columnar.KIND_TYPE[int(k)], s
        assert int(us) == columnar.micros_of(value), s


def test_parse_temporal_takes_the_usual_forms_and_leaves_the_rest():
    strings = [
        "2024-01-31",
        "2024-01-31 10:00",
        "2024-01-31T10:00:00.123456789",
        "2024-01-31T10:00:00Z",
        "2024-01-31T10:00:00+05:30",
        "2024-02-30",  # no such day
        "0000-01-01T00:00:00",  # no year 0 in Python
        "2024-01-31T10:00:00+05:60",  # Python takes it, Arrow does not: left to Python
        "hello",
        None,
    ]
    kinds, micros = columnar.parse_temporal(strings)
    assert list(kinds) == [1, 2, 2, 3, 3, 0, 0, 0, 0, 0]
    assert micros[2] == columnar.micros_of(dt.datetime(2024, 1, 31, 10, 0, 0, 123456))
    assert micros[4] == columnar.micros_of(dt.datetime(2024, 1, 31, 4, 30, tzinfo=UTC))


def test_parse_temporal_of_a_column_of_mixed_forms_decides_each_value():
    """The forms are tried in turn on what the form before left: each value of a column that
    mixes them (and long fractions among short values) gets its own kind and instant."""
    strings = ["2024-01-31T10:00:00Z", "2024-01-31", None, "2024-01-31 10:00:00.1234567"] * 50
    strings += ["2024-01-31T10:00:00.123456789+01:00", "x", "0000-01-01", "2024-01-31T10:00"]
    kinds, micros = columnar.parse_temporal(strings)
    for s, k, us in zip(strings, kinds, micros, strict=True):
        t, value = _python(s) if s is not None else (None, None)
        if s in (None, "x", "0000-01-01"):
            assert k == columnar.NONE, s
            continue
        assert columnar.KIND_TYPE[int(k)] == t, s
        assert int(us) == columnar.micros_of(value), s
    assert list(kinds[-4:]) == [columnar.TIMESTAMPTZ, 0, 0, columnar.TIMESTAMP]


@settings(max_examples=200, deadline=None)
@given(st.lists(texts, min_size=65, max_size=120), st.booleans())
def test_inference_of_many_strings_is_the_per_value_join(strings, numbers):
    from pipewarden.schema import lattice

    inf = Inferrer(numeric_strings=numbers).update([{"a": s} for s in strings])
    expected = T.NULL
    for s in set(strings):
        expected = lattice.join(expected, string_type(s, numbers))
    assert inf.columns["a"].strings == expected


# -- typed columns: the values coerce_row gives ----------------------------------------------

values = st.one_of(props.values, temporal_text(), iso_text(), st.sampled_from(["12", "true"]))


def _same(arrow_value, coerced, ctype):
    if coerced is None:
        return arrow_value is None
    if ctype == T.DECIMAL:
        return Decimal(arrow_value) == coerced
    if ctype == T.TIMESTAMPTZ:
        return arrow_value == coerced.astimezone(UTC)
    if ctype == T.JSON:
        return arrow_value == coerced
    return arrow_value == coerced and type(arrow_value) is type(coerced)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.dictionaries(st.sampled_from(["a", "b", "c"]), values, max_size=3),
        min_size=1,
        max_size=80,
    ),  # fmt: skip
    st.sampled_from(["json", "csv"]),
)
def test_typed_columns_hold_what_coerce_row_gives(records, fmt):
    from pipewarden.schema.infer import _transpose

    if fmt == "csv":
        records = [{k: None if v is None else str(v) for k, v in r.items()} for r in records]
    b = Batch(records, "x", fmt=fmt)
    p = plan(None, infer(b), None, "duckdb", "t")
    out = merge(len(b), [check_rows(b, p)])
    rows = [records[i] for i in out.loaded]
    if not rows:
        return
    cols = list(p.schema.columns.values())
    table = columnar.typed_table(_transpose(rows), cols, len(rows))
    if len(rows) == len(records):  # the chunk's own columns: its types and parsed texts
        assert columnar.typed_table(b.columns(), cols, len(rows), b).equals(table)
    for j, c in enumerate(cols):
        got = table.column(j).to_pylist()
        for r, g in zip(rows, got, strict=True):
            want = coerce_row(r, p.schema)[c.ident or c.name]
            assert _same(g, want, c.type), (c.type, r.get(c.name), g, want)


# -- binary COPY from Arrow columns against psycopg's row COPY --------------------------------

PG_TYPES = [
    ("i", "int8", T.BIGINT),
    ("f", "float8", T.DOUBLE),
    ("b", "bool", T.BOOLEAN),
    ("d", "date", T.DATE),
    ("ts", "timestamp", T.TIMESTAMP),
    ("tz", "timestamptz", T.TIMESTAMPTZ),
    ("t", "text", T.TEXT),
    ("j", "jsonb", T.JSON),
    ("n", "numeric", T.DECIMAL),
]
pg_row = st.tuples(
    st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.none() | st.floats(allow_nan=False, width=64),
    st.none() | st.booleans(),
    st.none() | st.dates(),
    st.none() | st.datetimes(),
    st.none() | st.datetimes(timezones=st.just(UTC)),
    st.none() | st.text(alphabet=st.characters(blacklist_categories=["Cs"], min_codepoint=1)),
    st.none() | st.sampled_from(['{"a": 1}', "[]", '"x"', "null", '{"é": [1.5, true]}']),
    st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=3),
)


@pytest.mark.postgres
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(pg_row, min_size=1, max_size=40))
def test_binary_copy_from_arrow_loads_what_the_row_copy_loads(pg_schema, rows):
    from pipewarden.store import open_store

    dsn, schema = pg_schema
    s = open_store(dsn, namespace=schema)
    try:
        ddl = ", ".join(f"{n} {t}" for n, t, _ in PG_TYPES)
        with s.transaction() as w:
            for name in ("by_rows", "by_arrow"):
                w.execute(f'CREATE TABLE IF NOT EXISTS "{schema}".{name} ({ddl})')
                w.execute(f'TRUNCATE "{schema}".{name}')
            names = [n for n, _, _ in PG_TYPES]
            w.copy_rows("by_rows", names, rows)
            arrays = []
            for k, (_, _, t) in enumerate(PG_TYPES):
                col = [r[k] for r in rows]
                if t == T.DECIMAL:
                    col = [None if v is None else str(v) for v in col]
                arrays.append(pa.array(col, type=columnar.ARROW[t]))
            table = pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])
            assert w.copy_arrow("by_arrow", names, table) == len(rows)
            w.execute("SET LOCAL timezone = 'UTC'")
            a = w.query(f'SELECT * FROM "{schema}".by_rows')
            b = w.query(f'SELECT * FROM "{schema}".by_arrow')
        assert a == b
    finally:
        s.close()


@pytest.mark.postgres
def test_copy_arrow_takes_the_row_path_for_a_column_it_does_not_encode(pg_schema):
    from pipewarden.store import open_store

    dsn, schema = pg_schema
    s = open_store(dsn, namespace=schema)
    try:
        with s.transaction() as w:
            w.execute(f'CREATE TABLE "{schema}".odd (i int4, n numeric, t text)')
            t = pa.table({"c0": [1, None], "c1": ["1.25", None], "c2": ["x", None]})
            assert w.copy_arrow("odd", ["i", "n", "t"], t) == 2
            got = w.query(f'SELECT * FROM "{schema}".odd ORDER BY i')
        assert got == [(1, Decimal("1.25"), "x"), (None, None, None)]
    finally:
        s.close()


def test_a_column_no_loaded_row_has_is_all_null():
    schema = Schema({"a": Column("a", T.BIGINT), "b": Column("b", T.TIMESTAMPTZ)})
    t = columnar.typed_table({"a": [1, None, 3]}, list(schema.columns.values()), 3)
    assert t.column(0).to_pylist() == [1, None, 3]
    assert t.column(1).to_pylist() == [None, None, None]
    assert t.schema.field(1).type == pa.timestamp("us", tz="UTC")


@pytest.mark.postgres
def test_binary_copy_of_rows_past_a_slice_loads_what_the_row_copy_loads(pg_schema):
    """More rows than one encoded slice, long values and nulls at the slice's edge."""
    from pipewarden.store import open_store

    dsn, schema = pg_schema
    n = columnar.COPY_SLICE_ROWS + 1_000
    edge = columnar.COPY_SLICE_ROWS
    t0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        (
            None if i % 7 == 0 or i == edge else i * 1_000_003,
            None if i % 5 == 0 or i == edge - 1 else "é" * (i % 300) + str(i),
            None if i % 11 == 0 else f'{{"i": {i}, "s": "{"x" * (i % 500)}"}}',
            None if i % 3 == 0 else t0 + dt.timedelta(seconds=i),
            None if i % 13 == 0 else i % 2 == 0,
        )
        for i in range(n)
    ]
    types = [T.BIGINT, T.TEXT, T.JSON, T.TIMESTAMPTZ, T.BOOLEAN]
    names = ["i", "s", "j", "ts", "b"]
    s = open_store(dsn, namespace=schema)
    try:
        with s.transaction() as w:
            ddl = "i int8, s text, j jsonb, ts timestamptz, b bool"
            for name in ("many_rows", "many_arrow"):
                w.execute(f'CREATE TABLE "{schema}".{name} ({ddl})')
            w.copy_rows("many_rows", names, rows)
            table = pa.Table.from_arrays(
                [
                    pa.array([r[k] for r in rows], type=columnar.ARROW[t])
                    for k, t in enumerate(types)
                ],
                names=[f"c{k}" for k in range(len(types))],
            )
            assert w.copy_arrow("many_arrow", names, table) == n
            w.execute("SET LOCAL timezone = 'UTC'")
            a = w.query(f'SELECT * FROM "{schema}".many_rows ORDER BY i NULLS FIRST, s, ts')
            b = w.query(f'SELECT * FROM "{schema}".many_arrow ORDER BY i NULLS FIRST, s, ts')
        assert len(a) == n and a == b
    finally:
        s.close()


small = st.none() | st.integers(-3, 3) | st.sampled_from(["a", "2024-01-02", "x"])
record = st.dictionaries(st.sampled_from(["a", "b", "c"]), small, max_size=3)


@settings(max_examples=200, deadline=None)
@given(st.lists(record, min_size=1, max_size=12), st.data())
def test_loaded_columns_are_the_transposed_patched_rows(records, data):
    """The load's columns come from the chunk's own (made once, by the check): the loaded
    rows, with the steps' patches and then the fills, as transposing those rows gives."""
    from pipewarden.run import _loaded_columns
    from pipewarden.schema.infer import _transpose

    n = len(records)
    batch = Batch(records, "x")
    batch.columns()  # made by the check before the load asks
    loaded = sorted(data.draw(st.sets(st.integers(0, n - 1))))
    change = st.dictionaries(st.integers(0, n - 1), st.dictionaries(st.sampled_from("abd"), small))
    patches, fills = data.draw(change), data.draw(change)
    got = _loaded_columns(batch, loaded, patches, fills)
    rows = [{**records[i], **patches.get(i, {}), **fills.get(i, {})} for i in loaded]
    want = _transpose(rows) if rows else {}
    for k in {*want, *got}:
        assert list(got.get(k, [None] * len(rows))) == list(want.get(k, [None] * len(rows))), k


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["a", "b", "c", "d", "", "é"]),
            st.one_of(st.none(), st.integers(), st.text(max_size=3)),
            max_size=6,
        ),
        min_size=1,
        max_size=30,
    )
)
def test_transpose_is_every_key_in_order_of_first_appearance(records):
    """The columns of records that differ in their keys (and in their keys' order): every
    key, where the first record that has it puts it, None where a record lacks it."""
    from pipewarden.schema.infer import _transpose

    keys: dict[str, None] = {}
    for r in records:
        keys.update(dict.fromkeys(r))
    got = _transpose(records)
    assert list(got) == list(keys)
    assert {k: list(v) for k, v in got.items()} == {k: [r.get(k) for r in records] for k in keys}
