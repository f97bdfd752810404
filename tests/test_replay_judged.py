"""Replay is judged: replayed rows go through every step against the dataset's current
contract, policy and trained model (never a model fitted on the replay page), a replay page is
not a batch (no metrics, no breaker window), and the output says why each row stayed."""

from __future__ import annotations

import json

from runkit import UBUNTU, assert_conserved, jsonl

from pipewarden.anomaly.synth import records
from pipewarden.cli import main
from pipewarden.run import list_quarantine, replay_quarantine, run_pipeline


def _counts(project, *tables: str) -> dict[str, int]:
    s = project.store()
    try:
        return {t: s.count(t) if s.has_table(t) else 0 for t in tables}
    finally:
        s.close()


def _anomaly_project(project, step: str) -> None:
    (project.root / "pipeline.yaml").write_text(
        "version: 1\ndataset: sales\n"
        'source:\n  path: "in/*.jsonl"\n' + project.store_yaml + "steps:\n" + step
    )


def _sales(project, with_anomalies: bool = True) -> None:
    recs, _ = records(300, anomaly_share=0.0, seed=9)
    if with_anomalies:
        for i in (10, 50, 90, 130):
            recs[i]["x6"] = recs[i]["x6"] + 1e6
    jsonl(project.root / "in" / "day1.jsonl", recs)


def test_rows_the_detector_held_stay_held_without_a_model(project, capsys):
    """Without a trained model a replay cannot judge them again: they stay held (they used to
    load unscored, the page being too small to fit on), and the page is not a batch."""
    # rows held before any model exists (asked for: by default the detector holds none then)
    _anomaly_project(
        project,
        "  - type: anomaly\n    quarantine_before_model: true\n    quarantine_threshold: 0.7\n",
    )
    _sales(project)
    rep = run_pipeline(project.cfg, fmt="json")
    held = rep["batches"][0]["rows_quarantined"]
    assert held >= 1 and rep["batches"][0]["reasons"].get("anomaly") == held
    first = min(r["row"] for r in list_quarantine(project.cfg)["rows"])
    before = _counts(project, "_pw_metrics", "_pw_state", "sales")
    state_before = project.store().load_state("sales", "breaker")
    assert main(["quarantine", "replay", str(project.cfg)]) == 0
    out = capsys.readouterr().out
    assert f"0 loaded, {held} still quarantined" in out
    assert "no model to judge it again" in out and f"row {first} of batch" in out
    assert _counts(project, "_pw_metrics", "_pw_state", "sales") == before
    assert project.store().load_state("sales", "breaker") == state_before


def test_a_trained_model_judges_replayed_rows(project, tmp_path):
    """With the step's trained model, replayed rows are scored by it: the outliers stay held,
    rows held for another reason that now fit are loaded."""
    recs, _ = records(500, anomaly_share=0.0, seed=3)
    train = tmp_path / "history.jsonl"
    jsonl(train, recs[:400])
    assert main(["anomaly", "train", "--data", str(train), "--out", str(tmp_path / "m")]) == 0
    _anomaly_project(project, f"  - type: anomaly\n    model: {tmp_path / 'm'}\n")
    batch = recs[400:]
    batch[5]["x6"] = batch[5]["x6"] + 1e6  # an outlier
    batch[7]["x1"] = "seven"  # a type mismatch, an ordinary row otherwise
    batch[8]["x1"] = "eight"
    jsonl(project.root / "in" / "a.jsonl", batch[:3] + [dict(batch[3], x1=1.5)])
    jsonl(project.root / "in" / "b.jsonl", batch[3:])
    rep = run_pipeline(project.cfg, fmt="json")
    assert rep["batches"][1]["reasons"].get("type_mismatch") == 2
    (project.root / "pipeline.yaml").write_text(
        project.cfg.read_text() + "contract:\n  overrides:\n    x1: {data_type: discard_value}\n"
    )
    out = replay_quarantine(project.cfg)
    still = {r["row"]: r for r in out["still_held"]}
    assert 3 in still and still[3]["reason"] == "anomaly"  # row 6 of b.jsonl is index 5-3+1
    assert "against the dataset's model" in still[3]["message"]
    assert out["rows_replayed"] == 2 and out["steps"]["anomaly"]["replay"] is True, out


