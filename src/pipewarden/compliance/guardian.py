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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow.compute as pc

from ..batch import Batch
from ..errors import preview
from ..verdict import ColumnMask, ColumnMasks
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
    """What the guardian found in a batch. ``findings`` is every finding in leaf order: the
    findings of a column read by Arrow are kept per distinct text (:class:`_Block`) and made
    into :class:`Finding` objects only when the list is asked for; the policy, the patches
    and the report's counts are computed without them where they can be (:meth:`tally`,
    :meth:`first`)."""

    rows: int
    columns: list[dict] = field(default_factory=list)
    # row -> {top-level key: masked value}; a ColumnMasks where whole columns were masked
    patches: Mapping[int, dict[str, Any]] = field(default_factory=dict)
    quarantine: dict[int, list[Finding]] = field(default_factory=dict)
    blocked_by: list[Finding] = field(default_factory=list)
    stats: dict[str, ColumnStats] = field(default_factory=dict)
    # the findings by path (a list of Finding, or a _Block), and their order: None (one part,
    # in its own order) or (part, number in the part) arrays
    _parts: list = field(default_factory=list, repr=False)
    _order: Any = field(default=None, repr=False)
    _list: list[Finding] | None = field(default=None, repr=False)

    @property
    def findings(self) -> list[Finding]:
        if self._list is None:
            self._list = self._made(None)
            self._parts, self._order = [self._list], None
        return self._list

    def _made(self, k: int | None) -> list[Finding]:
        """The first ``k`` findings (None: all) in leaf order, as Finding objects."""
        parts = self._parts
        if self._order is None:
            if not parts:
                return []
            part = parts[0]
            if isinstance(part, _Block):
                return part.made(None if k is None else np.arange(min(k, len(part))))
            return list(part if k is None else part[:k])
        which, ks = self._order
        if k is not None:
            which, ks = which[:k], ks[:k]
        made: list[list[Finding] | None] = [None] * len(parts)
        for j, part in enumerate(parts):
            sel = ks[which == j]
            if isinstance(part, _Block):
                made[j] = part.made(sel)
            else:
                made[j] = [part[i] for i in sel.tolist()]
        pos = [0] * len(parts)
        out = []
        for j in which.tolist():
            out.append(made[j][pos[j]])  # type: ignore[index]
            pos[j] += 1
        return out

    def first(self, k: int) -> list[Finding]:
        """The first ``k`` findings in leaf order."""
        return self._list[:k] if self._list is not None else self._made(k)

    def tally(self) -> tuple[int, dict[str, int], dict[str, int], dict[str, int], int]:
        """(findings, findings per entity, findings per action, rows per entity with a
        finding not allowed, rows with any finding not allowed)."""
        if self._list is not None or not all(isinstance(p, _Block) for p in self._parts):
            entities: dict[str, int] = {}
            actions: dict[str, int] = {}
            rows: dict[str, set] = {}
            for f in self.findings:
                entities[f.entity] = entities.get(f.entity, 0) + 1
                actions[f.action] = actions.get(f.action, 0) + 1
                if f.action != "allow":
                    rows.setdefault(f.entity, set()).add(f.index)
            flagged = set().union(*rows.values()) if rows else set()
            return (len(self.findings), entities, actions,
                    {e: len(r) for e, r in rows.items()}, len(flagged))  # fmt: skip
        total = 0
        entities, actions = {}, {}
        flags: dict[str, np.ndarray] = {}
        for block in self._parts:
            total += len(block)
            for entity, (count, present) in block.by_entity().items():
                entities[entity] = entities.get(entity, 0) + count
                action = block.action(entity)
                actions[action] = actions.get(action, 0) + count
                if action != "allow":
                    got = flags.get(entity)
                    flags[entity] = present if got is None else got | present
        per_entity = {e: int(f.sum()) for e, f in flags.items()}
        flagged = np.logical_or.reduce(list(flags.values())) if flags else None
        return total, entities, actions, per_entity, 0 if flagged is None else int(flagged.sum())


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


