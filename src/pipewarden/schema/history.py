"""Schema history in the database: ``_pw_schema_history``.

One row per schema version of a dataset: ``(dataset, version, hash, schema, ddl, applied_at)``
with ``(dataset, version)`` as primary key, so two writers that race to record the same version
fail instead of both winning. :func:`record_schema` runs the DDL and inserts the version in
the *caller's* transaction: the table change and its record commit together or not at all.
``conn`` is a psycopg 3 connection (dialect ``postgres``) or a DuckDB connection (``duckdb``).
"""

from __future__ import annotations

from typing import Any

import orjson

from .. import ddl as ddl_mod  # the module: pipewarden.ddl imports schema.types, a cycle
from .types import Schema

TABLE = "_pw_schema_history"


def _pg(dialect: str) -> bool:
    return ddl_mod.get_dialect(dialect).name == "postgres"


def _table(dialect: str, namespace: str | None) -> str:
    return ddl_mod.get_dialect(dialect).qualify(namespace, TABLE)


def _first(result: Any) -> Any:
    """The first row of a query's result, read to its end: DuckDB refuses other work (such as
    registering the next chunk) on a connection whose last result was not read out."""
    rows = result.fetchall()
    return rows[0] if rows else None


def _exists(conn: Any, dialect: str, namespace: str | None) -> bool:
    if _pg(dialect):
        name = _table(dialect, namespace)
        row = _first(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)))
        return bool(row[0])
    row = _first(
        conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
            "AND table_schema = coalesce(?, current_schema())",
            [TABLE, namespace],
        )
    )
    return bool(row[0])


def ensure_table(conn: Any, dialect: str, namespace: str | None) -> None:
    """Create the history table (and the namespace) when missing."""
    d = ddl_mod.get_dialect(dialect)
    if namespace:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {d.quote(d.ident(namespace))}")
    json_type = "JSONB" if _pg(dialect) else "JSON"
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {_table(dialect, namespace)} ("
        "dataset TEXT NOT NULL, version INTEGER NOT NULL, hash TEXT NOT NULL, "
        f"schema {json_type} NOT NULL, ddl {json_type} NOT NULL, "
        "applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "
        "PRIMARY KEY (dataset, version))"
    )


def current_schema(conn: Any, dialect: str, dataset: str, namespace: str | None) -> Schema | None:
    """The latest recorded schema of ``dataset``, or None when there is none (no history
    table, or no version yet). Reads only; safe inside an open transaction."""
    if not _exists(conn, dialect, namespace):
        return None
    ph = "%s" if _pg(dialect) else "?"
    row = _first(
        conn.execute(
            f"SELECT schema FROM {_table(dialect, namespace)} WHERE dataset = {ph} "
            "ORDER BY version DESC LIMIT 1",
            [dataset],
        )
    )
    if row is None:
        return None
    doc = row[0]
    if isinstance(doc, (str, bytes)):
        doc = orjson.loads(doc)
    return Schema.from_dict(doc)


def history(conn: Any, dialect: str, dataset: str, namespace: str | None) -> list[dict]:
    """Every recorded version of ``dataset``, oldest first."""
    if not _exists(conn, dialect, namespace):
        return []
    ph = "%s" if _pg(dialect) else "?"
    rows = conn.execute(
        f"SELECT version, hash, schema, ddl, applied_at FROM {_table(dialect, namespace)} "
        f"WHERE dataset = {ph} ORDER BY version",
        [dataset],
    ).fetchall()
    out = []
    for version, hash_, schema, ddl, applied_at in rows:
        schema = orjson.loads(schema) if isinstance(schema, (str, bytes)) else schema
        ddl = orjson.loads(ddl) if isinstance(ddl, (str, bytes)) else ddl
        out.append({"version": version, "hash": hash_, "schema": schema, "ddl": ddl,
                    "applied_at": applied_at})  # fmt: skip
    return out


def record_schema(
    conn: Any,
    dialect: str,
    dataset: str,
    namespace: str | None,
    schema: Schema,
    ddl: list[str],
) -> None:
    """Run ``ddl`` and record ``schema`` as the dataset's newest version, in the caller's
    transaction (the caller commits). Nothing is recorded when the schema's hash equals the
    latest recorded one and there is no DDL."""
    ensure_table(conn, dialect, namespace)
    latest = current_schema(conn, dialect, dataset, namespace)
    if latest is not None and not ddl and latest.content_hash() == schema.content_hash():
        return
    for statement in ddl:
        conn.execute(statement)
    ph = "%s" if _pg(dialect) else "?"
    conn.execute(
        f"INSERT INTO {_table(dialect, namespace)} (dataset, version, hash, schema, ddl) "
        f"VALUES ({ph}, {ph}, {ph}, {ph}, {ph})",
        [
            dataset,
            schema.version,
            schema.content_hash(),
            orjson.dumps(schema.to_dict()).decode(),
            orjson.dumps(list(ddl)).decode(),
        ],
    )