def test_short_rows_replay_by_the_current_setting(project):
    p = project.root / "pipeline.yaml"
    body = 'version: 1\ndataset: orders\nsource:\n  path: "in/*.csv"\n'
    p.write_text(body + "  csv:\n    short_rows: quarantine\n" + project.store_yaml)
    (project.root / "in" / "ubuntu.csv").write_text(UBUNTU)
    assert run_pipeline(p, fmt="json")["batches"][0]["rows_quarantined"] == 2
    again = replay_quarantine(p)
    assert again["rows_replayed"] == 0 and {r["reason"] for r in again["still_held"]} == {
        "short_row"
    }
    assert "set it to pad" in again["still_held"][0]["message"]
    p.write_text(body + "  csv:\n    short_rows: pad\n" + project.store_yaml)
    assert replay_quarantine(p)["rows_replayed"] == 2
    assert project.counts()["orders"] == 3


def test_a_duplicate_stays_held_while_its_newer_row_is_loaded(project):
    project.config(extra="primary_key: order_id\nwrite_disposition: merge\n")
    jsonl(
        project.root / "in" / "a.jsonl",
        [{"order_id": 1, "amount": 1.0}, {"order_id": 1, "amount": 2.0}],
    )
    run_pipeline(project.cfg, fmt="json")
    out = replay_quarantine(project.cfg)
    assert out["rows_replayed"] == 0 and out["still_held"][0]["reason"] == "duplicate_key"
    assert "would overwrite it" in out["still_held"][0]["message"]
    s = project.store()
    try:
        assert [float(r[0]) for r in s._aux_query(f"SELECT amount FROM {s.qualify('orders')}")] == [
            2.0
        ]
    finally:
        s.close()


def test_replace_does_not_replay_rows_of_a_replaced_snapshot(project):
    project.config(extra="primary_key: order_id\nwrite_disposition: replace\n")
    jsonl(project.root / "in" / "a_0.jsonl", [{"order_id": 0, "quantity": 0}])
    jsonl(
        project.root / "in" / "a_1.jsonl",
        [{"order_id": 1, "quantity": 1}, {"order_id": 2, "quantity": "x"}],
    )
    jsonl(
        project.root / "in" / "a_2.jsonl",
        [{"order_id": 3, "quantity": 3}, {"order_id": 4, "quantity": "y"}],
    )
    run_pipeline(project.cfg, fmt="json")
    project.config(
        contract="contract:\n  overrides:\n    quantity: {data_type: discard_value}\n",
        extra="primary_key: order_id\nwrite_disposition: replace\n",
    )
    out = replay_quarantine(project.cfg)
    assert out["rows_replayed"] == 1
    assert [r["reason"] for r in out["still_held"]] == ["superseded"]
    assert project.counts()["orders"] == 2  # the current snapshot (order 3) and its row 4


POLICY_ALLOW = "version: 1\nrules: []\n"
POLICY_HOLD = (
    "version: 1\nrules:\n  - name: hold e-mails\n    entity: [EMAIL_ADDRESS]\n"
    "    action: quarantine\n"
)


def test_replay_under_a_changed_policy_is_judged_and_conserved(project):
    """Rows held for a type mismatch when the policy allowed e-mails are replayed after the
    policy began to hold them: they stay held, now for pii; the counts add up throughout."""
    (project.root / "policy.yaml").write_text(POLICY_ALLOW)
    project.config(extra="steps:\n  - type: guardian\n    policy: policy.yaml\n")
    rows = [{"order_id": i, "email": f"user{i}@example.com", "quantity": i} for i in range(6)]
    rows[2]["quantity"] = "two"
    rows[4]["quantity"] = "four"
    rows[5]["email"] = None
    rows[5]["quantity"] = "five"
    jsonl(project.root / "in" / "a_1.jsonl", rows[:2])
    jsonl(project.root / "in" / "a_2.jsonl", rows[2:])
    rep = run_pipeline(project.cfg, fmt="json")
    assert_conserved(rep)
    assert rep["batches"][1]["rows_quarantined"] == 3
    (project.root / "policy.yaml").write_text(POLICY_HOLD)
    project.config(
        contract="contract:\n  overrides:\n    quantity: {data_type: discard_value}\n",
        extra="steps:\n  - type: guardian\n    policy: policy.yaml\n",
    )
    before = project.counts()
    out = replay_quarantine(project.cfg)
    assert (out["rows_replayed"], out["rows_still_quarantined"]) == (1, 2)
    assert {r["reason"] for r in out["still_held"]} == {"pii"}
    after = project.counts()
    assert after["orders"] == before["orders"] + 1
    assert after["orders__raw"] == before["orders__raw"] + 1
    assert after["orders__quarantine"] == before["orders__quarantine"]  # kept, marked replayed
    counts = list_quarantine(project.cfg)["counts"]["orders"]
    assert counts == {"pending": 2, "replayed": 1}
    text = json.dumps(out)
    assert "user2@example.com" not in text and "user4@example.com" not in text
