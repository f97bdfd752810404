"""Batches: one representation for every input format.

A :class:`Batch` is a chunk of records read from one source. Records are JSON-like dicts (CSV
values are strings, Parquet values are converted to Python). Readers stream large files in
chunks so memory stays bounded; ``offset`` is the 0-based index in the source of the first
record, so ``offset + i + 1`` is the 1-based row number used in every message.

Readers: :func:`iter_batches` streams a JSON array, JSON Lines (``.jsonl``/``.ndjson``), CSV
(``.csv``/``.tsv``) or Parquet file, or ``-`` for stdin, in chunks of ``chunk_rows`` records;
:func:`read_batch` reads a whole file into one batch. The format comes from the extension and,
when that says nothing (stdin, ``.txt``, ...), from the first bytes. Bad input raises
:class:`~pipewarden.errors.InputError` naming the file, the row and the line (or byte offset).

``batch_id`` is stable: a hash of the SHA-256 of the source's bytes, the chunk's offset and its
row count, so re-reading the same file yields the same ids and a re-run is detected.

Memory stays bounded by the chunk: JSON Lines and CSV are read line by line, Parquet by row
group batches, and a JSON array element by element (files up to ``WHOLE_JSON_BYTES`` are
parsed in one go, which is faster).
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import csv
import datetime as dt
import gc
import hashlib
import io
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from .errors import InputError


@dataclass
class Batch:
    records: list[dict[str, Any]]
    source: str  # the file path, or "<stdin>"
    offset: int = 0  # index of records[0] in the source
    batch_id: str = ""  # stable content id: the same bytes give the same id
    fmt: str = ""  # json | jsonl | csv | parquet
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    def row_number(self, i: int) -> int:
        """The 1-based row number in the source of record ``i`` of this batch."""
        return self.offset + i + 1

    def column(self, name: str) -> list[Any]:
        """Values of top-level key ``name``, ``None`` where a record lacks it."""
        return [r.get(name) for r in self.records]

    def keys(self) -> list[str]:
        """Every top-level key, in order of first appearance (whole batch, no sampling)."""
        seen: dict[str, None] = {}
        for r in self.records:
            for k in r:
                if k not in seen:
                    seen[k] = None
        return list(seen)


# --------------------------------------------------------------------------------------------
# readers

FORMATS = ("json", "jsonl", "csv", "parquet")
_EXTENSIONS = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
WHOLE_JSON_BYTES = 32 * 2**20  # JSON arrays up to this size are parsed in one go
JSONL_BLOCK_BYTES = 4 * 2**20  # JSON Lines are parsed a block of lines at a time
_READ_CHARS = 1 << 20
MAX_DEPTH = 900  # nesting levels a record can safely have (the parsers stop near 1,000)
_HEAD_BYTES = 1 << 16
_WS = re.compile(r"[ \t\n\r]*")
# orjson reads integers beyond 64 bits (below -2**63 or above 2**64 - 1) as floats; text with
# an integer of 20+ digits, or a negative one of 19, goes to the standard library's parser,
# which keeps it exact (see _has_long_int)
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_RUN = b"0" * 19
_ENCODING_HINT = "re-encode the file as UTF-8, or pass the right --encoding"


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")


def _has_long_int(data: bytes) -> bool:
    """True when ``data`` may hold an integer orjson cannot keep: 20+ digits, or 19 after a
    ``-`` (-9223372036854775809 is one below int64), in a run of digits not after a ``.`` and
    not before ``.``/``e`` (the digits of a float do not count). Runs in C: ``translate`` maps
    every digit to ``0``, ``find`` looks for nineteen in a row."""
    t = data.translate(_DIGITS_AS_ZERO)
    i = t.find(_RUN)
    n = len(t)
    while i != -1:
        end = i + 19
        while end < n and t[end] == 48:
            end += 1
        before = t[i - 1] if i else 0
        long_enough = end - i >= 20 or before == 45  # 45: "-"
        if long_enough and before != 46 and (end == n or t[end] not in b".eE"):
            return True
        i = t.find(_RUN, end)
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_loads(data: bytes | str) -> Any:
    """Parse JSON text, keeping integers of any size exact."""
    raw = data.encode() if isinstance(data, str) else data
    if _has_long_int(raw):  # orjson stops at 64 bits; NaN and Infinity stay invalid, as there
        return json.loads(data, parse_constant=_no_constant)
    return orjson.loads(data)


def _json_default(value: Any) -> str:
    """Values JSON has no type for: bytes (Parquet binary) as base64, as the typed column
    holds them; the rest (decimals, dates, times) as their text."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def json_bytes(value: Any, sort_keys: bool = False) -> bytes:
    """JSON for a record or a value (dates and decimals as strings, bytes as base64). The
    standard library takes over where orjson refuses: integers beyond 64 bits, nesting deeper
    than 254 levels."""
    try:
        option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_SORT_KEYS if sort_keys else 0)
        return orjson.dumps(value, default=_json_default, option=option)
    except TypeError:
        return json.dumps(
            value, default=_json_default, ensure_ascii=False, sort_keys=sort_keys
        ).encode()


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


