"""The main job: a pipeline config -> source files -> sentinel -> steps -> router -> store.

Each source file is one batch. Pass 1 streams it in chunks through the ``Inferrer`` (every
row, no sampling); the sentinel plans the schema change for the whole batch; pass 2 streams it
again and writes chunk by chunk. Everything a batch writes (DDL and the new schema version,
typed rows, raw landing, quarantine, the batch's idempotency mark and its run-log entry) goes in
ONE transaction: either all rows are accounted for (``loaded + quarantined == read``) or
nothing of the batch remains. A batch already loaded is skipped. A blocked batch writes
nothing but its run-log entry.
"""

from __future__ import annotations

import codecs
import glob
import gzip
import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from importlib import resources
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
import yaml

from . import yamlsafe
from .batch import json_array, no_gc, parse_records_path
from .dbfault import DatabaseError, db_fault, is_db_error
from .errors import EXIT_GATE, EXIT_INPUT, EXIT_OK, InputError, PipewardenError, db_error_text
from .redact import redact
from .store.base import QuarantineRow, dataset_name_problem, jdump

# ---------------------------------------------------------------- config


class ConfigError(InputError):
    """A config that does not validate: the message starts with the key path."""

    def render(self) -> str:
        text = f"{self.file}: {self.message}" if self.file else self.message
        return text + (f" ({self.hint})" if self.hint else "")


def _schema() -> dict:
    text = resources.files("pipewarden").joinpath("pipeline_config_schema.json").read_text()
    return orjson.loads(text)


def _key_path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _message(err: Any) -> str:
    """A schema error in words: a pattern says what it means (``x-pattern-means``), not its
    regular expression."""
    means = err.schema.get("x-pattern-means") if isinstance(err.schema, dict) else None
    if err.validator == "pattern" and means:
        return f"{err.instance!r} is not {means}"
    return err.message


def validate_config(doc: Any, file: str = "<config>") -> None:
    """Validate a parsed config against ``pipeline_config_schema.json``; raise
    :class:`ConfigError` naming the key path of the first error (all errors in ``hint``)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: (list(e.absolute_path), e.message))
    if not errors:
        return
    # prefer the most specific error (deepest path), e.g. inside a step's if/then
    first = jsonschema.exceptions.best_match(errors)
    path = _key_path(first.absolute_path)
    msg = _message(first)
    if first.validator == "additionalProperties":
        msg += " (unknown key: check its spelling against docs/run.md)"
    more = [f"{_key_path(e.absolute_path)}: {_message(e)}" for e in errors if e is not first]
    err = ConfigError(
        f"{path}: {msg}",
        file=file,
        hint=("also: " + "; ".join(more[:4])) if more else None,
    )
    err.key = path
    raise err


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str, key: str, file: str) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}``; an unset variable without default is an error."""

    def sub(m: re.Match) -> str:
        value = os.environ.get(m.group(1))
        if value is None:
            if m.group(2) is not None:
                return m.group(2)
            err = ConfigError(
                f"{key}: environment variable {m.group(1)} is not set",
                file=file,
                hint=f"export {m.group(1)}=... or write ${{{m.group(1)}:-default}}",
            )
            err.key = key
            raise err
        return value

    return _ENV.sub(sub, text)


