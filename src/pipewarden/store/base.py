"""The interface a store offers to the run and to the steps.

Besides the tables of a dataset (raw landing as JSON, typed table, quarantine, schema history,
run log), a store keeps small pieces of state for the steps: ``StateStore``.

Tables, all in the store's namespace (a schema):

- ``<dataset>``: the typed table (created and altered by the schema sentinel's DDL);
- ``<dataset>__raw``: raw landing, one row per loaded record as JSON(B);
- ``<dataset>__quarantine``: every record that was not loaded, with its original payload;
- ``_pw_schema_history``: schema versions (owned by :mod:`pipewarden.schema.history`);
- ``_pw_batches``: batches already loaded (idempotency);
- ``_pw_runs``: the run log, one entry per batch and run;
- ``_pw_datasets``: the datasets this store holds;
- ``_pw_state`` / ``_pw_metrics``: the :class:`StateStore` methods.

:class:`SqlStore` holds the SQL both dialects share; ``duckdb.py`` and ``postgres.py`` add the
connection handling and the bulk load.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from ..batch import json_bytes, json_loads
from ..errors import InputError
from ..schema.types import DataType

RUNS = "_pw_runs"
BATCHES = "_pw_batches"
STATE = "_pw_state"
NO_STORE_HINT = (
    "check the store (--store, $PIPEWARDEN_STORE, or the config's store and schema); it is "
    "created by the first run, or by `anomaly score --circuit-breaker`"
)
METRICS = "_pw_metrics"
DATASETS = "_pw_datasets"
HISTORY = "_pw_schema_history"
COMPANIONS = ("__raw", "__quarantine", "__imputed")  # suffixes of a dataset's own tables


def dataset_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a dataset (it would be one of the store's tables, or a
    companion of another dataset's), or None."""
    low = name.lower()
    if low.startswith("_pw_"):
        return "names starting with _pw_ are the store's own tables"
    if low.endswith(COMPANIONS):
        return (
            "it ends like the companion tables of another dataset (__raw, __quarantine, __imputed)"
        )
    return None


QUARANTINE_STATUSES = ("pending", "replayed")


def key_index_name(dataset: str) -> str:
    """The unique index a merge makes on the primary key (within PostgreSQL's 63 bytes)."""
    from ..ddl.postgres import Postgres

    return Postgres().truncate(dataset + "__pkey", 63)


class StateStore(Protocol):
    """Per-dataset key/value state and a metrics history, kept in the store."""

    def load_state(self, dataset: str, key: str) -> dict[str, Any] | None: ...

    def state_datasets(self, key: str) -> list[str]: ...

    def save_state(self, dataset: str, key: str, value: dict[str, Any]) -> None: ...

    def append_metrics(
        self, dataset: str, batch_id: str, kind: str, metrics: dict[str, Any]
    ) -> None: ...

    def metrics_history(self, dataset: str, kind: str, limit: int = 100) -> list[dict[str, Any]]:
        """The ``metrics`` dicts of the last ``limit`` batches of that kind, oldest first."""
        ...


class MemoryStateStore:
    """A StateStore in memory: for the library API and for tests of steps."""

    def __init__(self) -> None:
        self._state: dict[tuple[str, str], dict[str, Any]] = {}
        self._metrics: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def load_state(self, dataset: str, key: str) -> dict[str, Any] | None:
        value = self._state.get((dataset, key))
        return dict(value) if value is not None else None

    def save_state(self, dataset: str, key: str, value: dict[str, Any]) -> None:
        self._state[(dataset, key)] = dict(value)

    def state_datasets(self, key: str) -> list[str]:
        return sorted(d for d, k in self._state if k == key)

    def state_items(self, prefix: str) -> list[tuple[str, str, dict[str, Any]]]:
        return sorted((d, k, dict(v)) for (d, k), v in self._state.items() if k.startswith(prefix))

    def delete_state(self, dataset: str, key: str) -> int:
        return 1 if self._state.pop((dataset, key), None) is not None else 0

    def append_metrics(
        self, dataset: str, batch_id: str, kind: str, metrics: dict[str, Any]
    ) -> None:
        self._metrics.setdefault((dataset, kind), []).append(dict(metrics))

    def metrics_history(self, dataset: str, kind: str, limit: int = 100) -> list[dict[str, Any]]:
        return [dict(m) for m in self._metrics.get((dataset, kind), [])[-limit:]]


