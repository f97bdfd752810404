"""DDL against the real databases: hostile column names never break or inject DDL, only
in-place changes are made, and --apply records the schema version in the same transaction."""

from __future__ import annotations

import json

import duckdb
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipewarden.batch import Batch
from pipewarden.cli import main
from pipewarden.ddl import get_dialect
from pipewarden.schema import Column, DataType, Schema, history, infer, plan

T = DataType

HOSTILE = [
    'a"; DROP TABLE victim; --',
    "x'); DELETE FROM victim; --",
    "semi;colon",
    "x" * 200,
    "x" * 199 + "y",  # collides with the one above after truncation
    "é" * 40,  # 80 bytes: cut on a character boundary
    "€" * 30 + "a",
    "€" * 30 + "b",
    "",
    "Name",
    "name",  # differs from "Name" by case only
    "with space",
    "new\nline",
    "nul\x00char",
    "_pw_batch_id",
    "🦆" * 20,
]


# PostgreSQL rejects a key holding U+0000 (test_sentinel_plan); every other name must work
PG_HOSTILE = [n for n in HOSTILE if "\x00" not in n]


def hostile_schema(names: list[str] = HOSTILE) -> Schema:
    rows = [{name: i for i, name in enumerate(names)}]
    return infer(Batch(rows, "t"))


def pg_columns(conn, ns, table):
    return [
        r[0]
        for r in conn.execute(
            "select column_name from information_schema.columns "
            "where table_schema = %s and table_name = %s order by ordinal_position",
            (ns, table),
        ).fetchall()
    ]


@pytest.mark.postgres
def test_hostile_names_in_postgres(pg_schema):
    dsn, ns = pg_schema
    p = plan(None, hostile_schema(PG_HOSTILE), None, "postgres", 'tbl"; drop', ns)
    idents = [c.ident for c in p.schema.columns.values()]
    assert len(set(idents)) == len(PG_HOSTILE)
    assert all(len(i.encode()) <= 63 for i in idents)
    with psycopg.connect(dsn) as conn:
        conn.execute(f'create table "{ns}".victim (x int)')
        for stmt in p.ddl:
            conn.execute(stmt)
        conn.commit()
        assert pg_columns(conn, ns, 'tbl"; drop') == idents
        assert pg_columns(conn, ns, "victim") == ["x"]
        # every name maps to its own column: insert through the identifiers and read back
        d = get_dialect("postgres")
        cols = ", ".join(d.quote(i) for i in idents)
        marks = ", ".join(["%s"] * len(idents))
        qname = d.qualify(ns, 'tbl"; drop')
        conn.execute(f"insert into {qname} ({cols}) values ({marks})", list(range(len(idents))))
        row = conn.execute(f"select {cols} from {qname}").fetchone()
        assert list(row) == list(range(len(idents)))


def test_hostile_names_in_duckdb(tmp_path):
    p = plan(None, hostile_schema(), None, "duckdb", "t", "main")
    idents = [c.ident for c in p.schema.columns.values()]
    assert len({i.casefold() for i in idents}) == len(HOSTILE)
    conn = duckdb.connect(str(tmp_path / "x.duckdb"))
    conn.execute("create table victim (x int)")
    for stmt in p.ddl:
        conn.execute(stmt)
    got = [r[0] for r in conn.execute(
        "select column_name from information_schema.columns where table_name = 't' "
        "order by ordinal_position").fetchall()]  # fmt: skip
    assert got == idents
    assert conn.execute("select count(*) from victim").fetchone() == (0,)


def test_idents_are_deterministic_and_truncated_on_a_character():
    d = get_dialect("postgres")
    a = [Column("x" * 200, T.TEXT), Column("x" * 199 + "y", T.TEXT)]
    b = [Column("x" * 199 + "y", T.TEXT), Column("x" * 200, T.TEXT)]
    d.assign_idents(a)
    d.assign_idents(b)
    assert a[0].ident == b[0].ident == "x" * 63  # the first one keeps the plain name
    assert a[1].ident.startswith("x" * 54 + "_") and len(a[1].ident) == 63
    assert b[1].ident.startswith("x" * 54 + "_") and a[1].ident != b[1].ident
    again = [Column("x" * 200, T.TEXT), Column("x" * 199 + "y", T.TEXT)]
    d.assign_idents(again)
    assert [c.ident for c in again] == [c.ident for c in a]
    assert d.truncate("é" * 40) == "é" * 31  # 62 bytes, never half a character
    assert d.ident("") == "_" and d.ident("_pw_x") == "__pw_x" and d.ident("a\x00b") == "ab"


