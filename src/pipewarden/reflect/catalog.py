"""What the docs and the API read from a store: a small adapter over a connection, and the
facts of a dataset (schema history, batches, run reports, comments, unique keys).

:class:`Db` runs SQL written with ``?`` placeholders on either dialect. It wraps a pipewarden
store (``Db.of_store``) or a bare connection (``sentinel --apply`` has one, and its database
may hold nothing but ``_pw_schema_history``): every reader copes with a missing table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ..schema import history as schema_history
from ..store.base import BATCHES, DATASETS, RUNS, STATE, quote


@dataclass
class Db:
    """SQL on one store: ``query``/``execute`` take ``?`` placeholders; ``execute`` commits."""

    dialect: str  # "postgres" | "duckdb"
    namespace: str
    _query: Callable[[str, Sequence[Any]], list[tuple]]
    _execute: Callable[[str], None]
    conn: Any = None  # the driver connection
    save_state: Callable[[str, str, dict], None] | None = None  # a store's StateStore method

    @classmethod
    def of_store(cls, store: Any) -> Db:
        """A :class:`Db` over a pipewarden store (its autocommit connection)."""
        conn = store._aux() if store.dialect == "postgres" else store._aux
        return cls(
            store.dialect,
            store.namespace,
            lambda sql, params=(): store._aux_query(store.sql(sql), params),
            lambda sql: store._aux_execute(sql),
            conn,
            store.save_state,
        )

    @classmethod
    def of_connection(cls, conn: Any, dialect: str, namespace: str | None) -> Db:
        """A :class:`Db` over a psycopg or DuckDB connection; ``execute`` commits."""
        pg = dialect == "postgres"
        if namespace is None:
            namespace = conn.execute("SELECT current_schema()").fetchall()[0][0]
            if pg:
                conn.rollback()

        def query(sql: str, params: Sequence[Any] = ()) -> list[tuple]:
            rows = conn.execute(sql.replace("?", "%s") if pg else sql, list(params)).fetchall()
            if pg:
                conn.rollback()  # end the read transaction
            return rows

        def execute(sql: str) -> None:
            conn.execute(sql)
            conn.commit()

        return cls(dialect, namespace, query, execute, conn)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._query(sql, params)

    def execute(self, sql: str) -> None:
        self._execute(sql)

    def table(self, name: str) -> str:
        return f"{quote(self.namespace)}.{quote(name)}"

    def literal(self, text: str) -> str:
        """A SQL string literal (for COMMENT ON, which takes no parameters)."""
        text = text.replace("\x00", "")
        if self.dialect == "postgres":
            # E'' spells backslashes the same way whatever standard_conforming_strings says
            return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
        return "'" + text.replace("'", "''") + "'"

    # ---- what exists
    def has_table(self, name: str) -> bool:
        rows = self.query(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            (self.namespace, name),
        )
        return bool(rows)

    def datasets(self) -> list[str]:
        """Datasets with a schema history in this namespace (run and sentinel alike)."""
        names: set[str] = set()
        if self.has_table(schema_history.TABLE):
            names.update(
                r[0]
                for r in self.query(
                    f"SELECT DISTINCT dataset FROM {self.table('_pw_schema_history')}"
                )
            )
        if self.has_table(DATASETS):
            names.update(r[0] for r in self.query(f"SELECT dataset FROM {self.table(DATASETS)}"))
        return sorted(n for n in names if self.has_table(n))

    def history(self, dataset: str) -> list[dict[str, Any]]:
        """Every schema version of ``dataset``, oldest first (see schema.history)."""
        if not self.has_table(schema_history.TABLE):
            return []
        cause = "cause" if self._history_has_cause() else "NULL"
        rows = self.query(
            f"SELECT version, hash, schema, ddl, applied_at, {cause} "
            f"FROM {self.table(schema_history.TABLE)} WHERE dataset = ? ORDER BY version",
            (dataset,),
        )
        out = []
        for version, hash_, schema, ddl, applied_at, why in rows:
            out.append(
                {
                    "version": int(version),
                    "hash": hash_,
                    "schema": _json(schema),
                    "ddl": _json(ddl) or [],
                    "applied_at": applied_at,
                    "cause": _json(why),
                }
            )
        return out

    def _history_has_cause(self) -> bool:
        return bool(
            self.query(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = ? "
                "AND table_name = ? AND column_name = 'cause'",
                (self.namespace, schema_history.TABLE),
            )
        )

    def latest_versions(self) -> dict[str, int]:
        """dataset -> newest schema version (one query: what a server polls)."""
        if not self.has_table(schema_history.TABLE):
            return {}
        rows = self.query(
            f"SELECT dataset, max(version) FROM {self.table(schema_history.TABLE)} GROUP BY dataset"
        )
        return {r[0]: int(r[1]) for r in rows}

    # ---- batches and runs
    def batch(self, dataset: str, batch_id: str) -> dict[str, Any] | None:
        if not self.has_table(BATCHES):
            return None
        rows = self.query(
            f"SELECT source, run_id, rows_read, rows_loaded, rows_quarantined, schema_version, "
            f"loaded_at FROM {self.table(BATCHES)} WHERE dataset = ? AND batch_id = ?",
            (dataset, batch_id),
        )
        if not rows:
            return None
        keys = ("source", "run_id", "rows_read", "rows_loaded", "rows_quarantined",
                "schema_version", "loaded_at")  # fmt: skip
        return dict(zip(keys, rows[0], strict=True))

    def batches(
        self, dataset: str, limit: int = 100, before: str | None = None
    ) -> list[dict[str, Any]]:
        """Loaded batches, newest first (``before``: the ``loaded_at|batch_id`` of the last
        one already read)."""
        if not self.has_table(BATCHES):
            return []
        where, params = "dataset = ?", [dataset]
        if before is not None:
            at, _, bid = before.partition("|")
            where += " AND (CAST(loaded_at AS TEXT), batch_id) < (?, ?)"
            params += [at, bid]
        rows = self.query(
            f"SELECT batch_id, source, run_id, rows_read, rows_loaded, rows_quarantined, "
            f"schema_version, CAST(loaded_at AS TEXT) FROM {self.table(BATCHES)} WHERE {where} "
            f"ORDER BY CAST(loaded_at AS TEXT) DESC, batch_id DESC LIMIT {int(limit)}",
            params,
        )
        keys = ("batch_id", "source", "run_id", "rows_read", "rows_loaded", "rows_quarantined",
                "schema_version", "loaded_at")  # fmt: skip
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def batch_totals(self, dataset: str) -> dict[str, Any]:
        if not self.has_table(BATCHES):
            return {"batches": 0, "rows_read": 0, "rows_loaded": 0, "rows_quarantined": 0}
        r = self.query(
            f"SELECT count(*), coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0), "
            f"coalesce(sum(rows_quarantined), 0) FROM {self.table(BATCHES)} WHERE dataset = ?",
            (dataset,),
        )[0]
        return {"batches": int(r[0]), "rows_read": int(r[1]), "rows_loaded": int(r[2]),
                "rows_quarantined": int(r[3])}  # fmt: skip

    def last_run(self, dataset: str) -> dict[str, Any] | None:
        """The newest run-log entry of a batch (loaded, blocked or failed): the latest
        verdict."""
        if not self.has_table(RUNS):
            return None
        rows = self.query(
            f"SELECT run_id, batch_id, source, status, decision, rows_read, rows_loaded, "
            f"rows_quarantined, CAST(finished_at AS TEXT) FROM {self.table(RUNS)} "
            "WHERE dataset = ? AND status IN ('loaded', 'blocked', 'failed') "
            "ORDER BY finished_at DESC LIMIT 1",
            (dataset,),
        )
        if not rows:
            return None
        keys = ("run_id", "batch_id", "source", "status", "decision", "rows_read",
                "rows_loaded", "rows_quarantined", "finished_at")  # fmt: skip
        return dict(zip(keys, rows[0], strict=True))

    def guardian_reports(self, dataset: str) -> list[dict[str, Any]]:
        """The guardian's report of every loaded batch (one per chunk), oldest first."""
        if not self.has_table(RUNS):
            return []
        rows = self.query(
            f"SELECT report FROM {self.table(RUNS)} WHERE dataset = ? AND status = 'loaded' "
            "ORDER BY finished_at",
            (dataset,),
        )
        out = []
        for (report,) in rows:
            rep = _json(report) or {}
            g = (rep.get("steps") or {}).get("guardian") if isinstance(rep, dict) else None
            for part in g if isinstance(g, list) else [g]:
                if isinstance(part, dict):
                    out.append(part)
        return out

    def quarantine_summary(self, dataset: str) -> dict[str, Any]:
        """Rows per status and, for pending rows, per reason."""
        t = dataset + "__quarantine"
        out: dict[str, Any] = {"pending": 0, "replayed": 0, "pending_by_reason": {}}
        if not self.has_table(t):
            return out
        for status, reason, n in self.query(
            f"SELECT status, reason, count(*) FROM {self.table(t)} GROUP BY status, reason "
            "ORDER BY status, reason"
        ):
            out[status] = out.get(status, 0) + int(n)
            if status == "pending":
                out["pending_by_reason"][reason] = int(n)
        return out

    def state(self, dataset: str, key: str) -> dict[str, Any] | None:
        if not self.has_table(STATE):
            return None
        rows = self.query(
            f"SELECT value FROM {self.table(STATE)} WHERE dataset = ? AND key = ?", (dataset, key)
        )
        return _json(rows[0][0]) if rows else None

    # ---- the database's own catalog
    def comments(self, table: str) -> tuple[str | None, dict[str, str]]:
        """(table comment, column ident -> comment)."""
        if self.dialect == "postgres":
            rows = self.query(
                "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = ? AND c.relname = ?",
                (self.namespace, table),
            )
            cols = self.query(
                "SELECT a.attname, col_description(c.oid, a.attnum) FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = "
                "c.relnamespace WHERE n.nspname = ? AND c.relname = ? AND a.attnum > 0 "
                "AND NOT a.attisdropped",
                (self.namespace, table),
            )
        else:
            rows = self.query(
                "SELECT comment FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
                (self.namespace, table),
            )
            cols = self.query(
                "SELECT column_name, comment FROM duckdb_columns() WHERE schema_name = ? "
                "AND table_name = ?",
                (self.namespace, table),
            )
        table_comment = rows[0][0] if rows and rows[0][0] else None
        return table_comment, {c: v for c, v in cols if v}

    def unique_key(self, table: str) -> list[str] | None:
        """The columns (idents) of the table's primary key, else of its first unique index
        (fewest columns), or None."""
        if self.dialect == "postgres":
            rows = self.query(
                "SELECT i.indisprimary, array_length(i.indkey, 1), "
                "array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, o) "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
                "ORDER BY k.o) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? "
                "AND c.relname = ? AND i.indisunique AND i.indpred IS NULL "
                "AND i.indexprs IS NULL ORDER BY NOT i.indisprimary, 2",
                (self.namespace, table),
            )
            return list(rows[0][2]) if rows else None
        rows = self.query(
            "SELECT constraint_type, constraint_column_names FROM duckdb_constraints() "
            "WHERE schema_name = ? AND table_name = ? AND constraint_type IN "
            "('PRIMARY KEY', 'UNIQUE') ORDER BY constraint_type <> 'PRIMARY KEY', "
            "len(constraint_column_names)",
            (self.namespace, table),
        )
        if rows:
            return list(rows[0][1])
        rows = self.query(
            "SELECT expressions FROM duckdb_indexes() WHERE schema_name = ? AND table_name = ? "
            "AND is_unique",
            (self.namespace, table),
        )
        for (exprs,) in rows:
            cols = _index_columns(exprs or "")
            if cols:
                return cols
        return None


def _index_columns(expressions: str) -> list[str] | None:
    """The columns of a DuckDB index from its ``expressions`` (``['"a b"', c]`` as text);
    None for an index on an expression."""
    import ast

    try:
        items = ast.literal_eval(expressions)
    except (ValueError, SyntaxError):
        return None
    out = []
    for p in items if isinstance(items, list) else []:
        p = str(p).strip()
        if len(p) > 1 and p.startswith('"') and p.endswith('"'):
            out.append(p[1:-1].replace('""', '"'))
        elif p.replace("_", "").isalnum():
            out.append(p)
        else:
            return None
    return out or None


def _json(value: Any) -> Any:
    if isinstance(value, str | bytes):
        return orjson.loads(value)
    return value