class _Source:
    """A source on disk (stdin is spooled to a temporary file), its name and SHA-256."""

    def __init__(self, path: str | os.PathLike, name: str | None = None) -> None:
        self.tmp: str | None = None
        if str(path) == "-":
            self.name = "<stdin>"
            digest = hashlib.sha256()
            fd, self.tmp = tempfile.mkstemp(prefix="pipewarden-stdin-")
            with os.fdopen(fd, "wb") as out:
                stream = sys.stdin.buffer
                while chunk := stream.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            self.path = self.tmp
            self.sha256 = digest.hexdigest()
        else:
            self.name = str(path)
            p = Path(path)
            if not p.exists():
                raise InputError("no such file", file=self.name, hint="check the path")
            if not p.is_file():
                raise InputError("not a file", file=self.name, hint="give a file, or - for stdin")
            self.path = str(p)
            self.name = name or self.name  # a caller's label: "<stdin>" for a spooled copy
            with open(p, "rb") as f:
                self.sha256 = hashlib.file_digest(f, "sha256").hexdigest()
        with open(self.path, "rb") as f:
            self.gzip = f.read(2) == b"\x1f\x8b"
        self.size = os.path.getsize(self.path)
        try:
            with self.open() as f:
                self.head = f.read(_HEAD_BYTES)
        except (OSError, EOFError) as exc:
            raise self.error(f"not a readable gzip file ({exc})", hint="re-compress it") from None
        if self.gzip:  # the uncompressed size: known when small, else taken as large
            self.size = len(self.head) if len(self.head) < _HEAD_BYTES else sys.maxsize

    def open(self):
        """The source's (uncompressed) bytes: gzip is read through transparently."""
        if self.gzip:
            import gzip

            return gzip.open(self.path, "rb")
        return open(self.path, "rb")  # noqa: SIM115 - the caller closes it

    def close(self) -> None:
        if self.tmp:
            with _suppress():
                os.unlink(self.tmp)
            self.tmp = None

    def error(self, message: str, **where: Any) -> InputError:
        return InputError(message, file=self.name, **where)

    def bad_encoding(self, encoding: str) -> InputError:
        """Locate the first undecodable byte (offset and line) for the message."""
        decoder = codecs.getincrementaldecoder(encoding)("strict")
        offset = newlines = 0
        with self.open() as f:
            while True:
                data = f.read(1 << 20)
                try:
                    decoder.decode(data, final=not data)
                except UnicodeDecodeError as exc:
                    pending = len(exc.object) - len(data)
                    at = max(exc.start - pending, 0)
                    return self.error(
                        f"invalid {codecs.lookup(encoding).name} at byte offset {offset + at}"
                        + (" (uncompressed)" if self.gzip else ""),
                        line=newlines + data[:at].count(b"\n") + 1,
                        hint=_ENCODING_HINT,
                    )
                if not data:
                    break
                offset += len(data)
                newlines += data.count(b"\n")
        return self.error("the file cannot be decoded", hint=_ENCODING_HINT)


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], OSError)


