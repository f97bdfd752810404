"""The Verdict every check returns, and the merge the router applies.

Checks never write. Each returns a :class:`Verdict`: rows to quarantine (with a reason), values
to replace before loading (masking, ``discard_value``), and a batch decision. The router merges
the verdicts of all steps and the store writes the outcome in one transaction, so that
``rows_in == rows_loaded + rows_quarantined`` or the batch is blocked and nothing moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Decision = Literal["pass", "block", "quarantine_batch"]


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
    # the rows that are loaded and to the payload of the rows another step quarantines
    masks: dict[int, dict[str, Any]] = field(default_factory=dict)
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
    for v in verdicts:
        for r, p in v.patches.items():
            patches.setdefault(r, {}).update(p)
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
    )
