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

Shapes: ``records_path`` points at the array of records inside a JSON document (or inside each
line of JSON Lines), e.g. ``{"data": [...], "next": ...}`` with ``data``; ``short_rows`` says what
a CSV row with fewer fields than the header becomes (``pad``: the missing trailing fields are
null, as ``csv.DictReader`` and spreadsheets read it; ``quarantine``: padded and held with
reason ``short_row``; ``error``: bad input). Numbers JSON writes beyond a double's range (``1e400``)
or below it (``1e-400``, which a double would store as 0) are kept exact, as :class:`Exact`.
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
import itertools
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import orjson

from .errors import InputError

_TEXT_OR_NULL = frozenset((str, type(None)))


@dataclass
class Batch:
    records: list[dict[str, Any]]
    source: str  # the file path, or "<stdin>"
    offset: int = 0  # index of records[0] in the source
    batch_id: str = ""  # stable content id: the same bytes give the same id
    fmt: str = ""  # json | jsonl | csv | parquet
    meta: dict[str, Any] = field(default_factory=dict)
    # the records' source text where it is their JSON (JSON Lines read by the fast path): an
    # Arrow string array, one line a record; None otherwise. The raw landing writes it as the
    # payload of a row no step changed, instead of writing the record again
    lines: Any = field(default=None, repr=False, compare=False)
    _columns: Any = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.records)

    def columns(self) -> dict[str, Sequence[Any]]:
        """Column name -> the values of every record (None where a record lacks the key),
        every key in order of first appearance. Made once per chunk and shared by inference,
        the row check and the load (checks are pure: they do not change records in place;
        a new ``records`` list is transposed again)."""
        return self._cached()[2]

    def _cached(self) -> tuple[list, int, dict[str, Sequence[Any]], dict[str, frozenset]]:
        cached = self._columns
        records = self.records
        if cached is None or cached[0] is not records or cached[1] != len(records):
            from .schema.infer import _transpose

            freeze = bool(_FREEZERS[0]) and gc.isenabled()
            with no_gc():
                cols = _transpose(records) if records else {}
            if freeze:
                # out of the collector's generations with the chunk's records (frozen_chunks):
                # columns hold no cycles, and a collection that finds them young visits every
                # value they hold (30-50 ms a chunk)
                gc.freeze()
            cached = self._columns = (records, len(records), cols, {})
        return cached

    def types(self, key: str) -> frozenset[type]:
        """The Python types of the values of column ``key`` (``NoneType`` where a record
        lacks the key or holds null; empty for a key no record has). Found once per chunk
        (``set(map(type, values))``, one C-level pass) and shared by every reader of the
        column: inference, the row check, the typed columns, the guardian, the anomaly
        step."""
        _, _, cols, types = self._cached()
        found = types.get(key)
        if found is None:
            values = cols.get(key)
            found = types[key] = frozenset(map(type, values)) if values is not None else frozenset()
        return found

    def temporal(self, key: str) -> tuple[Any, Any]:
        """:func:`~pipewarden.columnar.parse_temporal` of the texts of column ``key`` (a value
        that is not a text counts as null): each value's kind and microseconds. Parsed once
        per chunk, for the row check and the typed column both."""
        _, _, cols, facts = self._cached()
        got = facts.get(("temporal", key))
        if got is None:
            from .columnar import parse_temporal

            values = cols.get(key, ())
            if not self.types(key) <= _TEXT_OR_NULL:
                values = [v if type(v) is str else None for v in values]
            got = facts["temporal", key] = parse_temporal(values)
        return got

    def changed(self) -> None:
        """Forget the columns made so far, and the source lines (no longer the records' JSON):
        for a step that changes records in place (adds a key to each), which :meth:`columns`
        cannot see from the list alone."""
        self._columns = None
        self.lines = None

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


class Exact(Decimal):
    """A JSON number a double cannot hold: beyond its range (``1e400``, which a double makes
    infinite) or below it (``1e-400``, which a double makes 0). Kept exact, as a decimal; it is
    written back to JSON as the number it was."""


_NONZERO = frozenset("123456789")