class _Texts(Sequence):
    """A path's distinct texts (a string array) as Python strings, made on the first read: a
    column without a finding is never read (integer ids, codes, amounts written as text), and
    turning its 100,000 distinct texts into strings was a fifth of the guardian's time."""

    __slots__ = ("_arr", "_list")

    def __init__(self, arr: Any) -> None:
        self._arr, self._list = arr, None

    def __len__(self) -> int:
        return len(self._arr)

    def __getitem__(self, i):  # type: ignore[override]
        if self._list is None:
            self._list = self._arr.to_pylist()
        return self._list[i]


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
        ones = np.flatnonzero((np.fromiter(map(len, matches), np.int64, len(matches)) == 1)
                              & (counts > 0)).tolist()  # fmt: skip
        whole_ones = []
        for i, c in zip(ones, counts[ones].tolist(), strict=True):
            m = matches[i][0]
            if m.end - m.start == len(texts[i].strip()):
                whole[m.entity] = whole.get(m.entity, 0) + c
                whole_ones.append(i)
        prose[whole_ones] = False
        st.values = int(counts.sum())
        st.free_text = int(counts[prose].sum())
        # the texts are distinct: ColumnStats counts the first MAX_DISTINCT it sees
        st.n_distinct = min(int(np.count_nonzero(counts)), MAX_DISTINCT)
        st.whole = whole or None
        return st

    def findings(self, batch: Batch, texts, matches: list):
        """The findings of a walked path's leaves in leaf order, with (row, key rank, leaf
        number) arrays for the merge; None when there are none. (A path read by Arrow keeps
        its findings per distinct text: :class:`_Block`.)"""
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


class _Block:
    """The findings of a path read by Arrow, kept per distinct text: every row holding the
    same text has the same matches, so the policy's decisions, the masked values and the
    report's counts are made once per distinct text, and per row by numpy. Finding objects
    are made only when asked for (:meth:`made`), with the same fields as the leaf by leaf
    scan gives."""

    __slots__ = ("path", "texts", "matches", "offset", "hits", "rows", "dist", "nth", "label",
                 "decided", "_by_entity")  # fmt: skip

    def __init__(self, path: _Path, texts: list[str], matches: list, offset: int) -> None:
        self.path, self.texts, self.matches, self.offset = path, texts, matches, offset
        per = np.fromiter(map(len, matches), np.int64, len(matches))
        self.hits = np.flatnonzero(per)
        per = np.append(per, 0)  # index -1: no value
        ids = path.ids
        rows = np.flatnonzero(per[ids] > 0)
        k = per[ids[rows]]
        self.rows = np.repeat(rows, k)  # each finding's row, in leaf order
        self.dist = np.repeat(ids[rows], k)  # its distinct text
        self.nth = np.arange(len(self.rows)) - np.repeat(np.cumsum(k) - k, k)  # its match
        self.label: tuple[str, float] | None = None  # (entity, score) the column's label lends
        self.decided: dict[str, Any] | None = None  # entity -> the policy's decision
        self._by_entity: dict[str, tuple[int, np.ndarray]] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def made(self, sel: np.ndarray | None) -> list[Finding]:
        """Finding objects of the findings ``sel`` (numbers in the block; None: all)."""
        rows, dist, nth = (
            (self.rows, self.dist, self.nth) if sel is None
            else (self.rows[sel], self.dist[sel], self.nth[sel])
        )  # fmt: skip
        generic, keys, offset = self.path.generic, self.path.keys, self.offset
        texts, matches, label, decided = self.texts, self.matches, self.label, self.decided
        out = []
        for index, i, j in zip(rows.tolist(), dist.tolist(), nth.tolist(), strict=True):
            m = matches[i][j]
            score = m.score
            if label is not None and label[0] == m.entity and label[1] > score:
                score = label[1]
            f = Finding(index, offset + index + 1, generic, generic, keys, m.entity, m.start,
                        m.end, score, preview(texts[i][m.start : m.end]), m.detail)  # fmt: skip
            if decided is not None:
                d = decided[m.entity]
                f.action, f.method, f.rule = d.action, d.method, d.rule
            out.append(f)
        return out

    def entities(self) -> set[str]:
        return set(self.by_entity())

    def by_entity(self) -> dict[str, tuple[int, np.ndarray]]:
        """Entity -> (its findings, which rows hold one: a bool per row)."""
        if self._by_entity is None:
            ids = self.path.ids
            counts = self.path.counts(len(self.texts))
            counted: dict[str, int] = {}
            where: dict[str, list[int]] = {}
            matches, per_text = self.matches, counts.tolist()
            for i in self.hits.tolist():
                c = per_text[i]
                for m in matches[i]:
                    e = m.entity
                    if e in counted:
                        counted[e] += c
                        where[e].append(i)
                    else:
                        counted[e], where[e] = c, [i]
            out = {}
            for entity, count in counted.items():
                dists = where[entity]
                has = np.zeros(len(self.texts) + 1, dtype=bool)  # + 1: -1 (no value)
                has[dists] = True
                out[entity] = (count, has[ids])
            self._by_entity = out
        return self._by_entity

    def action(self, entity: str) -> str:
        return "report" if self.decided is None else self.decided[entity].action


