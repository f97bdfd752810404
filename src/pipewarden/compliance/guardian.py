"""The guardian: detect PII in a batch, classify its columns, apply the policy.

:class:`Guardian` turns one :class:`~pipewarden.batch.Batch` into an :class:`Inspection`:
findings (with masked previews only), column labels, the action per finding, the patches that
mask values, the rows to quarantine and whether the batch is blocked. :func:`scan` runs it over
a file (every format ``pipewarden.batch`` reads) and returns the report ``guard scan`` prints.
"""

from __future__ import annotations

import copy
import datetime as dt
import gc
import os
from dataclasses import dataclass, field
from typing import Any

from ..batch import Batch
from ..errors import preview
from .classify import ColumnStats, name_hint
from .policy import Policy, load_policy, mask
from .recognizers import Context, detect

MAX_FINDINGS = 1000


@dataclass
class Finding:
    index: int  # 0-based row index in the batch
    row: int  # 1-based row number in the source
    column: str  # column name or JSON path (list indexes written [i])
    path: str  # the same path with list indexes written [] (what policies match)
    keys: tuple  # the path as keys/indexes into the record
    entity: str
    start: int
    end: int
    score: float
    preview: str
    detail: str = ""
    action: str = "report"
    method: str | None = None
    rule: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {
            "row": self.row,
            "column": self.column,
            "entity": self.entity,
            "start": self.start,
            "end": self.end,
            "score": self.score,
            "preview": self.preview,
            "action": self.action,
            "rule": self.rule,
        }
        if self.method:
            d["method"] = self.method
        return d


@dataclass
class Inspection:
    rows: int
    findings: list[Finding] = field(default_factory=list)
    columns: list[dict] = field(default_factory=list)
    patches: dict[int, dict[str, Any]] = field(default_factory=dict)
    quarantine: dict[int, list[Finding]] = field(default_factory=dict)
    blocked_by: list[Finding] = field(default_factory=list)
    stats: dict[str, ColumnStats] = field(default_factory=dict)


def _leaves(value: Any, keys: tuple, concrete: str, generic: str):
    """Scalar leaves worth scanning: (keys, concrete path, generic path, text)."""
    if isinstance(value, str):
        if value:
            yield keys, concrete, generic, value
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        yield keys, concrete, generic, str(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            k = str(k)
            yield from _leaves(
                v,
                (*keys, k),
                f"{concrete}.{k}" if concrete else k,
                f"{generic}.{k}" if generic else k,
            )
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, (*keys, i), f"{concrete}[{i}]", f"{generic}[]")