def load_config(config_path: str | os.PathLike) -> dict[str, Any]:
    """Read, parse and validate a pipeline config. Returns the config with ``_base_dir`` and
    ``_file`` added; defaults filled in."""
    path = Path(config_path)
    file = str(config_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such pipeline config", file=file, hint="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the pipeline config: {exc}", file=file) from None
    try:
        doc = yamlsafe.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(
            f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
            file=file,
            line=mark.line + 1 if mark else None,
        ) from None
    if doc is None:
        raise InputError("the pipeline config is empty", file=file, hint="see docs/run.md")
    validate_config(doc, file)
    _check_dataset_name(doc["dataset"], file)
    cfg = dict(doc)
    cfg["_file"] = file
    cfg["_base_dir"] = path.resolve().parent
    src = dict(cfg["source"])
    if "path" in src:  # an http source has a url instead (sources/http.py)
        src["path"] = expand_env(src["path"], "source.path", file)  # ${DATA_LAKE}/orders/*.jsonl
    src.setdefault("format", "auto")
    src.setdefault("chunk_rows", 100_000)
    src.setdefault("encoding", "utf-8")
    src.setdefault("identity", "content")
    try:
        codecs.lookup(src["encoding"])
    except LookupError:
        err = ConfigError(
            f"source.encoding: unknown encoding {src['encoding']!r}",
            file=file,
            hint="a Python codec name, e.g. utf-8, utf-8-sig, latin-1, cp1252, utf-16",
        )
        err.key = "source.encoding"
        raise err from None
    try:
        parse_records_path(src.get("records_path"))
    except InputError as exc:
        err = ConfigError(f"source.records_path: {exc.message}", file=file, hint=exc.hint)
        err.key = "source.records_path"
        raise err from None
    src["csv"] = {"short_rows": "pad", **(src.get("csv") or {})}
    if src.get("kind") == "http":
        from .sources.http import check_config

        check_config(src, file)
    cfg["source"] = src
    store = dict(cfg.get("store") or {})
    store.setdefault("kind", "duckdb")
    if store["kind"] == "postgres":
        if not store.get("dsn"):
            err = ConfigError(
                "store.dsn: required when store.kind is postgres",
                file=file,
                hint="e.g. dsn: ${PIPEWARDEN_DSN}",
            )
            err.key = "store.dsn"
            raise err
        store["dsn"] = expand_env(store["dsn"], "store.dsn", file)
        store.setdefault("schema", "public")
    else:
        store.setdefault("path", "warehouse.duckdb")
        store.setdefault("schema", "main")
    cfg["store"] = store
    cfg.setdefault("name", cfg["dataset"])
    cfg["steps"] = [_expand_h2o_url(s, i, file) for i, s in enumerate(cfg.get("steps") or [])]
    pk = cfg.get("primary_key")
    cfg["primary_key"] = [pk] if isinstance(pk, str) else list(pk or [])
    cfg.setdefault("write_disposition", "append")
    if cfg["write_disposition"] == "merge" and not cfg["primary_key"]:
        err = ConfigError(
            "write_disposition: merge needs a primary_key",
            file=file,
            hint="e.g. primary_key: order_id (or a list of columns)",
        )
        err.key = "write_disposition"
        raise err
    return cfg


def _expand_h2o_url(step: dict, i: int, file: str) -> dict:
    """A step's ``h2o.url`` with ``${VAR}`` expanded (``${PIPEWARDEN_H2O_URL}``: the cluster
    the environment names, as in docker-compose.agentic.yml)."""
    h2o = step.get("h2o")
    if not isinstance(h2o, dict) or not isinstance(h2o.get("url"), str):
        return step
    url = expand_env(h2o["url"], f"steps[{i}].h2o.url", file)
    return {**step, "h2o": {**h2o, "url": url}}


def _check_dataset_name(name: str, file: str) -> None:
    """A dataset names a table and its companions: it must not be one of the store's own
    tables (``_pw_*``) or a companion of another dataset (``<name>__raw``)."""
    why = dataset_name_problem(name)
    if why:
        err = ConfigError(f"dataset: {name!r}: {why}", file=file, hint="choose another name")
        err.key = "dataset"
        raise err


def open_config_store(cfg: dict[str, Any], create: bool = True):
    """Open the store a config names (DuckDB paths are relative to the config file);
    ``create=False`` refuses one that does not exist yet."""
    from .store import open_store

    st = cfg["store"]
    if st["kind"] == "postgres":
        return open_store(st["dsn"], namespace=st["schema"], create=create)
    path = Path(st["path"])
    if not path.is_absolute():
        path = cfg["_base_dir"] / path
    return open_store(
        f"duckdb://{path}",
        namespace=st["schema"],
        create=create,
        memory_limit=st.get("memory_limit"),
    )


def source_files(cfg: dict[str, Any]) -> list[str]:
    """The files of ``source.path`` (a file or a glob, relative to the config), sorted."""
    pattern = cfg["source"]["path"]
    if pattern == "-":
        return ["-"]
    p = Path(pattern)
    if not p.is_absolute():
        p = cfg["_base_dir"] / p
    if glob.has_magic(str(p)):
        files = sorted(f for f in glob.glob(str(p), recursive=True) if Path(f).is_file())
    else:
        files = [str(p)] if p.is_file() else []
    if not files:
        err = ConfigError(
            f"source.path: no file matches {pattern!r}",
            file=cfg["_file"],
            hint=f"paths are relative to the config's directory {cfg['_base_dir']}",
        )
        err.key = "source.path"
        raise err
    return files


def build_steps(cfg: dict[str, Any]) -> list[Any]:
    from .steps import build

    steps = []
    for i, options in enumerate(cfg.get("steps") or []):
        try:
            steps.append(build(options, cfg["_base_dir"]))
        except ModuleNotFoundError as exc:
            raise InputError(
                f"step type {options.get('type')!r} is not available in this installation "
                f"({exc.name})",
                file=cfg["_file"],
                key=f"steps[{i}].type",
            ) from None
    return steps


def close_steps(steps: list) -> None:
    """Release what steps hold (e.g. a local H2O); a step without ``close()`` has nothing."""
    for step in steps:
        close = getattr(step, "close", None)
        if close is not None:
            with suppress(Exception):
                close()


# ---------------------------------------------------------------- batches


_ID_BLOCK = 1 << 20  # bytes read at a time to hash a file


def file_batch_id(path: str) -> str:
    """The batch id of a file by its bytes (``source.identity: bytes``)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:32]


def content_batch_id(path: str) -> str:
    """The batch id of a file by its content (``source.identity: content``, the default): the
    SHA-256 of its bytes after gzip is read through, a UTF-8 byte order mark dropped, CRLF and
    CR line ends made LF and the trailing line ends made one. A file already in that form (LF
    lines, one final newline, not compressed: most files) has the same id by either identity,
    so stores loaded by bytes keep recognising their batches. Parquet is binary: its bytes."""
    return _content_id(path)[0]


def _content_id(path: str) -> tuple[str, bool]:
    """:func:`content_batch_id`, and whether the file was already in that form (its id by
    bytes is then the same, and need not be computed)."""
    with open(path, "rb") as raw:
        head = raw.read(4)
    if head == b"PAR1":
        return file_batch_id(path), True
    h = hashlib.sha256()
    gz = head[:2] == b"\x1f\x8b"
    opener = gzip.open if gz else open
    carry, newlines, seen, changed = b"", 0, False, gz
    with opener(path, "rb") as f:
        lead = f.read(len(codecs.BOM_UTF8))
        changed = changed or lead == codecs.BOM_UTF8
        for block in chain(
            [lead.removeprefix(codecs.BOM_UTF8)], iter(lambda: f.read(_ID_BLOCK), b"")
        ):
            block = carry + block
            carry = b""
            if b"\r" in block:
                changed = True
                if block.endswith(b"\r"):  # may be the first half of a CRLF
                    block, carry = block[:-1], b"\r"
                block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            body = block.rstrip(b"\n")
            if body:
                if newlines:  # line ends held back from the last block were not trailing
                    h.update(b"\n" * newlines)
                h.update(body)
                seen = True
            newlines = (0 if body else newlines) + len(block) - len(body)
    if seen:
        h.update(b"\n")
        changed = changed or newlines != 1
    else:
        changed = changed or newlines > 0
    return h.hexdigest()[:32], not changed


def batch_ids(path: str, identity: str) -> list[str]:
    """The id a file's batch is recorded under, then the other id it may have been recorded
    under by a run with the other identity (both are looked up before loading). A file
    already in the content's form is read once: its two ids are the same."""
    if identity == "bytes":
        return [file_batch_id(path)]
    by_content, same = _content_id(path)
    if same:
        return [by_content]
    by_bytes = file_batch_id(path)
    return [by_content] if by_content == by_bytes else [by_content, by_bytes]


@contextmanager
def _spooled(path: str) -> Iterator[tuple[str, str]]:
    """(readable path, label): stdin is copied to a temporary file so it can be read twice."""
    if path != "-":
        yield path, path
        return
    fd, tmp = tempfile.mkstemp(prefix="pipewarden-stdin-")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out)
        yield tmp, "<stdin>"
    finally:
        with suppress(OSError):
            os.unlink(tmp)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _Blocked(Exception):
    """Raised inside a batch's transaction to roll it back: the batch is blocked."""

    def __init__(self, decision: str, reason: str) -> None:
        super().__init__(reason)
        self.decision = decision
        self.reason = reason


class _LoadedMeanwhile(Exception):
    """Raised inside a batch's transaction: a concurrent run loaded the batch meanwhile."""

    def __init__(self, done: dict[str, Any]) -> None:
        super().__init__(done.get("run_id"))
        self.done = done


class ConservationError(RuntimeError):
    pass


def _safe_error(exc: BaseException) -> str:
    """Describe a failure without echoing values (database messages may quote row data):
    a database fault in words, with its SQLSTATE and what to do."""
    if isinstance(exc, PipewardenError | ConservationError):
        return redact(str(exc))
    if is_db_error(exc):
        return db_fault(exc).render()
    return db_error_text(exc)


def _fault_fields(exc: BaseException) -> dict[str, Any]:
    """``sqlstate``, ``cause`` and the exit code of a database fault, for the report."""
    if not (is_db_error(exc) or isinstance(exc, DatabaseError)):
        return {}
    fault = db_fault(exc)
    return {"sqlstate": fault.sqlstate, "cause": fault.cause, "fault_exit": fault.exit_code}


def _received(record: dict, derived) -> dict:
    """A record as it arrived: without the keys a step derived (``batch.meta["derived"]``)."""
    return {k: v for k, v in record.items() if k not in derived} if derived else record


def _issue_rows(batch, outcome, batch_id: str, version: int) -> tuple[list[QuarantineRow], Counter]:
    rows, reasons = [], Counter()
    drop = set(batch.meta.get("derived") or ())
    for i, issues in sorted(outcome.quarantined.items()):
        first = issues[0]
        for it in issues:
            reasons[it.reason] += 1
        rows.append(
            QuarantineRow(
                batch_id=batch_id,
                offset=batch.offset + i,
                payload=jdump(_received({**batch.records[i], **outcome.masks.get(i, {})}, drop)),
                reason=first.reason,
                message=first.message,
                column=first.column,
                issues=jdump([{**it.to_dict(), "row": batch.offset + i + 1} for it in issues]),
                schema_version=version,
            )
        )
    return rows, reasons


