"""DuckDB: the embedded default store (one file, no server).

Bulk loads go through Arrow. Memory stays bounded whatever the size of a batch: DuckDB keeps
the rows that many ``INSERT`` statements of one transaction append (its transaction-local
storage, measured at about 0.35 KB per row even under a ``memory_limit``), but streams one
``INSERT ... SELECT`` from an Arrow reader to the database file as it goes. So the writer spools
the chunks of each table (in memory up to :data:`SPOOL_MEMORY_BYTES`, then in an Arrow IPC
stream file beside the database) and inserts each table's rows with one statement, when the
transaction reads or writes anything else and before it commits. The connection gets a
``memory_limit`` (``store.memory_limit``, :data:`DEFAULT_MEMORY_LIMIT`): DuckDB keeps the
blocks a streamed ``INSERT`` writes in its cache (about 280 MB after 1M rows of bench/run's
file under a 512MB limit, growing with the rows), up to 80% of the machine's memory without a
limit; the limit bounds that, so the peak does not depend on the size of the batch. State, metrics and
the run log use a second connection to the same database, so they commit on their own.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..columnar import ARROW as _ARROW
from ..dbfault import db_fault
from ..errors import InputError
from ..schema.types import DataType
from .base import NO_STORE_HINT, QuarantineRow, SqlStore, WriterBase, quote

SPOOL_MEMORY_BYTES = 64 * 2**20  # chunks kept in memory before the spool goes to a file
DEFAULT_MEMORY_LIMIT = "128MB"
_SPOOL_PREFIX = ".pw-spool-"


MERGE_SOURCE = "_pw_merge_chunk"  # the name a merge reads its chunk under (see prepare_merge)


def _spool_dir(db_path: str) -> Path:
    """Where spool files of a database go: beside it (its disk is sized for the data)."""
    if db_path == ":memory:":
        return Path(tempfile.gettempdir())
    return Path(db_path).resolve().parent


def _remove_stale_spools(db_path: str) -> None:
    """Spool folders a killed process left beside this database. DuckDB lets one process
    open a database file for writing, so while we hold it no other process spools for it."""
    if db_path == ":memory:":
        return
    prefix = f"{_SPOOL_PREFIX}{Path(db_path).name}-"
    with suppress(OSError):
        for entry in _spool_dir(db_path).iterdir():
            if entry.name.startswith(prefix) and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)


class _Spool:
    """The pending rows of one table: Arrow tables in memory, then an IPC stream file."""

    def __init__(self, table: str, names: Sequence[str], schema: pa.Schema) -> None:
        self.table, self.names, self.schema = table, list(names), schema
        self.chunks: list[pa.Table] = []
        self.nbytes = 0
        self.path: str | None = None
        self._sink: Any = None
        self._writer: Any = None

    def add(self, t: pa.Table, writer: DuckDBWriter) -> None:
        if self._writer is not None:
            self._writer.write_table(t)
            return
        self.chunks.append(t)
        self.nbytes += t.nbytes
        if writer.spooled_bytes() > SPOOL_MEMORY_BYTES:
            self.path = os.path.join(writer.spool_folder(), f"{id(self)}.arrows")
            self._sink = pa.OSFile(self.path, "wb")
            self._writer = pa.ipc.new_stream(self._sink, self.schema)
            for c in self.chunks:
                self._writer.write_table(c)
            self.chunks, self.nbytes = [], 0

    def reader(self) -> pa.RecordBatchReader:
        if self._writer is None:
            batches = (b for c in self.chunks for b in c.to_batches())
            return pa.RecordBatchReader.from_batches(self.schema, batches)
        self._writer.close()
        self._sink.close()
        self._writer = None
        return pa.ipc.open_stream(pa.OSFile(self.path, "rb"))

    def discard(self) -> None:
        if self._writer is not None:
            with suppress(Exception):
                self._writer.close()
                self._sink.close()
        if self.path:
            with suppress(OSError):
                os.unlink(self.path)
        self.chunks = []


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


@functools.cache
def _zstd_columns() -> bool:
    """True when this DuckDB stores a column compressed as it is told (``USING COMPRESSION
    zstd``; DuckDB 1.2 and later)."""
    try:
        with duckdb.connect(":memory:") as con:
            con.execute("CREATE TABLE t (p JSON USING COMPRESSION zstd)")
    except duckdb.Error:
        return False
    return True


@functools.cache
def _json_extension() -> Callable[[pa.DataType], pa.DataType] | None:
    """Arrow's JSON extension type (``arrow.json``, pyarrow 19 and later) where this DuckDB
    reads it as JSON, else None. Text bound for a JSON column is parsed again by DuckDB to
    check it (a ``VARCHAR`` to ``JSON`` cast); an ``arrow.json`` column arrives as JSON as it
    is. The store's JSON text is written by orjson, or is a line orjson parsed, so it needs
    no second check: 200,000 raw payloads of bench/run's file took 0.243-0.269 CPU-s to
    insert as text and 0.205-0.209 as ``arrow.json``."""
    make = getattr(pa, "json_", None)
    if make is None:
        return None
    try:
        probe = pa.table({"j": pa.ExtensionArray.from_storage(make(), pa.array(["{}"]))})
        with duckdb.connect(":memory:") as con:
            con.register("probe", probe)
            got = con.execute("SELECT typeof(j), j->>'$' FROM probe").fetchall()
    except Exception:  # noqa: BLE001 (an older DuckDB that refuses the type: text it is)
        return None
    return make if got == [("JSON", "{}")] else None


def _as_json(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """``arr`` (JSON text) typed as Arrow's JSON extension where DuckDB takes it
    (:func:`_json_extension`); as it is otherwise."""
    make = _json_extension()
    if make is None or not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        return arr
    kind = make(arr.type)
    if isinstance(arr, pa.ChunkedArray):
        return pa.chunked_array(
            [pa.ExtensionArray.from_storage(kind, c) for c in arr.chunks], type=kind
        )
    return pa.ExtensionArray.from_storage(kind, arr)


class DuckDBStore(SqlStore):
    dialect = "duckdb"
    json_type = "JSON"
    param = "?"

    def raw_payload_type(self) -> str:
        """The raw landing's payloads are compressed with zstd: DuckDB's own choice for text
        (dictionary + FSST) took 0.35 CPU-s to store 200,000 rows of bench/run's file, zstd
        0.21, and its file is half the size (7 against 15 MB). The raw landing is written
        once a row and read seldom (a replay, the anomaly step's training sample)."""
        return "JSON USING COMPRESSION zstd" if _zstd_columns() else "JSON"

    def __init__(
        self,
        path: str,
        namespace: str | None = None,
        *,
        create: bool = True,
        memory_limit: str | None = None,
    ) -> None:
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
        try:
            self.conn.execute(f"SET memory_limit = '{memory_limit or DEFAULT_MEMORY_LIMIT}'")
        except duckdb.Error as exc:
            self.conn.close()
            raise InputError(
                f"store.memory_limit {memory_limit!r} is not a memory size ({exc})",
                key="store.memory_limit",
                hint="e.g. 512MB or 2GB",
            ) from None
        _remove_stale_spools(path)
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
        writer = DuckDBWriter(self)
        try:
            yield writer
            writer.flush()
        except BaseException:
            writer.discard()
            self.conn.rollback()
            raise
        else:
            self.conn.commit()
        finally:
            writer.discard()
            self._in_tx = False

    def close(self) -> None:
        for c in (self._aux, self.conn):
            with suppress(duckdb.Error):  # already closed
                c.close()


def _arrow_rows(types: Sequence[DataType], rows: Sequence[tuple] | pa.Table) -> pa.Table:
    """Typed row tuples as an Arrow table of columns c0..cN (decimals as text); a table of
    typed columns (``pipewarden.columnar.typed_table``) is taken as it is."""
    if isinstance(rows, pa.Table):
        return rows
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
        self._spools: dict[tuple[str, tuple[str, ...]], _Spool] = {}
        self._folder: str | None = None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.flush()
        self.conn.execute(sql, list(params))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        self.flush()
        return self.conn.execute(sql, list(params)).fetchall()

    # ---- the spool: one INSERT per table and transaction
    def spooled_bytes(self) -> int:
        return sum(sp.nbytes for sp in self._spools.values())

    def spool_folder(self) -> str:
        if self._folder is None:
            prefix = f"{_SPOOL_PREFIX}{Path(self.store.path).name}-"
            self._folder = tempfile.mkdtemp(prefix=prefix, dir=_spool_dir(self.store.path))
        return self._folder

    def _insert_arrow(self, table: str, names: Sequence[str], t: pa.Table) -> None:
        """Add an Arrow table whose columns are c0..cN to the rows bound for ``names`` of
        ``table``; they are inserted by :meth:`flush` (DuckDB casts each value to the
        column's type, e.g. decimal text to DECIMAL(p, s))."""
        key = (table, tuple(names))
        sp = self._spools.get(key)
        if sp is not None and sp.schema != t.schema:
            self._flush_one(key)
            sp = None
        if sp is None:
            sp = self._spools[key] = _Spool(table, names, t.schema)
        sp.add(t, self)

    def flush(self) -> None:
        """Insert every spooled row: one ``INSERT ... SELECT`` per table, streamed."""
        for key in list(self._spools):
            self._flush_one(key)

    def _flush_one(self, key: tuple[str, tuple[str, ...]]) -> None:
        sp = self._spools.pop(key)
        try:
            self._n += 1
            view = f"_pw_chunk_{self._n}"
            self.conn.register(view, sp.reader())
            try:
                cols = ", ".join(quote(n) for n in sp.names)
                sel = ", ".join(f"c{i}" for i in range(len(sp.names)))
                self.conn.execute(f"INSERT INTO {sp.table} ({cols}) SELECT {sel} FROM {view}")
            finally:
                self.conn.unregister(view)
        finally:
            sp.discard()

    def discard(self) -> None:
        """Drop what is spooled (the transaction rolls back) and the spool folder."""
        for sp in self._spools.values():
            sp.discard()
        self._spools.clear()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

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
        t = _arrow_rows(types, rows)
        if not t.num_rows:
            return 0
        for i, dt in enumerate(types):
            if dt is DataType.JSON:
                t = t.set_column(i, f"c{i}", _as_json(t.column(i)))
        self._insert_arrow(self.store.qualify(dataset), idents, t)
        return t.num_rows

    # ---- write dispositions
    def prepare_merge(self, dataset: str, keys: Sequence[str]) -> None:
        """The delete-insert joins on the keys without an index. It reads each chunk by
        DuckDB's replacement scan under the name ``MERGE_SOURCE``, and DuckDB looks a name up
        in its catalog first: a table or view of that name, made by hand in the store, would be
        read instead of the chunk. Refused here, once a batch and before anything is written
        (names starting ``_pw_`` are the store's own)."""
        found = self.conn.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
            "WHERE lower(table_name) = ? AND database_name IN (current_database(), 'temp') "
            "UNION ALL SELECT schema_name || '.' || view_name FROM duckdb_views() "
            "WHERE lower(view_name) = ? AND database_name IN (current_database(), 'temp') "
            "AND NOT internal",
            [MERGE_SOURCE, MERGE_SOURCE],
        ).fetchall()
        if found:
            from ..errors import InputError

            raise InputError(
                f"the store has a table or view named {found[0][0]}: a merge reads each chunk "
                f"under the name {MERGE_SOURCE}, which it would shadow",
                key="write_disposition",
                hint=f"rename or drop {found[0][0]}; names starting _pw_ are the store's own",
            )

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
        self.flush()  # rows spooled earlier in the transaction are in the table first
        chunk = _arrow_rows(types, rows)
        if not chunk.num_rows:
            return 0, 0
        from ..ddl.duckdb import DuckDB

        d = DuckDB()
        # the chunk is read by name from this frame (DuckDB's replacement scan of a Python
        # variable), not registered: an Arrow table registered on the connection stays
        # referenced until the transaction ends, even once unregistered, so a merge held
        # every chunk of its batch (1.3 GB at 4M rows of bench/run's file)
        _pw_merge_chunk = chunk  # noqa: F841 (read by DuckDB's replacement scan)
        view = MERGE_SOURCE
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
            ).fetchall()[0][0]
        )
        # delete-insert rather than MERGE ... UPDATE: DuckDB (2.0) took 511 s to update
        # 100,000 rows of a 10-column table on disk this way, against about a second to
        # delete them and insert the new rows; the result is the same row per key
        cols = ", ".join(quote(c) for c in idents)
        if updated:
            self.conn.execute(f"DELETE FROM {t} AS t USING {source} AS s WHERE {on}").fetchall()
        self.conn.execute(f"INSERT INTO {t} ({cols}) SELECT {cols} FROM {source}").fetchall()
        return chunk.num_rows - updated, updated

    def clear_typed(self, dataset: str) -> int:
        """``replace``: delete the typed table's rows in the batch's transaction."""
        self.flush()
        return int(self.conn.execute(f"DELETE FROM {self.store.qualify(dataset)}").fetchone()[0])

    def write_raw(self, dataset: str, batch_id: str, offsets: Sequence[int], payloads: Any) -> int:
        if not offsets:
            return 0
        t = pa.Table.from_arrays(
            [
                pa.array([batch_id] * len(offsets), type=pa.string()),
                pa.array(offsets, type=pa.int64()),
                _as_json(
                    payloads
                    if isinstance(payloads, pa.Array | pa.ChunkedArray)
                    else pa.array(payloads, type=pa.string())
                ),
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