def _suffix(name: str) -> str:
    """The extension that names the format (``.csv`` for ``day.csv.gz``)."""
    p = Path(name)
    if p.suffix.lower() == ".gz":
        p = p.with_suffix("")
    return p.suffix.lower()


def format_of(name: str) -> str | None:
    """The format a file name's extension gives, or None (no or an unknown extension)."""
    return _EXTENSIONS.get(_suffix(name))


def detect_format(name: str, head: bytes, fmt: str = "auto") -> str:
    """The format of a source: ``fmt`` when given, else the extension, else the first bytes.
    A ``.json`` file that holds one object per line is read as JSON Lines."""
    if fmt != "auto":
        if fmt not in FORMATS:
            raise InputError(
                f"unknown format {fmt!r}", file=name, hint=f"use one of auto, {', '.join(FORMATS)}"
            )
        return fmt
    ext = _EXTENSIONS.get(_suffix(name))
    if head.startswith(b"PAR1"):
        return "parquet"
    first = head.lstrip(codecs.BOM_UTF8 + b" \t\r\n")[:1]
    if ext == "json" and first == b"{":
        return "jsonl"
    if ext == "jsonl" and first == b"[":
        return "json"  # a JSON array named .jsonl
    if ext:
        return ext
    return {b"[": "json", b"{": "jsonl"}.get(first, "csv")


def iter_batches(
    path: str | os.PathLike,
    fmt: str = "auto",
    chunk_rows: int = 100_000,
    encoding: str = "utf-8",
    name: str | None = None,
) -> Iterator[Batch]:
    """Stream the records of ``path`` (``-`` for stdin) in batches of ``chunk_rows`` records;
    ``name`` labels the source in errors and batches instead of ``path``.

    Raises :class:`InputError` (naming the file, the row and the line) for an empty file,
    invalid or truncated JSON, a record that is not an object, bad encoding, a ragged CSV row
    or a duplicate CSV header. The error comes when the reader reaches the bad spot, so a
    caller that must write nothing on bad input reads every batch before writing.
    """
    if chunk_rows < 1:
        raise InputError("chunk_rows must be at least 1", key="chunk_rows")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(
            f"unknown encoding {encoding!r}",
            key="encoding",
            hint="a Python codec name, e.g. utf-8, utf-8-sig, latin-1, cp1252, utf-16",
        ) from None
    src = _Source(path, name)
    try:
        kind = detect_format(src.name, src.head, fmt)
        if kind != "parquet" and src.size <= _HEAD_BYTES and not src.head.strip(b" \t\r\n"):
            raise src.error("the file is empty", hint="give a file with at least one record")
        if kind == "parquet" and src.size == 0:
            raise src.error("the file is empty", hint="give a file with at least one record")
        reader = {
            "json": _read_json,
            "jsonl": _read_jsonl,
            "csv": _read_csv,
            "parquet": _read_parquet,
        }[kind]
        offset = 0
        for records in _chunked(reader(src, encoding), chunk_rows):
            ident = f"{src.sha256}:{offset}:{len(records)}".encode()
            yield Batch(
                records,
                src.name,
                offset,
                hashlib.sha256(ident).hexdigest()[:32],
                kind,
                {"sha256": src.sha256},
            )
            offset += len(records)
            del records  # the caller owns the batch now
    finally:
        src.close()


def read_batch(path: str | os.PathLike, fmt: str = "auto", encoding: str = "utf-8") -> Batch:
    """Read the whole of ``path`` into one batch (an empty batch for ``[]`` or a bare header)."""
    batches = list(iter_batches(path, fmt, chunk_rows=sys.maxsize, encoding=encoding))
    if batches:
        return batches[0]
    name = "<stdin>" if str(path) == "-" else str(path)
    return Batch([], name, 0, "", fmt)


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small containers: records and
    tuples hold no cycles, and with millions of live objects the collector's passes cost more
    than the work itself (several times the time of a chunk)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _chunked(records: Iterable[dict], size: int) -> Iterator[list[dict]]:
    it = iter(records)
    while True:
        with no_gc():
            chunk = list(islice(it, size))
        if not chunk:
            return
        yield chunk
        del chunk  # not held while the next chunk is built