def _one_form(objects: list[dict]) -> tuple | None:
    """The keys of ``objects`` when every one has the first one's keys in its order, else
    None: their lengths, then all their keys in one C-level pass against the first one's
    repeated (a tuple made per object, as ``set(map(tuple, objects))``, took twice as long)."""
    form = list(objects[0])
    if set(map(len, objects)) != {len(form)}:
        return None
    return tuple(form) if list(chain.from_iterable(objects)) == form * len(objects) else None


def _column_paths(
    key: str, column: list, rank: int, types: frozenset | None = None
) -> list[_Path] | None:
    """The paths of a top-level column read by Arrow: the column itself (text or integers),
    or, for objects that all have the same keys, one path per key holding text or integers
    (``meta.source``, ``meta.v``); [] when it holds nothing to scan; None when it must be
    walked value by value (lists, mixed types, objects of different keys). ``types``: the
    column's types, where known (``Batch.types``)."""
    types = set(map(type, column)) if types is None else set(types)
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
    form = _one_form(objects)
    if form is None or not all(type(k) is str for k in form):
        return None
    out = []
    every = len(objects) == len(column)  # no null: each object's value read in C
    for seq, sub in enumerate(form):
        values = (
            list(map(itemgetter(sub), column))
            if every
            else [None if v is None else v[sub] for v in column]
        )
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


