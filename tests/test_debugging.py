"""Debugging a run: previews show values that are not PII (masked where the guardian or the
column's name says PII), one row numbering everywhere, the demo's next step works when
followed literally, names cannot forge lines of the text output, and a filtered quarantine
list counts what it lists."""

from __future__ import annotations

import json

import pytest
from runkit import jsonl, orders

from pipewarden.cli import main
from pipewarden.run import list_quarantine, replay_quarantine, run_pipeline
from pipewarden.shown import show_value


@pytest.mark.parametrize(
    ("value", "column", "shown"),
    [
        (3, "quantity", "3"),
        ("three", "quantity", "three"),
        (12.5, "amount", "12.5"),
        ("x" * 100, "note", "x" * 39 + "…"),
        ({"sku": "A-1"}, "items", '{"sku":"A-1"}'),
    ],
)
def test_values_that_are_not_pii_are_shown(value, column, shown):
    assert show_value(value, column) == shown


@pytest.mark.parametrize(
    ("value", "column"),
    [
        ("jane.roe@example.com", "contact"),
        ("call 415-555-0123 today", "note"),
        ("509-88-8712", "ref"),
        ("4111 1111 1111 1111", "payment"),
        ("Jane Roe", "customer_name"),
        ("12 Main Street", "shipping_address"),
        ("1990-04-01", "date_of_birth"),
        ("hunter2hunter2", "password"),
    ],
)
def test_pii_values_and_personal_columns_are_masked(value, column):
    out = show_value(value, column)
    assert value not in out and "*" in out


def test_quarantine_previews_and_rows_number_alike(project):
    rows = orders(0, 5)
    jsonl(project.root / "in" / "a_1.jsonl", rows[:2])
    bad = rows[2:]
    bad[0]["quantity"] = "three"
    bad[0]["note"] = "ring me: 415-555-0123"
    jsonl(project.root / "in" / "a_2.jsonl", bad)
    run_pipeline(project.cfg, fmt="json")
    (row,) = list_quarantine(project.cfg)["rows"]
    assert row["row"] == 1 and row["offset"] == 0 and row["issues"][0]["row"] == 1
    prev = row["preview"]
    assert prev["quantity"] == "three" and prev["order_id"] == "2" and prev["amount"] == "3.0"
    assert "example.com" not in prev["email"] and "415-555" not in prev["note"]
    assert "(three) does not fit the bigint column" in row["message"]


def test_the_demos_next_step_works_when_followed_literally(tmp_path, capsys):
    target = tmp_path / "demo"
    assert main(["demo", "--dir", str(target), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    steps = doc["next"]
    at = next(i for i, s in enumerate(steps) if "add these lines under `contract:`" in s)
    lines = steps[at + 1 : next(i for i, s in enumerate(steps) if s.startswith("then:"))]
    cfg = target / "pipeline.yaml"
    text = cfg.read_text().replace("contract:\n", "contract:\n" + "".join(x + "\n" for x in lines))
    cfg.write_text(text)
    command = steps[-1].removeprefix("then: ").split()
    assert command[:3] == ["pipewarden", "quarantine", "replay"]
    assert main([*command[1:], "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows_replayed"] == 2 and out["rows_still_quarantined"] == 0


def test_a_newline_in_a_column_name_cannot_forge_a_line(project, capsys):
    forged = "x\ntotal: 999 read = 999 loaded + 0 quarantined, 1 batches"
    jsonl(project.root / "in" / "a.jsonl", [{"order_id": 1, forged: 1}])
    assert main(["run", str(project.cfg)]) == 0
    out = capsys.readouterr().out
    assert [ln for ln in out.splitlines() if ln.startswith("total:")] == [
        "total: 1 read = 1 loaded + 0 quarantined, 1 batches"
    ]
    assert "x\\x0atotal: 999" in out


def test_a_filtered_list_counts_what_it_filters(project, capsys):
    jsonl(project.root / "in" / "a_1.jsonl", orders(0, 2))
    bad = orders(2, 5, extra=1)
    bad[0]["quantity"] = "x"
    jsonl(project.root / "in" / "a_2.jsonl", bad)
    project.config(contract="contract:\n  columns: quarantine\n  data_type: quarantine\n")
    rep = run_pipeline(project.cfg, fmt="json")
    assert rep["batches"][1]["rows_quarantined"] == 3
    doc = list_quarantine(project.cfg, reason="type_mismatch")
    assert doc["counts"]["orders"] == {"pending": 1, "replayed": 0} and len(doc["rows"]) == 1
    assert main(["quarantine", "list", str(project.cfg), "--reason", "new_column"]) == 0
    out = capsys.readouterr().out
    assert "orders: 2 pending, 0 replayed (reason new_column)" in out
    assert replay_quarantine(project.cfg, reason="new_column")["rows_considered"] == 2


def test_the_anomaly_report_numbers_rows_as_the_quarantine_does(tmp_path):
    from pipewarden.anomaly.synth import records

    (tmp_path / "in").mkdir()
    recs, _ = records(300, anomaly_share=0.0, seed=9)
    recs[142]["x6"] = recs[142]["x6"] + 1e6  # in the second chunk
    jsonl(tmp_path / "in" / "a.jsonl", recs)
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(
        'version: 1\ndataset: sales\nsource:\n  path: "in/*.jsonl"\n  chunk_rows: 100\n'
        "store:\n  kind: duckdb\n  path: wh.duckdb\nsteps:\n  - type: anomaly\n"
        "    quarantine_before_model: true\n    quarantine_threshold: 0.7\n"
    )
    rep = run_pipeline(cfg, fmt="json")
    reports = rep["batches"][0]["steps"]["anomaly"]
    flagged = {f["row"] for part in reports for f in part["scored"]["flagged"]}
    held = {r["row"] for r in list_quarantine(cfg)["rows"]}
    assert 143 in flagged and 143 in held and flagged == held
