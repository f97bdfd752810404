"""The anomaly step inside `pipewarden run`: flagged rows land in quarantine with score and
reason, the report lists the monitors, an open breaker quarantines whole batches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipewarden.anomaly.synth import records
from pipewarden.run import run_pipeline
from pipewarden.store import open_store


def _jsonl(path: Path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _project(tmp_path: Path, step: str) -> Path:
    (tmp_path / "in").mkdir()
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(
        "version: 1\ndataset: sales\n"
        'source:\n  path: "in/*.jsonl"\n'
        "store:\n  kind: duckdb\n  path: wh.duckdb\n"
        "steps:\n" + step
    )
    return cfg


def test_before_a_model_rows_are_scored_for_the_report_but_not_quarantined(tmp_path):
    cfg = _project(tmp_path, "  - type: anomaly\n")
    recs, _ = records(300, anomaly_share=0.0, seed=9)
    recs[42]["x6"] = recs[42]["x6"] + 1e6
    _jsonl(tmp_path / "in" / "day1.jsonl", recs)
    batch = run_pipeline(cfg, fmt="json")["batches"][0]
    assert batch["rows_loaded"] == 300 and batch["rows_quarantined"] == 0
    anomaly = batch["steps"]["anomaly"]
    assert anomaly["model"]["status"] == "warm-up"
    assert anomaly["scored"]["flagged"][0]["row"] == 43  # ranked first (row 43 of the file)
    assert "none is quarantined" in anomaly["scored"]["note"]


def test_flagged_rows_are_quarantined_with_score_and_reason(tmp_path):
    step = "  - type: anomaly\n    quarantine_before_model: true\n    quarantine_threshold: 0.7\n"
    cfg = _project(tmp_path, step)
    recs, _ = records(300, anomaly_share=0.0, seed=9)
    recs[42]["x6"] = recs[42]["x6"] + 1e6
    _jsonl(tmp_path / "in" / "day1.jsonl", recs)
    rep = run_pipeline(cfg, fmt="json")
    batch = rep["batches"][0]
    assert batch["rows_loaded"] + batch["rows_quarantined"] == 300
    anomaly = batch["steps"]["anomaly"]
    assert [m["monitor"] for m in anomaly["monitors"]] == ["row_count"]  # still learning
    assert anomaly["breaker"]["state"] == "closed"
    store = open_store(f"duckdb:///{tmp_path}/wh.duckdb")
    try:
        held = store.quarantine_rows("sales", reason="anomaly")
    finally:
        store.close()
    row = next(q for q in held if q["offset"] == 42)
    assert row["column"].startswith("x6") and "x6: unusually high" in row["message"]
    issues = row["issues"] if isinstance(row["issues"], list) else json.loads(row["issues"])
    issue = issues[0]
    assert issue["score"] >= 0.7


def test_open_breaker_quarantines_the_whole_batch(tmp_path):
    step = (
        "  - type: anomaly\n"
        "    breaker: {min_batches: 1, window: 3, severe_anomaly_rate: 0.3}\n"
        "    monitors: {min_history: 2}\n"
    )
    cfg = _project(tmp_path, step)
    recs, _ = records(900, anomaly_share=0.0, seed=9)
    for d in range(3):
        _jsonl(tmp_path / "in" / f"day{d}.jsonl", recs[d * 300 : (d + 1) * 300])
    rep = run_pipeline(cfg, fmt="json")
    assert all(b["decision"] in ("pass", "evolve") for b in rep["batches"]), rep["batches"]
    _jsonl(tmp_path / "in" / "day9.jsonl", recs[:20])  # a fifteenth of the usual rows
    rep = run_pipeline(cfg, fmt="json")
    last = [b for b in rep["batches"] if b["status"] != "skipped"][-1]
    assert last["decision"] == "quarantine_batch"
    assert last["rows_loaded"] == 0 and last["rows_quarantined"] == 20
    anomaly = last["steps"]["anomaly"]
    assert anomaly["breaker"]["state"] == "open"
    assert any(m["monitor"] == "row_count" and m["status"] == "severe" for m in anomaly["monitors"])
    # the breaker commands find the store and dataset through the pipeline config
    from pipewarden.cli import main

    assert main(["breaker", "status", "--config", str(cfg)]) == 1
    assert main(["breaker", "reset", "--config", str(cfg)]) == 0
    assert main(["breaker", "status", "--config", str(cfg)]) == 0


@pytest.mark.postgres
def test_breaker_commands_use_the_configured_postgres_schema(pg_schema, tmp_path, capsys):
    from pipewarden.anomaly.breaker import Breaker
    from pipewarden.cli import main

    dsn, schema = pg_schema
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(
        "version: 1\ndataset: sales\nsource: {path: x.jsonl}\n"
        f"store:\n  kind: postgres\n  dsn: {dsn}\n  schema: {schema}\n"
    )
    store = open_store(dsn, namespace=schema)
    try:
        Breaker(store, "sales").record(True, True, "row count 3 against 300")
    finally:
        store.close()
    assert main(["breaker", "status", "--config", str(cfg), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["state"] == "open" and "row count 3" in doc["reason"]


def test_duplicate_keys_of_the_configured_primary_key_are_a_batch_alarm(tmp_path):
    """The run passes the dataset's primary_key to the step: a batch whose rows repeat keys
    (with other values, so no row is an exact duplicate) raises duplicate_keys."""
    cfg = _project(tmp_path, "  - type: anomaly\n")
    cfg.write_text(cfg.read_text().replace("dataset: sales\n", "dataset: sales\nprimary_key: id\n"))
    recs, _ = records(1200, anomaly_share=0.0, seed=4)
    for i, r in enumerate(recs):
        r["id"] = i
    for d in range(6):
        _jsonl(tmp_path / "in" / f"day{d}.jsonl", recs[d * 150 : (d + 1) * 150])
    bad = [dict(r) for r in recs[900:1050]]
    for r in bad[75:]:
        r["id"] -= 75  # the second half repeats the first half's keys
        r["x1"] = r["x1"] + 0.5
    _jsonl(tmp_path / "in" / "day6.jsonl", bad)
    rep = run_pipeline(cfg, fmt="json")
    last = rep["batches"][-1]
    found = {m["monitor"]: m for m in last["steps"]["anomaly"]["monitors"]}
    assert found["duplicate_keys"]["status"] in ("alarm", "severe"), found["duplicate_keys"]
    assert found["duplicate_rows"]["status"] == "ok"
    assert all(
        {m["monitor"]: m for m in b["steps"]["anomaly"]["monitors"]}.get(
            "duplicate_keys", {"status": "ok"}
        )["status"]
        == "ok"
        for b in rep["batches"][:-1]
    )