def _parse_float(text: str) -> float | Exact:
    value = float(text)
    if value in (_INF, -_INF) or (
        value == 0.0 and not _NONZERO.isdisjoint(text.partition("e")[0].partition("E")[0])
    ):
        return Exact(text)
    return value


_INF = float("inf")
# text that may hold a number a double cannot keep: a negative exponent of 3+ digits, or
# 100 zeros after a decimal point (orjson would read 0.0 without a word); the exact parser
# decides per number
# (searches with a literal first byte: one pattern starting with [eE] took 7x longer)
_EXTREME = (re.compile(rb"e-0*[1-9][0-9][0-9]"), re.compile(rb"E-0*[1-9][0-9][0-9]"))
_HUNDRED_ZEROS = b"." + b"0" * 100


def _exact_loads(data: bytes | str) -> Any:
    return json.loads(data, parse_constant=_no_constant, parse_float=_parse_float)


def needs_exact(raw: bytes) -> bool:
    """True when orjson would not keep every number of ``raw`` exactly: an integer beyond 64
    bits, or a float beyond or below a double's range. The hundred zeros are a substring
    search (8x faster than the pattern; a literal ``e-`` first was no faster than the
    patterns that start with it)."""
    return (
        _has_long_int(raw)
        or any(p.search(raw) is not None for p in _EXTREME)
        or _HUNDRED_ZEROS in raw
    )


def json_loads(data: bytes | str) -> Any:
    """Parse JSON text, keeping integers of any size exact, and numbers a double cannot hold
    as :class:`Exact`. NaN and Infinity stay invalid."""
    raw = data.encode() if isinstance(data, str) else data
    if needs_exact(raw):
        return _exact_loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "infinity" in str(exc):  # 1e400: kept exact instead
            return _exact_loads(data)
        raise


def _json_default(value: Any) -> Any:
    """Values JSON has no type for: bytes (Parquet binary) as base64, as the typed column
    holds them; the rest (decimals, dates, times) as their text. An :class:`Exact` number is
    written as the number it was read as."""
    if type(value) is Exact:
        return orjson.Fragment(str(value))
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
        return _std_dumps(value, sort_keys)


def json_array(values: Sequence[Any], nulls: Any = None) -> Any:
    """:func:`json_bytes` of each value (records, or a column's values) as one Arrow string
    array (``nulls``: a numpy mask of the values to leave null). orjson writes each value
    into one growing buffer, so no Python string is made per value: 0.064 CPU-s for 100,000
    records of bench/run's file, against 0.134 for a list of decoded texts given to
    ``pa.array`` (orjson's bytes keep the capacity they were written in, so a list of them
    held 376 MB for those records: each is copied out and dropped at once). Where orjson
    refuses a value (an integer beyond 64 bits, deep nesting), that value is written by
    :func:`json_bytes`."""
    import numpy as np
    import pyarrow as pa

    dumps, option, default = orjson.dumps, orjson.OPT_NON_STR_KEYS, _json_default
    buf = bytearray()
    sizes: list[int] = []
    put, size = buf.extend, sizes.append
    for v in values:
        try:
            b = dumps(v, default=default, option=option)
        except TypeError:
            b = json_bytes(v)
        put(b)
        size(len(b))
    n = len(sizes)
    large = len(buf) >= 2**31
    offsets = np.zeros(n + 1, dtype=np.int64 if large else np.int32)
    np.cumsum(sizes, out=offsets[1:])
    kind = pa.LargeStringArray if large else pa.StringArray
    valid = None
    if nulls is not None and nulls.any():
        valid = pa.py_buffer(np.packbits(~nulls, bitorder="little"))
    return kind.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf), valid)


def _std_dumps(value: Any, sort_keys: bool) -> bytes:
    """The standard library's JSON, with :class:`Exact` numbers written as numbers: each goes
    out as a string with a one-time marker, which is then unquoted."""
    nonce = os.urandom(8).hex()
    found = False

    def default(v: Any) -> Any:
        nonlocal found
        if type(v) is Exact:
            found = True
            return f"\x00{nonce}{v}\x00"
        return _json_default(v)

    text = json.dumps(value, default=default, ensure_ascii=False, sort_keys=sort_keys)
    if found:
        text = re.sub(rf'"\\u0000{nonce}([^"\\]*)\\u0000"', r"\1", text)
    return text.encode()