def _read_jsonl(src: _Source, encoding: str) -> Iterator[dict]:
    """JSON Lines. UTF-8 is read in blocks of 4 MB parsed by one list comprehension (the
    fast path); a block with a problem is parsed again line by line to name the row."""
    if not _is_utf8(encoding):
        with src.open() as raw:
            text = io.TextIOWrapper(raw, encoding=encoding, newline="")
            try:
                yield from _parse_lines(src, encoding, list(text), 0, 0, True)
            except UnicodeDecodeError:
                raise src.bad_encoding(encoding) from None
        return
    row = lineno = 0
    pending = b""
    with src.open() as raw:
        while True:
            block = raw.read(JSONL_BLOCK_BYTES)
            data = pending + block
            if block:
                cut = data.rfind(b"\n") + 1
                body, pending = data[:cut], data[cut:]
            else:
                body, pending = data, b""
            if lineno == 0:
                body = body.removeprefix(codecs.BOM_UTF8)
            if body:
                lines = body.split(b"\n")
                if body.endswith(b"\n"):
                    lines.pop()
                careful = _has_long_int(body)
                records = None
                if not careful:
                    try:
                        with no_gc():
                            records = [orjson.loads(line) for line in lines]
                    except orjson.JSONDecodeError:
                        records = None
                    if records is not None and not all(type(r) is dict for r in records):
                        records = None
                if records is None:
                    try:
                        records = _parse_lines(src, encoding, lines, lineno, row, careful)
                    except InputError as exc:
                        if exc.line == 1:
                            _one_object(src)  # a pretty-printed object says so
                        raise
                lineno += len(lines)
                row += len(records)
                yield from records
            if not block:
                break


def _one_object(src: _Source) -> None:
    """Raise the clear error for a file that holds one JSON object (not JSON Lines)."""
    if src.size > WHOLE_JSON_BYTES:
        return
    with src.open() as f:
        try:
            doc = json_loads(f.read().removeprefix(codecs.BOM_UTF8))
        except (ValueError, RecursionError):
            return
    if isinstance(doc, dict):
        raise src.error(
            "the top-level JSON value is an object, not an array of records",
            line=1,
            hint="give an array of objects, or JSON Lines (one object per line)",
        )


def _parse_lines(
    src: _Source, encoding: str, lines: list, lineno: int, row: int, careful: bool
) -> list[dict]:
    """Parse lines one by one: blank lines skipped, errors named by row and line."""
    out = []
    for n, line in enumerate(lines, lineno + 1):
        text = line.strip()
        if not text:
            continue
        if n == 1 and isinstance(text, str):
            text = text.removeprefix("\ufeff")
        try:
            record = json_loads(text) if careful else orjson.loads(text)
        except (json.JSONDecodeError, ValueError, RecursionError) as exc:
            if isinstance(exc, RecursionError) or "depth limit" in str(exc):
                raise src.error(
                    "the record nests objects or arrays too deeply to parse",
                    row=row + len(out) + 1,
                    line=n,
                    hint=f"flatten it to under {MAX_DEPTH} levels",
                ) from None
            if isinstance(line, bytes):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    raise src.bad_encoding(encoding) from None
            raise src.error(
                f"invalid JSON ({_json_reason(exc)})",
                row=row + len(out) + 1,
                line=n,
                hint="each line must hold one complete JSON object",
            ) from None
        if type(record) is not dict:
            raise src.error(
                f"the record is {_kind(record)}, not an object",
                row=row + len(out) + 1,
                line=n,
                hint="each line must hold one JSON object",
            )
        out.append(record)
    return out