@pytest.mark.postgres
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names=st.lists(st.text(min_size=0, max_size=80), min_size=1, max_size=6, unique=True))
def test_any_string_round_trips_as_a_column_name_in_postgres(pg_schema, names):
    dsn, ns = pg_schema
    p = plan(None, infer(Batch([dict.fromkeys(names, 1)], "t")), None, "postgres", "h", ns)
    if any("\x00" in n for n in names):  # its jsonb cannot hold U+0000, even in a key
        assert p.decision == "reject" and not p.ddl and "NUL" in p.reason
        return
    with psycopg.connect(dsn) as conn:
        for stmt in p.ddl:
            conn.execute(stmt)
        got = pg_columns(conn, ns, "h")
        conn.rollback()
    assert got == [c.ident for c in p.schema.columns.values()]
    assert len(set(got)) == len(names)


_DUCK = duckdb.connect()


@settings(max_examples=60, deadline=None)
@given(names=st.lists(st.text(min_size=0, max_size=40), min_size=1, max_size=6, unique=True))
def test_any_string_round_trips_as_a_column_name_in_duckdb(names):
    p = plan(None, infer(Batch([dict.fromkeys(names, 1)], "t")), None, "duckdb", "h", None)
    conn = _DUCK
    conn.execute("begin")
    try:
        for stmt in p.ddl:
            conn.execute(stmt)
        got = [
            r[0]
            for r in conn.execute(
                "select column_name from information_schema.columns "
                "where table_name = 'h' order by ordinal_position"
            ).fetchall()
        ]
    finally:
        conn.execute("rollback")
    assert got == [c.ident for c in p.schema.columns.values()]


def _evolve(dialect, current_rows, new_rows):
    cur = plan(None, infer(Batch(current_rows, "t")), None, dialect, "t", None).schema
    return cur, plan(cur, infer(Batch(new_rows, "t")), None, dialect, "t", None)


def test_only_in_place_changes_per_dialect():
    # postgres: timestamp -> timestamptz is catalog-only (session in UTC); bigint -> numeric is not
    _, p = _evolve("postgres", [{"t": "2024-01-01T00:00:00", "n": 1}],
                   [{"t": "2024-01-01T00:00:00Z", "n": 2**64}])  # fmt: skip
    acts = {c.column: c.action for c in p.delta}
    assert acts == {"t": "alter", "n": "quarantine"}
    assert p.ddl == ["SET LOCAL lock_timeout = '5s'", "SET LOCAL timezone = 'UTC'",
                     'ALTER TABLE "t" ALTER COLUMN "t" TYPE TIMESTAMPTZ']  # fmt: skip
    # duckdb widens bigint -> decimal and date -> timestamp in place
    _, p = _evolve(
        "duckdb", [{"d": "2024-01-01", "n": 1}], [{"d": "2024-01-01T10:00:00", "n": 2**64}]
    )
    assert {c.column: c.action for c in p.delta} == {"d": "alter", "n": "alter"}
    assert not any("DROP" in s.upper() and "NOT NULL" not in s.upper() for s in p.ddl)


def test_duckdb_ddl_runs_and_keeps_values():
    cur, p = _evolve("duckdb", [{"d": "2024-01-01", "n": 1, "t": "2024-01-01T10:00:00"}],
                     [{"d": "2024-01-01T10:00:00", "n": 2**64, "t": "2024-01-01T10:00:00+02:00", "x": [1]}])  # fmt: skip
    conn = duckdb.connect()
    for stmt in plan(None, cur, None, "duckdb", "t", None).ddl:
        conn.execute(stmt)
    conn.execute("insert into t values ('2024-01-01', 1, '2024-01-01 10:00:00')")
    for stmt in p.ddl:
        conn.execute(stmt)
    conn.execute("set TimeZone = 'UTC'")
    row = conn.execute("select d::varchar, n::varchar, t::varchar, x from t").fetchone()
    assert row == ("2024-01-01 00:00:00", "1.000000000", "2024-01-01 10:00:00+00", None)