def _kind(value: Any) -> str:
    return {
        list: "an array",
        dict: "an object",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
    }.get(type(value), "a number")


class _Source:
    """A source on disk (stdin is spooled to a temporary file), its name and SHA-256."""

    def __init__(
        self, path: str | os.PathLike, name: str | None = None, digest: bool = True
    ) -> None:
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
            self.sha256 = ""
            if digest:
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
        return "jsonl" if _first_line_is_object(head) else "json"
    if ext == "jsonl" and first == b"[":
        return "json"  # a JSON array named .jsonl
    if ext:
        return ext
    return {b"[": "json", b"{": "jsonl"}.get(first, "csv")


SHORT_ROWS = ("pad", "quarantine", "error")
_SEGMENT = re.compile(r"([^\[\]]*)((?:\[\d+\])*)")


def parse_records_path(text: str | None) -> tuple[str, ...]:
    """The keys (and array indexes, as digit strings) of a records path: a JSON pointer
    (``/data/items``, with RFC 6901's ``~1`` for ``/`` and ``~0`` for ``~``) or a dotted path
    (``data.items``, ``$.data.items``, ``results[0].items``). ``None``, ``""``, ``/`` and ``$``
    are the top-level value."""
    if text is None:
        return ()
    t = text.strip()
    if t in ("", "/", "$"):
        return ()
    if t.startswith("/"):
        return tuple(s.replace("~1", "/").replace("~0", "~") for s in t[1:].split("/"))
    if t.startswith("$"):
        t = t[1:].removeprefix(".")
    segs: list[str] = []
    for part in t.split("."):
        m = _SEGMENT.fullmatch(part)
        if not m or not (m.group(1) or m.group(2)):
            raise InputError(
                f"records_path {text!r} is not a path",
                key="records_path",
                hint="a dotted path like data.items or results[0].items, or a JSON pointer "
                "like /data/items (use the pointer for keys holding '.', '[' or ']')",
            )
        if m.group(1):
            segs.append(m.group(1))
        segs.extend(re.findall(r"\[(\d+)\]", m.group(2)))
    return tuple(segs)


def _path_text(segs: tuple[str, ...] | list[str]) -> str:
    """A path as a JSON pointer (the top level is ``/``)."""
    return "/" + "/".join(s.replace("~", "~0").replace("/", "~1") for s in segs)


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_ -]{0,40}")


def _array_keys(obj: dict) -> list[str]:
    """Keys of ``obj`` that hold an array of objects, where records usually are (only
    identifier-like keys are named: a key may be data)."""
    return [
        k
        for k, v in obj.items()
        if isinstance(k, str)
        and _PLAIN_KEY.fullmatch(k)
        and isinstance(v, list)
        and (not v or isinstance(v[0], dict))
    ]


def _object_hint(doc: Any) -> str:
    keys = _array_keys(doc) if isinstance(doc, dict) else []
    if len(keys) == 1:
        return (
            f"its records look to be under {keys[0]!r}: set records_path to {keys[0]} "
            "(source.records_path in a pipeline config)"
        )
    if keys:
        return (
            "its arrays are under " + ", ".join(map(repr, keys[:5])) + ": set records_path "
            "(source.records_path in a pipeline config) to the one that holds the records"
        )
    return (
        "give an array of objects, JSON Lines (one object per line), or set records_path "
        "(source.records_path in a pipeline config) to the array inside the object"
    )


@dataclass
class ReadOptions:
    """How to find the records in a source (see the module docstring); ``short`` collects
    (record index, fields) of the CSV rows that were short, for the batches."""

    records_path: tuple[str, ...] = ()
    short_rows: str = "pad"
    short: list[tuple[int, int]] = field(default_factory=list)
    width: int | None = None  # fields of the CSV header
    # JSON Lines, when the batches keep their lines: (first record, count, the lines as an
    # Arrow array or None) of each block read and not yet given to a batch
    keep_lines: bool = False
    lines: list[tuple[int, int, Any]] = field(default_factory=list)

    @property
    def path_text(self) -> str:
        return _path_text(self.records_path)


