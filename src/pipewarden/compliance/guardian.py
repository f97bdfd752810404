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
from itertools import chain, repeat
from typing import Any

import numpy as np
import pyarrow.compute as pc

from ..batch import Batch
from ..errors import preview
from .classify import ColumnStats, code_name, name_hint
from .columns import distinct, scan_distinct
from .names import mask_name, renamer_for
from .policy import Policy, load_policy, mask
from .recognizers import Context

MAX_FINDINGS = 1000
MAX_DISTINCT = 100_000  # distinct values ColumnStats keeps per column


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


_MIXED = object()


def _kind(types: set[type]) -> Any:
    """How a column is scanned from the types of its values: ``str`` or ``int`` (one type and
    nulls: Arrow encodes it), ``_MIXED`` (walked value by value: nested objects, lists, mixed
    types) or None (nothing to scan: booleans, floats, nulls, dates)."""
    types.discard(type(None))
    if types == {str}:
        return str
    if types == {int}:
        return int
    if any(
        issubclass(t, str | dict | list) or (issubclass(t, int) and t is not bool) for t in types
    ):
        return _MIXED
    return None


class _Path:
    """The leaves of one path (a column, or a nested path) of a batch: its distinct texts
    and where each occurs. A column read by Arrow holds ``texts`` (a string array) and
    ``ids`` (per row, the index of its text, -1 for none); a walked path holds ``index``
    (text -> its number) and its occurrences (row, key rank, leaf number, keys, path)."""

    __slots__ = ("generic", "texts", "ids", "rank", "keys", "seq", "index", "occ", "column_stats")

    def __init__(
        self, generic: str, texts=None, ids=None, rank: int = 0, keys: tuple = (), seq: int = 0
    ) -> None:
        self.generic, self.texts, self.ids, self.rank = generic, texts, ids, rank
        self.keys, self.seq = keys or (generic,), seq  # where an Arrow-read path's leaves are
        self.index: dict[str, int] = {}
        self.occ: list[tuple[int, tuple]] = []
        self.column_stats: ColumnStats | None = None

    def add(self, text: str, where: tuple) -> None:
        i = self.index.get(text)
        if i is None:
            i = self.index[text] = len(self.index)
        self.occ.append((i, where))

    def first(self) -> tuple[int, str | None, int] | None:
        """(row, top key, leaf number) of the first leaf, or None when there is none."""
        if self.ids is None:
            if not self.occ:
                return None
            index, _, seq, keys, _ = self.occ[0][1]
            return index, keys[0], seq
        present = np.flatnonzero(self.ids >= 0)
        return (int(present[0]), self.keys[0], self.seq) if len(present) else None

    def counts(self, n: int) -> np.ndarray:
        if self.ids is None:
            return np.bincount(np.fromiter((i for i, _ in self.occ), np.int64), minlength=n)
        return np.bincount(self.ids[self.ids >= 0], minlength=n)

    def stats(self, texts: list[str], matches: list, st: ColumnStats) -> ColumnStats:
        """The column statistics scanning each leaf would have gathered (``ColumnStats.add``
        per leaf), from the distinct texts and their counts."""
        counts = self.counts(len(texts))
        # values read as prose: 2+ spaces and not one entity as a whole
        if self.ids is not None:
            prose = pc.count_substring(self.texts, " ").to_numpy(zero_copy_only=False) >= 2
        else:
            prose = np.fromiter((t.count(" ") >= 2 for t in texts), bool, len(texts))
        whole: dict[str, int] = {}
        for i, found in enumerate(matches):
            if len(found) != 1 or not counts[i]:
                continue
            m = found[0]
            if m.end - m.start == len(texts[i].strip()):
                whole[m.entity] = whole.get(m.entity, 0) + int(counts[i])
                prose[i] = False
        st.values = int(counts.sum())
        st.free_text = int(counts[prose].sum())
        absent = np.flatnonzero(counts == 0)
        seen = (
            texts
            if not len(absent)
            else [t for t, c in zip(texts, counts.tolist(), strict=True) if c]
        )
        # ColumnStats keeps the first MAX_DISTINCT distinct values it sees
        st.distinct = set(seen if len(seen) <= MAX_DISTINCT else seen[:MAX_DISTINCT])
        st.whole = whole or None
        return st

    def findings(self, batch: Batch, texts, matches: list):
        """The findings of the path's leaves in leaf order, with (row, key rank, leaf
        number) arrays for the merge; None when there are none."""
        hits = [i for i, m in enumerate(matches) if m]
        if not hits:
            return None
        shown = {
            i: [preview(texts[i][m.start : m.end]) for m in matches[i]] for i in hits
        }  # fmt: skip
        out: list[Finding] = []
        rows: list[int] = []
        ranks: list[int] = []
        seqs: list[int] = []
        row_number = batch.row_number
        generic = self.generic
        if self.ids is not None:
            hit = np.zeros(len(texts) + 1, dtype=bool)  # + 1: index -1 (no value) is False
            hit[hits] = True
            keys = self.keys
            for index in np.flatnonzero(hit[self.ids]).tolist():
                i = int(self.ids[index])
                row = row_number(index)
                for m, pv in zip(matches[i], shown[i], strict=True):
                    out.append(Finding(index, row, generic, generic, keys, m.entity, m.start,
                                       m.end, m.score, pv, m.detail))  # fmt: skip
                    rows.append(index)
            ranks = [self.rank] * len(rows)
            seqs = [self.seq] * len(rows)
        else:
            for i, (index, rank, seq, keys, concrete) in self.occ:
                if not matches[i]:
                    continue
                row = row_number(index)
                for m, pv in zip(matches[i], shown[i], strict=True):
                    out.append(Finding(index, row, concrete, generic, keys, m.entity, m.start,
                                       m.end, m.score, pv, m.detail))  # fmt: skip
                    rows.append(index)
                    ranks.append(rank)
                    seqs.append(seq)
        return out, np.array(rows, np.int64), np.array(ranks, np.int64), np.array(seqs, np.int64)