def _typed_rows(
    batch, outcome, convert, raw: list[dict] | None = None
) -> tuple[list[tuple], list[int], list[str]]:
    """The loaded rows of a chunk: typed tuples (``convert`` is the sentinel's
    ``row_converter(schema)``, the same values as ``coerce_row``), offsets and raw payloads
    (with the steps' patches applied, so masked values stay masked). ``raw``: the records as
    they were read, when ``batch`` holds them retyped (a replayed CSV row)."""
    typed, offsets, payloads = [], [], []
    records, patches, base = batch.records, outcome.row_patches(), batch.offset
    drop = set(batch.meta.get("derived") or ())
    fills = outcome.fills
    for i in outcome.loaded:
        rec = records[i]
        patch = patches.get(i)
        if patch:
            rec = {**rec, **patch}
        fill = fills.get(i)  # imputed: the typed table only, the raw landing keeps the null
        typed.append(convert({**rec, **fill} if fill else rec))
        offsets.append(base + i)
        payloads.append(jdump(_received(rec if raw is None else {**raw[i], **(patch or {})}, drop)))
    return typed, offsets, payloads


def _typed_columns(batch, outcome, schema) -> tuple[Any, list[int], Any]:
    """The loaded rows of a chunk as typed Arrow columns (``columnar.typed_table``: the values
    ``coerce_row`` gives, parsed column by column, from the chunk's columns the check made),
    their offsets and raw payloads as an Arrow array of JSON text: the lines as read where the
    chunk has them (``Batch.lines``: JSON Lines, no step changed the chunk's records or derived
    keys), with the rows a step masks or patches written again (so masked values stay masked);
    else, or where a step changed most rows, every record written again. Fills reach the typed
    columns only."""
    from .columnar import typed_table

    patches, fills, base = outcome.patches, outcome.fills, batch.offset
    loaded = outcome.loaded
    with no_gc():
        # the rewritten records are made and freed in here: left for the collector, they
        # would be scanned by its next pass (50 ms a chunk of 100,000 masked rows)
        payloads = _payloads(batch, outcome)
        columns = _loaded_columns(batch, loaded, patches, fills, outcome.columns)
    table = typed_table(columns, list(schema.columns.values()), len(loaded), batch)
    return table, [base + i for i in loaded], payloads


def _payloads(batch, outcome) -> Any:
    """The raw payloads of the loaded rows (see :func:`_typed_columns`)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    records, loaded = batch.records, outcome.loaded
    everyone = len(loaded) == len(records)
    drop = set(batch.meta.get("derived") or ())
    touched = _touched(records, loaded, outcome)
    # as read, but for the rows a step changed; where it changed most of them (a masked
    # column every row has), each record is written again: the lines would be copied twice
    # more for little (about 100 MB more at the peak of 1M rows of bench/run's file)
    if batch.lines is not None and not drop and len(touched) * 2 <= len(loaded):
        payloads = batch.lines if everyone else batch.lines.take(pa.array(loaded, type=pa.int64()))
        if touched:
            at = sorted(touched)
            where = np.zeros(len(loaded), dtype=bool)
            where[at] = True
            if isinstance(payloads, pa.ChunkedArray):
                payloads = payloads.combine_chunks()
            again = json_array([touched[j] for j in at])
            payloads = pc.replace_with_mask(payloads, pa.array(where), again.cast(payloads.type))
        return payloads
    rows = records if everyone else [records[i] for i in loaded]
    if touched:
        rows = list(rows)
        for j, r in touched.items():
            rows[j] = r
    return json_array(rows if not drop else [_received(r, drop) for r in rows])


def _touched(records, loaded: list[int], outcome) -> dict[int, dict]:
    """Position in ``loaded`` -> the record with the steps' column masks and then their
    patches applied (``Outcome.row_patches``), for each loaded row they change."""
    changed = outcome.row_patches()
    if not changed:
        return {}
    pos = None if len(loaded) == len(records) else {i: j for j, i in enumerate(loaded)}
    out: dict[int, dict] = {}
    for i, p in changed.items():
        j = i if pos is None else pos.get(i)
        if j is not None and p:
            out[j] = {**records[i], **p}
    return out


def _loaded_columns(
    batch, loaded: list[int], patches: dict, fills: dict, masked: dict | None = None
) -> dict[str, Any]:
    """The chunk's columns (``batch.columns()``) for the rows in ``loaded``, with the steps'
    column masks (``masked``: ``Outcome.columns``), then their patches and then the fills
    applied: what transposing the patched rows would give."""
    cols = batch.columns()
    m = len(loaded)
    if not m:
        return {}
    if m != len(batch.records):
        get = itemgetter(*loaded)
        cols = {k: get(v) if m > 1 else (v[loaded[0]],) for k, v in cols.items()}
    if masked:
        import numpy as np

        cols = dict(cols)
        rows = np.asarray(loaded, np.int64)
        for key, mask in masked.items():
            at, values = mask.take(rows)
            if not len(at):
                continue
            if len(at) == m:  # every loaded row masked: the column is the masked values
                cols[key] = values
                continue
            col = cols.get(key)
            col = [None] * m if col is None else list(col)
            for j, v in zip(at.tolist(), values, strict=True):
                col[j] = v
            cols[key] = col
    changed = set(patches) | set(fills)
    if not changed:
        return cols
    cols = dict(cols)
    for j, i in enumerate(loaded):
        if i not in changed:
            continue
        for k, v in {**patches.get(i, {}), **fills.get(i, {})}.items():
            col = cols.get(k)
            if col is None:
                col = cols[k] = [None] * m
            elif type(col) is not list:
                col = cols[k] = list(col)
            col[j] = v
    return cols


def _csv_batches(store, dataset: str, batch_ids: set[str], cfg: dict) -> set[str]:
    """The batches among ``batch_ids`` that were read from CSV: their payloads hold strings
    that a load sub-types ("3" into a bigint column), so a replay must too."""
    fmt = cfg["source"]["format"]
    if fmt != "auto":
        return set(batch_ids) if fmt == "csv" else set()
    from .batch import format_of

    out = set()
    for bid in batch_ids:
        done = store.is_done(dataset, bid)
        if done and format_of(done.get("source") or "") == "csv":
            out.add(bid)
    return out


def _csv_typed(record: dict) -> dict:
    """A CSV record's strings as the values a CSV load reads them as (numbers, booleans)."""
    from decimal import Decimal

    from .schema.infer import string_type
    from .schema.types import DataType as T

    out = {}
    for k, v in record.items():
        if isinstance(v, str):
            t = string_type(v, True)
            if t is T.BIGINT:
                v = int(v)
            elif t is T.DECIMAL:
                v = Decimal(v)
            elif t is T.DOUBLE:
                v = float(v)
            elif t is T.BOOLEAN:
                v = v.lower() == "true"
        out[k] = v
    return out


def _check(
    batch, plan, steps, ctx_args, keys=None, first=None, phases=None
) -> tuple[Any, dict[str, Any]]:
    """The verdicts on one chunk: ``first`` (a replay's own judgements), the sentinel's, the
    primary key's (``keys``: the key columns and the rows a later row supersedes), then each
    step's; merged. ``phases`` times the sentinel's checks and the steps."""
    from .keys import key_verdict
    from .phases import Phases
    from .schema import check_rows
    from .steps import StepContext
    from .verdict import merge

    phases = phases or Phases()
    n = len(batch)
    with phases.timing("check", n):
        sentinel = check_rows(batch, plan)
        verdicts = [first, sentinel] if first is not None and first.issues else [sentinel]
        if keys is not None and keys[0] and sentinel.decision != "block":
            verdicts.append(key_verdict(batch, keys[0], keys[1]))
    held = set().union(*(v.quarantined_rows() for v in verdicts))
    fills: dict[int, dict[str, Any]] = {}
    with phases.timing("steps", n if steps else 0):
        for step in steps:
            ctx = StepContext(quarantined=set(held), fills=fills, **ctx_args)
            v = step.check(batch, ctx)
            verdicts.append(v)
            held |= v.quarantined_rows()
            for r, f in v.fills.items():
                fills[r] = {**fills.get(r, {}), **f}
        outcome = merge(n, verdicts)
    if (outcome.patches or outcome.fills or outcome.columns) and outcome.decision == "pass":
        with phases.timing("check", 0):
            again = _recheck_patched(batch, plan, outcome)
        if again is not None:
            verdicts.append(again)
            outcome = merge(len(batch), verdicts)
    return outcome, {v.step: v.report for v in verdicts}