class Guardian:
    """Detection + classification + policy for batches; reusable across batches."""

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        region: str | None = None,
        strict: bool | None = None,
        today: dt.date | None = None,
    ) -> None:
        self.policy = policy or Policy()
        self.region = region or self.policy.region
        self.strict = self.policy.strict if strict is None else strict
        self.today = today or dt.date.today()
        self._contexts: dict[tuple, Context] = {}
        self._hints: dict[str, tuple[str | None, bool]] = {}
        self._key = self.policy.hash_key() if self.policy.uses_hash() else None
        entities = frozenset(self.policy.entities)
        self._base = dict(
            region=self.region, national_ids=self.policy.national_ids, entities=entities
        )

    def _context(self, generic: str) -> tuple[Context, str | None, bool]:
        hint = self._hints.get(generic)
        if hint is None:
            hint = self._hints[generic] = name_hint(generic)
        ctx = self._contexts.get(hint)
        if ctx is None:
            ctx = self._contexts[hint] = Context(
                hints=frozenset([hint[0]]) if hint[0] else frozenset(),
                negative=hint[1],
                **self._base,
            )
        return ctx, hint[0], hint[1]

    # -- detection -----------------------------------------------------------------------

    def detect(self, batch: Batch, dataset: str) -> Inspection:
        """Findings and column labels; no policy applied yet."""
        # the scan allocates many small objects and creates no reference cycles: the cyclic
        # collector would only rescan the (large) batch again and again
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._detect(batch)
        finally:
            if enabled:
                gc.enable()

    def _detect(self, batch: Batch) -> Inspection:
        out = Inspection(rows=len(batch))
        stats = out.stats
        findings = out.findings
        for index, record in enumerate(batch.records):
            row = batch.row_number(index)
            for key, value in record.items():
                if isinstance(value, str):  # the common case: a flat text column
                    leaves = (((key,), key, key, value),) if value else ()
                else:
                    key = str(key)
                    leaves = _leaves(value, (key,), key, key)
                for keys, concrete, generic, text in leaves:
                    ctx, hint, negative = self._context(generic)
                    matches = detect(text, ctx)
                    st = stats.get(generic)
                    if st is None:
                        st = stats[generic] = ColumnStats(generic, hint=hint, negative=negative)
                    whole = None
                    if len(matches) == 1:
                        m = matches[0]
                        if m.end - m.start == len(text.strip()):
                            whole = m.entity
                    st.add(text, whole)
                    for m in matches:
                        findings.append(
                            Finding(
                                index=index,
                                row=row,
                                column=concrete,
                                path=generic,
                                keys=keys,
                                entity=m.entity,
                                start=m.start,
                                end=m.end,
                                score=m.score,
                                preview=preview(text[m.start : m.end]),
                                detail=m.detail,
                            )
                        )
        labels = {}
        for path in stats:
            label = stats[path].label()
            if label:
                labels[path] = label
                out.columns.append(label)
        for f in findings:  # a labelled column lends its confidence to its values
            label = labels.get(f.path)
            if label and label["entity"] == f.entity and label["score"] > f.score:
                f.score = label["score"]
        return out

    # -- policy --------------------------------------------------------------------------

    def inspect(self, batch: Batch, dataset: str) -> Inspection:
        """Detect, then decide an action per finding and build patches / quarantine / block."""
        out = self.detect(batch, dataset)
        masks: dict[int, list[Finding]] = {}
        for f in out.findings:
            d = self.policy.decide(f.entity, dataset, f.path, self.today)
            f.action, f.method, f.rule = d.action, d.method, d.rule
            if d.action == "block":
                out.blocked_by.append(f)
            elif d.action == "quarantine":
                out.quarantine.setdefault(f.index, []).append(f)
            elif d.action == "mask":
                masks.setdefault(f.index, []).append(f)
        for index, found in masks.items():
            if index in out.quarantine:
                continue
            out.patches[index] = self._patch(batch.records[index], found)
        return out

    def _patch(self, record: dict, found: list[Finding]) -> dict[str, Any]:
        """New top-level values with the masked spans replaced, right to left per leaf."""
        patch: dict[str, Any] = {}
        by_leaf: dict[tuple, list[Finding]] = {}
        for f in found:
            by_leaf.setdefault(f.keys, []).append(f)
        for keys, fs in by_leaf.items():
            top = keys[0]
            if top not in patch:
                patch[top] = copy.deepcopy(record[top])
            if len(keys) == 1:
                text = _text(patch[top])
                patch[top] = self._mask_text(text, fs)
            else:
                parent = patch[top]
                for k in keys[1:-1]:
                    parent = parent[k]
                parent[keys[-1]] = self._mask_text(_text(parent[keys[-1]]), fs)
        return patch

    def _mask_text(self, text: str, fs: list[Finding]) -> str:
        for f in sorted(fs, key=lambda f: f.start, reverse=True):
            masked = mask(f.entity, text[f.start : f.end], f.method or "redact", self._key)
            text = text[: f.start] + masked + text[f.end :]
        return text


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


# --------------------------------------------------------------------------- summaries


