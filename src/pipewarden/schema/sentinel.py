"""``pipewarden sentinel`` as a library call: :func:`sentinel`.

Reads the source twice, streaming: the first pass infers the schema from every row, the second
checks every row against the plan. Bad input fails in the first pass, before anything is
written. With ``apply`` the DDL runs and the new schema version is recorded in
``_pw_schema_history`` in one transaction; with ``write_target`` the target file is replaced
(atomically) by the evolved schema.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..batch import iter_batches
from ..dbfault import db_fault, is_db_error
from ..errors import InputError, PipewardenError
from . import history
from .contract import Contract
from .infer import Inferrer
from .plan import plan as make_plan
from .rows import check_rows
from .target import Target, load_target, write_target

ISSUE_SAMPLE = 20


def dsn_dialect(dsn: str) -> str:
    """``postgres`` for a PostgreSQL URL or key=value DSN, ``duckdb`` for a DuckDB path."""
    low = dsn.lower()
    if low.startswith(("postgres://", "postgresql://")) or "dbname=" in low or "host=" in low:
        return "postgres"
    return "duckdb"


def _duckdb_path(dsn: str) -> str:
    return dsn[len("duckdb://") :] if dsn.startswith("duckdb://") else dsn


@contextlib.contextmanager
def connect(dsn: str) -> Iterator[tuple[Any, str]]:
    """A connection for ``dsn`` with no transaction open yet, and its dialect."""
    dialect = dsn_dialect(dsn)
    if dialect == "postgres":
        import psycopg

        try:
            conn = psycopg.connect(dsn, connect_timeout=10)
        except psycopg.Error as exc:
            raise db_fault(exc, dsn) from None
    else:
        import duckdb

        try:
            conn = duckdb.connect(_duckdb_path(dsn))
            conn.begin()
        except duckdb.Error as exc:
            raise db_fault(exc, dsn) from None
    try:
        yield conn, dialect
    finally:
        conn.close()


@contextlib.contextmanager
def _rereadable(source: str) -> Iterator[str]:
    """stdin is spooled to a temporary file so that it can be read twice."""
    if source != "-":
        yield source
        return
    fd, tmp = tempfile.mkstemp(prefix="pipewarden-stdin-")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
        yield tmp
    finally:
        Path(tmp).unlink(missing_ok=True)


def _table_name(text: str) -> str:
    """A title as a table name: lower case, runs of other characters as one ``_``."""
    return re.sub(r"[^0-9a-z]+", "_", text.strip().lower()).strip("_") or "data"


def default_table(table: str | None, target: str | None, source: str) -> tuple[str, str]:
    """The table (dataset) the batch is checked against, and where the name came from:
    ``--table``; else the target schema's ``title``; else the target file's name (without
    ``.schema.json``/``.json``); only without a target, the source file's name (a daily file
    name would make a table per day: the result says so)."""
    if table:
        return table, "option"
    if target:
        p = Path(target)
        if p.is_file():
            try:
                tgt = load_target(target)
            except InputError:
                tgt = None  # reported where the target is read
            if tgt is not None and tgt.title and tgt.title.strip():
                return _table_name(tgt.title), "target title"
        stem = p.name
        for ext in (".schema.json", ".jsonschema", ".json"):
            if stem.lower().endswith(ext):
                stem = stem[: -len(ext)]
                break
        return (stem or "data"), "target file name"
    if source == "-":
        return "data", "default"
    return (Path(source).name.split(".")[0] or "data"), "source file name"


def sentinel(
    source: str,
    target: str | None = None,
    *,
    fmt: str = "auto",
    dialect: str | None = None,
    table: str | None = None,
    namespace: str | None = None,
    contract: Contract | dict | str | None = None,
    apply: bool = False,
    dsn: str | None = None,
    write: bool = False,
    chunk_rows: int = 100_000,
    encoding: str = "utf-8",
    progress: Callable[[str, int, int | None], None] | None = None,
    docs: Any = None,
    records_path: str | None = None,
    short_rows: str = "pad",
) -> dict[str, Any]:
    """Infer the schema of ``source``, compare it with the target (the schema file, or the
    database's history when ``dsn`` is given), plan the DDL under ``contract``, check every
    row, and optionally apply the DDL (``apply``) and write the target file (``write``).

    Returns the result document; ``result["decision"] == "reject"`` means the contract refused
    the batch (the CLI exits 1). Raises :class:`InputError` for bad input or a bad call.
    ``progress(stage, rows_done, rows_total)`` is called after every chunk (stage ``infer``
    with an unknown total, then ``check``). ``docs`` (a
    :class:`pipewarden.reflect.DocsSettings`): once an applied change committed, the table's
    docs are regenerated there (``result["docs"]``).
    """
    if apply and not dsn:
        raise InputError("--apply needs --dsn (a PostgreSQL DSN or a DuckDB file)", key="dsn")
    if not target and not dsn:
        raise InputError("give --target (a schema file) or --dsn", key="target")
    if write and not target:
        raise InputError("--write-target needs --target", key="target")
    if dsn:
        db_dialect = dsn_dialect(dsn)
        if dialect and dialect.replace("postgresql", "postgres") != db_dialect:
            raise InputError(
                f"--dialect {dialect} does not match the database ({db_dialect})", key="dialect"
            )
        dialect = db_dialect
    dialect = dialect or "postgres"
    if not isinstance(contract, Contract):
        contract = (
            Contract.parse(contract)
            if isinstance(contract, str)
            else Contract.from_config(contract)
        )
    from ..compliance.names import KeyRenamer, mask_name

    # keys (and the file name) that hold PII never reach a column name, the DDL or the report:
    # keys become keyed-hash names ($PIPEWARDEN_HASH_KEY; without it, names stable in this
    # call only, so nothing is applied or written)
    key = os.environ.get("PIPEWARDEN_HASH_KEY")
    renamer = KeyRenamer(key=key.encode() if key else None)
    name = "<stdin>" if source == "-" else mask_name(source)
    table, table_from = default_table(table, target, source)
    if table_from == "source file name":
        table = renamer.new_name(table) or table

    shape = {"records_path": records_path, "short_rows": short_rows}
    with _rereadable(source) as path:
        # pass 1: every row, before anything is written
        inferrer = Inferrer()
        batches = 0
        fmt_seen = fmt
        for batch in iter_batches(path, fmt, chunk_rows, encoding, name=name, **shape):
            batch.source = name
            renamer.apply(batch.records)
            inferrer.update(batch)
            batches += 1
            fmt_seen = batch.fmt
            if progress:
                progress("infer", inferrer.rows, None)
            del batch  # one chunk in memory at a time
        observed = inferrer.schema()
        if renamer.found and not renamer.keyed and (apply or write):
            raise InputError(
                f"{len(renamer.found)} key(s) of the batch hold PII (first "
                f"{next(iter(renamer.found.values())).entity}): they become keyed-hash column "
                "names, stable only with a key",
                file=name,
                hint="export PIPEWARDEN_HASH_KEY=<a secret key> before --apply or --write-target",
            )
        tgt = load_target(target) if target else None
        closed_by_target = False
        if tgt is not None and tgt.closed:
            closed = contract.closed()  # the target forbids columns beyond its own
            closed_by_target = closed != contract
            contract = closed

        def run(current, conn=None) -> dict[str, Any]:
            p = make_plan(
                current, observed, contract, dialect, table, namespace,
                conflicts=inferrer.conflicts(),
            )  # fmt: skip
            counts = {"read": 0, "accepted": 0, "quarantined": 0, "discarded": 0,
                      "values_discarded": 0}  # fmt: skip
            sample: list[dict] = []
            blocked = None
            if p.decision != "reject":
                for batch in iter_batches(path, fmt, chunk_rows, encoding, name=name, **shape):
                    batch.source = name
                    renamer.apply(batch.records)
                    verdict = check_rows(batch, p)
                    counts["read"] += len(batch)
                    if progress:
                        progress("check", counts["read"], inferrer.rows)
                    if verdict.decision == "block":
                        blocked = verdict.reason
                        continue
                    for k in ("accepted", "quarantined", "discarded", "values_discarded"):
                        counts[k] += verdict.report[k]
                    for issue in verdict.issues[: ISSUE_SAMPLE - len(sample)]:
                        sample.append({**issue.to_dict(), "row": batch.row_number(issue.row)})
                    del batch, verdict  # one chunk in memory at a time
            else:
                counts["read"] = inferrer.rows
            decision, reason = p.decision, p.reason
            if blocked:
                decision, reason = "reject", blocked
            frozen_add = any(c.op == "add" and c.action == "reject" for c in p.delta.changes)
            if decision == "reject" and closed_by_target and frozen_add and not blocked:
                reason += " (the target schema has additionalProperties: false)"
            if decision == "reject":
                counts.update(accepted=0, quarantined=0, discarded=0, values_discarded=0)
            applied = False
            if apply and decision != "reject" and conn is not None and p.ddl:
                cause = {"by": "sentinel", "source": name, "rows_read": counts["read"],
                         "rows_quarantined": counts["quarantined"] + counts["discarded"]}  # fmt: skip
                history.record_schema(conn, dialect, table, namespace, p.schema, p.ddl, cause)
                applied = True
            return {
                "source": name,
                "names": renamer.report(),
                "format": fmt_seen if fmt_seen != "auto" else None,
                "batches": batches,
                "table": table,
                "table_from": table_from,
                "namespace": namespace,
                "dialect": p.dialect,
                "decision": decision,
                "reason": reason,
                "delta": p.delta.to_dict(),
                "ddl": p.ddl if decision != "reject" else [],
                "schema": p.schema.to_dict(),
                "from_version": current.version if current else None,
                "rows": counts,
                # sentinel sorts rows, it keeps none: `pipewarden run` loads the rows and
                # writes those that do not fit to <table>__quarantine
                "rows_stored": False,
                "issues": sample,
                "contract": p.contract.to_dict(),
                "applied": applied,
                "target": tgt.to_dict() if tgt else None,
                "target_written": False,
                "_schema": p.schema,
            }

        if dsn:
            with connect(dsn) as (conn, _):
                try:
                    current = history.current_schema(conn, dialect, table, namespace)
                    result = run(current, conn if apply else None)
                    if result["applied"]:
                        conn.commit()
                        if docs is not None:  # the reflection loop, once the change is in
                            from ..reflect import after_apply

                            result["docs"] = after_apply(conn, dialect, namespace, table, docs)
                    else:
                        conn.rollback()
                except PipewardenError:
                    conn.rollback()
                    raise
                except Exception as exc:
                    conn.rollback()
                    if is_db_error(exc):  # its message may quote row values: not echoed
                        fault = db_fault(exc, dsn)
                        fault.cause = "nothing was written: " + fault.cause
                        raise fault from None
                    raise
        else:
            result = run(tgt.schema if tgt else None)

    schema = result.pop("_schema")
    if write and result["decision"] != "reject" and isinstance(tgt, Target):
        write_target(tgt, schema)
        result["target_written"] = True
    return result