def _recheck_patched(batch, plan, outcome):
    """The sentinel's verdict on the loaded rows as the steps changed them, when a change no
    longer fits the table: a masked phone number is text, and the column may be bigint. The
    contract's data_type mode decides, as for any value that does not fit (quarantine,
    discard_value, freeze); None when every changed row still fits. A column mask
    (``Outcome.columns``) is checked once per distinct masked value, its verdict given to
    every loaded row that has the value."""
    from .batch import Batch
    from .schema import check_rows
    from .verdict import RowIssue, Verdict

    rows = sorted(set(outcome.patches) | set(outcome.fills))
    out = Verdict("sentinel_after_steps", report={"rows": len(rows)})
    held: dict[int, RowIssue] = {}
    if rows:
        sub = Batch(
            [
                {**batch.records[i], **outcome.patches.get(i, {}), **outcome.fills.get(i, {})}
                for i in rows
            ],  # fmt: skip
            batch.source,
            batch.offset,
            batch.batch_id,
            batch.fmt,
        )
        v = check_rows(sub, plan)
        out.decision, out.reason = v.decision, v.reason
        for it in v.issues:
            held[rows[it.row]] = RowIssue(
                rows[it.row], it.reason, f"{it.message}, as the steps changed it", it.column
            )
        out.patches = {rows[k]: p for k, p in v.patches.items()}
    if outcome.columns and out.decision != "block":
        _recheck_columns(plan, batch.fmt, outcome, out, held)
    if out.decision == "pass" and not held and not out.patches:
        return None
    out.issues = [held[r] for r in sorted(held)]
    for r in held:
        out.patches.pop(r, None)
    out.report.update(quarantined=len(out.issues), values_discarded=len(out.patches))
    return out


def _recheck_columns(plan, fmt: str, outcome, out, held: dict) -> None:
    """:func:`_recheck_patched` for the column masks: each distinct masked value of the loaded
    rows checked once (``check_column``), its issue or discarded value given to each loaded
    row with it (a row whose own patch replaces the key was checked with that patch)."""
    import numpy as np

    from .schema.rows import check_column
    from .verdict import RowIssue

    loaded = np.asarray(outcome.loaded, np.int64)
    counted = 0
    for key, mask in outcome.columns.items():
        hit, pos = mask.at(loaded)
        rows, ids = loaded[hit], mask.ids[pos[hit]]
        if outcome.patches:
            own = np.fromiter((key in outcome.patches.get(r, ()) for r in rows.tolist()), bool,
                              len(rows))  # fmt: skip
            rows, ids = rows[~own], ids[~own]
        counted += len(rows)
        used, inverse = np.unique(ids, return_inverse=True)
        v = check_column(plan, fmt, key, [mask.distinct[i] for i in used.tolist()])
        if v.decision == "block":
            out.decision, out.reason = v.decision, v.reason
            held.clear()
            out.patches = {}
            return
        if not v.issues and not v.patches:
            continue
        # the rows of each distinct value, grouped in one pass (not one scan of rows per value)
        order = np.argsort(inverse, kind="stable")
        groups = np.split(rows[order], np.cumsum(np.bincount(inverse, minlength=len(used)))[:-1])
        for it in v.issues:
            for r in groups[it.row].tolist():
                if r not in held:
                    held[r] = RowIssue(r, it.reason, f"{it.message}, as the steps changed it",
                                       it.column)  # fmt: skip
        for k, p in v.patches.items():
            for r in groups[k].tolist():
                out.patches[r] = {**out.patches.get(r, {}), **p}
    out.report["rows"] += counted


def _write_imputed(w, dataset: str, chunk, outcome, batch_id: str, reports: dict) -> int:
    """Record which columns of which loaded rows were imputed (``<dataset>__imputed``)."""
    rep = reports.get("impute")
    rep = rep[-1] if isinstance(rep, list) else rep or {}
    version = (rep.get("model") or {}).get("version")
    rows = [
        (chunk.offset + i, jdump(sorted(outcome.fills[i])))
        for i in outcome.loaded
        if outcome.fills.get(i)
    ]
    return w.write_imputed(dataset, batch_id, rows, version)


def _check_key_columns(pk, observed, n_read: int, label: str, cfg: dict) -> None:
    """A primary key column that no row of the batch has is a mistake in the config (or
    the wrong file), not a reason to hold every row."""
    missing = [c for c in pk if c not in observed.columns]
    if n_read and missing:
        raise InputError(
            f"primary_key column(s) {', '.join(map(repr, missing))} in no row of the batch",
            file=label,
            key="primary_key",
            hint=f"check primary_key in {cfg['_file']} against the file's keys",
        )


def _key_idents(pk, schema) -> list[str]:
    """The identifiers of the key columns in the typed table ([] while one is not there)."""
    if not pk or not all(c in schema.columns for c in pk):
        return []
    return [schema.columns[c].ident or c for c in pk]


def _merge_step_reports(acc: dict[str, Any], reports: dict[str, Any], chunk: int) -> None:
    for name, rep in reports.items():
        if chunk == 0:
            acc[name] = rep
        else:  # more than one chunk: a list of the chunks' reports
            prev = acc.get(name)
            acc[name] = (prev if isinstance(prev, list) else [prev]) + [rep]