def _records_at(doc: Any, opts: ReadOptions, src: _Source, **where: Any) -> list:
    """The array at ``opts.records_path`` in ``doc``; a clear error when it is not there."""
    cur = doc
    for k, seg in enumerate(opts.records_path):
        here = _path_text(opts.records_path[:k])
        if isinstance(cur, dict) and seg in cur:
            cur = cur[seg]
            continue
        if isinstance(cur, list) and seg.isdigit() and int(seg) < len(cur):
            cur = cur[int(seg)]
            continue
        if isinstance(cur, dict):
            keys = _array_keys(cur)
            raise src.error(
                f"records_path {opts.path_text}: the object at {here} has no key {seg!r}",
                hint="its arrays are under " + ", ".join(map(repr, keys[:5]))
                if keys
                else "check the path against the file",
                **where,
            )
        if isinstance(cur, list) and seg.isdigit():
            raise src.error(
                f"records_path {opts.path_text}: the array at {here} has no item {seg} "
                f"(it has {len(cur)})",
                hint="check the path against the file",
                **where,
            )
        what = _kind(cur)
        raise src.error(
            f"records_path {opts.path_text}: the value at {here} is {what}, it has no {seg!r}",
            hint="check the path against the file",
            **where,
        )
    if not isinstance(cur, list):
        raise src.error(
            f"records_path {opts.path_text}: the value there is {_kind(cur)}, not an array "
            "of records",
            hint="point records_path at the array that holds the records",
            **where,
        )
    return cur


def _first_line_is_object(head: bytes) -> bool:
    """True when the first line of ``head`` is a whole JSON object (JSON Lines); False for
    a document that spans lines (a pretty-printed object)."""
    body = head.lstrip(codecs.BOM_UTF8 + b" \t\r\n")
    nl = body.find(b"\n")
    if nl == -1:
        return len(head) < _HEAD_BYTES  # one line, the whole file: one record
    try:
        return type(orjson.loads(body[:nl])) is dict
    except orjson.JSONDecodeError:
        return False


def iter_batches(
    path: str | os.PathLike,
    fmt: str = "auto",
    chunk_rows: int = 100_000,
    encoding: str = "utf-8",
    name: str | None = None,
    *,
    records_path: str | None = None,
    short_rows: str = "pad",
    identify: bool = True,
    lines: bool = False,
) -> Iterator[Batch]:
    """Stream the records of ``path`` (``-`` for stdin) in batches of ``chunk_rows`` records;
    ``name`` labels the source in errors and batches instead of ``path``. ``identify=False``
    skips hashing the file: the batches' ``batch_id`` is then empty, for a caller that
    identifies the source itself (``pipewarden run`` does, once, before it reads). ``records_path``:
    where the array of records is inside a JSON document (or each line of JSON Lines);
    ``short_rows``: ``pad``, ``quarantine`` or ``error`` for a CSV row with fewer fields than
    the header (a padded row's index and field count are in ``batch.meta["short_rows"]`` with
    ``quarantine``; ``batch.meta["rows_padded"]`` counts the padded rows either way).
    ``lines=True``: each batch of JSON Lines read by the fast path keeps its source lines
    (``Batch.lines``), which the raw landing writes as the payloads.

    Raises :class:`InputError` (naming the file, the row and the line) for an empty file,
    invalid or truncated JSON, a record that is not an object, bad encoding, a CSV row with
    more fields than the header (or fewer, with ``short_rows="error"``) or a duplicate CSV
    header. The error comes when the reader reaches the bad spot, so a caller that must write
    nothing on bad input reads every batch before writing.
    """
    if chunk_rows < 1:
        raise InputError("chunk_rows must be at least 1", key="chunk_rows")
    if short_rows not in SHORT_ROWS:
        raise InputError(
            f"short_rows {short_rows!r} is not one of {', '.join(SHORT_ROWS)}", key="short_rows"
        )
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(
            f"unknown encoding {encoding!r}",
            key="encoding",
            hint="a Python codec name, e.g. utf-8, utf-8-sig, latin-1, cp1252, utf-16",
        ) from None
    opts = ReadOptions(parse_records_path(records_path), short_rows, keep_lines=lines)
    src = _Source(path, name, digest=identify)
    try:
        kind = detect_format(src.name, src.head, fmt)
        if opts.records_path and kind not in ("json", "jsonl"):
            raise src.error(
                f"records_path applies to JSON and JSON Lines, not to {kind}",
                key="records_path",
                hint="leave records_path out for this file, or give the format",
            )
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
        for records in _chunked(reader(src, encoding, opts), chunk_rows):
            ident = f"{src.sha256}:{offset}:{len(records)}".encode()
            meta: dict[str, Any] = {"sha256": src.sha256} if identify else {}
            if opts.short:
                end = offset + len(records)
                here = [(i - offset, n) for i, n in opts.short if i < end]
                opts.short = [(i, n) for i, n in opts.short if i >= end]
                meta["rows_padded"] = len(here)
                if opts.short_rows == "quarantine":
                    meta["short_rows"] = dict(here)
                    meta["header_fields"] = opts.width
            yield Batch(
                records,
                src.name,
                offset,
                hashlib.sha256(ident).hexdigest()[:32] if identify else "",
                kind,
                meta,
                _take_lines(opts, offset, len(records)) if opts.keep_lines else None,
            )
            offset += len(records)
            del records  # the caller owns the batch now
    finally:
        src.close()


