"""The labelled corpus of bench/rca stays consistent with the signature library, and the
signatures keep their held-out accuracy (a regression guard; the figures live in bench/rca)."""

from __future__ import annotations

import json
from pathlib import Path

from pipewarden.rca import BY_CLASS, diagnose

CORPUS = Path(__file__).resolve().parents[1] / "bench" / "rca" / "corpus.jsonl"


def _rows() -> list[dict]:
    return [json.loads(x) for x in CORPUS.read_text().splitlines() if x.strip()]


def test_corpus_labels_name_real_classes_and_fixes_and_sources():
    rows = _rows()
    assert len(rows) >= 100
    assert {r["split"] for r in rows} == {"dev", "heldout"}
    for r in rows:
        assert r["cls"] in BY_CLASS, r["source"]
        assert r["fix"] in {f.id for f in BY_CLASS[r["cls"]].fixes}, r["source"]
        assert r["source"].startswith(("provoked:", "https://github.com/")), r["source"]


def test_held_out_accuracy_stays_above_the_target():
    held = [r for r in _rows() if r["split"] == "heldout"]
    right = fixes = 0
    for r in held:
        doc = diagnose(r["log"], exit_code=r.get("exit_code"))
        right += doc["verdict"]["class"] == r["cls"]
        fixes += r["fix"] in [f["id"] for f in doc["fixes"][:3]]
    assert right / len(held) >= 0.9 and fixes / len(held) >= 0.9, (right, fixes, len(held))
