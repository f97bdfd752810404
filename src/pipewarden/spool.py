"""The chunks of a batch kept on disk between the run's two passes, so the source is parsed once.

Pass 1 of ``pipewarden run`` parses every chunk and transposes it into columns to infer the
batch's schema; pass 2 needs the same chunks again to check and write them. Where a chunk's
records came from JSON Lines by the fast path (each line one object, every value one of
orjson's types: dict, list, str, int, float, bool, None), pass 1 writes the chunk's columns
(``marshal``: the same values of the same types come back, integers of any size, floats bit for
bit, nested objects with their key order) and its source lines (an Arrow IPC stream, for the
raw landing) to an unnamed temporary file. Records may differ in their keys (an API that omits
null fields, a key that comes late): the spool then keeps each distinct key sequence and which
one each record has, so a record made again has exactly its own keys in its own order. Pass 2
reads the chunks back instead of parsing the file again; its records are made from the columns
only where one is asked for (a quarantined row's payload, a key check).

Any other chunk (more than :data:`MAX_SHAPES` distinct key sequences, a line read by the
careful parser, CSV, Parquet, a JSON array, a step that prepares rows) gives the spool up: pass
2 then reads the source again, as without it. The file is unlinked when it is made, so a
process killed half way leaves nothing behind; it holds one chunk in memory at a time.
"""

from __future__ import annotations

import marshal
import struct
import tempfile
from array import array
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

from .batch import Batch, frozen_chunks

_HEAD = struct.Struct("<QQ")
# format 2: no references between objects. Formats 3 and 4 look up every object with more than
# one reference in a table (the columns share theirs with the records): 0.12-0.2 CPU-s a
# 100,000-row chunk of bench/run's file to write, against 0.06
MARSHAL_VERSION = 2


class ColumnRows(Sequence):
    """The records of a chunk made from its columns one by one where asked for (``dict`` of
    the keys and the row's values). Where records differ in their keys, ``shapes`` holds each
    distinct key sequence and ``ids`` (one byte a record, two past 256 sequences) which one
    each record has: a record
    made again has exactly its own keys in its own order, where the columns hold None for a
    key it lacks."""

    __slots__ = ("_keys", "_values", "_n", "_shapes", "_ids", "_picks")

    def __init__(
        self,
        keys: tuple[str, ...],
        values: tuple[Sequence[Any], ...],
        n: int,
        shapes: tuple[tuple[str, ...], ...] = (),
        ids: bytes = b"",
    ):
        self._keys, self._values, self._n = keys, values, n
        # one byte a record, or two (native order, as the spool wrote them in this process)
        self._shapes, self._ids = shapes, ids if len(ids) <= n else memoryview(ids).cast("H")
        at = {k: j for j, k in enumerate(keys)}
        self._picks = [tuple(at[k] for k in shape) for shape in shapes]

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        if not -self._n <= i < self._n:
            raise IndexError("record index out of range")
        values = self._values
        if self._shapes:
            s = self._ids[i]
            return dict(zip(self._shapes[s], [values[j][i] for j in self._picks[s]], strict=True))
        return dict(zip(self._keys, [c[i] for c in values], strict=True))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._shapes:
            return map(self.__getitem__, range(self._n))
        return map(dict, map(partial(zip, self._keys), zip(*self._values, strict=True)))

    def __repr__(self) -> str:
        return f"ColumnRows({self._n} records, keys {list(self._keys)!r})"


MAX_SHAPES = 65_536  # distinct key sequences a spooled chunk may have (two bytes a record)


def _shapes(
    records: list[dict], keys: tuple[str, ...]
) -> tuple[tuple[tuple[str, ...], ...], bytes] | None:
    """The distinct key sequences of ``records`` and which one each record has, one byte a
    record (two past 256 sequences); ``((), b"")`` when every record has ``keys``, the chunk's
    columns, in that order; None past :data:`MAX_SHAPES`."""
    shapes = dict.fromkeys(map(tuple, records))  # C-level: a tuple a record, hashed
    if len(shapes) == 1 and next(iter(shapes)) == keys:
        return (), b""
    if len(shapes) > MAX_SHAPES:
        return None
    index = {shape: j for j, shape in enumerate(shapes)}
    ids = map(index.__getitem__, map(tuple, records))
    if len(shapes) <= 256:
        return tuple(shapes), bytes(ids)
    return tuple(shapes), array("H", ids).tobytes()


