"""The stores: StateStore methods, the batch transaction, quarantine queries, on DuckDB and on
a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
from decimal import Decimal

import psycopg
import pytest

from pipewarden.schema.types import DataType
from pipewarden.store import QuarantineRow, open_store
from pipewarden.store.base import quote

TYPES = [
    ("id", DataType.BIGINT),
    ("name", DataType.TEXT),
    ("amount", DataType.DECIMAL),
    ("score", DataType.DOUBLE),
    ("ok", DataType.BOOLEAN),
    ("day", DataType.DATE),
    ("at", DataType.TIMESTAMP),
    ("at_tz", DataType.TIMESTAMPTZ),
    ("tags", DataType.JSON),
]
PG = {
    DataType.BIGINT: "bigint",
    DataType.TEXT: "text",
    DataType.DECIMAL: "numeric(38,9)",
    DataType.DOUBLE: "double precision",
    DataType.BOOLEAN: "boolean",
    DataType.DATE: "date",
    DataType.TIMESTAMP: "timestamp",
    DataType.TIMESTAMPTZ: "timestamptz",
    DataType.JSON: "jsonb",
}
DUCK = dict(PG, **{DataType.DOUBLE: "DOUBLE", DataType.JSON: "JSON"})


@pytest.fixture(params=["duckdb", "postgres"])
def store(request, tmp_path):
    if request.param == "duckdb":
        s = open_store(f"duckdb:///{tmp_path}/w.duckdb")
    else:
        dsn, schema = request.getfixturevalue("pg_schema")
        s = open_store(dsn, namespace=schema)
    try:
        yield s
    finally:
        s.close()


def create_typed(writer, store, table="people"):
    names = DUCK if store.dialect == "duckdb" else PG
    cols = ", ".join(f"{quote(n)} {names[t]}" for n, t in TYPES)
    writer.execute(f"CREATE TABLE {store.qualify(table)} ({cols})")


def row(i: int) -> tuple:
    return (
        i,
        f"name {i}",
        Decimal("12.345"),
        1.5 * i,
        i % 2 == 0,
        dt.date(2024, 1, 1 + i % 28),
        dt.datetime(2024, 1, 1, 12, 0, i % 60),
        dt.datetime(2024, 1, 1, 12, 0, i % 60, tzinfo=dt.UTC),
        json.dumps({"t": [i, "x"]}),
    )


def qrow(i: int, batch="b1") -> QuarantineRow:
    return QuarantineRow(
        batch_id=batch,
        offset=i,
        payload=json.dumps({"id": "not a number", "email": "john.doe@example.com"}),
        reason="type_mismatch",
        message="id: text does not fit bigint",
        column="id",
        issues=json.dumps([{"row": i, "reason": "type_mismatch"}]),
        schema_version=1,
    )


def test_state_roundtrip_and_metrics_history(store):
    assert store.load_state("ds", "breaker") is None
    store.save_state("ds", "breaker", {"state": "open", "n": 1})
    store.save_state("ds", "breaker", {"state": "closed", "n": 2})
    assert store.load_state("ds", "breaker") == {"state": "closed", "n": 2}
    assert store.load_state("other", "breaker") is None
    for i in range(5):
        store.append_metrics("ds", f"b{i}", "rows", {"i": i})
    store.append_metrics("ds", "bx", "other", {"i": 99})
    assert store.metrics_history("ds", "rows") == [{"i": i} for i in range(5)]
    assert store.metrics_history("ds", "rows", limit=2) == [{"i": 3}, {"i": 4}]
    assert store.metrics_history("nope", "rows") == []


def test_state_persists_across_reopen(tmp_path):
    url = f"{tmp_path}/state.duckdb"
    s = open_store(url)
    s.save_state("ds", "k", {"v": [1, 2]})
    s.close()
    s = open_store(url)
    assert s.load_state("ds", "k") == {"v": [1, 2]}
    s.close()


def test_batch_transaction_writes_every_table(store):
    with store.transaction() as w:
        create_typed(w, store)
        w.ensure_dataset("people")
        rows = [row(i) for i in range(50)]
        assert w.write_typed("people", [n for n, _ in TYPES], [t for _, t in TYPES], rows) == 50
        assert w.write_raw(
            "people", "b1", list(range(50)), [json.dumps({"i": i}) for i in range(50)]
        )
        assert w.write_quarantine("people", [qrow(50), qrow(51)]) == 2
        w.mark_done(
            "people",
            "b1",
            {"rows_read": 52, "rows_loaded": 50, "rows_quarantined": 2, "source": "f.json"},
        )
    assert store.count("people") == 50
    assert store.count("people__raw") == 50
    assert store.count("people__quarantine") == 2
    assert store.is_done("people", "b1")["rows_read"] == 52
    assert store.is_done("people", "b2") is None
    assert store.datasets() == ["people"]
    got = store._aux_query(
        "SELECT " + ", ".join(quote(n) for n, _ in TYPES) + f" FROM {store.qualify('people')} "
        "WHERE id = 3"
    )[0]
    assert got[:7] == row(3)[:7]
    assert got[7] == row(3)[7]
    tags = got[8] if isinstance(got[8], dict) else json.loads(got[8])
    assert tags == {"t": [3, "x"]}


def test_duckdb_raw_landing_payloads_are_stored_with_zstd(tmp_path):
    """The raw landing's payload column is compressed with zstd (cheaper to write than DuckDB's
    own choice for text), and its payloads read back as the JSON they were."""
    from pipewarden.store.duckdb import _zstd_columns

    store = open_store(f"{tmp_path}/z.duckdb")
    try:
        with store.transaction() as w:
            w.ensure_dataset("people")
            payloads = [json.dumps({"i": i, "name": f"n{i}"}) for i in range(3000)]
            assert w.write_raw("people", "b1", list(range(3000)), payloads) == 3000
        store.conn.execute("CHECKPOINT")
        raw = store.qualify("people__raw")
        got = store._aux_query(f"SELECT payload->>'name' FROM {raw} WHERE \"offset\" = 2999")
        assert got == [("n2999",)]
        used = {
            r[0]
            for r in store._aux_query(
                "SELECT compression FROM pragma_storage_info('people__raw') "
                "WHERE column_name = 'payload' AND segment_type <> 'VALIDITY'"
            )
        }
        if _zstd_columns():  # DuckDB 1.2 and later
            assert used == {"ZSTD"}
    finally:
        store.close()


@pytest.mark.parametrize("extension", [True, False])
def test_duckdb_json_columns_arrive_as_json_with_or_without_arrows_json_type(
    tmp_path, monkeypatch, extension
):
    """JSON text bound for a JSON column (the raw payloads, a typed JSON column) is handed to
    DuckDB typed as ``arrow.json`` where both sides know the type, so DuckDB does not parse it
    again to check it; through the writer's spool file too (more than its memory share), and
    as text where ``arrow.json`` is missing: the same values read back either way."""
    from pipewarden.store import duckdb as store_duckdb

    if not extension:
        monkeypatch.setattr(store_duckdb, "_json_extension", lambda: None)
    elif store_duckdb._json_extension() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("this pyarrow/DuckDB pair must pass arrow.json through")
        pytest.skip("pyarrow before 19 or a DuckDB that does not read arrow.json")
    monkeypatch.setattr(store_duckdb, "SPOOL_MEMORY_BYTES", 4096)  # the spool goes to a file
    seen = []
    real = store_duckdb.DuckDBWriter._insert_arrow

    def spy(self, table, names, t):
        seen.extend(str(f.type) for f, n in zip(t.schema, names, strict=True)
                    if n in ("payload", "tags"))  # fmt: skip
        return real(self, table, names, t)

    monkeypatch.setattr(store_duckdb.DuckDBWriter, "_insert_arrow", spy)
    store = open_store(f"{tmp_path}/j.duckdb")
    try:
        with store.transaction() as w:
            create_typed(w, store)
            w.ensure_dataset("people")
            rows = [row(i) for i in range(2000)]
            w.write_typed("people", [n for n, _ in TYPES], [t for _, t in TYPES], rows)
            payloads = [json.dumps({"i": i, "name": f"n{i}"}) for i in range(2000)]
            w.write_raw("people", "b1", list(range(2000)), payloads)
        want = "extension<arrow.json>" if extension else "string"
        assert set(seen) == {want}
        got = store._aux_query(
            f"SELECT tags->'t'->>1, typeof(tags) FROM {store.qualify('people')} WHERE id = 1999"
        )
        assert got == [("x", "JSON")]
        raw = store._aux_query(
            f"SELECT payload->>'name', typeof(payload) FROM {store.qualify('people__raw')} "
            'WHERE "offset" = 1999'
        )
        assert raw == [("n1999", "JSON")]
    finally:
        store.close()


def test_rollback_leaves_nothing(store):
    with store.transaction() as w:
        create_typed(w, store)
        w.ensure_dataset("people")
    with pytest.raises(RuntimeError, match="boom"), store.transaction() as w:
        w.write_typed("people", [n for n, _ in TYPES], [t for _, t in TYPES], [row(1), row(2)])
        w.write_quarantine("people", [qrow(3)])
        w.mark_done("people", "b1", {"rows_read": 3, "rows_loaded": 2, "rows_quarantined": 1})
        raise RuntimeError("boom")
    assert store.count("people") == 0
    assert store.count("people__quarantine") == 0
    assert store.is_done("people", "b1") is None
    # the store is usable afterwards
    with store.transaction() as w:
        w.write_typed("people", [n for n, _ in TYPES], [t for _, t in TYPES], [row(1)])
    assert store.count("people") == 1


def test_run_log_survives_a_rollback(store):
    with pytest.raises(RuntimeError), store.transaction() as w:
        w.ensure_dataset("people")
        store.log_run({"run_id": "r1", "dataset": "people", "status": "failed", "rows_read": 3})
        raise RuntimeError("boom")
    runs = store.runs("people")
    assert [(r["run_id"], r["status"], r["rows_read"]) for r in runs] == [("r1", "failed", 3)]


def test_quarantine_list_masks_the_payload(store):
    with store.transaction() as w:
        w.ensure_dataset("people")
        w.write_quarantine("people", [qrow(0), qrow(1, "b2")])
    rows = store.quarantine_rows("people")
    assert len(rows) == 2 and all(r["status"] == "pending" for r in rows)
    text = json.dumps(rows, default=str)
    assert "john.doe@example.com" not in text  # PII is masked; other values are shown
    assert rows[0]["preview"]["email"].startswith("jo*")
    assert rows[0]["preview"]["id"] == "not a number"
    assert store.quarantine_rows("people", reason="pii") == []
    assert store.quarantine_rows("people", status="replayed") == []
    full = store.quarantine_rows("people", with_payload=True)
    assert full[0]["payload"]["email"] == "john.doe@example.com"
    with store.transaction() as w:
        w.update_quarantine("people", [("b1", 0)], [("b2", 1, "x", "m\x00", "c", "[]")])
    assert [r["offset"] for r in store.quarantine_rows("people", status="replayed")] == [0]
    pending = store.quarantine_rows("people", status="pending")
    assert pending[0]["reason"] == "x" and pending[0]["replay_attempts"] == 1
    assert pending[0]["message"] == "m\ufffd"  # a NUL (which PostgreSQL cannot store) replaced
    assert store.quarantine_rows("unknown") == []


def test_open_store_urls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for url in ("plain.duckdb", "duckdb://rel.duckdb", f"duckdb:///{tmp_path}/abs.duckdb"):
        s = open_store(url)
        s.close()
    assert (tmp_path / "plain.duckdb").exists() and (tmp_path / "rel.duckdb").exists()
    assert (tmp_path / "abs.duckdb").exists()
    from pipewarden.errors import InputError

    with pytest.raises(InputError, match="unknown store URL"):
        open_store("mysql://x")
    with pytest.raises(InputError, match="invalid schema name"):
        open_store("x.duckdb", namespace='a"; drop')


@pytest.mark.postgres
def test_postgres_connection_killed_mid_transaction(pg_schema):
    dsn, schema = pg_schema
    store = open_store(dsn, namespace=schema)
    try:
        with store.transaction() as w:
            create_typed(w, store)
            w.ensure_dataset("people")
        pid = store.backend_pid()
        with pytest.raises(psycopg.OperationalError), store.transaction() as w:
            w.write_typed("people", [n for n, _ in TYPES], [t for _, t in TYPES], [row(1)])
            with psycopg.connect(dsn, autocommit=True) as killer:
                killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
            w.write_typed("people", [n for n, _ in TYPES], [t for _, t in TYPES], [row(2)])
        assert store.count("people") == 0
        # a new connection is opened for the next batch
        with store.transaction() as w:
            w.write_typed("people", [n for n, _ in TYPES], [t for _, t in TYPES], [row(5)])
        assert store.count("people") == 1 and store.backend_pid() != pid
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_refused_connection_is_a_fault_without_the_password():
    from pipewarden.dbfault import DatabaseError

    with pytest.raises(DatabaseError) as info:
        open_store("postgresql://nobody:secret@127.0.0.1:1/none")
    assert "secret" not in str(info.value) and "secret" not in str(info.value.to_dict())
    assert info.value.exit_code == 1 and "refused" in info.value.cause


@pytest.mark.postgres
def test_postgres_falls_back_to_text_copy_for_a_type_without_binary_dumper(pg_schema):
    dsn, schema = pg_schema
    store = open_store(dsn, namespace=schema)
    try:
        with store.transaction() as w:
            w.execute(f"CREATE TABLE {store.qualify('docs')} (id bigint, body tsvector)")
            w.write_typed("docs", ["id", "body"], [DataType.BIGINT, DataType.TEXT], [(1, "a b")])
        assert store._aux_query(f"SELECT body::text FROM {store.qualify('docs')}") == [("'a' 'b'",)]
    finally:
        store.close()


def test_reports_never_show_the_dsn_password():
    from pipewarden.store.postgres import redact_dsn

    assert redact_dsn("postgresql://app:s3cret@db.internal:6432/wh") == (
        "postgresql://app@db.internal:6432/wh"
    )
    assert "s3cret" not in redact_dsn("host=db user=app password=s3cret dbname=wh")


def test_a_duckdb_path_at_a_file_that_is_not_duckdb_is_refused(tmp_path):
    """DuckDB gave no error for a CSV named as the store, and nothing loaded persisted."""
    from pipewarden.errors import InputError

    data = tmp_path / "b.csv"
    data.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not a DuckDB database file"):
        open_store(f"duckdb://{data}")
    assert data.read_text() == "a,b\n1,2\n"
    open_store(f"duckdb://{tmp_path / 'new.duckdb'}").close()  # a new file is created