def _take_lines(opts: ReadOptions, offset: int, n: int) -> Any:
    """The source lines of records ``offset`` to ``offset + n`` (an Arrow array, or a chunked
    one over several blocks: not copied), from the blocks the reader noted; None when a block among them was not read by the fast path. The
    blocks before the end are dropped."""
    import pyarrow as pa

    end = offset + n
    parts: list[Any] = []
    complete = True
    for first, count, arr in opts.lines:
        lo, hi = max(first, offset), min(first + count, end)
        if lo >= hi:
            continue
        if arr is None:
            complete = False
        elif complete:
            parts.append(arr.slice(lo - first, hi - lo))
    opts.lines = [b for b in opts.lines if b[0] + b[1] > end]
    if not complete or not parts:
        return None
    return parts[0] if len(parts) == 1 else pa.chunked_array(parts)


def _line_array(lines: list[bytes]) -> Any:
    """``lines`` (a block split at its newlines, each line a JSON object) as an Arrow string
    array: the lines joined are its data and their lengths its offsets; where a line does not
    end with its ``}`` (a carriage return, trailing spaces), Arrow trims them. None past
    what an Arrow string array holds."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(lines)
    data = b"".join(lines)
    if len(data) >= 2**31:  # the records are written again instead
        return None
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.fromiter(map(len, lines), dtype=np.int32, count=n), out=offsets[1:])
    arr = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    last = np.frombuffer(data, dtype=np.uint8)[offsets[1:] - 1]  # no line is empty
    return arr if (last == ord("}")).all() else pc.utf8_rtrim_whitespace(arr)


def read_batch(
    path: str | os.PathLike,
    fmt: str = "auto",
    encoding: str = "utf-8",
    *,
    records_path: str | None = None,
    short_rows: str = "pad",
) -> Batch:
    """Read the whole of ``path`` into one batch (an empty batch for ``[]`` or a bare header)."""
    batches = list(
        iter_batches(
            path,
            fmt,
            chunk_rows=sys.maxsize,
            encoding=encoding,
            records_path=records_path,
            short_rows=short_rows,
        )
    )
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


T = TypeVar("T")
COLLECT_EVERY = 8  # chunks read between collections of the young generations
_FREEZERS = [0]  # readers whose chunks are frozen now (the last one to end unfreezes)


def frozen_chunks(build: Callable[[int], T | None]) -> Iterator[T]:
    """``build(0)``, ``build(1)``, ... until one gives None, each chunk moved out of the
    collector's generations once built (``gc.freeze``): a chunk's objects hold no cycles and
    are freed by their reference counts when the chunk goes, but while they live every
    collection would scan them again (1.2 of 16 CPU-s of a 1M-row run). Cyclic garbage that
    exists when a chunk is frozen is frozen with it, until the reading ends (when the frozen
    objects go back to the collector): so every :data:`COLLECT_EVERY` chunks the young
    generations are collected first (a collection before every chunk cost as much as the
    freeze saved)."""
    froze = False
    try:
        for k in itertools.count():
            collecting = gc.isenabled()
            if collecting and k % COLLECT_EVERY == COLLECT_EVERY - 1:
                gc.collect(1)
            with no_gc():
                chunk = build(k)
                if collecting and chunk is not None:
                    gc.freeze()
            if chunk is None:
                return
            if collecting and not froze:
                froze = True
                _FREEZERS[0] += 1
            yield chunk
            del chunk  # not held while the next chunk is built
    finally:
        if froze:
            _FREEZERS[0] -= 1
            if not _FREEZERS[0]:
                gc.unfreeze()


def _chunked(records: Iterable[dict], size: int) -> Iterator[list[dict]]:
    """Lists of ``size`` records, frozen while they live (:func:`frozen_chunks`)."""
    it = iter(records)
    return frozen_chunks(lambda _k: list(islice(it, size)) or None)


def _read_jsonl(src: _Source, encoding: str, opts: ReadOptions) -> Iterator[dict]:
    """JSON Lines. UTF-8 is read in blocks of 4 MB parsed by one list comprehension (the
    fast path); a block with a problem is parsed again line by line to name the row. With a
    records path, each line is a document holding an array of records."""
    if not _is_utf8(encoding):
        with src.open() as raw:
            text = io.TextIOWrapper(raw, encoding=encoding, newline="")
            try:
                yield from _parse_lines(src, encoding, list(text), 0, 0, True, opts)
            except UnicodeDecodeError:
                raise src.bad_encoding(encoding) from None
        return
    row = lineno = 0
    pending = b""
    nested = bool(opts.records_path)
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
                careful = needs_exact(body)
                records = None
                if not careful and not nested:
                    try:
                        with no_gc():
                            records = [orjson.loads(line) for line in lines]
                    except orjson.JSONDecodeError:
                        records = None
                    if records is not None and not all(type(r) is dict for r in records):
                        records = None
                if records is None:
                    try:
                        records = _parse_lines(src, encoding, lines, lineno, row, careful, opts)
                    except InputError as exc:
                        if exc.line == 1 and not nested:
                            _one_object(src)  # a pretty-printed object says so
                        raise
                    if opts.keep_lines:
                        opts.lines.append((row, len(records), None))
                elif opts.keep_lines:  # one record a line: the lines are the records' JSON
                    opts.lines.append((row, len(records), _line_array(lines)))
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
            hint=_object_hint(doc),
        )


def _parse_lines(
    src: _Source,
    encoding: str,
    lines: list,
    lineno: int,
    row: int,
    careful: bool,
    opts: ReadOptions,
) -> list[dict]:
    """Parse lines one by one: blank lines skipped, errors named by row and line. With a
    records path, each line's document gives the records at that path."""
    out: list[dict] = []
    for n, line in enumerate(lines, lineno + 1):
        text = line.strip()
        if not text:
            continue
        if n == 1 and isinstance(text, str):
            text = text.removeprefix("\ufeff")
        try:
            record = json_loads(text) if careful else orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            if "infinity" in str(exc):  # 1e400: kept exact
                record = _exact_loads(text)
            else:
                _bad_line(src, encoding, line, exc, row + len(out) + 1, n)
        except (json.JSONDecodeError, ValueError, RecursionError) as exc:
            _bad_line(src, encoding, line, exc, row + len(out) + 1, n)
        nested = bool(opts.records_path)
        for item in _records_at(record, opts, src, line=n) if nested else (record,):
            if type(item) is not dict:
                raise src.error(
                    f"the record{' at ' + opts.path_text if nested else ''} is {_kind(item)}, "
                    "not an object",
                    row=row + len(out) + 1,
                    line=n,
                    hint="records_path must point at an array of objects"
                    if nested
                    else "each line must hold one JSON object",
                )
            out.append(item)
    return out