def _leaf_order(
    records: list[dict], parts: list, where: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """The findings of several paths in leaf order: by row, then the key's rank, then the
    leaf number; in a row with findings under several keys, the record's own key order
    decides. As (part, number in the part) arrays."""
    rows = np.concatenate([w[0] for w in where])
    ranks = np.concatenate([w[1] for w in where])
    seqs = np.concatenate([w[2] for w in where])
    which = np.concatenate([np.full(len(w[0]), j, np.int64) for j, w in enumerate(where)])
    ks = np.concatenate([np.arange(len(w[0]), dtype=np.int64) for w in where])
    order = np.lexsort((seqs, ranks, rows))
    rows, ranks, which, ks = rows[order], ranks[order], which[order], ks[order]
    several = np.flatnonzero((rows[1:] == rows[:-1]) & (ranks[1:] != ranks[:-1]))

    def top(j: int, k: int) -> Any:
        part = parts[j]
        return part.path.keys[0] if isinstance(part, _Block) else part[k].keys[0]

    done: set[int] = set()
    for j in several.tolist():
        row = int(rows[j])
        if row in done:
            continue
        done.add(row)
        lo = int(np.searchsorted(rows, row, "left"))
        hi = int(np.searchsorted(rows, row, "right"))
        pos = {str(k): i for i, k in enumerate(records[row])}
        seg = sorted(range(lo, hi), key=lambda t: pos[top(int(which[t]), int(ks[t]))])  # stable
        which[lo:hi], ks[lo:hi] = which[seg], ks[seg]
    return which, ks


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
        # the columns are made here once and kept for inference (a renaming makes them again)
        n = self.renamer.apply(records, batch.columns, batch.types)
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
        # the chunk's columns, transposed once for every check of it (Batch.columns); their
        # keys are the records' (a step that changes records in place says so: Batch.changed)
        columns = batch.columns() if all(map(isinstance, records, repeat(dict))) else None
        if columns is not None:
            keys = list(columns)
        else:
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
            for key in keys:
                if columns is not None:
                    got = _column_paths(key, columns[key], rank[key], batch.types(key))
                else:
                    got = _column_paths(key, [r.get(key) for r in records], rank[key])
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
        parts: list = []  # per path with findings: a list of Finding, or a _Block
        generics: list[str] = []
        where: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (rows, ranks, seqs)
        firsts = []
        for generic, p in paths.items():
            first = p.first()
            if first is None:
                continue
            firsts.append((first, generic))
            ctx, hint, negative = self._context(generic)
            matches = scan_distinct(p.texts if p.ids is not None else list(p.index), ctx)
            texts = _Texts(p.texts) if p.ids is not None else list(p.index)
            st = p.stats(texts, matches, ColumnStats(generic, hint=hint, negative=negative))
            p.column_stats = st
            if p.ids is not None:
                block = _Block(p, texts, matches, batch.offset)
                if len(block):
                    parts.append(block)
                    generics.append(generic)
                    n = len(block)
                    where.append((block.rows, np.full(n, p.rank, np.int64),
                                  np.full(n, p.seq, np.int64)))  # fmt: skip
            else:
                got = p.findings(batch, texts, matches)
                if got is not None:
                    parts.append(got[0])
                    generics.append(generic)
                    where.append(got[1:])
        # statistics in order of each path's first leaf (row, then the record's key order)
        for _, generic in sorted(firsts, key=lambda f: _position(records, f[0], by_record)):
            stats[generic] = paths[generic].column_stats
        labels = {}
        for path in stats:
            label = stats[path].label()
            if label:
                labels[path] = label
                out.columns.append(label)
        for part, generic in zip(parts, generics, strict=True):
            label = labels.get(generic)
            if not label:
                continue
            if isinstance(part, _Block):  # a labelled column lends its confidence to its values
                part.label = (label["entity"], label["score"])
            else:
                for f in part:
                    if label["entity"] == f.entity and label["score"] > f.score:
                        f.score = label["score"]
        out._parts = parts
        if len(parts) > 1:
            out._order = _leaf_order(records, parts, where)

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
        blocks = out._parts and all(isinstance(p, _Block) for p in out._parts)
        if blocks and self._inspect_blocks(batch, dataset, out):
            return out
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

    def _inspect_blocks(self, batch: Batch, dataset: str, out: Inspection) -> bool:
        """The policy applied per distinct text, when every finding is in a path read by
        Arrow (:class:`_Block`), no decision holds a row or blocks the batch, and every
        masked path is a top-level column: each distinct text is masked once and each row
        gets its column's masked text. False (nothing done) otherwise."""
        decide, today = self.policy.decide, self.today
        blocks: list[_Block] = out._parts
        decisions = []
        for b in blocks:
            d = {e: decide(e, dataset, b.path.generic, today) for e in b.entities()}
            if any(x.action in ("block", "quarantine") for x in d.values()):
                return False
            if len(b.path.keys) > 1 and any(x.action == "mask" for x in d.values()):
                return False  # a nested value: patched leaf by leaf
            decisions.append(d)
        masking = []
        for b, d in zip(blocks, decisions, strict=True):
            b.decided = d
            if not any(x.action == "mask" for x in d.values()):
                continue
            values: list[str | None] = [None] * len(b.texts)  # the masked text per distinct
            masked = []  # the distinct texts masked
            hits, matches, texts, key = b.hits.tolist(), b.matches, b.texts, self._key
            for i in hits:
                found = matches[i]
                if len(found) == 1:  # one span (the usual case): masked without the loop
                    m = found[0]
                    x = d[m.entity]
                    if x.action != "mask":
                        continue
                    text, start, end = texts[i], m.start, m.end
                    v = mask(m.entity, text[start:end], x.method or "redact", key)
                    values[i] = (
                        v if start == 0 and end == len(text) else text[:start] + v + text[end:]
                    )
                    masked.append(i)
                    continue
                spans = [(m.entity, m.start, m.end, d[m.entity].method)
                         for m in found if d[m.entity].action == "mask"]  # fmt: skip
                if spans:
                    masked.append(i)
                    values[i] = self._mask_spans(texts[i], spans)
            has = np.zeros(len(b.texts) + 1, dtype=bool)  # + 1: -1 (no value)
            has[masked] = True
            rows = np.flatnonzero(has[b.path.ids])
            masking.append((b.path.keys[0], rows, b.path.ids[rows], values))
        tops = {m[0] for m in masking}
        if masking and len(tops) == len(masking):  # carried as columns, one per key
            out.patches = ColumnMasks(
                batch.records,
                {top: ColumnMask(rows, ids, values) for top, rows, ids, values in masking},
            )
            return True
        patches = out.patches
        acc: dict[int, dict[str, Any]] = {}
        for top, rows, ids, values in masking:
            for r, i in zip(rows.tolist(), ids.tolist(), strict=True):
                got = acc.get(r)
                if got is None:
                    acc[r] = {top: values[i]}
                else:
                    got[top] = values[i]
        records = batch.records
        for r in sorted(acc):
            patch = acc[r]
            if len(patch) > 1:  # in the record's own key order, as its findings are
                pos = {str(k): i for i, k in enumerate(records[r])}
                patch = dict(sorted(patch.items(), key=lambda kv: pos[kv[0]]))
            patches[r] = patch
        return True

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
        return self._mask_spans(text, [(f.entity, f.start, f.end, f.method) for f in fs])

    def _mask_spans(self, text: str, spans: list[tuple[str, int, int, str | None]]) -> str:
        """``text`` with each (entity, start, end, method) span masked, right to left."""
        for entity, start, end, method in (
            spans if len(spans) == 1 else sorted(spans, key=lambda s: s[1], reverse=True)
        ):
            masked = mask(entity, text[start:end], method or "redact", self._key)
            text = text[:start] + masked + text[end:]
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
    flagged_rows: dict[str, int] = {}  # entity -> rows with a finding of it not allowed
    any_rows = 0
    unhandled = 0
    findings: list[dict] = []
    total = 0
    columns: dict[str, dict] = {}
    for insp in inspections:
        for label in insp.columns:
            columns.setdefault(label["column"], label)
        count, entities, acts, entity_rows, rows_any = insp.tally()
        total += count
        for entity, c in entities.items():
            by_entity.setdefault(entity, {"findings": 0, "rows": 0})["findings"] += c
        for action, c in acts.items():
            actions[action] += c
        unhandled += acts.get("report", 0)
        # an inspection's rows are its batch's: the rows of several add up
        for entity, c in entity_rows.items():
            flagged_rows[entity] = flagged_rows.get(entity, 0) + c
        any_rows += rows_any
        if len(findings) < max_findings:
            findings.extend(f.to_dict() for f in insp.first(max_findings - len(findings)))
    for entity, c in flagged_rows.items():
        by_entity[entity]["rows"] = c
    quarantined = sum(len(i.quarantine) for i in inspections)
    masked_rows = sum(len(i.patches) for i in inspections)
    failures: list[str] = []
    warnings: list[str] = []
    th = guardian.policy.thresholds
    rate = any_rows / rows if rows else 0.0
    _threshold(th, rate, "rows with findings", failures, warnings)
    for entity, limits in sorted((th.get("entities") or {}).items()):
        r = flagged_rows.get(entity, 0) / rows if rows else 0.0
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
        "rows_with_findings": any_rows,
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
