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
import tempfile
from dataclasses import dataclass, field
from typing import Any

from ..batch import Batch
from ..errors import preview
from .classify import ColumnStats, code_name, name_hint
from .names import mask_name, renamer_for
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
        mode: str | None = None,
    ) -> None:
        self.policy = policy or Policy()
        self.region = region or self.policy.region
        # mode: "precision" / "recall" for every entity, overriding the policy's
        self.recall = (
            self.policy.recall
            if mode is None
            else (
                frozenset(self.policy.entities) | {"NATIONAL_ID"}
                if mode == "recall"
                else frozenset()
            )
        )
        self.strict = self.policy.strict if strict is None else strict
        self.today = today or dt.date.today()
        self._contexts: dict[tuple, Context] = {}
        self._hints: dict[str, tuple[str | None, bool, bool]] = {}
        self._key = self.policy.hash_key() if self.policy.uses_hash() else None
        entities = frozenset(self.policy.entities)
        self._base = dict(
            region=self.region,
            regions=self.policy.regions,
            national_ids=self.policy.national_ids,
            entities=entities,
            recall=self.recall,
        )
        self.renamer = renamer_for(self.policy, self.region)

    def prepare(self, batch: Batch) -> int:
        """Rename the keys of ``batch`` that hold PII (top-level and nested), in place, as the
        policy's ``names`` says; before the schema is inferred. Returns the keys renamed;
        ``self.renamer.found`` lists what was found (masked)."""
        return self.renamer.apply(batch.records)

    def names_failure(self) -> str | None:
        """Why the batch must not load because of PII in its keys, or None."""
        found = list(self.renamer.found.values())
        if not found or self.renamer.action == "allow":
            return None
        first = found[0]
        what = f"{len(found)} key(s) hold PII, first {first.entity} in key {first.path}"
        if self.renamer.action == "block":
            return f"{what} (policy names: block)"
        return None

    def _context(self, generic: str) -> tuple[Context, str | None, bool]:
        hint = self._hints.get(generic)
        if hint is None:
            hint = self._hints[generic] = (*name_hint(generic), code_name(generic))
        ctx = self._contexts.get(hint)
        if ctx is None:
            ctx = self._contexts[hint] = Context(
                hints=frozenset([hint[0]]) if hint[0] else frozenset(),
                negative=hint[1],
                code=hint[2],
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
    names_failure = guardian.names_failure()
    if names_failure:
        failures.append(names_failure)
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
        "regions": list(guardian.policy.regions),
        "mode": {
            e: ("recall" if e in guardian.recall else "precision") for e in guardian.policy.entities
        },
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
        "names": guardian.renamer.report(),
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
    mode: str | None = None,
    output: str | None = None,
    output_format: str | None = None,
) -> dict[str, Any]:
    """Scan a data file under a policy: the report of ``pipewarden guard scan``.

    ``mode`` (precision / recall) overrides the policy's. ``output``: write the batch as it
    would load (masks applied, PII keys renamed, rows the policy quarantines left out) to this
    file ("-": stdout), in the input's format or ``output_format``.

    ``report["passed"]`` is False when a block rule matched, a fail threshold was crossed, or
    (strict) a finding no rule allows or handles was found. Raises InputError on bad input.
    """
    from ..batch import iter_batches

    pol = load_policy(policy)
    guardian = Guardian(pol, region=region, strict=strict, today=today, mode=mode)
    shown = mask_name(str(path)) if path != "-" else "<stdin>"
    name = dataset or _dataset_name(shown)
    inspections = []
    writer = None
    try:
        for b in iter_batches(path, fmt=fmt, name=shown):
            guardian.prepare(b)
            insp = guardian.inspect(b, name)
            inspections.append(insp)
            if output is not None:
                if writer is None:
                    writer = MaskedWriter(output, output_format or _output_format(b.fmt, output))
                writer.write(b, insp)
            insp.stats.clear()  # the per-column statistics are not needed past the labels
        report = summarize(guardian, inspections, max_findings)
        report = {"source": shown, "dataset": name, **report}
        if output is not None:
            if writer is None:  # no rows at all: an empty file of the format
                writer = MaskedWriter(output, output_format or _output_format(fmt, output))
            if report["passed"]:
                report["output"] = writer.commit()
            else:
                writer.discard()
                report["output"] = {"path": _shown_output(output), "written": False, "rows": 0}
        writer = None
    finally:
        if writer is not None:
            writer.discard()
    return report


