"""The guardian as a step of ``pipewarden run``: PII policy enforced before anything is written.

``build_step({"type": "guardian", "policy": "policy.yaml", "strict": true}, base_dir)`` returns a
step whose ``check(batch, ctx)`` returns a :class:`~pipewarden.verdict.Verdict`: masks hold the
masked values of every row it does not hold itself (applied to the rows that load and to the
payload of rows other steps quarantine), quarantined rows become ``RowIssue``s (reason ``pii``), and a
block rule, a crossed fail threshold or (strict) an unhandled finding blocks the batch. The
report holds counts and findings with masked previews only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..batch import Batch, no_gc
from ..errors import InputError
from ..steps import StepContext
from ..verdict import ColumnMasks, RowIssue, Verdict
from .guardian import Guardian, summarize
from .names import mask_name
from .policy import load_policy

REPORT_FINDINGS = 100
_OPTIONS = {"type", "policy", "strict", "region", "mode", "max_findings"}


class GuardianStep:
    name = "guardian"

    def __init__(self, guardian: Guardian, max_findings: int = REPORT_FINDINGS) -> None:
        self.guardian = guardian
        self.max_findings = max_findings
        self._batch: str | None = None

    def prepare(self, batch: Batch) -> str | None:
        """Before the sentinel infers the schema: rename the keys that hold PII (the policy's
        ``names``). Returns why the batch must not load (``names: block``, or PII keys to
        rename without a hash key: their names would change from run to run), else None."""
        if batch.batch_id != self._batch:  # a new batch: its own findings
            self._batch = batch.batch_id
            self.guardian.renamer.found.clear()
        self.guardian.prepare(batch)
        why = self.guardian.names_failure()
        renamer = self.guardian.renamer
        if why is None and renamer.found and renamer.action == "rename" and not renamer.keyed:
            first = next(iter(renamer.found.values()))
            why = (
                f"{len(renamer.found)} key(s) hold PII, first {first.entity} in key "
                f"{mask_name(first.path)}: set ${self.guardian.policy.hash_key_env} so they are "
                "renamed to stable keyed-hash names, or set the policy's names: {action: block} "
                "or {action: allow}"
            )
        return f"guardian: {why}" if why else None

    def check(self, batch: Batch, ctx: StepContext) -> Verdict:
        with no_gc():  # a patch per masked row and no reference cycle (see Guardian.detect)
            return self._check(batch, ctx)

    def _check(self, batch: Batch, ctx: StepContext) -> Verdict:
        insp = self.guardian.inspect(batch, ctx.dataset)
        report = summarize(self.guardian, [insp], self.max_findings)
        report["summary"] = _summary(report)
        issues = []
        for index in sorted(insp.quarantine):
            found = insp.quarantine[index]
            what = ", ".join(
                sorted({f"{f.entity} in {f.column} ({f.preview}, {f.rule})" for f in found})
            )
            issues.append(
                RowIssue(
                    row=index,
                    reason="pii",
                    message=f"row {batch.row_number(index)}: {what}",
                    column=found[0].column,
                    score=max(f.score for f in found),
                )
            )
        if not report["passed"]:
            return Verdict(
                "guardian",
                decision="block",
                reason="; ".join(report["failures"]),
                issues=[],
                report=report,
            )
        # masks for every row the guardian does not hold itself: the rows that load, and rows
        # other steps quarantine, whose payload must not keep the value in clear either
        # (a ColumnMasks where the policy masked whole columns' values: applied per column)
        masks = insp.patches  # in row order as the guardian makes them; sorted if not
        if not isinstance(masks, ColumnMasks):
            rows = np.fromiter(masks, np.int64, len(masks))
            if len(rows) > 1 and not bool(np.all(rows[1:] > rows[:-1])):
                masks = dict(sorted(masks.items()))
        return Verdict("guardian", issues=issues, masks=masks, report=report)


def _summary(report: dict[str, Any]) -> str:
    """One line for the run's text report: findings per entity and what the policy did."""
    by_entity = report.get("by_entity") or {}
    if not by_entity:
        return "no PII found"
    found = sum(e["findings"] for e in by_entity.values())
    kinds = ", ".join(f"{k} {v['findings']}" for k, v in sorted(by_entity.items()))
    verbs = {"allow": "allowed", "mask": "masked", "quarantine": "quarantined"}
    done = ", ".join(
        f"{verbs.get(a, a + 'ed')} {n}" for a, n in sorted(report.get("actions", {}).items()) if n
    )
    return f"{found} findings ({kinds}): {done}"


def build_step(options: dict[str, Any], base_dir: Path) -> GuardianStep:
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise InputError(
            f"unknown option of the guardian step: {', '.join(unknown)}",
            key=f"steps[].{unknown[0]}",
            hint=f"allowed: {', '.join(sorted(_OPTIONS))}",
        )
    policy_path = options.get("policy")
    if policy_path is not None:
        policy_path = Path(base_dir) / policy_path
    policy = load_policy(policy_path)
    guardian = Guardian(
        policy, region=options.get("region"), strict=options.get("strict"), mode=options.get("mode")
    )
    return GuardianStep(guardian, int(options.get("max_findings", REPORT_FINDINGS)))
