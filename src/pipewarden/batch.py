"""Batches: one representation for every input format.

A :class:`Batch` is a chunk of records read from one source. Records are JSON-like dicts (CSV
values are strings, Parquet values are converted to Python). Readers stream large files in
chunks so memory stays bounded; ``offset`` is the 0-based index in the source of the first
record, so ``offset + i + 1`` is the 1-based row number used in every message.

The readers (``iter_batches``/``read_batch``) are implemented with the schema sentinel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