@pytest.mark.postgres
def test_apply_postgres_records_version_in_one_transaction(pg_schema, tmp_path, capsys):
    dsn, ns = pg_schema
    src = tmp_path / "events.jsonl"
    src.write_text('{"id": 1, "at": "2024-01-01T00:00:00"}\n')
    args = ["sentinel", "--source", str(src), "--dsn", dsn, "--apply", "--namespace", ns,
            "--format", "json"]  # fmt: skip
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["applied"] and first["schema"]["version"] == 1
    src.write_text('{"id": 2, "at": "2024-01-01T00:00:00Z", "extra": true}\n')
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["from_version"] == 1 and second["schema"]["version"] == 2
    with psycopg.connect(dsn) as conn:
        assert pg_columns(conn, ns, "events") == ["id", "at", "extra"]
        typ = conn.execute("select data_type from information_schema.columns where table_schema=%s "
                           "and table_name='events' and column_name='at'", (ns,)).fetchone()  # fmt: skip
        assert typ == ("timestamp with time zone",)
        versions = [h["version"] for h in history.history(conn, "postgres", "events", ns)]
        assert versions == [1, 2]
        assert history.current_schema(conn, "postgres", "events", ns).version == 2
    # a third run with nothing new records nothing
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "pass"
    with psycopg.connect(dsn) as conn:
        assert len(history.history(conn, "postgres", "events", ns)) == 2


@pytest.mark.postgres
def test_failed_ddl_leaves_nothing(pg_schema):
    dsn, ns = pg_schema
    s = infer(Batch([{"a": 1}], "t"))
    p = plan(None, s, None, "postgres", "t", ns)
    with psycopg.connect(dsn) as conn:
        with pytest.raises(psycopg.Error):
            history.record_schema(conn, "postgres", "t", ns, p.schema, [*p.ddl, "select 1/0"])
        conn.rollback()
        assert history.current_schema(conn, "postgres", "t", ns) is None
        assert pg_columns(conn, ns, "t") == []


@pytest.mark.postgres
def test_bad_input_with_apply_writes_nothing(pg_schema, tmp_path, capsys):
    dsn, ns = pg_schema
    src = tmp_path / "bad.jsonl"
    src.write_text('{"a": 1}\n{"a": \n')
    code = main(["sentinel", "--source", str(src), "--dsn", dsn, "--apply", "--namespace", ns])
    assert code == 2
    assert f"{src}, line 2, row 2" in capsys.readouterr().err.replace("\n", "")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*) from information_schema.tables where table_schema=%s",
                            (ns,)).fetchone() == (0,)  # fmt: skip


@pytest.mark.postgres
def test_a_database_refusal_on_apply_does_not_echo_its_message(
    pg_schema, tmp_path, capsys, monkeypatch
):
    """A server message may quote row values (a key, a constraint's detail): --apply reports
    the class and SQLSTATE only, as the run does."""
    dsn, ns = pg_schema
    src = tmp_path / "events.jsonl"
    src.write_text('{"id": 1}\n')

    def refuse(conn, *a, **k):
        conn.execute("select 1/0 where length(%s) > 0", ("jane.roe@example.com",))

    monkeypatch.setattr(history, "record_schema", refuse)
    code = main(["sentinel", "--source", str(src), "--dsn", dsn, "--apply", "--namespace", ns])
    err = capsys.readouterr().err
    assert code == 2 and "DivisionByZero (SQLSTATE 22012)" in err
    assert "nothing was written" in err and "jane.roe" not in err and "division" not in err


def test_apply_duckdb(tmp_path, capsys):
    db = tmp_path / "w.duckdb"
    src = tmp_path / "b.csv"
    src.write_text("id,price,day\n1,1.50,2024-01-01\n")
    assert main(["sentinel", "--source", str(src), "--dsn", str(db), "--apply"]) == 0
    capsys.readouterr()
    conn = duckdb.connect(str(db))
    got = conn.execute("select column_name, data_type from information_schema.columns "
                       "where table_name='b' order by ordinal_position").fetchall()  # fmt: skip
    assert got == [("id", "BIGINT"), ("price", "DECIMAL(38,9)"), ("day", "DATE")]
    assert history.current_schema(conn, "duckdb", "b", None).version == 1