def _json_reason(exc: Exception) -> str:
    msg = getattr(exc, "msg", None) or str(exc)
    return msg.split(":", 1)[0].strip() if ": line" in msg else msg


def _read_json(src: _Source, encoding: str) -> Iterator[dict]:
    if src.size <= WHOLE_JSON_BYTES and _is_utf8(encoding):
        with src.open() as f:
            data = f.read().removeprefix(codecs.BOM_UTF8)
        try:
            doc = json_loads(data)
        except (json.JSONDecodeError, ValueError, RecursionError):
            doc = None  # the streaming reader locates the error (row and line)
        if isinstance(doc, list):
            for i, record in enumerate(doc):
                if type(record) is not dict:
                    yield from _stream_json(src, encoding, stop_at=i)
                yield record
            return
        if isinstance(doc, dict):
            raise src.error(
                "the top-level JSON value is an object, not an array of records",
                line=1,
                hint="give an array of objects, or JSON Lines (one object per line)",
            )
    yield from _stream_json(src, encoding)


def _stream_json(src: _Source, encoding: str, stop_at: int | None = None) -> Iterator[dict]:
    """Parse a JSON array element by element from a text stream of bounded size."""
    decoder = json.JSONDecoder()
    with src.open() as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        state = {"buf": "", "pos": 0, "line": 1, "eof": False, "want": _READ_CHARS}

        def fill() -> bool:
            """Drop what was consumed, read more; False at the end of the stream."""
            if state["eof"]:
                return False
            buf, pos = state["buf"], state["pos"]
            state["line"] += buf.count("\n", 0, pos)
            try:
                more = text.read(state["want"])
            except UnicodeDecodeError:
                raise src.bad_encoding(encoding) from None
            if not more:
                state["eof"] = True
            state["buf"], state["pos"] = buf[pos:] + more, 0
            return bool(more)

        def skip_ws() -> str:
            while True:
                buf = state["buf"]
                state["pos"] = _WS.match(buf, state["pos"]).end()
                if state["pos"] < len(buf):
                    return buf[state["pos"]]
                if not fill():
                    return ""

        def line_at(pos: int) -> int:
            return state["line"] + state["buf"].count("\n", 0, pos)

        fill()
        if state["buf"].startswith("\ufeff"):
            state["pos"] = 1
        first = skip_ws()
        if first != "[":
            what = "an object" if first == "{" else "not an array"
            raise src.error(
                f"the top-level JSON value is {what}",
                line=line_at(state["pos"]),
                hint="give an array of objects, or JSON Lines (one object per line)",
            )
        state["pos"] += 1
        row = 0
        while True:
            ch = skip_ws()
            if ch == "]" and row == 0:
                state["pos"] += 1
                break
            if not ch:
                raise src.error(
                    "truncated JSON: the array is not closed",
                    row=row + 1,
                    line=line_at(state["pos"]),
                    hint="the file was cut short; re-export it",
                )
            while True:
                try:
                    record, end = decoder.raw_decode(state["buf"], state["pos"])
                except RecursionError:
                    raise src.error(
                        "the record nests objects or arrays too deeply to parse",
                        row=row + 1,
                        line=line_at(state["pos"]),
                        hint=f"flatten it to under {MAX_DEPTH} levels",
                    ) from None
                except json.JSONDecodeError as exc:
                    if fill():
                        state["want"] = min(state["want"] * 2, 1 << 28)
                        continue
                    truncated = exc.pos >= len(state["buf"]) - 1
                    raise src.error(
                        "truncated JSON" if truncated else f"invalid JSON ({exc.msg})",
                        row=row + 1,
                        line=line_at(exc.pos),
                        hint="the file was cut short; re-export it"
                        if truncated
                        else "fix the record or re-export the file",
                    ) from None
                break
            state["want"] = _READ_CHARS
            row += 1
            if type(record) is not dict:
                raise src.error(
                    f"the record is {_kind(record)}, not an object",
                    row=row,
                    line=line_at(state["pos"]),
                    hint="the array must hold JSON objects only",
                )
            if stop_at is None:
                yield record
            state["pos"] = end
            ch = skip_ws()
            if ch == ",":
                state["pos"] += 1
                continue
            if ch == "]":
                state["pos"] += 1
                break
            raise src.error(
                "truncated JSON: the array is not closed" if not ch else "expected ',' or ']'",
                row=row + 1 if ch else row,
                line=line_at(state["pos"]),
                hint="the file was cut short; re-export it" if not ch else "fix the JSON",
            )
        if skip_ws():
            raise src.error(
                "more content after the end of the JSON array",
                line=line_at(state["pos"]),
                hint="a JSON file holds one array; use JSON Lines for many objects",
            )
    if stop_at is not None:  # pragma: no cover - the whole-file parse said otherwise
        raise src.error("the JSON array could not be read", row=stop_at + 1)