def _column_paths(key: str, column: list, rank: int) -> list[_Path] | None:
    """The paths of a top-level column read by Arrow: the column itself (text or integers),
    or, for objects that all have the same keys, one path per key holding text or integers
    (``meta.source``, ``meta.v``); [] when it holds nothing to scan; None when it must be
    walked value by value (lists, mixed types, objects of different keys)."""
    types = set(map(type, column))
    kind = _kind(types)
    if kind is None:
        return []  # booleans, floats, nulls, dates: no text to scan
    if kind is not _MIXED:
        got = distinct(column, kind)
        return None if got is None else [_Path(key, *got, rank)]
    types.discard(type(None))
    if types != {dict}:
        return None
    objects = [v for v in column if v is not None]
    forms = set(map(tuple, objects))
    if len(forms) != 1:
        return None
    (form,) = forms
    if not all(type(k) is str for k in form):
        return None
    out = []
    for seq, sub in enumerate(form):
        values = [None if v is None else v[sub] for v in column]
        kind = _kind(set(map(type, values)))
        if kind is None:
            continue
        if kind is _MIXED:
            return None
        got = distinct(values, kind)
        if got is None:
            return None
        generic = f"{key}.{sub}"
        out.append(_Path(generic, *got, rank, (key, sub), seq))
    return out


