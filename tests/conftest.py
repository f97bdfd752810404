"""Shared fixtures. Real parts in tests: a test that needs an absent part skips with the reason,
except under CI (CI=true), where the part must be there and the test fails instead."""

from __future__ import annotations

import os
import shutil
import time
import uuid

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_DSN = os.environ.get("PIPEWARDEN_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def missing(part: str, reason: str) -> None:
    """Skip (locally) or fail (under CI) a test whose real part is absent."""
    if IN_CI:
        pytest.fail(f"{part} must be available under CI: {reason}", pytrace=False)
    pytest.skip(f"{part} not available: {reason}")


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """The DSN of a reachable PostgreSQL server (PIPEWARDEN_TEST_DSN overrides the default)."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        missing("psycopg", str(exc))
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:
        missing("PostgreSQL", f"{PG_DSN}: {exc}")
    return PG_DSN


@pytest.fixture
def pg_schema(pg_dsn):
    """A fresh PostgreSQL schema for one test, dropped afterwards: yields (dsn, schema)."""
    import psycopg

    name = f"pwtest_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'create schema "{name}"')
    try:
        yield pg_dsn, name
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'drop schema if exists "{name}" cascade')


@pytest.fixture(params=["duckdb", "postgres"])
def project(request, tmp_path):
    """A directory with a pipeline.yaml for the store under test (tests/runkit.py)."""
    from runkit import make_project

    return make_project(request, tmp_path)


def duckdb_dump(path) -> str:
    """Every table of a DuckDB file (every schema) as text: name, column names and rows, for
    tests that search a store for values that must not be there."""
    import json

    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        parts = []
        for schema, table in con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall():
            cur = con.execute(f'select * from "{schema}"."{table}"')
            parts.append(json.dumps([table, [d[0] for d in cur.description], cur.fetchall()],
                                    default=str))  # fmt: skip
        return "\n".join(parts)
    finally:
        con.close()


@pytest.fixture(scope="session")
def h2o_cluster():
    """One local H2O for the whole session (every H2O test shares it), shut down at the end
    and checked to be gone."""
    try:
        import h2o  # noqa: F401
    except ImportError as exc:
        missing("h2o", str(exc))
    if shutil.which("java") is None:
        missing("Java", "no java on PATH")
    from pipewarden import h2o_cluster as h2o_engine

    url = h2o_engine.ensure_cluster(max_mem="768m", nthreads=2)
    pid = h2o_engine.local_pid()
    assert pid is not None
    yield url
    assert h2o_engine.shutdown() is True
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the local H2O (pid {pid}) is still running after shutdown")
    assert h2o_engine.local_pid() is None
