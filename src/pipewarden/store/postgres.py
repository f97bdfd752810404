"""PostgreSQL through psycopg 3: typed rows, raw landing and quarantine go in with binary COPY.

The batch's transaction runs on the main connection; the column types of the COPY come from
the catalog (``pg_attribute``) of the table as it is after the batch's DDL, so the binary
format always matches the server's columns. State, metrics and the run log use a second,
autocommit connection, so a run-log entry survives a batch that was rolled back, and a
connection that died mid-load is replaced on the next call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from decimal import Decimal
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import pq
from psycopg.types.json import JsonbBinaryDumper, JsonBinaryDumper
from psycopg.types.numeric import DecimalBinaryDumper

from .. import columnar
from ..dbfault import db_fault
from ..errors import InputError
from ..redact import redact
from ..schema.types import DataType
from .base import (
    BATCHES,
    DATASETS,
    METRICS,
    NO_STORE_HINT,
    RUNS,
    STATE,
    QuarantineRow,
    SqlStore,
    WriterBase,
    jdump,
    key_index_name,
    quote,
    text_safe,
)


def _json_text(obj: Any) -> str | bytes:
    """Values bound for a jsonb column are JSON text already (``coerce_row``); other objects
    are serialised."""
    if isinstance(obj, str | bytes):
        return obj
    return jdump(obj)


class JsonTextBinaryDumper(JsonbBinaryDumper):
    """jsonb in binary COPY from JSON text, without parsing it in Python."""

    _dumps = _json_text


class JsonTextExactBinaryDumper(JsonBinaryDumper):
    """json (exact text) in binary COPY from JSON text."""

    _dumps = _json_text


class _JsonText(str):
    """Marker type the json/jsonb dumpers are registered for (COPY picks dumpers by oid)."""


class _JsonTextExact(str):
    pass


def _payload_array(payloads: Sequence[str | bytes] | pa.Array | pa.ChunkedArray) -> pa.Array:
    """JSON payloads (text, or the source's UTF-8 bytes, or an Arrow array of either) as one
    Arrow array."""
    if isinstance(payloads, pa.ChunkedArray):
        return payloads.combine_chunks()
    if isinstance(payloads, pa.Array):
        return payloads
    if payloads and type(payloads[0]) is bytes:
        return pa.array(payloads, type=pa.binary())
    return pa.array(payloads, type=pa.string())


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for reports."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return redact(dsn)
    host = info.get("host", "")
    port = info.get("port", "")
    user = info.get("user", "")
    db = info.get("dbname", "")
    return f"postgresql://{user + '@' if user else ''}{host}{':' + str(port) if port else ''}/{db}"


class PostgresStore(SqlStore):
    dialect = "postgres"
    json_type = "jsonb"
    exact_json_type = "json"
    param = "%s"

    def __init__(self, dsn: str, namespace: str | None = None, *, create: bool = True) -> None:
        self.dsn = dsn
        self.namespace = namespace or "public"
        self.url = redact_dsn(dsn)
        self.conn: psycopg.Connection | None = None
        self._aux_conn: psycopg.Connection | None = None
        try:
            self._open(create)
        except psycopg.Error as exc:
            self.close()
            raise db_fault(exc, self.url) from None

    def _open(self, create: bool) -> None:
        """Check the store's namespace and tables; make what is missing. Nothing is written
        when everything is there (a read-only session can list the quarantine). Creation is
        safe under concurrency: it holds an advisory lock of the namespace, and an object a
        run without the lock made at the same moment (23505, 42P06, 42P07) is taken as made."""
        tables = [RUNS, BATCHES, STATE, METRICS, DATASETS]
        there = self._aux_query(
            "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = %s), "
            "(SELECT count(*) FROM unnest(%s::text[]) AS t(name) "
            "WHERE to_regclass(format('%%I.%%I', %s::text, t.name)) IS NOT NULL)",
            (self.namespace, tables, self.namespace),
        )[0]
        if there[0] and there[1] == len(tables):
            return
        if not create:  # a command that only reads never makes a store
            what = "no pipewarden store in schema" if there[0] else "no schema"
            raise InputError(
                f"{what} {self.namespace!r} in {self.url}: nothing has run against it",
                key="store.schema",
                hint=NO_STORE_HINT,
            )
        statements = [f"CREATE SCHEMA IF NOT EXISTS {quote(self.namespace)}", *self.meta_ddl()]
        for attempt in range(3):
            try:
                aux = self._aux()
                with aux.transaction():
                    aux.execute(
                        "SELECT pg_advisory_xact_lock(hashtext(%s))",
                        (f"pipewarden:{self.namespace}",),
                    )
                    for stmt in statements:
                        aux.execute(stmt)
                return
            except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateObject,
                    psycopg.errors.DuplicateSchema, psycopg.errors.DuplicateTable):  # fmt: skip
                if attempt == 2:
                    raise

    # ---- connections
    def _connect(self, autocommit: bool) -> psycopg.Connection:
        try:
            conn = psycopg.connect(
                self.dsn, autocommit=autocommit, application_name="pipewarden", connect_timeout=10
            )
        except psycopg.Error as exc:
            raise db_fault(exc, self.url) from None
        conn.adapters.register_dumper(_JsonText, JsonTextBinaryDumper)
        conn.adapters.register_dumper(_JsonTextExact, JsonTextExactBinaryDumper)
        return conn

    def _aux(self) -> psycopg.Connection:
        if self._aux_conn is None or self._aux_conn.closed or self._aux_conn.broken:
            self._aux_conn = self._connect(autocommit=True)
        return self._aux_conn

    def _main(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.conn = self._connect(autocommit=False)
        return self.conn

    def backend_pid(self) -> int:
        """The server process of the batch connection (for tests that kill it)."""
        return self._main().info.backend_pid

    def aux_backend_pid(self) -> int:
        """The server process of the state connection (for tests that end it)."""
        return self._aux().info.backend_pid

    def _on_aux(self, call):
        """``call(conn)`` on the autocommit connection. The connection sits idle between
        batches; when the server ended it meanwhile (a restart, pg_terminate_backend, an
        idle timeout), the call is made again once on a new connection."""
        conn = self._aux()
        try:
            return call(conn)
        except psycopg.OperationalError:
            if not conn.broken:
                raise
            conn.close()
            return call(self._aux())

    def _aux_execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._on_aux(lambda c: c.execute(sql, params))

    def _aux_query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._on_aux(lambda c: c.execute(sql, params).fetchall())

    @contextmanager
    def transaction(self) -> Iterator[PostgresWriter]:
        conn = self._main()
        tx = conn.transaction()
        try:
            tx.__enter__()  # BEGIN
        except psycopg.OperationalError:
            if not conn.broken:
                raise
            # the idle connection was ended between batches: nothing was sent yet, so
            # begin again on a new one
            conn.close()
            conn = self._main()
            tx = conn.transaction()
            tx.__enter__()
        try:
            yield PostgresWriter(self, conn)
        except BaseException as exc:
            # a rollback that fails with the connection: the batch is gone anyway
            with suppress(psycopg.Error):
                tx.__exit__(type(exc), exc, exc.__traceback__)
            if conn.broken:  # the server went away: drop it, reconnect next time
                conn.close()
            raise
        else:
            tx.__exit__(None, None, None)

    def close(self) -> None:
        for c in (self.conn, self._aux_conn):
            if c is not None and not c.closed:
                c.close()


class PostgresWriter(WriterBase):
    def __init__(self, store: PostgresStore, conn: psycopg.Connection) -> None:
        self.store = store
        self.conn = conn
        self._types: dict[str, dict[str, int]] = {}
        self._n = 0  # staging tables made in this transaction
        self._stage_name: str | None = None  # the merge's staging table, once made

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, params)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    def lock_dataset(self, dataset: str) -> None:
        """A transaction-scoped advisory lock per (namespace, dataset): two runs of one dataset
        (two first loads creating its tables, two batches evolving its schema) take turns
        instead of failing on each other's DDL; runs of other datasets do not wait."""
        self.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            (f"pipewarden:{self.store.namespace}.{dataset}",),
        )

    def column_oids(self, table: str) -> dict[str, int]:
        """Column name -> type oid of a table in the namespace, as the server has it now."""
        if table not in self._types:
            rows = self.query(
                "SELECT a.attname, a.atttypid FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped",
                (self.store.namespace, table),
            )
            self._types[table] = {r[0]: int(r[1]) for r in rows}
        return self._types[table]

    def forget_types(self) -> None:
        """Call after DDL changed a table inside the transaction."""
        self._types.clear()

    @contextmanager
    def _staged(self, names: Sequence[str], rows: Sequence[tuple]) -> Iterator[str]:
        self._n += 1
        name = f"_pw_stage_{self._n}"
        cols = ", ".join(f"{quote(n)} {'bigint' if n == 'offset' else 'text'}" for n in names)
        self.conn.execute(f"CREATE TEMPORARY TABLE {name} ({cols}) ON COMMIT DROP")
        listed = ", ".join(quote(n) for n in names)
        with self.conn.cursor() as cur, cur.copy(f"COPY {name} ({listed}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        yield name
        # after a failure the transaction rolls back, and the table with it
        self.conn.execute(f"DROP TABLE {name}")

    def _oids_of(self, table: str, names: Sequence[str]) -> list[int]:
        oids = self.column_oids(table)
        try:
            return [oids[n] for n in names]
        except KeyError as exc:
            raise RuntimeError(f"column {exc.args[0]!r} is not in table {table!r}") from None

    def copy_rows(
        self, table: str, names: Sequence[str], rows: Sequence[tuple], into: str | None = None
    ) -> int:
        """Binary COPY of ``rows`` (tuples in the order of ``names``) into ``table``, or into
        ``into`` (a table of the same columns, e.g. a staging copy) with ``table``'s types."""
        if not rows:
            return 0
        types = self._oids_of(table, names)
        cols = ", ".join(quote(n) for n in names)
        binary = self._binary_ok(types)
        fmt = " (FORMAT BINARY)" if binary else ""
        target = into or self.store.qualify(table)
        with (
            self.conn.cursor() as cur,
            cur.copy(f"COPY {target} ({cols}) FROM STDIN{fmt}") as copy,
        ):
            if binary:
                copy.set_types(types)
            write = copy.write_row
            for row in rows:
                write(row)
        return len(rows)

    def copy_arrow(
        self, table: str, names: Sequence[str], t: pa.Table, into: str | None = None
    ) -> int:
        """Binary COPY of an Arrow table (columns in the order of ``names``) into ``table`` (or
        ``into``), encoded column by column (:func:`pipewarden.columnar.copy_binary`): no
        Python tuple per row. A column of a type the encoder does not write (someone altered
        it) takes the row path."""
        if not t.num_rows:
            return 0
        types = self._oids_of(table, names)
        if not set(types) <= columnar.SUPPORTED_OIDS:
            numeric = [oid == columnar.OID_NUMERIC for oid in types]
            rows = [
                tuple(
                    Decimal(v) if num and v is not None else v
                    for v, num in zip(r, numeric, strict=True)
                )
                for r in zip(*(c.to_pylist() for c in t.columns), strict=True)
            ]
            return self.copy_rows(table, names, rows, into)
        cols = ", ".join(quote(n) for n in names)
        target = into or self.store.qualify(table)
        dump = DecimalBinaryDumper(Decimal).dump
        with (
            self.conn.cursor() as cur,
            cur.copy(f"COPY {target} ({cols}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.write(columnar.COPY_HEADER)
            for part in columnar.copy_binary(t, types, dump):
                copy.write(part)
            copy.write(columnar.COPY_TRAILER)
        return t.num_rows

    def _binary_ok(self, oids: Sequence[int]) -> bool:
        """Binary COPY needs a binary dumper for every column type; a column someone altered
        to a type psycopg cannot dump in binary (e.g. tsvector) falls back to text COPY."""
        for oid in oids:
            try:
                self.conn.adapters.get_dumper_by_oid(oid, pq.Format.BINARY)
            except psycopg.ProgrammingError:
                return False
        return True

    def write_typed(
        self, dataset: str, idents: Sequence[str], types: Sequence[DataType], rows: Any
    ) -> int:
        if isinstance(rows, pa.Table):
            return self.copy_arrow(dataset, idents, rows)
        return self.copy_rows(dataset, idents, rows)

    # ---- write dispositions
    def prepare_merge(self, dataset: str, keys: Sequence[str]) -> None:
        """Make sure the typed table has a unique index on exactly ``keys`` (``INSERT ... ON
        CONFLICT`` needs one); a primary key or unique index someone made on them counts."""
        found = self.query(
            "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND i.indisunique AND i.indpred IS NULL "
            "AND i.indexprs IS NULL AND i.indnkeyatts = %s AND (SELECT array_agg(a.attname::text "
            "ORDER BY a.attname) FROM pg_attribute a WHERE a.attrelid = c.oid "
            "AND a.attnum = ANY(i.indkey)) = %s::text[]",
            (self.store.namespace, dataset, len(keys), sorted(keys)),
        )
        if found:
            return
        name = key_index_name(dataset)
        cols = ", ".join(quote(k) for k in keys)
        self.execute(f"CREATE UNIQUE INDEX {quote(name)} ON {self.store.qualify(dataset)} ({cols})")

    def merge_typed(
        self,
        dataset: str,
        idents: Sequence[str],
        types: Sequence[DataType],
        rows: Any,
        keys: Sequence[str],
    ) -> tuple[int, int]:
        """Upsert ``rows`` (tuples or an Arrow table) on ``keys``: binary COPY into a staging
        table, then one ``INSERT ... SELECT ... ON CONFLICT (keys) DO UPDATE``. Returns
        (inserted, updated)."""
        n = rows.num_rows if isinstance(rows, pa.Table) else len(rows)
        if not n:
            return 0, 0
        stage = self._merge_stage(dataset)
        self.conn.execute(f"TRUNCATE {stage}")
        if isinstance(rows, pa.Table):
            self.copy_arrow(dataset, idents, rows, into=stage)
        else:
            self.copy_rows(dataset, idents, rows, into=stage)
        t = self.store.qualify(dataset)
        on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
        updated = int(self.query(f"SELECT count(*) FROM {stage} s JOIN {t} t ON {on}")[0][0])
        cols = ", ".join(quote(c) for c in idents)
        rest = [c for c in idents if c not in keys]
        action = (
            "DO UPDATE SET " + ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in rest)
            if rest
            else "DO NOTHING"
        )
        conflict = ", ".join(quote(k) for k in keys)
        self.conn.execute(
            f"INSERT INTO {t} ({cols}) SELECT {cols} FROM {stage} ON CONFLICT ({conflict}) {action}"
        )
        return n - updated, updated

    def _merge_stage(self, dataset: str) -> str:
        """A temporary copy of the typed table's columns, made once per transaction."""
        name = self._stage_name
        if name is None:
            name = self._stage_name = "_pw_merge_stage"
            self.conn.execute(
                f"CREATE TEMPORARY TABLE {name} (LIKE {self.store.qualify(dataset)}) ON COMMIT DROP"
            )
        return name

    def clear_typed(self, dataset: str) -> int:
        """``replace``: delete the typed table's rows in the batch's transaction (readers see
        the old rows until it commits)."""
        cur = self.conn.execute(f"DELETE FROM {self.store.qualify(dataset)}")
        return cur.rowcount

    def write_raw(self, dataset: str, batch_id: str, offsets: Sequence[int], payloads: Any) -> int:
        if not offsets:
            return 0
        t = pa.Table.from_arrays(
            [
                pa.array([batch_id] * len(offsets), type=pa.string()),
                pa.array(offsets, type=pa.int64()),
                _payload_array(payloads),
            ],
            names=["c0", "c1", "c2"],
        )
        return self.copy_arrow(dataset + "__raw", ("batch_id", "offset", "payload"), t)

    def write_quarantine(self, dataset: str, rows: Sequence[QuarantineRow]) -> int:
        names = (
            "batch_id",
            "offset",
            "payload",
            "reason",
            "message",
            "column_path",
            "issues",
            "schema_version",
        )
        tuples = [
            (
                r.batch_id,
                r.offset,
                r.payload,
                text_safe(r.reason),
                text_safe(r.message),
                text_safe(r.column),
                r.issues,
                r.schema_version,
            )
            for r in rows
        ]
        return self.copy_rows(dataset + "__quarantine", names, tuples)
