"""Database faults are outcomes, not tracebacks: provoked against the real PostgreSQL (a
read-only session, a reserved schema, backends terminated between batches, concurrent first
runs, a wrong port, a missing database) and a DuckDB file another process holds. Each ends in
exit 1 (the server or the moment) or 2 (the configuration) with the SQLSTATE, the cause in
words and what to do; with --format json, one JSON document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from runkit import jsonl, orders

import pipewarden
from pipewarden import run as run_mod
from pipewarden.cli import main
from pipewarden.dbfault import DatabaseError, db_fault
from pipewarden.run import run_pipeline

pytestmark = pytest.mark.postgres

ENV = {**os.environ, "PYTHONPATH": str(Path(pipewarden.__file__).resolve().parents[1])}


def _config(root: Path, dsn: str, schema: str, source: str = "in/*.jsonl") -> Path:
    (root / "in").mkdir(exist_ok=True)
    p = root / f"pipeline-{uuid.uuid4().hex[:6]}.yaml"
    p.write_text(
        "version: 1\ndataset: orders\n"
        f'source:\n  path: "{source}"\n'
        f'store:\n  kind: postgres\n  dsn: "{dsn}"\n  schema: {schema}\n'
    )
    return p


def _json_run(cfg: Path, capsys, *extra: str) -> tuple[int, dict]:
    code = main(["run", str(cfg), "--format", "json", *extra])
    out = capsys.readouterr().out
    return code, json.loads(out)  # exactly one JSON document, also on failure


def test_a_read_only_session_is_exit_2_with_the_cause(pg_dsn, tmp_path, capsys):
    schema = f"pwtest_ro_{uuid.uuid4().hex[:8]}"
    sep = "&" if "?" in pg_dsn else "?"
    ro = f"{pg_dsn}{sep}options=-c%20default_transaction_read_only%3Don"
    cfg = _config(tmp_path, ro, schema)
    jsonl(tmp_path / "in" / "a.jsonl", orders(0, 3))
    code, doc = _json_run(cfg, capsys)
    assert code == 2
    assert doc["sqlstate"] == "25006" and "read-only" in doc["cause"]
    assert "primary" in doc["hint"] and doc["exit_code"] == 2


def test_a_read_only_session_still_lists_the_quarantine(pg_schema, tmp_path, capsys):
    dsn, schema = pg_schema
    cfg = _config(tmp_path, dsn, schema)
    jsonl(tmp_path / "in" / "a.jsonl", orders(0, 3))
    assert run_pipeline(cfg, fmt="json")["exit_code"] == 0
    sep = "&" if "?" in dsn else "?"
    ro = f"{dsn}{sep}options=-c%20default_transaction_read_only%3Don"
    code = main(["quarantine", "list", "--store", ro, "--schema", schema, "--format", "json"])
    assert code == 0 and "rows" in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("schema", ["pg_catalog", "pg_mine"])
def test_a_reserved_schema_is_refused_before_any_statement(pg_dsn, tmp_path, capsys, schema):
    cfg = _config(tmp_path, pg_dsn, schema)
    jsonl(tmp_path / "in" / "a.jsonl", orders(0, 3))
    code, doc = _json_run(cfg, capsys)
    assert code == 2 and doc["key"] == "store.schema" and "pg_" in doc["error"]


def test_the_servers_reserved_name_is_named_too(pg_dsn):
    """CREATE SCHEMA pg_x on the real server: SQLSTATE 42939, named as a reserved name."""
    with psycopg.connect(pg_dsn, autocommit=True) as c, pytest.raises(psycopg.Error) as info:
        c.execute("CREATE SCHEMA pg_pipewarden_x")
    fault = db_fault(info.value, "postgresql://u@h/db")
    assert fault.exit_code == 2 and fault.sqlstate == "42939" and "reserved" in fault.cause
    assert "unacceptable" not in fault.render()  # the server's words are not echoed


def _terminate(pids: list[int], dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        for pid in pids:
            c.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.2)


def test_backends_terminated_between_batches_are_reconnected(pg_schema, tmp_path, monkeypatch):
    """Between batches both connections sit idle; an administrator (or an idle timeout, or a
    restart) ends them: the state connection's next query and the next batch's BEGIN go to
    new connections, and every batch loads once."""
    dsn, schema = pg_schema
    cfg = _config(tmp_path, dsn, schema)
    for i in range(3):
        jsonl(tmp_path / "in" / f"a_{i}.jsonl", orders(i * 10, i * 10 + 10))
    original = run_mod.load_file
    calls = {"n": 0}

    def terminating(store, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:
            _terminate([store.aux_backend_pid(), store.backend_pid()], dsn)
        return original(store, *args, **kwargs)

    monkeypatch.setattr(run_mod, "load_file", terminating)
    rep = run_pipeline(cfg, fmt="json")
    assert rep["exit_code"] == 0, rep
    assert [b["status"] for b in rep["batches"]] == ["loaded"] * 3
    assert rep["totals"]["rows_loaded"] == 30


def test_a_backend_terminated_mid_batch_is_a_failure_with_the_cause(
    pg_schema, tmp_path, monkeypatch, capsys
):
    dsn, schema = pg_schema
    cfg = _config(tmp_path, dsn, schema)
    jsonl(tmp_path / "in" / "a.jsonl", orders(0, 10))
    from pipewarden.store.postgres import PostgresWriter

    original = PostgresWriter.write_typed

    def killed(self, *args, **kwargs):
        _terminate([self.conn.info.backend_pid], dsn)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PostgresWriter, "write_typed", killed)
    code, doc = _json_run(cfg, capsys)
    b = doc["batches"][0]
    assert code == 1 and b["status"] == "failed"
    assert b["sqlstate"] in ("57P01", None) and "re-run" in b["error"]
    monkeypatch.setattr(PostgresWriter, "write_typed", original)
    assert run_pipeline(cfg, fmt="json")["totals"]["rows_loaded"] == 10


def _spawn(cfg: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipewarden", "run", str(cfg), "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        text=True,
    )


@pytest.mark.slow
def test_concurrent_first_runs_of_different_batches_all_load(pg_dsn, tmp_path):
    """Five processes start on a schema that does not exist yet, each with its own batch of
    one dataset: they take turns on the schema, the tables and the schema versions, and
    every one loads."""
    schema = f"pwtest_cc_{uuid.uuid4().hex[:8]}"
    try:
        cfgs = []
        for i in range(5):
            (tmp_path / f"p{i}").mkdir()
            jsonl(
                tmp_path / f"p{i}" / "a.jsonl",
                orders(i * 100, i * 100 + 100, **({"extra": i} if i % 2 else {})),
            )
            cfgs.append(_config(tmp_path / f"p{i}", pg_dsn, schema, source="a.jsonl"))
        procs = [_spawn(c) for c in cfgs]
        outs = [p.communicate(timeout=180) for p in procs]
        codes = [p.returncode for p in procs]
        assert codes == [0] * 5, [o[1][-400:] for o in outs]
        docs = [json.loads(o[0]) for o in outs]
        assert sum(d["totals"]["rows_loaded"] for d in docs) == 500
        with psycopg.connect(pg_dsn) as c:
            assert c.execute(f'SELECT count(*) FROM "{schema}"."orders"').fetchone()[0] == 500
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.slow
def test_concurrent_runs_of_one_batch_load_it_once(pg_dsn, tmp_path):
    schema = f"pwtest_cc_{uuid.uuid4().hex[:8]}"
    try:
        (tmp_path / "in").mkdir()
        jsonl(tmp_path / "in" / "a.jsonl", orders(0, 50))
        cfgs = [_config(tmp_path, pg_dsn, schema) for _ in range(3)]
        procs = [_spawn(c) for c in cfgs]
        outs = [p.communicate(timeout=180) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-400:] for o in outs]
        statuses = sorted(json.loads(o[0])["batches"][0]["status"] for o in outs)
        assert statuses == ["loaded", "skipped", "skipped"]
        with psycopg.connect(pg_dsn) as c:
            assert c.execute(f'SELECT count(*) FROM "{schema}"."orders"').fetchone()[0] == 50
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_a_wrong_port_and_a_missing_database_say_different_things(pg_dsn, tmp_path, capsys):
    info = psycopg.conninfo.conninfo_to_dict(pg_dsn)
    refused = psycopg.conninfo.make_conninfo(pg_dsn, port=1)
    cfg = _config(tmp_path, refused, "pwtest_x")
    jsonl(tmp_path / "in" / "a.jsonl", orders(0, 2))
    code, doc = _json_run(cfg, capsys)
    assert code == 1 and "refused" in doc["cause"] and "running" in doc["hint"]
    missing = psycopg.conninfo.make_conninfo(pg_dsn, dbname=f"nosuch_{uuid.uuid4().hex[:6]}")
    code, doc = _json_run(_config(tmp_path, missing, "pwtest_x"), capsys)
    assert code == 2 and doc["sqlstate"] == "3D000" and "no such database" in doc["cause"]
    assert info.get("password") is None or info["password"] not in json.dumps(doc)


def test_a_duckdb_file_held_by_another_process(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    jsonl(tmp_path / "in" / "a.jsonl", orders(0, 2))
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(
        'version: 1\ndataset: orders\nsource:\n  path: "in/*.jsonl"\n'
        "store:\n  kind: duckdb\n  path: wh.duckdb\n"
    )
    assert run_pipeline(cfg, fmt="json")["exit_code"] == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('ok', flush=True); time.sleep(60)", str(tmp_path / "wh.duckdb")],
        stdout=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ok"
        code, doc = _json_run(cfg, capsys)
        assert code == 1 and "in use by another process" in doc["cause"]
        assert doc["error_class"] == "IOException"
    finally:
        holder.kill()
        holder.wait()


def test_every_fault_has_words_and_an_exit_code():
    for cls, code in (
        (psycopg.errors.ReadOnlySqlTransaction, 2),
        (psycopg.errors.InsufficientPrivilege, 2),
        (psycopg.errors.AdminShutdown, 1),
        (psycopg.errors.DiskFull, 1),
        (psycopg.errors.DeadlockDetected, 1),
        (psycopg.errors.UniqueViolation, 1),
    ):
        fault = db_fault(cls("secret row value 123-45-6789"))
        assert isinstance(fault, DatabaseError) and fault.exit_code == code
        assert "123-45-6789" not in fault.render() and fault.sqlstate in fault.render()
