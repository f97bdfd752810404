"""``guard eval``: precision, recall and F2 per entity on a labelled data set.

A prediction is a true positive when a label of the same record, field and entity overlaps its
span (each label matches at most one prediction); every other prediction is a false positive and
every unmatched label a false negative. F2 weighs recall twice as much as precision: a missed
SSN costs more than a masked order id.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from importlib import resources
from typing import Any

import orjson

from ..batch import Batch
from ..errors import InputError
from .guardian import Guardian
from .policy import load_policy
from .recognizers import ENTITIES


def bundled_set() -> str:
    return str(resources.files("pipewarden.compliance").joinpath("data/eval_set.jsonl"))


def outside_set() -> str:
    """The labelled set built from sources the recognizers were not written against (see
    bench/guardian/build_outside_set.py)."""
    return str(resources.files("pipewarden.compliance").joinpath("data/outside_set.jsonl"))


def read_labelled(path: str) -> list[dict[str, Any]]:
    """Records of a labelled JSONL file; InputError naming the line when one is malformed."""
    out = []
    try:
        fh = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise InputError("labelled data file not found", file=path) from None
    with fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise InputError("not valid JSON", file=path, line=n) from None
            if not isinstance(rec, dict) or not isinstance(rec.get("fields"), dict):
                raise InputError(
                    "expected an object with 'fields' and 'labels'",
                    file=path,
                    line=n,
                    hint='{"fields": {"note": "..."}, "labels": [{"field": "note", "start": 0, "end": 5, "entity": "US_SSN"}]}',
                )
            for lab in rec.get("labels") or []:
                if not isinstance(lab, dict) or not {"field", "start", "end", "entity"} <= set(lab):
                    raise InputError(
                        "a label needs field, start, end and entity", file=path, line=n
                    )
            out.append(rec)
    return out


def score(
    predicted: Iterable[tuple[int, str, int, int, str]],
    labels: Iterable[tuple[int, str, int, int, str]],
    entities: Iterable[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per-entity tp/fp/fn, precision, recall, F2 from (record, field, start, end, entity)."""
    gold: dict[tuple[int, str, str], list[list]] = {}
    for rec, field, start, end, entity in labels:
        gold.setdefault((rec, field, entity), []).append([start, end, False])
    counts: dict[str, list[int]] = {}
    for e in entities or ():
        counts.setdefault(e, [0, 0, 0])
    for _, _, _, _, e in labels:
        counts.setdefault(e, [0, 0, 0])
    for rec, field, start, end, entity in predicted:
        c = counts.setdefault(entity, [0, 0, 0])
        for g in gold.get((rec, field, entity), ()):
            if not g[2] and g[0] < end and start < g[1]:
                g[2] = True
                c[0] += 1
                break
        else:
            c[1] += 1
    for (_, _, entity), spans in gold.items():
        counts[entity][2] += sum(1 for g in spans if not g[2])
    result = {}
    for entity in sorted(counts):
        tp, fp, fn = counts[entity]
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f2 = 5 * p * r / (4 * p + r) if p + r else 0.0
        result[entity] = {
            "support": tp + fn,
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f2": round(f2, 4),
        }
    return result


def gold_spans(records: list[dict[str, Any]]) -> list[tuple[int, str, int, int, str]]:
    return [
        (i, lab["field"], lab["start"], lab["end"], lab["entity"])
        for i, rec in enumerate(records)
        for lab in rec.get("labels") or []
    ]


def predict(guardian: Guardian, records: list[dict[str, Any]], dataset: str = "eval"):
    """pipewarden's predictions on labelled records, as scoring tuples."""
    batch = Batch([rec["fields"] for rec in records], source="<eval>")
    insp = guardian.detect(batch, dataset)
    return [(f.index, f.column, f.start, f.end, f.entity) for f in insp.findings]


def evaluate(
    path: str | None = None, *, policy: str | os.PathLike | None = None, mode: str | None = None
) -> dict:
    """Precision/recall/F2 per entity of pipewarden on a labelled JSONL set (default: bundled);
    ``mode`` (precision / recall) overrides the policy's."""
    source = path or bundled_set()
    records = read_labelled(source)
    guardian = Guardian(load_policy(policy), mode=mode)
    gold = gold_spans(records)
    wanted = {e for *_, e in gold}
    entities = score(predict(guardian, records), gold, sorted(wanted))
    return {
        "data": path or "bundled eval_set.jsonl",
        "mode": mode or "policy",
        "records": len(records),
        "values": sum(len(r["fields"]) for r in records),
        "entities": {e: m for e, m in entities.items() if e in ENTITIES},
    }
