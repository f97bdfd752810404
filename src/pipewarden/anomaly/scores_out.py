"""Every row's score, flag and reason, written to a file (``--scores-out``, ``scores_out``).

One row per input row, in input order: ``row`` (0-based offset in the batch), ``score`` (in
[0, 1]; empty when the batch could not be scored), ``flagged`` (score >= the threshold),
``quarantined`` (held for its score), ``reason`` and ``columns`` (for flagged rows; no raw
value), and ``batch_id``. The format follows the extension: ``.parquet``, ``.csv``,
``.jsonl`` (or ``.ndjson``). A batch read in chunks appends each chunk to the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import InputError

FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("score", pa.float64()),
        ("flagged", pa.bool_()),
        ("quarantined", pa.bool_()),
        ("reason", pa.string()),
        ("columns", pa.string()),
        ("batch_id", pa.string()),
    ]
)


def format_of(path: str | Path, key: str = "--scores-out") -> str:
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError(
            f"cannot tell the format of {Path(path).name!r}",
            key=key,
            hint="end the file name with .parquet, .csv or .jsonl",
        )
    return fmt


def table(rows: dict[str, Any], n: int, threshold: float, offset: int, batch_id: str) -> pa.Table:
    """The scores of one chunk (``rows``: the ``_rows`` of a detector report)."""
    scores = rows.get("scores")
    reasons = {f["row"]: f for f in rows.get("flagged", [])}
    held = rows.get("quarantined", set())
    if scores is None:
        score = pa.nulls(n, pa.float64())
        flagged = [False] * n
    else:
        score = pa.array(np.round(np.asarray(scores, dtype=float), 6))
        flagged = (np.asarray(scores) >= threshold).tolist()
    return pa.table(
        {
            "row": pa.array(np.arange(offset, offset + n, dtype=np.int64)),
            "score": score,
            "flagged": pa.array(flagged, pa.bool_()),
            "quarantined": pa.array([i in held for i in range(n)], pa.bool_()),
            "reason": pa.array([reasons[i]["reason"] if i in reasons else None for i in range(n)]),
            "columns": pa.array(
                [", ".join(reasons[i]["columns"]) if i in reasons else None for i in range(n)],
                pa.string(),
            ),
            "batch_id": pa.array([batch_id] * n, pa.string()),
        },
        schema=SCHEMA,
    )


class ScoresWriter:
    """Writes chunks of scores to one file; ``close()`` finishes it."""

    def __init__(self, path: str | Path, key: str = "--scores-out") -> None:
        self.path = Path(path)
        self.fmt = format_of(self.path, key)
        self.rows = 0
        self._writer: Any = None
        self._file: Any = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                self._writer = pq.ParquetWriter(self.path, SCHEMA)
            elif self.fmt == "csv":
                import pyarrow.csv as pcsv

                self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
                self._writer = pcsv.CSVWriter(self._file, SCHEMA)
            else:
                self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise InputError(
                f"cannot write the scores file: {exc.strerror}", file=str(path)
            ) from None

    def write(self, t: pa.Table) -> None:
        self.rows += t.num_rows
        if self.fmt == "jsonl":
            import orjson

            for rec in t.to_pylist():
                self._file.write(orjson.dumps(rec) + b"\n")
        else:
            self._writer.write_table(t)

    def close(self) -> None:
        if self._writer is not None and hasattr(self._writer, "close"):
            self._writer.close()
        if self._file is not None:
            self._file.close()
        self._writer = self._file = None