def load_file(
    store,
    cfg: dict[str, Any],
    path: str,
    label: str,
    steps: list,
    run_id: str,
    progress=None,
    *,
    ids: list[str] | None = None,
    read=None,
    on_commit=None,
) -> dict[str, Any]:
    """Load one source file as one batch. Returns the batch's report entry.

    Another source (an HTTP API's pages) loads through the same path with ``ids`` (its batch
    id), ``read`` (a callable giving the batch's chunks, called once per pass) and
    ``on_commit(writer)`` (what it writes in the batch's transaction: its cursor)."""
    from .batch import Batch, iter_batches
    from .compliance.names import mask_name
    from .keys import KeyIndex
    from .phases import Phases
    from .schema import Contract, Inferrer, plan
    from .schema import history as schema_history
    from .spool import ChunkSpool

    dataset, src = cfg["dataset"], cfg["source"]
    phases = Phases()
    started = _now()
    ids = ids or batch_ids(path, src.get("identity", "content"))
    batch_id = ids[0]
    label = mask_name(label)  # a file name can hold PII: reports, errors and the log mask it
    entry: dict[str, Any] = {
        "source": label,
        "batch_id": batch_id,
        "status": None,
        "decision": None,
        "rows_read": 0,
        "rows_loaded": 0,
        "rows_quarantined": 0,
    }
    done = next((d for d in (store.is_done(dataset, i) for i in ids) if d), None)
    if done is not None:
        entry.update(
            status="skipped",
            decision="skipped",
            reason=f"already loaded by run {done['run_id']}",
            previous={k: done[k] for k in ("rows_read", "rows_loaded", "rows_quarantined")},
        )
        store.log_run({**entry, "run_id": run_id, "dataset": dataset, "started_at": started})
        return entry

    # steps that change a chunk before the schema is inferred (the guardian renames keys that
    # hold PII): called on every chunk of both passes; a reason they give blocks the batch
    prepares = [s.prepare for s in steps if hasattr(s, "prepare")]
    prepares += [s.derive for s in steps if hasattr(s, "derive")]  # computed keys, after
    prepared_block: list[str] = []

    def chunks(lines: bool = False):
        for chunk in (read() if read is not None else iter_batches(
            path,
            fmt=src["format"],
            chunk_rows=src["chunk_rows"],
            encoding=src["encoding"],
            name=label,
            records_path=src.get("records_path"),
            short_rows=src["csv"]["short_rows"],
            identify=False,  # the batch id is the file's, computed once above
            lines=lines,  # the raw landing writes them (a chunk a step changes drops them)
        )):  # fmt: skip
            chunk.batch_id = batch_id  # every chunk carries its file's (the batch's) id
            records = chunk.records
            for prepare in prepares:
                why = prepare(chunk)
                if why and why not in prepared_block:
                    prepared_block.append(why)
            if chunk.records is not records:  # a step made the records anew (renamed keys)
                chunk.lines = None
            del records
            yield chunk
            del chunk  # not held while the next chunk is read

    task = (
        progress.add_task(f"read {Path(label).name}", total=None, phases="") if progress else None
    )
    inferrer = Inferrer()
    pk = tuple(cfg.get("primary_key") or ())
    disposition = cfg.get("write_disposition", "append")
    key_index = KeyIndex(pk) if pk else None
    n_read = padded = 0
    raw_landing = cfg["store"].get("raw_landing", True)
    # pass 1 keeps its chunks' columns and lines for pass 2 where they round-trip exactly
    # (spool.py): JSON Lines with the raw landing and no step; else pass 2 reads the file again
    spool = ChunkSpool() if read is None and raw_landing and not steps else None
    try:
        for chunk in phases.reading(chunks(lines=spool is not None)):  # pass 1: every row
            with phases.timing("infer", len(chunk)):
                inferrer.update(chunk)
                if key_index is not None:
                    key_index.update(chunk)
            if spool is not None and spool.usable:
                with phases.timing("read", 0):
                    spool.add(chunk)
            n_read += len(chunk)
            padded += chunk.meta.get("rows_padded", 0)
            if progress:
                progress.update(task, advance=len(chunk), phases=phases.line())
            del chunk  # pass 1 keeps no chunk while the next is read, nor after the last
    except BaseException:
        if spool is not None:
            spool.close()
        raise
    if spool is not None and not spool.usable:
        spool = None
    entry["rows_read"] = n_read  # 0 for "[]" or a bare CSV header: a day without new rows
    if padded:
        entry["rows_padded"] = padded  # CSV rows that left trailing fields off
    observed = inferrer.schema()
    _check_key_columns(pk, observed, n_read, label, cfg)
    superseded = key_index.superseded() if key_index is not None else {}
    contract = Contract.from_config(cfg.get("contract"))
    if progress:
        progress.update(task, description=f"load {Path(label).name}", total=n_read, completed=0)

    ns, dialect = store.namespace, store.dialect
    step_reports: dict[str, Any] = {}
    reasons: Counter = Counter()
    t0 = time.perf_counter()
    try:
        with store.transaction() as w:
            # concurrent runs of the dataset take turns here; one that loaded this batch
            # meanwhile has committed by the time the lock is ours
            w.lock_dataset(dataset)
            done = next((d for d in (w.is_done(dataset, i) for i in ids) if d), None)
            if done is not None:
                raise _LoadedMeanwhile(done)
            if prepared_block:
                raise _Blocked("block", prepared_block[0])
            current = schema_history.current_schema(w.conn, dialect, dataset, ns)
            p = plan(current, observed, contract, dialect, dataset, ns)
            entry["delta"] = p.delta.to_dict()
            entry["ddl"] = list(p.ddl)
            entry["schema_version"] = p.schema.version
            if p.decision == "reject":
                raise _Blocked("reject", f"sentinel: {p.reason}")
            entry["decision"] = p.decision
            w.ensure_dataset(dataset)
            if p.ddl:
                cause = {"by": "run", "batch_id": batch_id, "source": label, "run_id": run_id}
                schema_history.record_schema(w.conn, dialect, dataset, ns, p.schema, p.ddl, cause)
                if hasattr(w, "forget_types"):
                    w.forget_types()
            cols = list(p.schema.columns.values())
            idents = [c.ident or c.name for c in cols]
            types = [c.type for c in cols]
            key_idents = _key_idents(pk, p.schema)
            entry["write_disposition"] = disposition
            if idents and disposition == "merge" and key_idents:
                w.prepare_merge(dataset, key_idents)
            ctx_args = {
                "dataset": dataset,
                "batch_id": batch_id,
                "store": store,
                "base_dir": cfg["_base_dir"],
                "schema": p.schema,
                "primary_key": pk,
                "write_disposition": disposition,
            }
            loaded = quarantined = seen = imputed = updated = 0
            # pass 2: check and write chunk by chunk; a batch of no rows is still one call of
            # every step (the volume monitor sees it)
            if not n_read:
                pass2: Any = [Batch([], label, 0, batch_id, src["format"])]
            elif spool is not None:
                pass2 = spool.batches(batch_id)
            else:
                pass2 = chunks(lines=raw_landing)
            for k, chunk in enumerate(phases.reading(pass2)):
                outcome, reports = _check(
                    chunk, p, steps, ctx_args, (pk, superseded), phases=phases
                )
                _merge_step_reports(step_reports, reports, k)
                if outcome.decision == "block":
                    raise _Blocked("block", outcome.reason or "blocked")
                if outcome.decision == "quarantine_batch":
                    entry["decision"] = "quarantine_batch"
                    entry["reason"] = outcome.reason
                with phases.timing("write", len(chunk)):
                    typed, offsets, payloads = _typed_columns(chunk, outcome, p.schema)
                    qrows, why = _issue_rows(chunk, outcome, batch_id, p.schema.version)
                    reasons.update(why)
                    if (
                        idents
                        and disposition == "replace"
                        and typed.num_rows
                        and "rows_replaced" not in entry
                    ):
                        # the snapshot replaces the table once it loads a row: a batch of which
                        # no row loads (empty, all held, the breaker open) leaves the last one
                        entry["rows_replaced"] = w.clear_typed(dataset)
                    if idents and disposition == "merge" and typed.num_rows:
                        inserted, upd = w.merge_typed(dataset, idents, types, typed, key_idents)
                        loaded += inserted + upd
                        updated += upd
                    elif idents:
                        loaded += w.write_typed(dataset, idents, types, typed)
                    if raw_landing or not idents:  # a row is never only counted
                        raw_rows = w.write_raw(dataset, batch_id, offsets, payloads)
                        loaded += 0 if idents else raw_rows
                    quarantined += w.write_quarantine(dataset, qrows)
                    if outcome.fills:
                        imputed += _write_imputed(
                            w, dataset, chunk, outcome, batch_id, step_reports
                        )
                seen += len(chunk)
                if progress:
                    progress.update(task, advance=len(chunk), phases=phases.line())
                # the chunk and what was made of it go before the next chunk is read (two
                # chunks alive at once were the peak of the run's memory)
                del chunk, outcome, reports, typed, offsets, payloads, qrows
            if seen != n_read or loaded + quarantined != n_read:
                raise ConservationError(
                    f"{label}: read {n_read} rows in pass 1 and {seen} in pass 2, loaded "
                    f"{loaded} + quarantined {quarantined}: did the file change during the run?"
                )
            if pk:
                entry["keys"] = {
                    "primary_key": list(pk),
                    "duplicate_key": reasons.get("duplicate_key", 0),
                    "null_key": reasons.get("null_key", 0),
                }
            if disposition == "merge":
                entry["rows_updated"] = updated
            if not idents and loaded:
                entry["note"] = (
                    "no typed column yet (only nulls seen): the rows are in the raw landing only"
                )
            if imputed:
                entry["rows_imputed"] = imputed
            entry.update(
                status="loaded",
                rows_loaded=loaded,
                rows_quarantined=quarantined,
                reasons=dict(reasons),
                steps=step_reports,
                seconds=round(time.perf_counter() - t0, 3),
                phases=phases.report(),
            )
            t_commit = time.perf_counter()
            if on_commit is not None:
                on_commit(w)
            w.mark_done(dataset, batch_id, {**entry, "run_id": run_id})
            w.log_run(
                {
                    **entry,
                    "run_id": run_id,
                    "dataset": dataset,
                    "started_at": started,
                    "report": entry,
                }
            )
    except _LoadedMeanwhile as meanwhile:
        entry.update(
            status="skipped",
            decision="skipped",
            reason=f"loaded by a concurrent run {meanwhile.done['run_id']}",
            rows_loaded=0,
            rows_quarantined=0,
        )
        store.log_run({**entry, "run_id": run_id, "dataset": dataset, "started_at": started})
    except _Blocked as b:
        entry.update(
            status="blocked",
            decision=b.decision,
            reason=b.reason,
            rows_loaded=0,
            rows_quarantined=0,
            steps=step_reports,
            phases=phases.report(),
        )
        store.log_run(
            {**entry, "run_id": run_id, "dataset": dataset, "started_at": started, "report": entry}
        )
    except PipewardenError:
        raise
    except Exception as exc:  # the load failed: the transaction rolled back, nothing remains
        with suppress(Exception):
            done = store.is_done(dataset, batch_id)
        if done is not None:  # a concurrent run loaded it first (its mark won the key)
            entry.update(
                status="skipped",
                decision="skipped",
                reason=f"loaded by a concurrent run {done['run_id']}",
                rows_loaded=0,
                rows_quarantined=0,
            )
            return entry
        entry.update(
            status="failed",
            decision="failed",
            error=_safe_error(exc),
            rows_loaded=0,
            rows_quarantined=0,
            **_fault_fields(exc),
        )
        try:
            store.log_run(
                {
                    **entry,
                    "run_id": run_id,
                    "dataset": dataset,
                    "started_at": started,
                    "report": entry,
                }
            )
        except Exception as log_exc:  # the store is gone: say so in the report
            entry["run_log"] = f"not written: {_safe_error(log_exc)}"
    else:  # committed: the commit counts as writing
        phases.add("write", time.perf_counter() - t_commit, 0)
        entry["phases"] = phases.report()
    finally:
        if spool is not None:
            spool.close()
        if progress:
            progress.remove_task(task)
    return entry


