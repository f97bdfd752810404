"""Stores: DuckDB (embedded default) and PostgreSQL (psycopg 3, COPY).

``open_store(url)`` opens either; every store has the StateStore methods (``load_state``,
``save_state``, ``append_metrics``, ``metrics_history``) on tables in the store, the batch
transaction the run writes through, the quarantine queries, and ``close()``.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import InputError
from .base import MemoryStateStore, QuarantineRow, StateStore, Store

__all__ = ["MemoryStateStore", "QuarantineRow", "StateStore", "Store", "open_store"]


def open_store(
    url: str, namespace: str | None = None, *, create: bool = True, memory_limit: str | None = None
) -> Any:
    """Open a store.

    ``url`` is ``duckdb:///abs/path.duckdb``, ``duckdb://relative.duckdb``, a plain path ending in
    ``.duckdb`` (or ``:memory:``), or a PostgreSQL DSN (``postgresql://...``, also in SQLAlchemy's
    ``postgresql+psycopg://`` spelling, or ``key=value`` pairs). ``namespace`` is the
    schema holding the tables (``main`` for DuckDB, ``public`` for PostgreSQL by default).
    ``create=False`` (commands that only read, or change what a run left) refuses a DuckDB file
    or a PostgreSQL schema that does not exist yet instead of creating an empty store.
    ``memory_limit``: DuckDB's memory limit for the store's connection (e.g. ``"512MB"``).
    """
    from ..redact import redact
    from .base import NAMESPACE_RE

    if namespace is not None and not NAMESPACE_RE.match(namespace):
        raise InputError(
            f"invalid schema name {namespace!r}",
            key="store.schema",
            hint="letters, digits and _, at most 63 characters, not starting with a digit",
        )
    # SQLAlchemy's spelling names a driver: postgresql+psycopg://, postgresql+psycopg2://
    url = re.sub(r"^postgres(?:ql)?\+[A-Za-z0-9_]+://", "postgresql://", url)
    if url.startswith(("postgresql://", "postgres://")) or (
        "=" in url and not url.endswith(".duckdb")
    ):
        from .postgres import PostgresStore

        if namespace and namespace.lower().startswith("pg_"):
            raise InputError(
                f"schema {namespace!r} is reserved: names starting with pg_ are PostgreSQL's "
                "own schemas",
                key="store.schema",
                hint="choose another schema for the store, e.g. raw or pipewarden",
            )
        return PostgresStore(url, namespace, create=create)
    path = None
    if url.startswith("duckdb://"):
        path = url[len("duckdb://") :]
    elif url.endswith(".duckdb") or url == ":memory:":
        path = url
    if not path:
        raise InputError(
            f"unknown store URL {redact(url)!r}",
            hint="use duckdb:///path/file.duckdb, a path ending in .duckdb, or postgresql://...",
        )
    from .duckdb import DuckDBStore

    return DuckDBStore(path, namespace, create=create, memory_limit=memory_limit)
