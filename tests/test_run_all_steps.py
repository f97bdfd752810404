"""The whole gate in one run, on both stores: sentinel, guardian and anomaly detector in front
of the warehouse. Every row is accounted for, PII is masked in the warehouse and held raw only
in the quarantine, anomalies are held with their score, and no output shows a raw value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipewarden.anomaly.synth import records
from pipewarden.cli import main
from pipewarden.store import open_store

SSN = "536-22-8714"
EMAILS = [f"person.{i}@corp-mail.example" for i in range(400)]


def _batch(path: Path, seed: int, bad: bool) -> None:
    recs, _ = records(400, anomaly_share=0.0, seed=seed)
    for i, r in enumerate(recs):
        r["email"] = EMAILS[i]
        r["note"] = "call me back"
    if bad:
        recs[7]["note"] = f"my ssn is {SSN}, thanks"  # PII in free text: the row is held
        recs[100]["x3"] = recs[100]["x3"] + 1e6  # one row far out
        recs[200]["x9"] = "n/a"  # text in the double column of day 1: the sentinel holds it
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))


def _project(tmp_path: Path, store_yaml: str) -> Path:
    (tmp_path / "in").mkdir()
    _batch(tmp_path / "in" / "day1.jsonl", seed=5, bad=False)
    _batch(tmp_path / "in" / "day2.jsonl", seed=6, bad=True)
    (tmp_path / "policy.yaml").write_text(
        "version: 1\nrules:\n"
        "  - entity: EMAIL_ADDRESS\n    action: mask\n    method: partial\n"
        "  - entity: US_SSN\n    action: quarantine\n"
    )
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(
        "version: 1\ndataset: sales\n"
        'source:\n  path: "in/*.jsonl"\n' + store_yaml + "contract:\n  data_type: quarantine\n"
        "steps:\n  - type: guardian\n    policy: policy.yaml\n"
        "  - type: anomaly\n    threshold: 0.7\n    quarantine_before_model: true\n"
        "    quarantine_threshold: 0.7\n"
    )
    return cfg


@pytest.fixture(params=["duckdb", "postgres"])
def project(request, tmp_path):
    if request.param == "duckdb":
        cfg = _project(tmp_path, "store:\n  kind: duckdb\n  path: wh.duckdb\n")
        return cfg, f"duckdb:///{tmp_path}/wh.duckdb", None
    dsn, schema = request.getfixturevalue("pg_schema")
    cfg = _project(tmp_path, f"store:\n  kind: postgres\n  dsn: {dsn}\n  schema: {schema}\n")
    return cfg, dsn, schema


def test_the_whole_gate(project, capsys):
    cfg, url, schema = project
    assert main(["run", str(cfg), "--format", "json"]) == 0
    json_out = capsys.readouterr()
    doc = json.loads(json_out.out)
    assert [x["status"] for x in doc["batches"]] == ["loaded", "loaded"]
    assert doc["totals"]["rows_read"] == 800
    assert doc["totals"]["rows_loaded"] + doc["totals"]["rows_quarantined"] == 800
    b = doc["batches"][1]
    assert b["rows_read"] == 400
    assert b["reasons"].get("pii") == 1 and b["reasons"].get("type_mismatch") == 1
    assert b["reasons"].get("anomaly", 0) >= 1
    # each step gives the one-line summary the text report prints
    assert b["steps"]["guardian"]["summary"].startswith(
        "401 findings (EMAIL_ADDRESS 400, US_SSN 1)"
    )
    assert "of 400 rows scored >= 0.7" in b["steps"]["anomaly"]["summary"]

    store = open_store(url, namespace=schema)
    try:
        held = {
            q["offset"]: q for q in store.quarantine_rows("sales") if q["batch_id"] == b["batch_id"]
        }
        with store.transaction() as w:
            typed = w.query(
                'SELECT email, note FROM "sales"'
                if schema is None
                else f'SELECT email, note FROM "{schema}"."sales"'
            )
    finally:
        store.close()
    assert len(held) == b["rows_quarantined"]
    assert len(typed) == doc["totals"]["rows_loaded"]
    assert {7, 100, 200} <= set(held)
    assert held[7]["reason"] == "pii" and held[200]["reason"] == "type_mismatch"
    assert "anomaly" in {i["reason"] for i in _issues(held[100])}
    assert all(
        e.endswith("@corp-mail.example") and e.split("@")[0].endswith("***") for e, _ in typed
    )
    assert not any(SSN in (n or "") for _, n in typed)

    # the text report: one line per step, and no raw value anywhere
    assert main(["quarantine", "list", str(cfg)]) == 0
    text_out = capsys.readouterr()
    everything = json_out.out + json_out.err + text_out.out + text_out.err
    assert SSN not in everything and SSN.replace("-", "") not in everything
    assert not any(e in everything for e in EMAILS[:50])


def _issues(row: dict) -> list[dict]:
    issues = row["issues"]
    return issues if isinstance(issues, list) else json.loads(issues)