def _progress(fmt: str):
    if fmt == "json" or not sys.stdout.isatty():
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[dim]{task.fields[phases]}[/]"),
        transient=True,
    )


def run_pipeline(
    config_path: str | os.PathLike, fmt: str = "text", *, show_progress: bool | None = None
) -> dict[str, Any]:
    """Run a pipeline config: load every source file as one batch. Returns the report:
    ``batches`` (per batch: status loaded/skipped/blocked/failed, decision, rows
    read/loaded/quarantined, delta, ddl, reasons, step reports), ``totals`` and ``exit_code``
    (0 all good, 1 a batch was blocked or failed). Bad input or config raises InputError."""
    from .compliance.names import mask_name
    from .reflect import docs_hook

    cfg = load_config(config_path)
    http = cfg["source"].get("kind") == "http"
    files = [] if http else source_files(cfg)
    docs = docs_hook(cfg)  # the reflection loop: None without a `docs` section
    steps = build_steps(cfg)
    run_id = uuid.uuid4().hex[:16]
    t_run = time.perf_counter()
    store = open_config_store(cfg)
    progress = (
        _progress(fmt) if show_progress is None else (_progress("text") if show_progress else None)
    )
    batches: list[dict[str, Any]] = []
    try:
        if progress:
            progress.start()
        if http:  # the pages of an API (sources/http.py), each batch as a file's
            from .sources.http import run_http

            ingest = run_http(
                store, cfg, steps, run_id, progress, batches,
                after_batch=(lambda e: docs(store, e)) if docs else None,
            )  # fmt: skip
        for f in files:
            try:
                with _spooled(f) as (path, label):
                    entry = load_file(store, cfg, path, label, steps, run_id, progress)
            except InputError as exc:
                # a bad file: nothing of it was written; the report still says what earlier
                # batches committed, and the run stops here with exit 2
                entry = {
                    "source": mask_name(exc.file or str(f)),
                    "status": "invalid",
                    "decision": "invalid",
                    "error": exc.render(),
                    "rows_read": 0,
                    "rows_loaded": 0,
                    "rows_quarantined": 0,
                }
            except Exception as exc:
                if not (is_db_error(exc) or isinstance(exc, DatabaseError)):
                    raise
                # the store failed outside a batch's transaction (a lookup, the run log):
                # nothing of this batch was written; the run stops here
                entry = {
                    "source": str(f),
                    "status": "failed",
                    "decision": "failed",
                    "error": _safe_error(exc),
                    "rows_read": 0,
                    "rows_loaded": 0,
                    "rows_quarantined": 0,
                    **_fault_fields(exc),
                }
            batches.append(entry)
            if docs:
                docs(store, entry)  # after the batch committed: its docs, in the same step
            if entry["status"] in ("failed", "invalid"):
                break  # stop at the first failure; a re-run resumes with this batch
    finally:
        if progress:
            progress.stop()
        close_steps(steps)
        store.close()
    not_run = [mask_name(f) for f in files[len(batches) :]]
    totals = {
        k: sum(b[k] for b in batches) for k in ("rows_read", "rows_loaded", "rows_quarantined")
    }
    totals["rows_not_written"] = sum(
        b["rows_read"] for b in batches if b["status"] in ("blocked", "failed")
    )
    statuses = Counter(b["status"] for b in batches)
    bad = statuses["blocked"] + statuses["failed"]
    config_fault = any(b.get("fault_exit") == EXIT_INPUT for b in batches)
    exit_code = EXIT_INPUT if statuses["invalid"] or config_fault else EXIT_GATE if bad else EXIT_OK
    report = {
        "pipeline": cfg["name"],
        "dataset": cfg["dataset"],
        "run_id": run_id,
        "store": {"kind": store.dialect, "url": store.url, "schema": store.namespace},
        "batches": batches,
        "not_run": not_run,
        "totals": {
            **totals,
            "batches": len(batches),
            **{f"batches_{k}": v for k, v in statuses.items()},
        },
        "exit_code": exit_code,
    }
    if http:
        report["ingest"] = ingest
    from .rca.runner import after_run  # the run log and, for a failed run, its RCA verdict

    verdict = after_run(cfg, report, time.perf_counter() - t_run)
    if verdict:
        report["rca"] = verdict
    return report


# ---------------------------------------------------------------- quarantine