def jdump(value: Any) -> str:
    """JSON text for a payload or a report (dates and decimals as strings)."""
    return json_bytes(value).decode()


def jload(value: Any) -> Any:
    """Parse a JSON column value (drivers return text or already-parsed objects)."""
    if value is None or isinstance(value, dict | list):
        return value
    return json_loads(value)  # exact beyond 64 bits, as the batch was read


def text_safe(value: str | None) -> str | None:
    """Text for a TEXT column: U+0000 (which PostgreSQL's text cannot hold) becomes U+FFFD."""
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


def quote(name: str) -> str:
    """A double-quoted SQL identifier: the name stays data, whatever characters it holds."""
    if "\x00" in name:
        raise ValueError("identifier contains a NUL character")
    return '"' + name.replace('"', '""') + '"'


NAMESPACE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass
class QuarantineRow:
    """One record held back: its original payload and why."""

    batch_id: str
    offset: int  # 0-based index of the record in its source
    payload: str  # the original record as JSON text
    reason: str  # first reason code
    message: str  # first reason's message (never a raw PII value)
    column: str | None  # column name or JSON path of the first reason
    issues: str  # every reason, as a JSON list of RowIssue dicts
    schema_version: int


class BatchWriter(Protocol):
    """What the run writes inside the one transaction of a batch."""

    conn: Any  # the driver connection (psycopg or duckdb), for the schema history

    def write_typed(
        self, dataset: str, idents: Sequence[str], types: Sequence[DataType], rows: Any
    ) -> int:
        """``rows``: typed row tuples, or an Arrow table of typed columns c0..cN
        (``pipewarden.columnar.typed_table``)."""
        ...

    def write_raw(self, dataset: str, batch_id: str, offsets: Sequence[int], payloads: Any) -> int:
        """``payloads``: the rows' JSON texts, or an Arrow string array of them
        (``pipewarden.batch.json_array``)."""
        ...

    def write_quarantine(self, dataset: str, rows: Sequence[QuarantineRow]) -> int: ...

    def mark_done(self, dataset: str, batch_id: str, info: dict[str, Any]) -> None: ...


class Store(StateStore, Protocol):
    """A warehouse the run loads into: DuckDB (embedded) or PostgreSQL."""

    dialect: str  # "duckdb" | "postgres"
    namespace: str

    def transaction(self) -> Any:
        """Context manager yielding a :class:`BatchWriter`; commits on exit, rolls back on error."""
        ...

    def is_done(self, dataset: str, batch_id: str) -> dict[str, Any] | None: ...

    def log_run(self, entry: dict[str, Any]) -> None: ...

    def quarantine_rows(
        self,
        dataset: str,
        status: str | None = None,
        reason: str | None = None,
        limit: int | None = None,
        *,
        with_payload: bool = False,
        after: tuple[Any, str, int] | None = None,
    ) -> list[dict[str, Any]]: ...

    def datasets(self) -> list[str]: ...

    def close(self) -> None: ...


