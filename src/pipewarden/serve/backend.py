"""Read-only access to the store for the API.

- PostgreSQL: an async connection pool (psycopg_pool) whose sessions are read-only
  (``default_transaction_read_only``) with a statement timeout; give ``serve.dsn`` a role
  that can only SELECT for a second wall.
- DuckDB: the file opened in DuckDB's read-only mode, a cursor per worker thread; queries run
  in threads so the event loop never waits on one. DuckDB lets several processes read a file
  but none write it meanwhile: stop the server for a run, or serve PostgreSQL.

Every query is written with ``?`` placeholders and values are parameters, never text in SQL;
identifiers come from the dataset's schema and go through :func:`pipewarden.store.base.quote`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

import anyio

from ..errors import InputError
from ..reflect.catalog import Db


class Backend:
    dialect = ""
    namespace = ""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        raise NotImplementedError

    def catalog(self) -> Db:
        """A synchronous :class:`Db` for the catalog (schemas, batches): call it in a thread."""
        raise NotImplementedError

    def close_catalog(self) -> None: ...


class PostgresBackend(Backend):
    dialect = "postgres"

    def __init__(self, dsn: str, namespace: str, pool_size: int, timeout_ms: int) -> None:
        self.dsn = dsn
        self.namespace = namespace
        self.options = (
            f"-c default_transaction_read_only=on -c statement_timeout={int(timeout_ms)} "
            "-c application_name=pipewarden-serve"
        )
        self.pool_size = pool_size
        self.pool = None
        self._sync = None
        self._lock = threading.Lock()

    async def open(self) -> None:
        from psycopg_pool import AsyncConnectionPool

        self.pool = AsyncConnectionPool(
            self.dsn,
            min_size=min(2, self.pool_size),
            max_size=self.pool_size,
            kwargs={"autocommit": True, "options": self.options, "prepare_threshold": 0},
            open=False,
            timeout=10,
        )
        await self.pool.open(wait=True, timeout=10)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
        self.close_catalog()

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql.replace("?", "%s"), list(params), binary=True)
            return await cur.fetchall()

    def catalog(self) -> Db:
        import psycopg

        with self._lock:
            if self._sync is None or self._sync.closed or self._sync.broken:
                self._sync = psycopg.connect(self.dsn, autocommit=True, options=self.options,
                                             connect_timeout=10)  # fmt: skip
            return Db.of_connection(self._sync, "postgres", self.namespace)

    def close_catalog(self) -> None:
        if self._sync is not None and not self._sync.closed:
            self._sync.close()


class DuckDBBackend(Backend):
    dialect = "duckdb"

    def __init__(self, path: str, namespace: str) -> None:
        import duckdb

        self.namespace = namespace
        try:
            self.conn = duckdb.connect(path, read_only=True)
        except duckdb.Error as exc:
            raise InputError(
                f"cannot open the DuckDB store read-only: {type(exc).__name__}",
                file=path,
                hint="is a run writing it? DuckDB lets no one read a file while a process "
                "writes it; serve PostgreSQL for reads during loads",
            ) from None
        self._local = threading.local()
        self._cursors: list[Any] = []
        self._lock = threading.Lock()

    def _cursor(self):
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            with self._lock:
                cur = self.conn.cursor()
                self._cursors.append(cur)
            self._local.cursor = cur
        return cur

    def _run(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        return self._cursor().execute(sql, list(params)).fetchall()

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return await anyio.to_thread.run_sync(self._run, sql, params)

    def catalog(self) -> Db:
        cur = self._cursor()
        return Db(
            "duckdb",
            self.namespace,
            lambda sql, params=(): cur.execute(sql, list(params)).fetchall(),
            _read_only,
            cur,
        )

    async def close(self) -> None:
        with self._lock:
            for c in [*self._cursors, self.conn]:
                with suppress(Exception):  # already closed
                    c.close()


def _read_only(sql: str) -> None:  # pragma: no cover - the API never writes
    raise RuntimeError("the API is read-only")


def backend_for(cfg: dict[str, Any], dsn: str | None, pool_size: int, timeout_ms: int) -> Backend:
    """The backend of a loaded pipeline config's store (``dsn``: serve.dsn, PostgreSQL)."""
    from pathlib import Path

    st = cfg["store"]
    if st["kind"] == "postgres":
        return PostgresBackend(dsn or st["dsn"], st["schema"], pool_size, timeout_ms)
    path = Path(st["path"])
    if not path.is_absolute():
        path = Path(cfg["_base_dir"]) / path
    if not path.is_file():
        raise InputError("no such store: nothing has run against it yet", file=str(path),
                         key="store.path")  # fmt: skip
    return DuckDBBackend(str(path), st["schema"])