def _bad_line(src: _Source, encoding: str, line: Any, exc: Exception, row: int, n: int) -> None:
    if isinstance(exc, RecursionError) or "depth limit" in str(exc):
        raise src.error(
            "the record nests objects or arrays too deeply to parse",
            row=row,
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
        row=row,
        line=n,
        hint="each line must hold one complete JSON object",
    ) from None


def _json_reason(exc: Exception) -> str:
    msg = getattr(exc, "msg", None) or str(exc)
    return msg.split(":", 1)[0].strip() if ": line" in msg else msg


def _read_json(src: _Source, encoding: str, opts: ReadOptions) -> Iterator[dict]:
    if src.size <= WHOLE_JSON_BYTES and _is_utf8(encoding):
        with src.open() as f:
            data = f.read().removeprefix(codecs.BOM_UTF8)
        try:
            doc = json_loads(data)
        except (json.JSONDecodeError, ValueError, RecursionError):
            doc = None  # the streaming reader locates the error (row and line)
        if doc is not None and opts.records_path:
            doc = _records_at(doc, opts, src)
        if isinstance(doc, list):
            for i, record in enumerate(doc):
                if type(record) is not dict:
                    yield from _stream_json(src, encoding, opts, stop_at=i)
                yield record
            return
        if isinstance(doc, dict):
            raise src.error(
                "the top-level JSON value is an object, not an array of records",
                line=1,
                hint=_object_hint(doc),
            )
    yield from _stream_json(src, encoding, opts)