class SqlStore:
    """SQL shared by the dialects. Subclasses set ``dialect``, ``json_type``, ``param``, and
    implement ``_aux_execute``/``_aux_query`` (autocommit statements outside a batch) and
    ``transaction()``."""

    dialect = ""
    json_type = "JSON"
    # the quarantine keeps the original payload exactly (PostgreSQL: json, which accepts any
    # JSON text, e.g. \u0000, that jsonb refuses)
    exact_json_type = "JSON"
    timestamp_type = "TIMESTAMPTZ"
    param = "?"
    namespace = ""

    # ---- names
    def qualify(self, table: str) -> str:
        return f"{quote(self.namespace)}.{quote(table)}"

    def sql(self, text: str) -> str:
        """Our SQL is written with ``?`` placeholders; psycopg wants ``%s``."""
        return text if self.param == "?" else text.replace("?", self.param)

    # ---- connection helpers (subclasses)
    def _aux_execute(self, sql: str, params: Sequence[Any] = ()) -> None:  # pragma: no cover
        raise NotImplementedError

    def _aux_query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:  # pragma: no cover
        raise NotImplementedError

    # ---- DDL of the store's own tables
    def meta_ddl(self) -> list[str]:
        j, ts = self.json_type, self.timestamp_type
        return [
            f"CREATE TABLE IF NOT EXISTS {self.qualify(RUNS)} ("
            "run_id TEXT NOT NULL, dataset TEXT NOT NULL, batch_id TEXT, source TEXT, "
            "rows_read BIGINT NOT NULL DEFAULT 0, rows_loaded BIGINT NOT NULL DEFAULT 0, "
            "rows_quarantined BIGINT NOT NULL DEFAULT 0, decision TEXT, status TEXT NOT NULL, "
            f"started_at {ts}, finished_at {ts}, report {self.exact_json_type})",
            f"CREATE TABLE IF NOT EXISTS {self.qualify(BATCHES)} ("
            "dataset TEXT NOT NULL, batch_id TEXT NOT NULL, source TEXT, run_id TEXT, "
            "rows_read BIGINT NOT NULL, rows_loaded BIGINT NOT NULL, "
            "rows_quarantined BIGINT NOT NULL, schema_version BIGINT, "
            f"loaded_at {ts} NOT NULL, PRIMARY KEY (dataset, batch_id))",
            f"CREATE TABLE IF NOT EXISTS {self.qualify(STATE)} ("
            f"dataset TEXT NOT NULL, key TEXT NOT NULL, value {j} NOT NULL, "
            f"updated_at {ts} NOT NULL, PRIMARY KEY (dataset, key))",
            f"CREATE TABLE IF NOT EXISTS {self.qualify(METRICS)} ("
            "seq BIGINT NOT NULL, dataset TEXT NOT NULL, batch_id TEXT, kind TEXT NOT NULL, "
            f"metrics {j} NOT NULL, recorded_at {ts} NOT NULL, PRIMARY KEY (dataset, kind, seq))",
            f"CREATE TABLE IF NOT EXISTS {self.qualify(DATASETS)} ("
            f"dataset TEXT PRIMARY KEY, created_at {ts} NOT NULL)",
        ]

    def raw_payload_type(self) -> str:
        """The type of the raw landing's ``payload`` column (with its storage, where the
        dialect says how to store it)."""
        return self.json_type

    def dataset_ddl(self, dataset: str) -> list[str]:
        x, ts = self.exact_json_type, self.timestamp_type
        return [
            f"CREATE TABLE IF NOT EXISTS {self.qualify(dataset + '__raw')} ("
            f'batch_id TEXT NOT NULL, "offset" BIGINT NOT NULL, '
            f"payload {self.raw_payload_type()} NOT NULL, "
            f"loaded_at {ts} NOT NULL DEFAULT now())",
            f"CREATE TABLE IF NOT EXISTS {self.qualify(dataset + '__quarantine')} ("
            f'batch_id TEXT NOT NULL, "offset" BIGINT NOT NULL, payload {x} NOT NULL, '
            "reason TEXT NOT NULL, message TEXT, column_path TEXT, "
            f"issues {x}, schema_version BIGINT, "
            f"quarantined_at {ts} NOT NULL DEFAULT now(), "
            "status TEXT NOT NULL DEFAULT 'pending', "
            f"replayed_at {ts}, replay_attempts BIGINT NOT NULL DEFAULT 0, "
            'PRIMARY KEY (batch_id, "offset"))',
        ]

    # ---- StateStore (committed at once, independent of a batch's transaction)
    def state_datasets(self, key: str) -> list[str]:
        """The datasets that have a state under ``key``."""
        rows = self._aux_query(
            self.sql(f"SELECT dataset FROM {self.qualify(STATE)} WHERE key = ? ORDER BY dataset"),
            (key,),
        )
        return [r[0] for r in rows]

    def state_items(self, prefix: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(dataset, key, value) of every state whose key starts with ``prefix``."""
        if not self.has_table(STATE):
            return []
        rows = self._aux_query(
            self.sql(
                f"SELECT dataset, key, value FROM {self.qualify(STATE)} "
                "WHERE substr(key, 1, ?) = ? ORDER BY dataset, key"
            ),
            (len(prefix), prefix),
        )
        return [(r[0], r[1], jload(r[2])) for r in rows]

    def delete_state(self, dataset: str, key: str) -> int:
        """Delete one state; 1 when it existed, else 0."""
        if self.load_state(dataset, key) is None:
            return 0
        self._aux_execute(
            self.sql(f"DELETE FROM {self.qualify(STATE)} WHERE dataset = ? AND key = ?"),
            (dataset, key),
        )
        return 1

    def state_upsert(self, dataset: str, key: str, value: dict[str, Any]) -> tuple[str, tuple]:
        sql = self.sql(
            f"INSERT INTO {self.qualify(STATE)} (dataset, key, value, updated_at) "
            f"VALUES (?, ?, CAST(? AS {self.json_type}), now()) "
            "ON CONFLICT (dataset, key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at"
        )
        return sql, (dataset, key, jdump(value))

    def load_state(self, dataset: str, key: str) -> dict[str, Any] | None:
        rows = self._aux_query(
            self.sql(f"SELECT value FROM {self.qualify(STATE)} WHERE dataset = ? AND key = ?"),
            (dataset, key),
        )
        return jload(rows[0][0]) if rows else None

    def save_state(self, dataset: str, key: str, value: dict[str, Any]) -> None:
        self._aux_execute(*self.state_upsert(dataset, key, value))

    def append_metrics(
        self, dataset: str, batch_id: str, kind: str, metrics: dict[str, Any]
    ) -> None:
        t = self.qualify(METRICS)
        self._aux_execute(
            self.sql(
                f"INSERT INTO {t} (seq, dataset, batch_id, kind, metrics, recorded_at) "
                f"SELECT coalesce(max(seq), 0) + 1, ?, ?, ?, CAST(? AS {self.json_type}), now() "
                f"FROM {t} WHERE dataset = ? AND kind = ?"
            ),
            (dataset, batch_id, kind, jdump(metrics), dataset, kind),
        )

    def metrics_history(self, dataset: str, kind: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._aux_query(
            self.sql(
                f"SELECT metrics FROM {self.qualify(METRICS)} WHERE dataset = ? AND kind = ? "
                "ORDER BY seq DESC LIMIT ?"
            ),
            (dataset, kind, int(limit)),
        )
        return [jload(r[0]) for r in reversed(rows)]

    # ---- batches and the run log
    def is_done(self, dataset: str, batch_id: str, query: Any = None) -> dict[str, Any] | None:
        """The batch's row in ``_pw_batches`` (None: not loaded); ``query`` runs it on
        another connection (a writer's, inside its transaction)."""
        rows = (query or self._aux_query)(
            self.sql(
                f"SELECT source, run_id, rows_read, rows_loaded, rows_quarantined, "
                f"schema_version, loaded_at FROM {self.qualify(BATCHES)} "
                "WHERE dataset = ? AND batch_id = ?"
            ),
            (dataset, batch_id),
        )
        if not rows:
            return None
        keys = (
            "source",
            "run_id",
            "rows_read",
            "rows_loaded",
            "rows_quarantined",
            "schema_version",
            "loaded_at",
        )
        return dict(zip(keys, rows[0], strict=True))

    def latest_batch(self, dataset: str) -> dict[str, Any] | None:
        """The dataset's most recently loaded batch (``batch_id``, ``loaded_at``, ``run_id``),
        or None: what a dependency sensor on the table waits for."""
        rows = self._aux_query(
            self.sql(
                f"SELECT batch_id, loaded_at, run_id FROM {self.qualify(BATCHES)} "
                "WHERE dataset = ? ORDER BY loaded_at DESC, batch_id LIMIT 1"
            ),
            (dataset,),
        )
        return (
            dict(zip(("batch_id", "loaded_at", "run_id"), rows[0], strict=True)) if rows else None
        )

    def sql_mark_done(self, dataset: str, batch_id: str, info: dict[str, Any]) -> tuple[str, tuple]:
        sql = self.sql(
            f"INSERT INTO {self.qualify(BATCHES)} (dataset, batch_id, source, run_id, "
            "rows_read, rows_loaded, rows_quarantined, schema_version, loaded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, now())"
        )
        params = (
            dataset,
            batch_id,
            info.get("source"),
            info.get("run_id"),
            int(info["rows_read"]),
            int(info["rows_loaded"]),
            int(info["rows_quarantined"]),
            info.get("schema_version"),
        )
        return sql, params

    def run_log_statement(self, entry: dict[str, Any]) -> tuple[str, tuple]:
        sql = self.sql(
            f"INSERT INTO {self.qualify(RUNS)} (run_id, dataset, batch_id, source, rows_read, "
            "rows_loaded, rows_quarantined, decision, status, started_at, finished_at, report) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), CAST(? AS {self.exact_json_type}))"
        )
        params = (
            entry["run_id"],
            entry["dataset"],
            entry.get("batch_id"),
            entry.get("source"),
            int(entry.get("rows_read", 0)),
            int(entry.get("rows_loaded", 0)),
            int(entry.get("rows_quarantined", 0)),
            entry.get("decision"),
            entry["status"],
            entry.get("started_at"),
            jdump(entry.get("report", {})),
        )
        return sql, params

    def log_run(self, entry: dict[str, Any]) -> None:
        """Append one run-log entry in its own transaction (so it survives a rolled back batch).
        Inside a batch, use the writer's ``log_run`` so the entry commits with the batch."""
        self._aux_execute(*self.run_log_statement(entry))

    def runs(self, dataset: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE dataset = ?", (dataset,)) if dataset else ("", ())
        rows = self._aux_query(
            self.sql(
                "SELECT run_id, dataset, batch_id, source, rows_read, rows_loaded, "
                f"rows_quarantined, decision, status FROM {self.qualify(RUNS)} {where} "
                "ORDER BY finished_at, run_id"
            ),
            params,
        )
        keys = (
            "run_id",
            "dataset",
            "batch_id",
            "source",
            "rows_read",
            "rows_loaded",
            "rows_quarantined",
            "decision",
            "status",
        )
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def datasets(self) -> list[str]:
        rows = self._aux_query(f"SELECT dataset FROM {self.qualify(DATASETS)} ORDER BY dataset")
        return [r[0] for r in rows]

    def has_table(self, table: str) -> bool:
        rows = self._aux_query(
            self.sql(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?"
            ),
            (self.namespace, table),
        )
        return bool(rows)

    def count(self, table: str) -> int:
        return int(self._aux_query(f"SELECT count(*) FROM {self.qualify(table)}")[0][0])

    def landed_rows(self, dataset: str, batch_ids: Sequence[str], limit: int) -> list[dict]:
        """The records the given batches loaded, as landed in ``<dataset>__raw`` (with the
        steps' masks applied; quarantined rows are not there): at most ``limit`` in all,
        spread evenly over the batches, and within a batch every k-th row by offset, so the
        sample spans the whole batch (a file sorted by a column, or by time, would give a
        model trained on its head only one end of each range). What the anomaly step trains
        the dataset's model on. Empty when the store keeps no raw landing."""
        ids = list(dict.fromkeys(batch_ids))
        if not ids or limit <= 0 or not self.has_table(dataset + "__raw"):
            return []
        raw = self.qualify(dataset + "__raw")
        each = max(1, limit // len(ids))
        out: list[dict] = []
        for bid in ids:
            first, last = self._aux_query(
                self.sql(f'SELECT min("offset"), max("offset") FROM {raw} WHERE batch_id = ?'),
                (bid,),
            )[0]
            if first is None:
                continue
            stride = max(1, -(-(int(last) - int(first) + 1) // each))  # ceil(span / each)
            rows = self._aux_query(
                self.sql(
                    f'SELECT payload FROM {raw} WHERE batch_id = ? AND mod("offset" - ?, ?) = 0 '
                    f'ORDER BY "offset" LIMIT {int(each)}'
                ),
                (bid, int(first), stride),
            )
            out.extend(p for p in (jload(r[0]) for r in rows) if isinstance(p, dict))
        return out[:limit]

    # ---- quarantine
    def quarantine_counts(self, dataset: str, reason: str | None = None) -> dict[str, int]:
        """Rows per replay status (``pending``, ``replayed``) of a dataset's quarantine (of
        one reason code, when given)."""
        out = dict.fromkeys(QUARANTINE_STATUSES, 0)
        if self.has_table(dataset + "__quarantine"):
            where, params = ("WHERE reason = ? ", (reason,)) if reason else ("", ())
            rows = self._aux_query(
                self.sql(
                    f"SELECT status, count(*) FROM {self.qualify(dataset + '__quarantine')} "
                    f"{where}GROUP BY status"
                ),
                params,
            )
            out.update({r[0]: int(r[1]) for r in rows})
        return out

    def quarantine_rows(
        self,
        dataset: str,
        status: str | None = None,
        reason: str | None = None,
        limit: int | None = None,
        *,
        with_payload: bool = False,
        after: tuple[Any, str, int] | None = None,
        keys: Sequence[tuple[str, int]] | None = None,
        region: str = "US",
    ) -> list[dict[str, Any]]:
        """Quarantined records of a dataset, oldest first. The payload (which may hold PII) is
        only returned with ``with_payload=True``, for replay; never print it. ``after`` (the
        ``quarantined_at``, ``batch_id`` and ``offset`` of a row already read) pages on: only
        the rows after it in that order. ``keys``: only these (batch_id, offset) rows.
        ``region``: of phone numbers without a country code, for the previews."""
        if not self.has_table(dataset + "__quarantine"):
            return []
        if keys is not None:
            keys = list(keys)
            out: list[dict[str, Any]] = []
            for start in range(0, len(keys), 1000):  # within the drivers' parameter limits
                part = keys[start : start + 1000]
                out += self._quarantine_rows(dataset, status, reason, limit, with_payload,
                                             after, part, region)  # fmt: skip
            return out
        return self._quarantine_rows(
            dataset, status, reason, limit, with_payload, after, None, region
        )

    def _quarantine_rows(
        self, dataset, status, reason, limit, with_payload, after, keys, region="US"
    ) -> list[dict[str, Any]]:
        where, params = ["1 = 1"], []
        if status:
            where.append("status = ?")
            params.append(status)
        if reason:
            where.append("reason = ?")
            params.append(reason)
        if after is not None:
            where.append('(quarantined_at, batch_id, "offset") > (?, ?, ?)')
            params.extend(after)
        if keys is not None:
            if not keys:
                return []
            where.append('(batch_id, "offset") IN (' + ", ".join(["(?, ?)"] * len(keys)) + ")")
            params.extend(v for k in keys for v in k)
        lim = f" LIMIT {int(limit)}" if limit else ""
        cols = (
            'batch_id, "offset", reason, message, column_path, schema_version, status, '
            "quarantined_at, replayed_at, replay_attempts, issues, payload"
        )
        rows = self._aux_query(
            self.sql(
                f"SELECT {cols} FROM {self.qualify(dataset + '__quarantine')} "
                f'WHERE {" AND ".join(where)} ORDER BY quarantined_at, batch_id, "offset"{lim}'
            ),
            params,
        )
        out = []
        for r in rows:
            d = {
                "dataset": dataset,
                "batch_id": r[0],
                "offset": int(r[1]),
                "row": int(r[1]) + 1,
                "reason": r[2],
                "message": r[3],
                "column": r[4],
                "schema_version": r[5],
                "status": r[6],
                "quarantined_at": r[7],
                "replayed_at": r[8],
                "replay_attempts": int(r[9]),
                "issues": jload(r[10]) or [],
                "payload": jload(r[11]),
            }
            if not with_payload:
                d["preview"] = masked_payload(d.pop("payload"), region=region)
            out.append(d)
        return out


def masked_payload(payload: Any, max_keys: int = 12, region: str = "US") -> dict[str, str] | str:
    """A preview of a record: its keys with their values as :func:`pipewarden.shown.show_value`
    shows them (masked where the guardian's recognizers or the column's name say PII; cut
    short otherwise)."""
    from ..errors import preview
    from ..shown import show_value

    if not isinstance(payload, dict):
        return preview(jdump(payload))
    out: dict[str, str] = {}
    for i, (k, v) in enumerate(payload.items()):
        if i == max_keys:
            out["…"] = f"{len(payload) - max_keys} more keys"
            break
        out[str(k)[:64]] = "null" if v is None else show_value(v, str(k), region=region)
    return out


class WriterBase:
    """Helpers the dialect writers share."""

    store: SqlStore

    def ensure_dataset(self, dataset: str) -> None:
        if self.store.dialect == "duckdb":  # its names ignore case, even quoted
            other = self.query(
                self.store.sql(
                    f"SELECT dataset FROM {self.store.qualify(DATASETS)} "
                    "WHERE lower(dataset) = lower(?) AND dataset <> ?"
                ),
                (dataset, dataset),
            )
            if other:
                raise InputError(
                    f"dataset {dataset!r} differs from the existing {other[0][0]!r} only by "
                    "case, and DuckDB names ignore case",
                    key="dataset",
                    hint=f"use {other[0][0]!r}, or another name",
                )
        for stmt in self.store.dataset_ddl(dataset):
            self.execute(stmt)
        self.execute(
            self.store.sql(
                f"INSERT INTO {self.store.qualify(DATASETS)} (dataset, created_at) "
                "VALUES (?, now()) ON CONFLICT (dataset) DO NOTHING"
            ),
            (dataset,),
        )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:  # pragma: no cover
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:  # pragma: no cover
        raise NotImplementedError

    def mark_done(self, dataset: str, batch_id: str, info: dict[str, Any]) -> None:
        self.execute(*self.store.sql_mark_done(dataset, batch_id, info))

    def lock_dataset(self, dataset: str) -> None:
        """Hold the dataset until the transaction ends, so that concurrent runs of one dataset
        take their turns (PostgreSQL; one process writes a DuckDB file at a time anyway)."""

    def is_done(self, dataset: str, batch_id: str) -> dict[str, Any] | None:
        """:meth:`SqlStore.is_done` inside this transaction (after :meth:`lock_dataset`: a
        concurrent run that loaded the batch has committed by then)."""
        return self.store.is_done(dataset, batch_id, self.query)

    def log_run(self, entry: dict[str, Any]) -> None:
        self.execute(*self.store.run_log_statement(entry))

    def save_state(self, dataset: str, key: str, value: dict[str, Any]) -> None:
        """A state written in the batch's transaction (a source's cursor commits with the
        batch it produced)."""
        self.execute(*self.store.state_upsert(dataset, key, value))

    def write_imputed(
        self, dataset: str, batch_id: str, rows: Sequence[tuple[int, str]], version: Any
    ) -> int:
        """Record the imputed columns (a JSON list) of loaded rows: (offset, columns)."""
        if not rows:
            return 0
        t = self.store.qualify(dataset + "__imputed")
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {t} (batch_id TEXT NOT NULL, "
            f'"offset" BIGINT NOT NULL, imputed_columns {self.store.json_type} NOT NULL, '
            f'model_version BIGINT, PRIMARY KEY (batch_id, "offset"))'
        )
        staged = [(batch_id, o, c, str(version) if version is not None else None) for o, c in rows]
        names = ["batch_id", "offset", "imputed_columns", "model_version"]
        with self._staged(names, staged) as u:
            self.execute(
                f'INSERT INTO {t} (batch_id, "offset", imputed_columns, model_version) '
                f'SELECT batch_id, "offset", CAST(imputed_columns AS {self.store.json_type}), '
                f"CAST(model_version AS BIGINT) FROM {u}"
            )
        return len(rows)

    def update_quarantine(
        self,
        dataset: str,
        replayed: Sequence[tuple[str, int]],
        pending: Sequence[tuple[str, int, str | None, str | None, str | None, str | None]] = (),
    ) -> None:
        """After a replay: mark the `replayed` rows (batch_id, offset) as replayed, and give the
        `pending` ones (batch_id, offset, reason, message, column, issues as JSON text) their new
        reason. One UPDATE for each through a staging table: a statement per row took about
        0.8 ms on DuckDB, over five minutes for 400,000 rows."""
        t = self.store.qualify(dataset + "__quarantine")
        match = 'q.batch_id = u.batch_id AND q."offset" = u."offset"'
        if replayed:
            with self._staged(["batch_id", "offset"], replayed) as u:
                self.execute(
                    f"UPDATE {t} AS q SET status = 'replayed', replayed_at = now(), "
                    f"replay_attempts = q.replay_attempts + 1 FROM {u} AS u WHERE {match}"
                )
        if pending:
            rows = [
                (b, o, text_safe(r), text_safe(m), text_safe(c), i) for b, o, r, m, c, i in pending
            ]
            names = ["batch_id", "offset", "reason", "message", "column_path", "issues"]
            with self._staged(names, rows) as u:
                self.execute(
                    f"UPDATE {t} AS q SET reason = u.reason, message = u.message, "
                    f"column_path = u.column_path, "
                    f"issues = CAST(u.issues AS {self.store.exact_json_type}), "
                    f"replay_attempts = q.replay_attempts + 1 FROM {u} AS u WHERE {match}"
                )

    def _staged(self, names: Sequence[str], rows: Sequence[tuple]):  # pragma: no cover
        """A context manager giving the name of a table holding `rows` for this transaction
        (``offset`` a bigint, every other column text)."""
        raise NotImplementedError


@contextmanager
def closing_store(store: Any) -> Iterator[Any]:
    try:
        yield store
    finally:
        store.close()