class ChunkSpool:
    """Chunks written by pass 1 (:meth:`add`), read back by pass 2 (:meth:`batches`)."""

    def __init__(self) -> None:
        self.chunks = 0
        self.rows = 0
        try:  # where tempfile puts files ($TMPDIR, else /tmp); none there: read the file again
            self._file: Any = tempfile.TemporaryFile(prefix="pw-chunks-")  # noqa: SIM115 (closed by close())
        except OSError:
            self._file = None

    @property
    def usable(self) -> bool:
        return self._file is not None

    def give_up(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    close = give_up

    def add(self, batch: Batch) -> bool:
        """Write ``batch`` (after pass 1 transposed it); False (and the spool given up) when
        it cannot be kept exactly."""
        if self._file is None:
            return False
        records = batch.records
        cols = batch.columns() if batch.lines is not None and records else None
        keys = tuple(cols) if cols else ()
        shapes = _shapes(records, keys) if keys else None
        if shapes is None:
            self.give_up()
            return False
        try:
            head = marshal.dumps(
                (batch.source, batch.offset, batch.fmt, batch.meta, len(records), keys,
                 _type_codes(batch, keys), *shapes)
            )  # fmt: skip
            body = marshal.dumps(tuple(cols.values()), MARSHAL_VERSION)
        except ValueError:  # a value marshal does not keep (not one of orjson's types)
            self.give_up()
            return False
        lines = _ipc_bytes(batch.lines)
        f = self._file
        try:
            f.write(_HEAD.pack(len(head), len(body)))
            f.write(head)
            f.write(body)
            f.write(struct.pack("<Q", len(lines)))
            f.write(lines)
        except OSError:  # the temporary directory is full: pass 2 reads the file again
            self.give_up()
            return False
        self.chunks += 1
        self.rows += len(records)
        return True

    def batches(self, batch_id: str) -> Iterator[Batch]:
        """The chunks as written, in order, each a :class:`Batch` whose columns are the
        spooled ones and whose records are :class:`ColumnRows`. Like the reader, a chunk's
        objects are moved out of the collector's generations while it lives."""
        f = self._file
        f.seek(0)

        def build(k: int) -> Batch | None:
            if k == self.chunks:
                return None
            n_head, n_body = _HEAD.unpack(f.read(_HEAD.size))
            source, offset, fmt, meta, n, keys, codes, shapes, ids = marshal.loads(f.read(n_head))
            values = marshal.loads(f.read(n_body))
            (n_lines,) = struct.unpack("<Q", f.read(8))
            lines = _from_ipc(f.read(n_lines))
            rows = ColumnRows(keys, values, n, shapes, ids)
            batch = Batch(rows, source, offset, batch_id, fmt, meta, lines)  # type: ignore[arg-type]
            types = {} if codes is None else {
                k: frozenset(_TYPES[c] for c in kc) for k, kc in zip(keys, codes, strict=True)
            }  # fmt: skip
            batch._columns = (rows, n, dict(zip(keys, values, strict=True)), types)
            return batch

        return frozen_chunks(build)


# the types a spooled column can hold (orjson's), by code: pass 1 found each column's
# (``Batch.types``), and pass 2 takes them with the columns instead of finding them again
_TYPES = (type(None), bool, int, float, str, dict, list)
_CODES = {t: i for i, t in enumerate(_TYPES)}


def _type_codes(batch: Batch, keys: tuple) -> tuple | None:
    """The codes of the types of each column of ``batch``; None where one is not orjson's."""
    try:
        return tuple(tuple(sorted(_CODES[t] for t in batch.types(k))) for k in keys)
    except KeyError:
        return None


def _ipc_bytes(lines: Any) -> Any:
    """``lines`` (an Arrow string array, or a chunked one) as an Arrow IPC stream."""
    import pyarrow as pa

    parts = lines.chunks if isinstance(lines, pa.ChunkedArray) else [lines]
    schema = pa.schema([("line", lines.type)])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as w:
        for part in parts:
            w.write_batch(pa.record_batch([part], schema=schema))
    return sink.getvalue()


def _from_ipc(data: bytes) -> Any:
    import pyarrow as pa

    parts = [b.column(0) for b in pa.ipc.open_stream(pa.py_buffer(data))]
    return parts[0] if len(parts) == 1 else pa.chunked_array(parts)