def _position(
    records: list[dict], first: tuple[int, str | None, int], by_record: bool
) -> tuple[int, int, int]:
    """(row, place of the key in that record, leaf number) of a path's first leaf."""
    row, key, seq = first
    if not by_record:
        return row, 0, seq
    for i, k in enumerate(records[row]):
        if k == key or str(k) == key:
            return row, i, seq
    return row, 0, seq


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
        records = batch.records
        if self.renamer.action == "allow" or not records:
            return 0
        columns = batch.columns() if all(map(isinstance, records, repeat(dict))) else None
        n = self.renamer.apply(records, columns)
        if n:  # renamed in place: a new list, so no step reads the columns of the old keys
            batch.records = list(records)
        return n

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
        """Column by column: each column's distinct values are scanned once
        (:mod:`.columns`), the rows share their matches. The findings, their order, the
        statistics and the labels are those of scanning each leaf of each record in turn."""
        out = Inspection(rows=len(batch))
        records = batch.records
        if not records:
            return out
        keys = list(dict.fromkeys(chain.from_iterable(records)))
        paths: dict[str, _Path] = {}
        if not all(type(k) is str for k in keys):
            # keys that are not text (1 and True are one dict key): each record walked in turn
            self._walk(records, None, paths)
            by_record = False  # the leaf numbers run over the whole record
        else:
            by_record = True
            rank = {k: i for i, k in enumerate(keys)}
            fast: list[_Path] = []
            slow: set[str] = set()
            # the chunk's columns, transposed once for every check of it (Batch.columns)
            columns = batch.columns() if all(map(isinstance, records, repeat(dict))) else None
            for key in keys:
                column = columns[key] if columns is not None else [r.get(key) for r in records]
                got = _column_paths(key, column, rank[key])
                if got is None:
                    slow.add(key)
                else:
                    fast.extend(got)
            if slow:
                self._walk(records, slow, paths, rank)
            for p in fast:
                if p.generic in paths:  # "a.b" as a key and as a nested path: walk them all
                    paths.clear()
                    self._walk(records, set(keys), paths, rank)
                    break
                paths[p.generic] = p
        self._collect(batch, paths, out, by_record)
        return out

    def _walk(
        self, records: list[dict], only: set[str] | None, paths: dict, rank: dict | None = None
    ) -> None:
        """The leaves of the ``only`` keys of every record (all keys: None), record by record,
        into per-path occurrences: (row, top key rank, leaf number in the row, keys, path)."""
        for index, record in enumerate(records):
            seq = 0
            for key, value in record.items():
                if only is not None and key not in only:
                    continue
                r = rank[key] if rank is not None else 0
                if isinstance(value, str):  # the common case: a flat text column
                    leaves = (((key,), key, key, value),) if value else ()
                else:
                    key = str(key)
                    leaves = _leaves(value, (key,), key, key)
                for keys, concrete, generic, text in leaves:
                    p = paths.get(generic)
                    if p is None:
                        p = paths[generic] = _Path(generic)
                    p.add(text, (index, r, seq, keys, concrete))
                    seq += 1

    def _collect(
        self, batch: Batch, paths: dict[str, _Path], out: Inspection, by_record: bool
    ) -> None:
        records = batch.records
        stats = out.stats
        found: list[tuple[_Path, list[Finding], np.ndarray, np.ndarray, np.ndarray]] = []
        firsts = []
        for generic, p in paths.items():
            first = p.first()
            if first is None:
                continue
            firsts.append((first, generic))
            ctx, hint, negative = self._context(generic)
            matches = scan_distinct(p.texts if p.ids is not None else list(p.index), ctx)
            texts = p.texts.to_pylist() if p.ids is not None else list(p.index)
            st = p.stats(texts, matches, ColumnStats(generic, hint=hint, negative=negative))
            p.column_stats = st
            got = p.findings(batch, texts, matches)
            if got is not None:
                found.append((p, *got))
        # statistics in order of each path's first leaf (row, then the record's key order)
        for _, generic in sorted(firsts, key=lambda f: _position(records, f[0], by_record)):
            stats[generic] = paths[generic].column_stats
        labels = {}
        for path in stats:
            label = stats[path].label()
            if label:
                labels[path] = label
                out.columns.append(label)
        findings = out.findings
        for p, fs, *_ in found:
            label = labels.get(p.generic)
            if label:  # a labelled column lends its confidence to its values
                for f in fs:
                    if label["entity"] == f.entity and label["score"] > f.score:
                        f.score = label["score"]
        if len(found) == 1:
            findings.extend(found[0][1])
            return
        if not found:
            return
        # several paths: in row order, then the record's key order, then the leaf order
        fs = [f for _, got, *_ in found for f in got]
        rows = np.concatenate([g[2] for g in found])
        ranks = np.concatenate([g[3] for g in found])
        seqs = np.concatenate([g[4] for g in found])
        order = np.lexsort((seqs, ranks, rows))
        rows, ranks = rows[order], ranks[order]
        fs = [fs[i] for i in order.tolist()]
        # rows with findings under several keys: the record's own key order decides
        several = np.flatnonzero((rows[1:] == rows[:-1]) & (ranks[1:] != ranks[:-1]))
        done: set[int] = set()
        for j in several.tolist():
            row = int(rows[j])
            if row in done:
                continue
            done.add(row)
            lo = int(np.searchsorted(rows, row, "left"))
            hi = int(np.searchsorted(rows, row, "right"))
            pos = {str(k): i for i, k in enumerate(records[row])}
            fs[lo:hi] = sorted(fs[lo:hi], key=lambda f: pos[f.keys[0]])  # stable: leaf order
        findings.extend(fs)

    # -- policy --------------------------------------------------------------------------

    def inspect(self, batch: Batch, dataset: str) -> Inspection:
        """Detect, then decide an action per finding and build patches / quarantine / block."""
        enabled = gc.isenabled()
        gc.disable()  # as in detect: a finding and a patch per row, and no reference cycle
        try:
            return self._inspect(batch, dataset)
        finally:
            if enabled:
                gc.enable()

    def _inspect(self, batch: Batch, dataset: str) -> Inspection:
        out = self.detect(batch, dataset)
        masks: dict[int, list[Finding]] = {}
        decided: dict[tuple[str, str], Any] = {}  # the policy's decision per entity and path
        decide, today = self.policy.decide, self.today
        quarantine, blocked_by = out.quarantine, out.blocked_by
        for f in out.findings:
            d = decided.get((f.entity, f.path))
            if d is None:
                d = decided[(f.entity, f.path)] = decide(f.entity, dataset, f.path, today)
            action = f.action = d.action
            f.method, f.rule = d.method, d.rule
            if action == "mask":
                found = masks.get(f.index)
                if found is None:
                    masks[f.index] = [f]
                else:
                    found.append(f)
            elif action == "block":
                blocked_by.append(f)
            elif action == "quarantine":
                quarantine.setdefault(f.index, []).append(f)
        masked: dict[tuple, str] = {}
        records, patches, patch = batch.records, out.patches, self._patch
        for index, found in masks.items():
            if index in quarantine:
                continue
            f = found[0]
            if len(found) == 1 and len(f.keys) == 1:  # one span of a top-level value
                top = f.keys[0]
                text = _text(records[index][top])
                key = (text, f.entity, f.start, f.end, f.method)
                value = masked.get(key)
                if value is None:
                    value = masked[key] = self._mask_text(text, found)
                patches[index] = {top: value}
            else:
                patches[index] = patch(records[index], found, masked)
        return out

    def _patch(
        self, record: dict, found: list[Finding], masked: dict[tuple, str] | None = None
    ) -> dict[str, Any]:
        """New top-level values with the masked spans replaced, right to left per leaf.
        ``masked``: the masked text of one span of a top-level value, by text and span (a
        repeated value is masked once)."""
        if len(found) == 1 and len(found[0].keys) == 1 and masked is not None:
            f = found[0]
            top = f.keys[0]
            text = _text(record[top])
            key = (text, f.entity, f.start, f.end, f.method)
            value = masked.get(key)
            if value is None:
                value = masked[key] = self._mask_text(text, found)
            return {top: value}
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
        for f in fs if len(fs) == 1 else sorted(fs, key=lambda f: f.start, reverse=True):
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
