"""The report says where a batch's time went: seconds, rows and rows/s per phase."""

from __future__ import annotations

import json

from pipewarden.cli import main
from pipewarden.run import run_pipeline


def _pipeline(tmp_path, steps: str = "") -> str:
    (tmp_path / "d.jsonl").write_text(
        "".join(json.dumps({"id": i, "email": f"u{i}@example.com"}) + "\n" for i in range(50))
    )
    (tmp_path / "policy.yaml").write_text(
        "version: 1\nrules:\n  - name: mask\n    entity: [EMAIL_ADDRESS]\n    action: mask\n"
    )
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text("version: 1\ndataset: t\nsource:\n  path: d.jsonl\n  chunk_rows: 20\n" + steps)
    return str(cfg)


def test_each_phase_counts_its_rows_and_rate(tmp_path):
    rep = run_pipeline(_pipeline(tmp_path), fmt="json")
    ph = rep["batches"][0]["phases"]
    assert list(ph) == ["read", "infer", "check", "steps", "write"]
    assert ph["read"]["rows"] == 100  # both passes
    assert ph["infer"]["rows"] == ph["check"]["rows"] == ph["write"]["rows"] == 50
    assert ph["steps"]["rows"] == 0  # no steps configured
    for name in ("read", "infer", "check", "write"):
        assert ph[name]["seconds"] >= 0 and ph[name]["rows_per_s"] > 0


def test_steps_are_timed_and_the_text_report_shows_the_rates(tmp_path, capsys):
    cfg = _pipeline(tmp_path, "steps:\n  - type: guardian\n    policy: policy.yaml\n")
    rep = run_pipeline(cfg, fmt="json")
    assert rep["batches"][0]["phases"]["steps"]["rows"] == 50
    (tmp_path / "warehouse.duckdb").unlink()
    assert main(["run", cfg]) == 0
    out = capsys.readouterr().out
    assert "rows/s per phase: read " in out and ", steps " in out and ", write " in out
