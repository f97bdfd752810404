"""The Verdict every check returns, and the merge the router applies.

Checks never write. Each returns a :class:`Verdict`: rows to quarantine (with a reason), values
to replace before loading (masking, ``discard_value``), and a batch decision. The router merges
the verdicts of all steps and the store writes the outcome in one transaction, so that
``rows_in == rows_loaded + rows_quarantined`` or the batch is blocked and nothing moves.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np

Decision = Literal["pass", "block", "quarantine_batch"]


@dataclass
class ColumnMask:
    """The masked values of one top-level column of a chunk, per distinct value: ``rows``
    (sorted row indexes whose value changed, int64), ``ids`` (aligned with ``rows``: which of
    ``distinct`` each row gets) and ``distinct`` (the masked values, each made once)."""

    rows: np.ndarray
    ids: np.ndarray
    distinct: list[Any]

    def at(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Of ``rows`` (sorted), which the mask changes (a bool array) and, where it does, the
        position of each in ``self.rows``."""
        import numpy as np

        pos = np.searchsorted(self.rows, rows)
        hit = pos < len(self.rows)
        hit[hit] = self.rows[pos[hit]] == rows[hit]
        return hit, pos

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        """Of ``rows`` (sorted), the positions of those the mask changes and the masked value
        of each."""
        import numpy as np

        hit, pos = self.at(rows)
        d = self.distinct
        return np.flatnonzero(hit), [d[i] for i in self.ids[pos[hit]].tolist()]

    def get(self, row: int, default: Any = None) -> Any:
        import numpy as np

        i = int(np.searchsorted(self.rows, row))
        if i < len(self.rows) and self.rows[i] == row:
            return self.distinct[self.ids[i]]
        return default

    def values(self) -> list[Any]:
        """The masked value of each row in ``rows``."""
        d = self.distinct
        return [d[i] for i in self.ids.tolist()]


class ColumnMasks(Mapping):
    """Masks carried as columns: read as a mapping it is row -> {top-level key: masked value}
    (rows in order, a row's keys in its record's key order), made only when read that way;
    :func:`merge` and the run apply :attr:`columns` column by column instead."""

    def __init__(self, records: list[dict], columns: dict[str, ColumnMask]) -> None:
        self.records, self.columns = records, columns
        self._rows: dict[int, dict[str, Any]] | None = None

    def _dict(self) -> dict[int, dict[str, Any]]:
        if self._rows is not None:
            return self._rows
        if len(self.columns) == 1:
            ((top, m),) = self.columns.items()
            out = dict(zip(m.rows.tolist(), [{top: v} for v in m.values()], strict=True))
        else:
            acc: dict[int, dict[str, Any]] = {}
            for top, m in self.columns.items():
                for r, v in zip(m.rows.tolist(), m.values(), strict=True):
                    got = acc.get(r)
                    if got is None:
                        acc[r] = {top: v}
                    else:
                        got[top] = v
            out = {}
            for r in sorted(acc):
                patch = acc[r]
                if len(patch) > 1:  # in the record's own key order, as its findings are
                    pos = {str(k): i for i, k in enumerate(self.records[r])}
                    patch = dict(sorted(patch.items(), key=lambda kv: pos[kv[0]]))
                out[r] = patch
        self._rows = out
        return out

    def __getitem__(self, row: int) -> dict[str, Any]:
        return self._dict()[row]

    def __iter__(self) -> Iterator[int]:
        return iter(self._dict())

    def __len__(self) -> int:
        if self._rows is None and len(self.columns) == 1:
            return len(next(iter(self.columns.values())).rows)
        return len(self._dict())


@dataclass
class RowIssue:
    """Why one row goes to quarantine. ``message`` never holds a raw PII value."""

    row: int  # 0-based index of the row within the batch
    reason: str  # short code: "type_mismatch", "new_column", "pii", "anomaly", ...
    message: str
    column: str | None = None  # column name or JSON path
    score: float | None = None
    # what a later judgement needs (e.g. the offset of the row that superseded a duplicate)
    detail: dict[str, Any] | None = None

    def to_dict(self) -> dict:
        out = {
            "row": self.row,
            "reason": self.reason,
            "message": self.message,
            "column": self.column,
            "score": self.score,
        }
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass
class Verdict:
    """What one check decided about one batch."""

    step: str
    decision: Decision = "pass"
    reason: str | None = None  # why the batch was blocked / quarantined whole
    issues: list[RowIssue] = field(default_factory=list)
    # row index -> {top-level key: new value}; applied to the rows that are loaded
    patches: dict[int, dict[str, Any]] = field(default_factory=dict)
    # like patches, for values that must never be written in clear (masked PII): applied to
    # the rows that are loaded and to the payload of the rows another step quarantines. A
    # ColumnMasks carries them per column (the guardian masking whole columns' values)
    masks: Mapping[int, dict[str, Any]] = field(default_factory=dict)
    # JSON-serialisable summary for the run report; no raw PII
    report: dict[str, Any] = field(default_factory=dict)
    # row index -> {column: value}: imputed cells, written to the typed table only (the raw
    # landing keeps the nulls) and recorded in the dataset's __imputed table
    fills: dict[int, dict[str, Any]] = field(default_factory=dict)

    def quarantined_rows(self) -> set[int]:
        return {i.row for i in self.issues}


