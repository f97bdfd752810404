"""Steps plug into the run: their quarantines, patches (masking) and blocks are applied by the
router; their state goes through the store's StateStore methods."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from pipewarden import steps as steps_mod
from pipewarden.run import _progress, run_pipeline
from pipewarden.store import open_store
from pipewarden.verdict import RowIssue, Verdict


class FakeStep:
    """Masks `email`, quarantines rows whose `flag` is "pii", blocks when `flag` is "block",
    and counts its batches in the store's state."""

    name = "guardian"

    def __init__(self, options: dict, base_dir: Path) -> None:
        self.options = options

    closed = 0

    def close(self) -> None:
        FakeStep.closed += 1

    def check(self, batch, ctx) -> Verdict:
        assert batch.batch_id == ctx.batch_id  # every chunk carries the batch's id
        seen = ctx.store.load_state(ctx.dataset, "fake") or {"batches": 0}
        ctx.store.save_state(ctx.dataset, "fake", {"batches": seen["batches"] + 1})
        ctx.store.append_metrics(ctx.dataset, ctx.batch_id, "fake", {"rows": len(batch)})
        if any(r.get("flag") == "block" for r in batch.records):
            return Verdict("guardian", decision="block", reason="policy blocks the batch")
        issues = [
            RowIssue(i, "pii", "a card number (****)", "note")
            for i, r in enumerate(batch.records)
            if r.get("flag") == "pii" and i not in ctx.quarantined
        ]
        patches = {
            i: {"email": "***masked***"} for i in range(len(batch)) if "email" in batch.records[i]
        }
        return Verdict("guardian", issues=issues, patches=patches, report={"rows": len(batch)})


def build_fake(options: dict, base_dir: Path) -> FakeStep:
    return FakeStep(options, base_dir)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setitem(steps_mod.REGISTRY, "guardian", "test_run_steps:build_fake")
    (tmp_path / "in").mkdir()
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(
        "version: 1\ndataset: people\nsource:\n  path: in/*.jsonl\n  chunk_rows: 3\n"
        "steps:\n  - type: guardian\n"
    )
    return tmp_path, cfg


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_step_quarantines_masks_and_keeps_state(project):
    root, cfg = project
    rows = [
        {"id": i, "email": f"p{i}@example.com", "flag": "pii" if i in (1, 5) else "ok"}
        for i in range(8)
    ]
    write(root / "in" / "a.jsonl", rows)
    closed = FakeStep.closed
    rep = run_pipeline(cfg, fmt="json")
    assert FakeStep.closed == closed + 1  # the run closes its steps
    b = rep["batches"][0]
    assert (b["rows_loaded"], b["rows_quarantined"]) == (6, 2)
    assert b["reasons"] == {"pii": 2}
    store = open_store(str(root / "warehouse.duckdb"))
    try:
        emails = {r[0] for r in store._aux_query('SELECT email FROM "main"."people"')}
        raw = [r[0] for r in store._aux_query('SELECT payload FROM "main"."people__raw"')]
        assert emails == {"***masked***"}
        assert not any("@example.com" in p for p in raw)  # the raw landing is masked too
        held = store.quarantine_rows("people", with_payload=True)
        assert sorted(h["offset"] for h in held) == [1, 5]
        assert held[0]["payload"]["email"].endswith("@example.com")  # original kept aside
        assert store.load_state("people", "fake") == {"batches": 3}  # one call per chunk
        assert [m["rows"] for m in store.metrics_history("people", "fake")] == [3, 3, 2]
    finally:
        store.close()


def test_step_block_writes_nothing_but_keeps_its_state(project):
    root, cfg = project
    rows = [
        {"id": i, "email": "x@example.com", "flag": "block" if i == 4 else "ok"} for i in range(6)
    ]
    write(root / "in" / "a.jsonl", rows)
    rep = run_pipeline(cfg, fmt="json")
    b = rep["batches"][0]
    assert b["status"] == "blocked" and b["decision"] == "block"
    assert "policy blocks the batch" in b["reason"] and rep["exit_code"] == 1
    store = open_store(str(root / "warehouse.duckdb"))
    try:
        assert not store.has_table("people")  # the CREATE TABLE was rolled back too
        assert store.is_done("people", b["batch_id"]) is None
        assert store.load_state("people", "fake") == {"batches": 2}  # committed on its own
        assert [r["status"] for r in store.runs("people")] == ["blocked"]
    finally:
        store.close()


def test_stdin_source(tmp_path, monkeypatch):
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text("version: 1\ndataset: s\nsource:\n  path: '-'\n  format: jsonl\n")
    data = b'{"a": 1}\n{"a": 2}\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    rep = run_pipeline(cfg, fmt="json")
    assert rep["batches"][0]["source"] == "<stdin>" and rep["batches"][0]["rows_loaded"] == 2
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert run_pipeline(cfg, fmt="json")["batches"][0]["status"] == "skipped"


def test_progress_only_on_a_terminal(monkeypatch):
    assert _progress("json") is None
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    assert _progress("text") is None
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert _progress("text") is not None
    assert _progress("json") is None