def _stream_json(
    src: _Source, encoding: str, opts: ReadOptions, stop_at: int | None = None
) -> Iterator[dict]:
    """Parse a JSON array element by element from a text stream of bounded size; with a
    records path, walk down to the array first (skipping the values beside the path) and,
    after it, check the rest of the document."""
    decoder = json.JSONDecoder(parse_float=_parse_float, parse_constant=_no_constant)
    path = opts.records_path
    where = f" at {opts.path_text}" if path else ""
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

        def decode(row: int | None) -> Any:
            """The JSON value at the next non-blank position (read further until it is
            whole)."""
            skip_ws()
            while True:
                try:
                    value, end = decoder.raw_decode(state["buf"], state["pos"])
                except RecursionError:
                    raise src.error(
                        "the record nests objects or arrays too deeply to parse",
                        row=row,
                        line=line_at(state["pos"]),
                        hint=f"flatten it to under {MAX_DEPTH} levels",
                    ) from None
                except json.JSONDecodeError as exc:
                    if not state["eof"]:
                        # the value may go on past the buffer: read more and decode again
                        # (at the end of the stream, once more on the final buffer, so the
                        # error's position is in the buffer it names)
                        if fill():
                            state["want"] = min(state["want"] * 2, 1 << 28)
                        continue
                    truncated = exc.pos >= len(state["buf"]) - 1
                    raise src.error(
                        "truncated JSON" if truncated else f"invalid JSON ({exc.msg})",
                        row=row,
                        line=line_at(exc.pos),
                        hint="the file was cut short; re-export it"
                        if truncated
                        else "fix the record or re-export the file",
                    ) from None
                if end >= len(state["buf"]) and not state["eof"]:
                    fill()  # a number may go on in the next read ("12" of "123")
                    continue
                state["want"] = _READ_CHARS
                state["pos"] = end
                return value

        def expect(chars: str, what: str, row: int | None = None) -> str:
            ch = skip_ws()
            if not ch or ch not in chars:
                raise src.error(
                    "truncated JSON" if not ch else f"expected {what}",
                    row=row,
                    line=line_at(state["pos"]),
                    hint="the file was cut short; re-export it" if not ch else "fix the JSON",
                )
            state["pos"] += 1
            return ch

        fill()
        if state["buf"].startswith("\ufeff"):
            state["pos"] = 1
        # walk down the records path: (closing character) of each container entered
        stack: list[str] = []
        for k, seg in enumerate(path):
            here = _path_text(path[:k])
            ch = skip_ws()
            if ch == "{":
                state["pos"] += 1
                stack.append("}")
                found = False
                if skip_ws() == "}":
                    state["pos"] += 1
                else:
                    while True:
                        key = decode(None)
                        expect(":", "':' after a key")
                        if key == seg:
                            found = True
                            break
                        decode(None)
                        if expect(",}", "',' or '}'") == "}":
                            break
                if not found:
                    raise src.error(
                        f"records_path {opts.path_text}: the object at {here} has no key {seg!r}",
                        hint="check the path against the file",
                    )
            elif ch == "[" and seg.isdigit():
                state["pos"] += 1
                stack.append("]")
                for _ in range(int(seg)):
                    if skip_ws() == "]":
                        break
                    decode(None)
                    expect(",", "','")
                if skip_ws() == "]":
                    raise src.error(
                        f"records_path {opts.path_text}: the array at {here} has no item {seg}",
                        hint="check the path against the file",
                    )
            else:
                what = {"[": "an array", '"': "a string"}.get(ch, "a number or constant")
                raise src.error(
                    f"records_path {opts.path_text}: the value at {here} is {what}, it has "
                    f"no {seg!r}",
                    hint="check the path against the file",
                )
        first = skip_ws()
        if first != "[":
            what = "an object" if first == "{" else "not an array"
            top = "the top-level JSON value" if not path else f"the value{where}"
            raise src.error(
                f"{top} is {what}" + (", not an array of records" if first == "{" else ""),
                line=line_at(state["pos"]),
                hint=_object_hint(None)
                if not path
                else "point records_path at the array that holds the records",
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
            record = decode(row + 1)
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
            ch = skip_ws()
            if ch == ",":
                state["pos"] += 1
                continue
            if ch == "]":
                state["pos"] += 1
                break
            if not ch:
                raise src.error(
                    "truncated JSON: the array is not closed",
                    row=row,
                    line=line_at(state["pos"]),
                    hint="the file was cut short; re-export it",
                )
            raise src.error(
                f"expected ',' or ']' after record {row}",
                row=row + 1,
                line=line_at(state["pos"]),
                hint="a comma is missing between two records, or a record is malformed: "
                "fix the JSON",
            )
        # after the records: the rest of each container the path went into must be whole
        for close in reversed(stack):
            while True:
                ch = expect(close + ",", f"',' or '{close}'")
                if ch == close:
                    break
                if close == "}":
                    decode(None)
                    expect(":", "':' after a key")
                decode(None)
        if skip_ws():
            raise src.error(
                "more content after the end of the JSON " + ("array" if not path else "document"),
                line=line_at(state["pos"]),
                hint="a JSON file holds one array; use JSON Lines for many objects"
                if not path
                else "a JSON file holds one document; use JSON Lines for many",
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


def _read_csv(src: _Source, encoding: str, opts: ReadOptions) -> Iterator[dict]:
    delimiter = _sniff_delimiter(src)
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)  # a long note or a JSON document in one cell
    shown = {"\t": "tab"}.get(delimiter, repr(delimiter))
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
            opts.width = width
            row = 0
            short = opts.short_rows
            for values in reader:
                if not values:
                    continue  # a blank line
                row += 1
                n = len(values)
                if n == width:
                    yield {k: (v if v != "" else None) for k, v in zip(header, values, strict=True)}
                    continue
                if n > width:
                    raise src.error(
                        f"the row has {n} fields, the header has {width}",
                        row=row,
                        line=reader.line_num,
                        hint=f"a field holds the delimiter {shown} unquoted: quote it, or fix "
                        "the row",
                    )
                if short == "error":
                    raise src.error(
                        f"the row has {n} fields, the header has {width}: its last "
                        f"{width - n} are left off",
                        row=row,
                        line=reader.line_num,
                        hint="set short_rows to pad (they are read as empty) or quarantine "
                        "(source.csv.short_rows in a pipeline config)",
                    )
                opts.short.append((row - 1, n))
                rec = {k: (v if v != "" else None) for k, v in zip(header, values, strict=False)}
                for k in header[n:]:
                    rec[k] = None
                yield rec
        except UnicodeDecodeError:
            raise src.bad_encoding(encoding) from None
        except csv.Error as exc:
            raise src.error(
                f"invalid CSV ({exc})", line=reader.line_num, hint="check the quoting"
            ) from None


def _read_parquet(src: _Source, encoding: str, opts: ReadOptions) -> Iterator[dict]:
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