def _shown_output(output: str) -> str:
    return "-" if output == "-" else mask_name(str(output))


def _output_format(input_fmt: str, output: str) -> str:
    from ..batch import format_of

    if output != "-":
        by_name = format_of(output)
        if by_name:
            return by_name
    return input_fmt if input_fmt in ("json", "jsonl", "csv", "parquet") else "jsonl"


class MaskedWriter:
    """Writes the rows of inspected batches as they would load (masks applied, PII keys
    already renamed by ``Guardian.prepare``, rows under a quarantine rule left out) to a
    temporary file, moved into place by :meth:`commit` only when the gate passed: a failed
    scan leaves no output behind (and writes nothing on stdout)."""

    def __init__(self, output: str, fmt: str) -> None:
        self.output, self.fmt, self.rows = output, fmt, 0
        folder = "." if output == "-" else (os.path.dirname(os.path.abspath(output)) or ".")
        fd, self.tmp = tempfile.mkstemp(prefix=".pipewarden-scan-", dir=folder)
        self.fh = os.fdopen(fd, "wb")
        self._columns: list[str] | None = None
        self._tables: list = []
        if fmt == "json":
            self.fh.write(b"[")

    def write(self, batch: Batch, insp: Inspection) -> None:
        import orjson

        rows = []
        for i, rec in enumerate(batch.records):
            if i in insp.quarantine:
                continue
            patch = insp.patches.get(i)
            rows.append({**rec, **patch} if patch else rec)
        self.rows += len(rows)
        if self.fmt == "jsonl":
            self.fh.write(b"".join(orjson.dumps(r, default=str) + b"\n" for r in rows))
        elif self.fmt == "json":
            for r in rows:
                self.fh.write(
                    (b"," if self._columns else b"") + b"\n" + orjson.dumps(r, default=str)
                )
                self._columns = self._columns or ["-"]
        elif self.fmt == "csv":
            self._write_csv(rows)
        else:
            import pyarrow as pa

            if rows:  # from_pylist takes the columns of the first row: give it every key
                keys = list(dict.fromkeys(k for r in rows for k in r))
                self._tables.append(
                    pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in rows])
                )

    def _write_csv(self, rows: list[dict]) -> None:
        # rows go to the temporary file as JSON lines first: the header is the union of the
        # keys of every row, known at the end
        import orjson

        if self._columns is None:
            self._columns = []
            self._seen: set = set()
        for r in rows:
            for k in r:
                if k not in self._seen:
                    self._seen.add(k)
                    self._columns.append(k)
        self.fh.write(b"".join(orjson.dumps(r, default=str) + b"\n" for r in rows))

    def _csv_from_lines(self) -> None:
        import csv

        import orjson

        lines = self.tmp
        fd, self.tmp = tempfile.mkstemp(prefix=".pipewarden-scan-", dir=os.path.dirname(lines))
        with open(lines, "rb") as src, os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            w = csv.writer(out)
            columns = self._columns or []
            w.writerow(columns)
            for line in src:
                r = orjson.loads(line)
                w.writerow(
                    [
                        "" if (v := r.get(c)) is None
                        else orjson.dumps(v).decode() if isinstance(v, dict | list) else v
                        for c in columns
                    ]
                )  # fmt: skip
        os.unlink(lines)

    def _close(self) -> None:
        if self.fmt == "json":
            self.fh.write(b"\n]\n" if self._columns else b"]\n")
        if self.fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = (
                pa.concat_tables(self._tables, promote_options="permissive")
                if self._tables
                else pa.table({})
            )
            pq.write_table(table, self.fh)
        self.fh.close()
        if self.fmt == "csv":
            self._csv_from_lines()

    def commit(self) -> dict[str, Any]:
        self._close()
        if self.output == "-":
            import shutil
            import sys

            with open(self.tmp, "rb") as src:
                shutil.copyfileobj(src, sys.stdout.buffer)
            sys.stdout.flush()
            os.unlink(self.tmp)
        else:
            os.replace(self.tmp, self.output)
        return {"path": _shown_output(self.output), "format": self.fmt, "rows": self.rows,
                "written": True}  # fmt: skip

    def discard(self) -> None:
        from contextlib import suppress

        with suppress(Exception):
            self.fh.close()
        with suppress(OSError):
            os.unlink(self.tmp)


def _dataset_name(path: str) -> str:
    if path in ("-", "<stdin>"):
        return "stdin"
    base = os.path.basename(str(path))
    return base.split(".", 1)[0] or base