@dataclass
class Outcome:
    """The merged decision over all verdicts of a batch."""

    decision: Decision
    reason: str | None
    loaded: list[int]  # row indexes to load, in order
    quarantined: dict[int, list[RowIssue]]  # row index -> every reason it was held
    patches: dict[int, dict[str, Any]]  # of the loaded rows (masks included)
    masks: dict[int, dict[str, Any]] = field(default_factory=dict)  # of the quarantined rows
    fills: dict[int, dict[str, Any]] = field(default_factory=dict)  # of the loaded rows
    # top-level key -> the masked values of a column (:class:`ColumnMask`, over the chunk's
    # rows): applied to the loaded rows before ``patches``, which win where both change a row
    columns: dict[str, ColumnMask] = field(default_factory=dict)

    def row_patches(self) -> dict[int, dict[str, Any]]:
        """``patches`` with ``columns`` applied under them, one dict per changed loaded row
        (for the paths that write row by row)."""
        if not self.columns:
            return self.patches
        import numpy as np

        loaded = np.asarray(self.loaded, np.int64)
        out: dict[int, dict[str, Any]] = {}
        for key, m in self.columns.items():
            at, values = m.take(loaded)
            for r, v in zip(loaded[at].tolist(), values, strict=True):
                out.setdefault(r, {})[key] = v
        for r, p in self.patches.items():
            out[r] = {**out.get(r, {}), **p}
        return dict(sorted(out.items()))

    @property
    def rows_loaded(self) -> int:
        return len(self.loaded)

    @property
    def rows_quarantined(self) -> int:
        return len(self.quarantined)


def merge(n_rows: int, verdicts: list[Verdict]) -> Outcome:
    """Merge verdicts: any block blocks; any quarantine_batch quarantines every row; otherwise a
    row is loaded unless some verdict quarantines it. Patches of later steps win per key."""
    for v in verdicts:
        if v.decision == "block":
            return Outcome("block", f"{v.step}: {v.reason}", [], {}, {})
    held: dict[int, list[RowIssue]] = {}
    for v in verdicts:
        for issue in v.issues:
            if not 0 <= issue.row < n_rows:
                raise ValueError(f"{v.step} quarantined row {issue.row} outside 0..{n_rows - 1}")
            held.setdefault(issue.row, []).append(issue)
    whole = next((v for v in verdicts if v.decision == "quarantine_batch"), None)
    if whole is not None:
        for r in range(n_rows):
            held.setdefault(r, []).append(
                RowIssue(r, "batch_quarantined", f"{whole.step}: {whole.reason}")
            )
    patches: dict[int, dict[str, Any]] = {}
    masks: dict[int, dict[str, Any]] = {}
    columns: dict[str, ColumnMask] = {}
    for v in verdicts:
        for r, p in v.patches.items():
            patches.setdefault(r, {}).update(p)
        if isinstance(v.masks, ColumnMasks):
            _merge_columns(v.masks.columns, columns, patches, masks, held)
            continue
        for r, p in v.masks.items():
            patches.setdefault(r, {}).update(p)
            masks.setdefault(r, {}).update(p)
    loaded = [r for r in range(n_rows) if r not in held]
    fills: dict[int, dict[str, Any]] = {}
    for v in verdicts:
        for r, f in v.fills.items():
            fills.setdefault(r, {}).update(f)
    decision: Decision = "quarantine_batch" if whole is not None else "pass"
    reason = f"{whole.step}: {whole.reason}" if whole is not None else None
    return Outcome(
        decision,
        reason,
        loaded,
        held,
        {r: patches[r] for r in loaded if r in patches},
        {r: masks[r] for r in held if r in masks},
        {r: fills[r] for r in loaded if r in fills},
        columns,
    )


def _merge_columns(
    new: dict[str, ColumnMask],
    columns: dict[str, ColumnMask],
    patches: dict[int, dict[str, Any]],
    masks: dict[int, dict[str, Any]],
    held: dict[int, list[RowIssue]],
) -> None:
    """A later step's column masks over what earlier steps changed: on the rows a column mask
    changes it wins over the earlier patches of its key (an earlier column mask of the key is
    kept, as row patches, where the new one does not change a row); the rows held get it as
    row masks (their payload)."""
    import numpy as np

    for key, m in new.items():
        old = columns.pop(key, None)
        if old is not None:
            for r, v in zip(old.rows.tolist(), old.values(), strict=True):
                patches.setdefault(r, {})[key] = v
                if r in held:
                    masks.setdefault(r, {})[key] = v
        for r in [r for r, p in patches.items() if key in p]:
            if m.get(r, m) is not m:
                del patches[r][key]
                if not patches[r]:
                    del patches[r]
        if held:
            rows = np.fromiter(sorted(held), np.int64, len(held))
            at, values = m.take(rows)
            for r, v in zip(rows[at].tolist(), values, strict=True):
                patches.setdefault(r, {})[key] = v
                masks.setdefault(r, {})[key] = v
        columns[key] = m
