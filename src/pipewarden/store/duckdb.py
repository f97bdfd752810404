"""DuckDB: the embedded default store (one file, no server).

Bulk loads go through Arrow: the typed rows of a chunk become one Arrow table that DuckDB
inserts with a single ``INSERT ... SELECT`` (casting to the column types), inside the batch's
transaction. State, metrics and the run log use a second connection to the same database, so
they commit on their own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..dbfault import db_fault
from ..errors import InputError
from ..schema.types import DataType
from .base import NO_STORE_HINT, QuarantineRow, SqlStore, WriterBase, quote

# Arrow types to hand DuckDB; decimals travel as text and are cast to the column's type.
_ARROW: dict[DataType, pa.DataType] = {
    DataType.NULL: pa.string(),
    DataType.BOOLEAN: pa.bool_(),
    DataType.BIGINT: pa.int64(),
    DataType.DOUBLE: pa.float64(),
    DataType.DECIMAL: pa.string(),
    DataType.TEXT: pa.string(),
    DataType.DATE: pa.date32(),
    DataType.TIMESTAMP: pa.timestamp("us"),
    DataType.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
    DataType.JSON: pa.string(),
}


def _check_duckdb_file(path: str) -> None:
    """Refuse an existing file that is not a DuckDB database (a CSV named as the store):
    DuckDB would not say so, and nothing loaded would persist."""
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        return
    with open(p, "rb") as f:
        head = f.read(12)
    if head[8:12] != b"DUCK":
        raise InputError(
            "not a DuckDB database file",
            file=path,
            key="store.path",
            hint="point store.path at a .duckdb file (a new one is created), not at data",
        )


class DuckDBStore(SqlStore):
    dialect = "duckdb"
    json_type = "JSON"
    param = "?"

    def __init__(self, path: str, namespace: str | None = None, *, create: bool = True) -> None:
        self.path = path
        self.namespace = namespace or "main"
        self.url = f"duckdb://{path}"
        if path != ":memory:":
            if not create and not Path(path).is_file():
                raise InputError(
                    "no such store: nothing has run against it yet",
                    file=path,
                    hint=NO_STORE_HINT,
                )
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _check_duckdb_file(path)
        try:
            self.conn = duckdb.connect(path)
        except duckdb.Error as exc:
            raise db_fault(exc, self.url) from None
        self._aux = self.conn.cursor()
        self._in_tx = False
        if (
            not create
            and not self.conn.execute(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = ?", [self.namespace]
            ).fetchall()
        ):
            self.conn.close()
            raise InputError(
                f"no schema {self.namespace!r} in the store at {path}",
                key="store.schema",
                hint=NO_STORE_HINT,
            )
        self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.namespace)}")
        for stmt in self.meta_ddl():
            self.conn.execute(stmt)

    def _aux_execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._aux.execute(sql, list(params))

    def _aux_query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._aux.execute(sql, list(params)).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[DuckDBWriter]:
        if self._in_tx:
            raise RuntimeError("a batch transaction is already open on this store")
        self.conn.begin()
        self._in_tx = True
        try:
            yield DuckDBWriter(self)
        except BaseException:
            self.conn.rollback()
            raise
        else:
            self.conn.commit()
        finally:
            self._in_tx = False

    def close(self) -> None:
        for c in (self._aux, self.conn):
            with suppress(duckdb.Error):  # already closed
                c.close()


def _arrow_rows(types: Sequence[DataType], rows: Sequence[tuple]) -> pa.Table:
    """Typed row tuples as an Arrow table of columns c0..cN (decimals as text)."""
    arrays = []
    for i, dt in enumerate(types):
        values = [r[i] for r in rows]
        if dt is DataType.DECIMAL:
            values = [None if v is None else str(v) for v in values]
        arrays.append(pa.array(values, type=_ARROW[dt]))
    return pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(types))])


class DuckDBWriter(WriterBase):
    def __init__(self, store: DuckDBStore) -> None:
        self.store = store
        self.conn = store.conn
        self._n = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, list(params))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.conn.execute(sql, list(params)).fetchall()

    def _insert_arrow(self, table: str, names: Sequence[str], t: pa.Table) -> None:
        """Insert an Arrow table whose columns are c0..cN into ``names`` of ``table``
        (DuckDB casts each value to the column's type, e.g. decimal text to DECIMAL(p, s))."""
        self._n += 1
        view = f"_pw_chunk_{self._n}"
        self.conn.register(view, t)
        try:
            cols = ", ".join(quote(n) for n in names)
            sel = ", ".join(f"c{i}" for i in range(len(names)))
            self.conn.execute(f"INSERT INTO {table} ({cols}) SELECT {sel} FROM {view}")
        finally:
            self.conn.unregister(view)

    @contextmanager
    def _staged(self, names: Sequence[str], rows: Sequence[tuple]) -> Iterator[str]:
        self._n += 1
        view = f"_pw_stage_{self._n}"
        columns = list(zip(*rows, strict=True))
        t = pa.Table.from_arrays(
            [
                pa.array(col, type=pa.int64() if name == "offset" else pa.string())
                for name, col in zip(names, columns, strict=True)
            ],
            names=list(names),
        )
        self.conn.register(view, t)
        try:
            yield view
        finally:
            self.conn.unregister(view)

    def write_typed(
        self, dataset: str, idents: Sequence[str], types: Sequence[DataType], rows: Sequence[tuple]
    ) -> int:
        if not rows:
            return 0
        self._insert_arrow(self.store.qualify(dataset), idents, _arrow_rows(types, rows))
        return len(rows)

    # ---- write dispositions
    def prepare_merge(self, dataset: str, keys: Sequence[str]) -> None:
        """Nothing to prepare: the delete-insert joins on the keys without an index."""

    def merge_typed(
        self,
        dataset: str,
        idents: Sequence[str],
        types: Sequence[DataType],
        rows: Sequence[tuple],
        keys: Sequence[str],
    ) -> tuple[int, int]:
        """Upsert ``rows`` on ``keys`` from an Arrow table (each value cast to its column's
        type): the rows with those keys are deleted and the new ones inserted, in the batch's
        transaction. Returns (inserted, updated)."""
        if not rows:
            return 0, 0
        from ..ddl.duckdb import DuckDB

        d = DuckDB()
        self._n += 1
        view = f"_pw_chunk_{self._n}"
        self.conn.register(view, _arrow_rows(types, rows))
        try:
            t = self.store.qualify(dataset)
            src = ", ".join(
                f"CAST(c{i} AS {d.type_name(dt)}) AS {quote(n)}"
                for i, (n, dt) in enumerate(zip(idents, types, strict=True))
            )
            on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
            source = f"(SELECT {src} FROM {view})"
            updated = int(
                self.conn.execute(
                    f"SELECT count(*) FROM {source} AS s JOIN {t} AS t ON {on}"
                ).fetchone()[0]
            )
            # delete-insert rather than MERGE ... UPDATE: DuckDB (2.0) took 511 s to update
            # 100,000 rows of a 10-column table on disk this way, against about a second to
            # delete them and insert the new rows; the result is the same row per key
            cols = ", ".join(quote(c) for c in idents)
            if updated:
                self.conn.execute(f"DELETE FROM {t} AS t USING {source} AS s WHERE {on}")
            self.conn.execute(f"INSERT INTO {t} ({cols}) SELECT {cols} FROM {source}")
        finally:
            self.conn.unregister(view)
        return len(rows) - updated, updated

    def clear_typed(self, dataset: str) -> int:
        """``replace``: delete the typed table's rows in the batch's transaction."""
        return int(self.conn.execute(f"DELETE FROM {self.store.qualify(dataset)}").fetchone()[0])

    def write_raw(
        self, dataset: str, batch_id: str, offsets: Sequence[int], payloads: Sequence[str]
    ) -> int:
        if not offsets:
            return 0
        t = pa.Table.from_arrays(
            [
                pa.array([batch_id] * len(offsets), type=pa.string()),
                pa.array(offsets, type=pa.int64()),
                pa.array(payloads, type=pa.string()),
            ],
            names=["c0", "c1", "c2"],
        )
        self._insert_arrow(
            self.store.qualify(dataset + "__raw"),
            ["batch_id", "offset", "payload"],
            t,
        )
        return len(offsets)

    def write_quarantine(self, dataset: str, rows: Sequence[QuarantineRow]) -> int:
        if not rows:
            return 0
        cols = [
            ("batch_id", pa.string()),
            ("offset", pa.int64()),
            ("payload", pa.string()),
            ("reason", pa.string()),
            ("message", pa.string()),
            ("column_path", pa.string()),
            ("issues", pa.string()),
            ("schema_version", pa.int64()),
        ]
        attrs = [
            "batch_id",
            "offset",
            "payload",
            "reason",
            "message",
            "column",
            "issues",
            "schema_version",
        ]
        t = pa.Table.from_arrays(
            [
                pa.array([getattr(r, a) for r in rows], type=c[1])
                for a, c in zip(attrs, cols, strict=True)
            ],
            names=[f"c{i}" for i in range(len(cols))],
        )
        self._insert_arrow(
            self.store.qualify(dataset + "__quarantine"),
            [c[0] for c in cols],
            t,
        )
        return len(rows)