def summarize(
    guardian: Guardian, inspections: list[Inspection], max_findings: int = MAX_FINDINGS
) -> dict[str, Any]:
    """The report over one or more inspected batches: deterministic, masked previews only."""
    rows = sum(i.rows for i in inspections)
    by_entity: dict[str, dict[str, int]] = {}
    actions = {a: 0 for a in ("report", "allow", "mask", "quarantine", "block")}
    flagged_rows: dict[str, set] = {}
    any_rows: set = set()
    unhandled = 0
    findings: list[dict] = []
    total = 0
    columns: dict[str, dict] = {}
    for n, insp in enumerate(inspections):
        for label in insp.columns:
            columns.setdefault(label["column"], label)
        for f in insp.findings:
            total += 1
            e = by_entity.setdefault(f.entity, {"findings": 0, "rows": 0})
            e["findings"] += 1
            actions[f.action] += 1
            if f.action != "allow":
                key = (n, f.index)
                rows_e = flagged_rows.setdefault(f.entity, set())
                rows_e.add(key)
                any_rows.add(key)
            if f.action == "report":
                unhandled += 1
            if len(findings) < max_findings:
                findings.append(f.to_dict())
    for entity, rs in flagged_rows.items():
        by_entity[entity]["rows"] = len(rs)
    quarantined = sum(len(i.quarantine) for i in inspections)
    masked_rows = sum(len(i.patches) for i in inspections)
    failures: list[str] = []
    warnings: list[str] = []
    th = guardian.policy.thresholds
    rate = len(any_rows) / rows if rows else 0.0
    _threshold(th, rate, "rows with findings", failures, warnings)
    for entity, limits in sorted((th.get("entities") or {}).items()):
        r = len(flagged_rows.get(entity, ())) / rows if rows else 0.0
        _threshold(limits, r, f"rows with {entity}", failures, warnings)
    blocked = [f for i in inspections for f in i.blocked_by]
    if blocked:
        f = blocked[0]
        failures.append(
            f"{len(blocked)} finding(s) with action block, first {f.entity} in row {f.row} "
            f"column {f.column} ({f.rule})"
        )
    if guardian.strict and unhandled:
        failures.append(f"--strict: {unhandled} finding(s) that no rule allows or handles")
    for exp in guardian.policy.expired_exceptions(guardian.today):
        warnings.append(
            f"{exp['exception']} for column {exp['column']} expired on {exp['expired']}"
        )
    return {
        "rows": rows,
        "passed": not failures,
        "strict": guardian.strict,
        "policy": guardian.policy.source,
        "region": guardian.region,
        "columns": sorted(columns.values(), key=lambda c: c["column"]),
        "by_entity": dict(sorted(by_entity.items())),
        "actions": actions,
        "rows_with_findings": len(any_rows),
        "rate": round(rate, 6),
        "rows_quarantined": quarantined,
        "rows_masked": masked_rows,
        "blocked": bool(blocked),
        "findings_total": total,
        "findings": findings,
        "findings_truncated": total > len(findings),
        "failures": failures,
        "warnings": warnings,
    }


def _threshold(limits: dict, rate: float, what: str, failures: list, warnings: list) -> None:
    fail, warn = limits.get("fail"), limits.get("warn")
    if fail is not None and rate > fail:
        failures.append(f"{what}: rate {rate:.4f} above fail threshold {fail}")
    elif warn is not None and rate > warn:
        warnings.append(f"{what}: rate {rate:.4f} above warn threshold {warn}")


def scan(
    path: str,
    *,
    policy: str | os.PathLike | None = None,
    fmt: str = "auto",
    strict: bool | None = None,
    region: str | None = None,
    dataset: str | None = None,
    max_findings: int = MAX_FINDINGS,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Scan a data file under a policy: the report of ``pipewarden guard scan``.

    ``report["passed"]`` is False when a block rule matched, a fail threshold was crossed, or
    (strict) a finding no rule allows or handles was found. Raises InputError on bad input.
    """
    from ..batch import iter_batches

    pol = load_policy(policy)
    guardian = Guardian(pol, region=region, strict=strict, today=today)
    name = dataset or _dataset_name(path)
    inspections = [guardian.inspect(b, name) for b in iter_batches(path, fmt=fmt)]
    report = summarize(guardian, inspections, max_findings)
    report = {"source": str(path), "dataset": name, **report}
    return report


def _dataset_name(path: str) -> str:
    if path == "-":
        return "stdin"
    base = os.path.basename(str(path))
    return base.split(".", 1)[0] or base