@pytest.mark.parametrize(
    "module", ["pipewarden.ddl", "pipewarden.ddl.postgres", "pipewarden.schema.history",
               "pipewarden.schema.rows", "pipewarden.batch"]
)  # fmt: skip
def test_every_module_imports_first(module):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.postgres
def test_postgres_in_place_changes_do_not_rewrite_the_table(pg_schema):
    """The changes planned in place keep the table's storage (relfilenode); the widenings the
    sentinel refuses (bigint -> numeric) would rewrite it."""
    dsn, ns = pg_schema
    cur = plan(None, infer(Batch([{"t": "2024-01-01T00:00:00", "n": 1, "k": 1}], "t")),
               None, "postgres", "t", ns).schema  # fmt: skip
    cur.columns["n"].nullable = False
    create = plan(None, cur, None, "postgres", "t", ns).ddl
    create = [s.replace('"n" BIGINT', '"n" BIGINT NOT NULL') for s in create]
    p = plan(cur, infer(Batch([{"t": "2024-01-01T00:00:00Z", "n": None, "x": True}], "t")),
             None, "postgres", "t", ns)  # fmt: skip
    assert {c.action for c in p.delta if c.op != "missing"} == {"alter"}
    with psycopg.connect(dsn) as conn:
        for s in create:
            conn.execute(s)
        conn.execute(f'insert into "{ns}".t values (%s, 1, 1)', ["2024-01-01 10:00:00"])
        conn.commit()

        def node():
            return conn.execute("select pg_relation_filenode(%s)", (f'"{ns}".t',)).fetchone()[0]

        before = node()
        for s in p.ddl:
            conn.execute(s)
        conn.commit()
        assert node() == before
        got = conn.execute(f"select t at time zone 'UTC', n from \"{ns}\".t").fetchone()
        assert str(got[0]) == "2024-01-01 10:00:00" and got[1] == 1
        conn.execute(f'alter table "{ns}".t alter column k type numeric')
        conn.commit()
        assert node() != before  # what the sentinel never does


MORE_HOSTILE = [
    "x" * 198 + "zz",  # a third name sharing the first 63 bytes
    "NAME",  # a third case of name
    '"',
    '";',
    "\\",
    "é" * 31 + "x",  # collides with "é" * 40 after the cut
]


@pytest.mark.postgres
def test_hostile_names_added_later_in_postgres(pg_schema):
    dsn, ns = pg_schema
    p1 = plan(None, hostile_schema(PG_HOSTILE), None, "postgres", "t", ns)
    later = infer(Batch([{n: "2024-01-01T00:00:00Z" for n in PG_HOSTILE + MORE_HOSTILE}], "t"))
    p2 = plan(p1.schema, later, None, "postgres", "t", ns)
    assert [c.column for c in p2.delta.by_op("add")] == MORE_HOSTILE
    with psycopg.connect(dsn) as conn:
        for stmt in p1.ddl + p2.ddl:
            conn.execute(stmt)
        assert pg_columns(conn, ns, "t") == [c.ident for c in p2.schema.columns.values()]
        conn.rollback()


def test_hostile_names_added_later_in_duckdb():
    p1 = plan(None, hostile_schema(), None, "duckdb", "t", None)
    later = infer(Batch([{n: 1.5 for n in HOSTILE + MORE_HOSTILE}], "t"))
    p2 = plan(p1.schema, later, None, "duckdb", "t", None)
    conn = duckdb.connect()
    for stmt in p1.ddl + p2.ddl:
        conn.execute(stmt)
    got = [r[0] for r in conn.execute("select column_name from information_schema.columns "
                                      "where table_name = 't' order by ordinal_position").fetchall()]  # fmt: skip
    assert got == [c.ident for c in p2.schema.columns.values()]
    assert len({g.casefold() for g in got}) == len(HOSTILE + MORE_HOSTILE)
