"""Schema history in the database: ``_pw_schema_history``.

One row per schema version of a dataset: ``(dataset, version, hash, schema, ddl, applied_at,
cause)`` with ``(dataset, version)`` as primary key, so two writers that race to record the same version
fail instead of both winning. :func:`record_schema` runs the DDL and inserts the version in
the *caller's* transaction: the table change and its record commit together or not at all.
``conn`` is a psycopg 3 connection (dialect ``postgres``) or a DuckDB connection (``duckdb``).

``cause`` (JSON, may be null) says what applied the version: ``{"by": "run", "batch_id",
"source", "run_id"}`` for a batch of ``pipewarden run``, ``{"by": "replay", ...}`` for a
quarantine replay, ``{"by": "sentinel", "source", "rows_read", "rows_quarantined"}`` for
``sentinel --apply``. The docs' changelog names it (:mod:`pipewarden.reflect`). A history table
made before the column existed gets it on the next recorded version.
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
        f"cause {json_type}, PRIMARY KEY (dataset, version))"
    )
    if not _has_cause(conn, dialect, namespace):  # a table made before the column existed
        conn.execute(f"ALTER TABLE {_table(dialect, namespace)} ADD COLUMN cause {json_type}")


def _has_cause(conn: Any, dialect: str, namespace: str | None) -> bool:
    ph = "%s" if _pg(dialect) else "?"
    schema = f"coalesce({ph}, current_schema())"
    row = _first(
        conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = "
            f"{ph} AND column_name = 'cause' AND table_schema = {schema}",
            [TABLE, namespace],
        )
    )
    return bool(row[0])


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
    cause = "cause" if _has_cause(conn, dialect, namespace) else "NULL"
    rows = conn.execute(
        f"SELECT version, hash, schema, ddl, applied_at, {cause} "
        f"FROM {_table(dialect, namespace)} WHERE dataset = {ph} ORDER BY version",
        [dataset],
    ).fetchall()
    out = []
    for version, hash_, schema, ddl, applied_at, why in rows:
        schema, ddl, why = (orjson.loads(v) if isinstance(v, (str, bytes)) else v
                            for v in (schema, ddl, why))  # fmt: skip
        out.append({"version": version, "hash": hash_, "schema": schema, "ddl": ddl,
                    "applied_at": applied_at, "cause": why})  # fmt: skip
    return out


def record_schema(
    conn: Any,
    dialect: str,
    dataset: str,
    namespace: str | None,
    schema: Schema,
    ddl: list[str],
    cause: dict[str, Any] | None = None,
) -> None:
    """Run ``ddl`` and record ``schema`` as the dataset's newest version, in the caller's
    transaction (the caller commits), with ``cause`` (what applied it). Nothing is recorded
    when the schema's hash equals the latest recorded one and there is no DDL."""
    ensure_table(conn, dialect, namespace)
    latest = current_schema(conn, dialect, dataset, namespace)
    if latest is not None and not ddl and latest.content_hash() == schema.content_hash():
        return
    for statement in ddl:
        conn.execute(statement)
    ph = "%s" if _pg(dialect) else "?"
    conn.execute(
        f"INSERT INTO {_table(dialect, namespace)} (dataset, version, hash, schema, ddl, cause) "
        f"VALUES ({ph}, {ph}, {ph}, {ph}, {ph}, {ph})",
        [
            dataset,
            schema.version,
            schema.content_hash(),
            orjson.dumps(schema.to_dict()).decode(),
            orjson.dumps(list(ddl)).decode(),
            None if cause is None else orjson.dumps(cause, default=str).decode(),
        ],
    )