def list_quarantine(
    config_path: str | os.PathLike | None = None,
    *,
    store_url: str | None = None,
    namespace: str | None = None,
    dataset: str | None = None,
    status: str | None = None,
    reason: str | None = None,
    limit: int | None = 100,
) -> dict[str, Any]:
    """Quarantined rows with masked previews (never the raw payload). The store comes from a
    pipeline config or from ``store_url``; without ``dataset``, every dataset of the store."""
    from .store import open_store

    region = "US"  # of phone numbers without a country code, for the previews
    if config_path is not None:
        cfg = load_config(config_path)
        region = next(
            (s["region"] for s in cfg["steps"] if s.get("type") == "guardian" and s.get("region")),
            region,
        )
        store = open_config_store(cfg, create=False)
        dataset = dataset or cfg["dataset"]
    elif store_url:
        store = open_store(store_url, namespace=namespace, create=False)
    else:
        raise InputError("give a pipeline config or --store", hint="pipewarden quarantine list -h")
    try:
        names = [dataset] if dataset else store.datasets()
        rows: list[dict[str, Any]] = []
        counts: dict[str, dict[str, int]] = {}
        for name in names:
            got = store.quarantine_rows(
                name, status=status, reason=reason, limit=limit, region=region
            )
            rows.extend(got)
            counts[name] = store.quarantine_counts(name, reason=reason)
    finally:
        store.close()
    return {
        "store": {"kind": store.dialect, "url": store.url, "schema": store.namespace},
        "filters": {"dataset": dataset, "status": status, "reason": reason, "limit": limit},
        "counts": counts,
        "rows": rows,
    }


REPLAY_PAGE = 50_000  # pending rows read, checked and written per transaction by a replay
STILL_HELD_LISTED = 100  # rows a replay's report lists with why they stayed


def replay_quarantine(
    config_path: str | os.PathLike, *, reason: str | None = None, limit: int | None = None
) -> dict[str, Any]:
    """Re-evaluate pending quarantined rows against the pipeline's current schema, contract
    and steps. Rows that now pass are loaded (typed + raw) and marked ``replayed``; the rest
    stay ``pending`` with their updated reason.

    Rows are read oldest first in pages of :data:`REPLAY_PAGE` (at most `limit` in all), and
    each page is one transaction: memory stays bounded by a page, rows that keep failing do
    not stop the replay from reaching the rest, and a failure rolls back its own page only
    (its rows stay pending; earlier pages stay replayed)."""
    from .reflect import docs_hook

    cfg = load_config(config_path)
    docs = docs_hook(cfg)  # a replay that evolves the schema updates the docs as a run does
    steps = build_steps(cfg)
    dataset = cfg["dataset"]
    run_id = uuid.uuid4().hex[:16]
    store = open_config_store(cfg, create=False)  # nothing to replay in a new store
    report: dict[str, Any] = {
        "dataset": dataset,
        "run_id": run_id,
        "store": {"kind": store.dialect, "url": store.url, "schema": store.namespace},
        "rows_considered": 0,
        "rows_replayed": 0,
        "rows_still_quarantined": 0,
        "reasons": {},
        "ddl": [],
        "pages": 0,
        "still_held": [],
    }
    changes: dict[tuple, dict[str, Any]] = {}
    try:
        after = None
        while limit is None or report["rows_considered"] < limit:
            size = (
                REPLAY_PAGE
                if limit is None
                else min(REPLAY_PAGE, limit - report["rows_considered"])
            )
            held = store.quarantine_rows(
                dataset, status="pending", reason=reason, limit=size, with_payload=True, after=after
            )
            if not held:
                break
            last = held[-1]
            after = (last["quarantined_at"], last["batch_id"], last["offset"])
            report["rows_considered"] += len(held)
            report["pages"] += 1
            delta = _replay_page(
                store, cfg, steps, held, f"replay-{run_id}-{report['pages']}", report
            )
            for change in delta["changes"]:
                key = tuple(str(change.get(k)) for k in ("op", "column", "from", "to", "action"))
                changes.setdefault(key, change)
            if len(held) < size:
                break
        if report["pages"]:
            report["delta"] = {"changes": list(changes.values())}
        if docs and report["ddl"]:
            entry = {"status": "loaded", "ddl": report["ddl"]}
            docs(store, entry)
            report["docs"] = entry.get("docs")
    finally:
        close_steps(steps)
        store.close()
    return report


def _replay_judgements(w: Any, store: Any, cfg: dict, batch: Any, held: list[dict]) -> Any:
    """What a replay page must judge beyond the row itself, as the dataset is configured
    now: a short CSV row while ``source.csv.short_rows`` still holds them; a row a later row of
    its batch superseded (``duplicate_key``) while that row is loaded (replaying it would
    overwrite the newer row); under ``replace``, a row of a snapshot the table no longer holds
    (``superseded``)."""
    from .verdict import RowIssue, Verdict

    dataset = cfg["dataset"]
    verdict = Verdict("replay")
    previous = batch.meta["previous_issues"]
    short_mode = cfg["source"]["csv"]["short_rows"]
    winners: dict[tuple[str, int], int] = {}  # (batch, offset of the superseding row) -> row
    snapshot = None
    if cfg.get("write_disposition") == "replace":
        snapshot = _current_snapshot(w, store, dataset)
    for i, h in enumerate(held):
        reasons = {it.get("reason"): it for it in previous.get(i, [])}
        if "short_row" in reasons and short_mode != "pad":
            verdict.issues.append(
                RowIssue(i, "short_row", f"{reasons['short_row'].get('message')}; "
                         f"source.csv.short_rows is {short_mode}: set it to pad to load the "
                         "row with the missing fields empty")
            )  # fmt: skip
            continue
        if snapshot is not None and h["batch_id"] != snapshot:
            verdict.issues.append(
                RowIssue(i, "superseded", "its batch's snapshot was replaced by a later batch "
                         "(write_disposition: replace): the table no longer holds that snapshot")
            )  # fmt: skip
            continue
        dup = reasons.get("duplicate_key")
        by = (dup or {}).get("detail", {}).get("superseded_by") if dup else None
        if isinstance(by, int):
            winners[(h["batch_id"], by)] = i
    if winners:
        # the superseding row still pending in quarantine: it was not loaded, so this row
        # may be; otherwise (loaded, or replayed) this one stays held
        pending = {
            (r["batch_id"], r["offset"])
            for r in store.quarantine_rows(dataset, status="pending", keys=list(winners))
        }
        for (bid, off), i in winners.items():
            if (bid, off) not in pending:
                verdict.issues.append(
                    RowIssue(i, "duplicate_key", f"row {off + 1} of its batch has the same key "
                             "and is loaded: replaying this earlier row would overwrite it",
                             detail={"superseded_by": off})
                )  # fmt: skip
    return verdict


def _current_snapshot(w: Any, store: Any, dataset: str) -> str | None:
    """Under ``replace``: the batch whose rows the typed table holds (the last that loaded a
    row)."""
    rows = w.query(
        store.sql(
            f"SELECT batch_id FROM {store.qualify('_pw_batches')} WHERE dataset = ? "
            "AND rows_loaded > 0 ORDER BY loaded_at DESC LIMIT 1"
        ),
        (dataset,),
    )
    return rows[0][0] if rows else None