def _sniff_delimiter(src: _Source) -> str:
    if _suffix(src.name) == ".tsv":
        return "\t"
    first = src.head.split(b"\n", 1)[0]
    counts = {d: first.count(d.encode()) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


CSV_FIELD_LIMIT = 1 << 30  # characters in one field (Python's csv stops at 131,072 by default)


def _read_csv(src: _Source, encoding: str) -> Iterator[dict]:
    delimiter = _sniff_delimiter(src)
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)  # a long note or a JSON document in one cell
    with src.open() as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
            if not header:
                raise src.error("the file is empty (no header line)", line=1)
            header[0] = header[0].removeprefix("\ufeff")
            seen: dict[str, int] = {}
            for name in header:
                seen[name] = seen.get(name, 0) + 1
            dupes = [n for n, c in seen.items() if c > 1]
            if dupes:
                raise src.error(
                    f"duplicate column name(s) in the header: {', '.join(map(repr, dupes))}",
                    line=1,
                    hint="give every column a unique name",
                )
            width = len(header)
            row = 0
            for values in reader:
                if not values:
                    continue  # a blank line
                row += 1
                if len(values) != width:
                    raise src.error(
                        f"the row has {len(values)} fields, the header has {width}",
                        row=row,
                        line=reader.line_num,
                        hint="quote fields that contain the delimiter, or fix the row",
                    )
                yield {k: (v if v != "" else None) for k, v in zip(header, values, strict=True)}
        except UnicodeDecodeError:
            raise src.bad_encoding(encoding) from None
        except csv.Error as exc:
            raise src.error(
                f"invalid CSV ({exc})", line=reader.line_num, hint="check the quoting"
            ) from None


def _read_parquet(src: _Source, encoding: str) -> Iterator[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(src.path)
    except (pa.ArrowException, OSError) as exc:
        raise src.error(f"not a readable Parquet file ({exc})", hint="re-export it") from None
    schema = pf.schema_arrow
    dupes = sorted({n for n in schema.names if schema.names.count(n) > 1})
    if dupes:  # a record keeps one value per name: the others would be lost
        raise src.error(
            f"duplicate column name(s): {', '.join(map(repr, dupes))}",
            hint="rename the columns so each name is unique, and re-export",
        )
    readable = pa.schema([f.with_type(_no_ns(f.type)) for f in schema])
    try:
        for rb in pf.iter_batches(batch_size=65_536):
            if readable != rb.schema:
                yield from pa.Table.from_batches([rb]).cast(readable).to_pylist()
            else:
                yield from rb.to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise src.error(f"the Parquet file is damaged ({exc})", hint="re-export it") from None


def _no_ns(t):
    """``t`` with nanosecond timestamps as ISO strings: Python's datetime stops at microseconds
    and pyarrow refuses to drop the rest; as strings they load like nanosecond timestamps in
    JSON (the typed column keeps microseconds, the raw payload every digit)."""
    import pyarrow as pa

    if pa.types.is_timestamp(t) and t.unit == "ns":
        return pa.string()
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_no_ns(f.type)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(_no_ns(t.value_type)))
    if pa.types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(_no_ns(t.value_type)))
    return t
