"""Primary keys of a dataset: rows of one batch with the same key, and rows without one.

A dataset with a ``primary_key`` (one or more columns, by their key in the records) holds one
row per key when it is loaded with ``write_disposition: merge``, and may not hold a row
without a key. :class:`KeyIndex` reads the whole batch in the run's first pass (as inference
does) and finds the rows whose key a **later** row of the same batch repeats: those are
superseded within the batch and held with reason ``duplicate_key`` (the last row of a key is
the one loaded, as a sequence of upserts would leave it). :func:`key_verdict` is the check the
run applies to each chunk in its second pass: ``duplicate_key`` for the superseded rows,
``null_key`` for rows with no value in a key column.

Keys are compared by their text (``1``, ``1.0`` and ``"1"`` are one key, as a text or number
column would store them) through Python's 64-bit hash of that text, kept in numpy arrays, so
a batch of ten million rows needs 160 MB at most for its keys, not a dict of every key. Two
different keys share a hash about once in 10^7 batches of a million rows; such a row would be
held as ``duplicate_key`` (kept and replayable), never lost, and the stores' merge guards
against a repeated key in one statement anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from itertools import repeat
from typing import Any

import numpy as np

from .batch import Batch, json_bytes
from .verdict import RowIssue, Verdict

DISPOSITIONS = ("append", "merge", "replace")


def normalise_key(value: Any) -> str | None:
    """The text a key value is compared by; None for a missing value."""
    if value is None:
        return None
    t = type(value)
    if t is str:
        return value
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return str(value)
    if t is float:
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return str(int(value))
        return str(value.normalize())
    if isinstance(value, dict | list):
        return json_bytes(value, sort_keys=True).decode()
    return str(value)


def row_keys(records: Sequence[dict] | Batch, columns: Sequence[str]) -> list[tuple | None]:
    """Each record's key as a tuple of texts, or None when a key column has no value. A
    :class:`Batch` is read by its columns (``Batch.columns()``, None where a record lacks the
    key) unless a step derived keys: no record is looked at, so a chunk pass 2 read from the
    spool makes none."""
    if isinstance(batch := records, Batch) and not batch.meta.get("derived"):
        # (keys a step derived are added to the records in place: columns made before are stale)
        if not len(batch):
            return []
        cols, n = batch.columns(), len(batch)
        parts = [map(normalise_key, cols[c]) if c in cols else repeat(None, n) for c in columns]
        return [None if None in key else key for key in zip(*parts, strict=True)]
    out: list[tuple | None] = []
    for r in records.records if isinstance(records, Batch) else records:
        key = tuple(normalise_key(r.get(c)) for c in columns)
        out.append(None if None in key else key)
    return out


class KeyIndex:
    """The keys of every row of one batch (fed chunk by chunk, in order)."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self._hashes: list[np.ndarray] = []
        self._offsets: list[np.ndarray] = []
        self.rows = 0
        self.null_keys = 0
        self._superseded: dict[int, int] | None = None

    def update(self, batch: Batch | Sequence[dict]) -> KeyIndex:
        records = batch.records if isinstance(batch, Batch) else batch
        keys = row_keys(batch, self.columns)
        hashes = [hash(k) for k in keys if k is not None]
        offsets = [self.rows + i for i, k in enumerate(keys) if k is not None]
        self.null_keys += len(keys) - len(hashes)
        self._hashes.append(np.fromiter(hashes, dtype=np.int64, count=len(hashes)))
        self._offsets.append(np.fromiter(offsets, dtype=np.int64, count=len(offsets)))
        self.rows += len(records)
        self._superseded = None
        return self

    def superseded(self) -> dict[int, int]:
        """Offset of each row whose key a later row repeats -> offset of the last row with
        that key (the one that is loaded)."""
        if self._superseded is not None:
            return self._superseded
        out: dict[int, int] = {}
        if self._hashes:
            h = np.concatenate(self._hashes)
            o = np.concatenate(self._offsets)
            self._hashes, self._offsets = [h], [o]
            if len(h):
                order = np.lexsort((o, h))  # by hash, then offset
                hs, os_ = h[order], o[order]
                same_as_next = hs[:-1] == hs[1:]
                if same_as_next.any():
                    # the last offset of each run of equal hashes wins
                    run_end = np.flatnonzero(np.append(~same_as_next, True))
                    owner = np.searchsorted(run_end, np.arange(len(hs)))
                    winners = os_[run_end][owner]
                    for off, win in zip(os_.tolist(), winners.tolist(), strict=True):
                        if off != win:
                            out[off] = win
        self._superseded = out
        return out

    @property
    def duplicates(self) -> int:
        return len(self.superseded())


def key_verdict(
    batch: Batch, columns: Sequence[str], superseded: dict[int, int] | None = None
) -> Verdict:
    """``duplicate_key`` for the rows of ``batch`` a later row of its file supersedes
    (``superseded`` from :meth:`KeyIndex.superseded`, by offset in the file), ``null_key``
    for rows without a value in a key column. Row numbers in messages are 1-based rows of the
    source."""
    verdict = Verdict("keys")
    superseded = superseded or {}
    names = ", ".join(columns)
    for i, key in enumerate(row_keys(batch, columns)):
        if key is None:
            missing = [c for c in columns if batch.records[i].get(c) is None]
            verdict.issues.append(
                RowIssue(
                    i,
                    "null_key",
                    f"no value for the primary key column(s) {', '.join(missing)}",
                    missing[0],
                )
            )
            continue
        winner = superseded.get(batch.offset + i)
        if winner is not None:
            verdict.issues.append(
                RowIssue(
                    i,
                    "duplicate_key",
                    f"row {winner + 1} of the batch has the same key ({names}): the last row "
                    "of a key is the one loaded",
                    columns[0],
                    detail={"superseded_by": winner},
                )
            )
    verdict.report = {
        "primary_key": list(columns),
        "duplicate_key": sum(1 for x in verdict.issues if x.reason == "duplicate_key"),
        "null_key": sum(1 for x in verdict.issues if x.reason == "null_key"),
    }
    return verdict