def _replay_page(
    store: Any, cfg: dict, steps: list, held: list[dict[str, Any]], batch_id: str, report: dict
) -> dict[str, Any]:
    """One page of a replay in one transaction; adds its counts to `report` and returns the
    page's schema delta."""
    from .batch import Batch
    from .keys import KeyIndex
    from .schema import Contract, infer, plan, row_converter
    from .schema import history as schema_history

    dataset = cfg["dataset"]
    originals = [h["payload"] if isinstance(h["payload"], dict) else {} for h in held]
    csv_ids = _csv_batches(store, dataset, {h["batch_id"] for h in held}, cfg)
    records = [
        _csv_typed(r) if h["batch_id"] in csv_ids else r
        for h, r in zip(held, originals, strict=True)
    ]
    batch = Batch(records=records, source="<quarantine>", batch_id=batch_id)
    # keys the steps derive (features) are not in the quarantined payload: computed again
    derived_block = next(
        (why for s in steps if hasattr(s, "derive") and (why := s.derive(batch))), None
    )
    # what held each row before, for the steps that cannot judge it again from the row alone
    batch.meta["previous_issues"] = {
        i: [it for it in (h.get("issues") or []) if isinstance(it, dict)]
        for i, h in enumerate(held)
    }
    contract = Contract.from_config(cfg.get("contract"))
    started = _now()
    replayed = still = 0
    ddl: list[str] = []
    reasons: Counter = Counter(report["reasons"])
    with store.transaction() as w:
        w.lock_dataset(dataset)  # a run or another replay of the dataset waits its turn
        w.ensure_dataset(dataset)
        current = schema_history.current_schema(w.conn, store.dialect, dataset, store.namespace)
        p = plan(current, infer(batch), contract, store.dialect, dataset, store.namespace)
        delta = p.delta.to_dict()
        if p.decision == "reject" or derived_block:
            outcome = None
            why = derived_block or f"sentinel: {p.reason}"
        else:
            if p.ddl:
                cause = {"by": "replay", "batch_id": batch_id, "run_id": report["run_id"]}
                schema_history.record_schema(
                    w.conn, store.dialect, dataset, store.namespace, p.schema, p.ddl, cause
                )
                ddl = list(p.ddl)
                if hasattr(w, "forget_types"):
                    w.forget_types()
            pk = tuple(cfg.get("primary_key") or ())
            disposition = cfg.get("write_disposition", "append")
            ctx_args = {
                "dataset": dataset,
                "batch_id": batch.batch_id,
                "store": store,
                "base_dir": cfg["_base_dir"],
                "schema": p.schema,
                "primary_key": pk,
                "write_disposition": disposition,
                "mode": "replay",
            }
            # rows of the page with one key: the one quarantined last wins (pages are read
            # oldest first)
            superseded = KeyIndex(pk).update(batch).superseded() if pk else {}
            carried = _replay_judgements(w, store, cfg, batch, held)
            outcome, report["steps"] = _check(
                batch, p, steps, ctx_args, (pk, superseded), first=carried
            )
            why = outcome.reason if outcome.decision == "block" else None
        if outcome is None or outcome.decision == "block":
            msg = why or "blocked"
            issues = jdump([{"reason": "replay_blocked", "message": msg}])
            w.update_quarantine(
                dataset,
                (),
                [(h["batch_id"], h["offset"], "replay_blocked", msg, None, issues) for h in held],
            )
            reasons["replay_blocked"] += len(held)
            still = len(held)
        else:
            cols = list(p.schema.columns.values())
            idents = [c.ident or c.name for c in cols]
            convert = row_converter(p.schema)
            typed, offsets, payloads = _typed_rows(batch, outcome, convert, originals)
            key_idents = _key_idents(pk, p.schema)
            if idents and typed and disposition == "merge" and key_idents:
                w.prepare_merge(dataset, key_idents)
                w.merge_typed(dataset, idents, [c.type for c in cols], typed, key_idents)
            elif idents:
                w.write_typed(dataset, idents, [c.type for c in cols], typed)
            raw_landing = cfg["store"].get("raw_landing", True) or not idents
            by_batch: dict[str, list[int]] = {}
            for j, i in enumerate(outcome.loaded if raw_landing else ()):
                by_batch.setdefault(held[i]["batch_id"], []).append(j)
            for bid, idxs in by_batch.items():
                w.write_raw(
                    dataset,
                    bid,
                    [held[outcome.loaded[j]]["offset"] for j in idxs],
                    [payloads[j] for j in idxs],
                )
            pending = []
            for i, issues in outcome.quarantined.items():
                first = issues[0]
                for it in issues:
                    reasons[it.reason] += 1
                row = held[i]["offset"] + 1  # the row of its source, as everywhere
                pending.append(
                    (held[i]["batch_id"], held[i]["offset"], first.reason, first.message,
                     first.column, jdump([{**it.to_dict(), "row": row} for it in issues]))
                )  # fmt: skip
                if len(report["still_held"]) < STILL_HELD_LISTED:
                    report["still_held"].append(
                        {"batch_id": held[i]["batch_id"], "row": row, "reason": first.reason,
                         "column": first.column, "message": first.message}
                    )  # fmt: skip
            w.update_quarantine(
                dataset, [(held[i]["batch_id"], held[i]["offset"]) for i in outcome.loaded], pending
            )
            replayed, still = len(outcome.loaded), len(outcome.quarantined)
        w.log_run(
            {
                "run_id": report["run_id"],
                "dataset": dataset,
                "batch_id": batch.batch_id,
                "source": "<quarantine>",
                "rows_read": len(held),
                "rows_loaded": replayed,
                "rows_quarantined": still,
                "decision": "replay",
                "status": "replayed",
                "started_at": started,
                "report": {"page": batch.batch_id, "rows_considered": len(held),
                           "rows_replayed": replayed, "rows_still_quarantined": still},
            }
        )  # fmt: skip
    # counted once the page has committed
    report["ddl"].extend(ddl)
    report["rows_replayed"] += replayed
    report["rows_still_quarantined"] += still
    report["reasons"] = dict(reasons)
    return delta


# ---------------------------------------------------------------- demo


def run_demo(directory: str | os.PathLike = "pipewarden-demo", fmt: str = "text") -> dict:
    """Copy the bundled sample (batches + pipeline.yaml) into ``directory`` and run it into
    ``directory/warehouse.duckdb``; then list the quarantine. Re-running skips the batches
    already loaded."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    sample = resources.files("pipewarden").joinpath("data", "sample")
    copied = []
    for item in sorted(sample.iterdir(), key=lambda t: t.name):
        if item.is_file() and not item.name.startswith((".", "__")):
            (target / item.name).write_bytes(item.read_bytes())
            copied.append(item.name)
    config = target / "pipeline.yaml"
    run = run_pipeline(config, fmt=fmt)
    quarantine = list_quarantine(config, status="pending", limit=20)
    return {
        "directory": str(target),
        "files": copied,
        "run": run,
        "quarantine": quarantine,
        "exit_code": run["exit_code"],
        "next": _next_steps(config, quarantine),
    }


def _next_steps(config: Path, quarantine: dict[str, Any]) -> list[str]:
    """What to do about the held rows, literally: for values that do not fit their column,
    the lines to add under ``contract:`` so that replay loads the rows with that column
    empty (a type that cannot be widened in place stays as it is)."""
    steps = [f"pipewarden quarantine list {config}"]
    columns = sorted(
        {r["column"] for r in quarantine["rows"] if r["reason"] == "type_mismatch" and r["column"]}
    )
    if columns:
        steps.append(
            f"to load the held rows with {', '.join(columns)} empty, add these lines under "
            f"`contract:` in {config}:"
        )
        steps.append("  overrides:")
        steps.extend(f"    {c}: {{data_type: discard_value}}" for c in columns)
        steps.append(f"then: pipewarden quarantine replay {config}")
    else:
        steps.append(f"fix the cause, then: pipewarden quarantine replay {config}")
    return steps
