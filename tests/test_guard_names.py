"""Keys, column names and file names are data: PII in them is renamed (keyed hash), blocked or
masked, and never reaches a column, the DDL, a report or a store table."""

from __future__ import annotations

import json

import pytest
from conftest import duckdb_dump

from pipewarden.cli import main
from pipewarden.compliance.names import KeyRenamer, find_in_name, mask_name

EMAIL = "jane.roe@example.com"
SSN = "509-88-8712"
CARD = "5555555555554444"
RAW = (EMAIL, SSN, CARD, "509888712", "jane.roe")


def records() -> list[dict]:
    return [
        {
            "id": 1,
            EMAIL: {"orders": 3},
            SSN: "x",
            f"card_{CARD}": 12,
            "nested": {"items": [{"ssn_509888712": 1}], "ok": 2},
        },
        {"id": 2, EMAIL: {"orders": 4}, SSN: "y", f"card_{CARD}": 13, "nested": {"ok": 3}},
    ]


def _dump(obj) -> str:
    return json.dumps(obj, default=str)


def test_pii_keys_are_renamed_to_stable_keyed_hash_names():
    recs = records()
    r = KeyRenamer(key=b"k1")
    assert r.apply(recs) == 2
    text = _dump(recs)
    assert not any(raw in text for raw in RAW)
    first = recs[0]
    assert list(first)[0] == "id"  # the order of keys is kept
    email_key = list(first)[1]
    assert email_key.startswith("pii_email_") and len(email_key) == len("pii_email_") + 12
    assert list(first)[3].startswith("card_pii_card_")
    assert list(first["nested"]["items"][0])[0].startswith("ssn_pii_ssn_")
    assert set(recs[1]) == set(first)  # the same key gets the same name in every record
    # the same value and key give the same name in another run; another key another name
    again = records()
    KeyRenamer(key=b"k1").apply(again)
    assert set(again[0]) == set(first)
    other = records()
    KeyRenamer(key=b"k2").apply(other)
    assert set(other[0]) != set(first)
    # the report is masked
    report = _dump(r.report())
    assert not any(raw in report for raw in RAW)
    assert {f["entity"] for f in r.report()} == {"EMAIL_ADDRESS", "US_SSN", "CREDIT_CARD"}


@pytest.mark.parametrize("given", ["records", "columns", "types"])
def test_a_pii_key_anywhere_in_a_batch_is_found(given):
    # the renamer decides from the batch's keys at every depth whether to walk the records
    # (read from the records, or from the chunk's columns and their types where the guardian
    # has them): a PII key in the last record only, in an object in a list in a list, is
    # still renamed
    from pipewarden.batch import Batch

    def apply(r, recs):
        if given == "records":
            return r.apply(recs)
        b = Batch(recs, "t.jsonl")
        return r.apply(recs, b.columns, b.types if given == "types" else None)

    plain = [{"id": i, "meta": {"v": i, "tags": [[{"ok": 1}], 2]}} for i in range(500)]
    last = {"id": 500, "meta": {"v": 1, "tags": [[{"ok": 1}, {f"ssn_{SSN}": 1}], 2]}}
    for action in ("rename", "block"):
        recs = [*plain, json.loads(json.dumps(last))]
        r = KeyRenamer(action=action, key=b"k")
        assert apply(r, recs) == (1 if action == "rename" else 0)
        assert [f["entity"] for f in r.report()] == ["US_SSN"]
        assert recs[:500] == plain
        assert (SSN in _dump(recs[500])) == (action == "block")
    # none anywhere: every record is left as it is (the same objects)
    recs = list(plain)
    r = KeyRenamer(key=b"k")
    assert apply(r, recs) == 0 and not r.found
    assert all(a is b for a, b in zip(recs, plain, strict=True))
    # a record that is not an object is left to the walk
    assert apply(KeyRenamer(key=b"k"), [*plain, [1], last]) == 1
    # objects in objects in objects only (no list on the way), the key three levels down
    deep = [{"id": i, "m": {"a": {"b": i}}} for i in range(300)]
    deep.append({"id": 300, "m": {"a": {"b": 1, f"email_{EMAIL}": 1}}})
    r = KeyRenamer(key=b"k")
    assert apply(r, deep) == 1 and [f["entity"] for f in r.report()] == ["EMAIL_ADDRESS"]
    # objects under keys the first record does not nest anything in
    late = [{"id": 0, "a": 1}, *plain, {"id": 1, "a": [{"b": {f"card_{CARD}": 2}}]}]
    r = KeyRenamer(key=b"k")
    assert apply(r, late) == 1 and [f["entity"] for f in r.report()] == ["CREDIT_CARD"]


def test_block_and_allow_leave_keys_alone():
    recs = records()
    r = KeyRenamer(action="block", key=b"k")
    assert r.apply(recs) == 0 and r.blocked
    assert EMAIL in recs[0]
    assert not any(raw in _dump(r.report()) for raw in RAW)
    recs = records()
    r = KeyRenamer(action="allow")
    r.apply(recs)
    assert not r.found and EMAIL in recs[0]


@pytest.mark.parametrize(
    "name",
    ["id", "created_at", "2024-01-15", "orders_2024-01-15.jsonl", "v1.2.3.4", "batch_000123.jsonl",
     "zip_10001-1234", "123e4567-e89b-12d3-a456-426614174000", "customer_id", "2025-12-07 02:09:09"],
)  # fmt: skip
def test_names_without_pii_are_kept(name):
    assert find_in_name(name) == ()
    assert mask_name(name) == name
    assert KeyRenamer(key=b"k").new_name(name) is None


def test_file_names_are_masked():
    assert mask_name(f"/data/batch_{SSN}.jsonl") == "/data/batch_[US_SSN].jsonl"
    assert mask_name(f"in/{EMAIL}.json") == "in/[EMAIL_ADDRESS].json"


def _pipeline(tmp_path, policy: str = "version: 1\n") -> str:
    (tmp_path / "in").mkdir(exist_ok=True)
    (tmp_path / "in" / f"batch_{SSN}.json").write_text(json.dumps(records()))
    (tmp_path / "policy.yaml").write_text(policy)
    (tmp_path / "pipeline.yaml").write_text(
        "version: 1\ndataset: crm\nsource: {path: 'in/*.json'}\n"
        "store: {kind: duckdb, path: wh.duckdb}\nsteps:\n  - {type: guardian, policy: policy.yaml}\n"
    )
    return str(tmp_path / "pipeline.yaml")


def test_run_renames_pii_keys_before_the_schema_is_planned(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PIPEWARDEN_HASH_KEY", "test-key")
    cfg = _pipeline(tmp_path)
    for fmt in ("text", "json"):
        code = main(["run", cfg, "--format", fmt])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert not any(raw in out + err for raw in RAW), out + err
    doc = json.loads(out)
    assert doc["batches"][0]["source"].endswith("batch_[US_SSN].json")
    tables = duckdb_dump(tmp_path / "wh.duckdb")
    assert "pii_email_" in tables and "card_pii_card_" in tables
    assert not any(raw in tables for raw in RAW)


def test_run_without_a_hash_key_blocks_a_batch_with_pii_keys(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("PIPEWARDEN_HASH_KEY", raising=False)
    cfg = _pipeline(tmp_path)
    code = main(["run", cfg, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 1
    batch = json.loads(out)["batches"][0]
    assert batch["status"] == "blocked" and "PIPEWARDEN_HASH_KEY" in batch["reason"]
    assert batch["rows_loaded"] == 0
    assert not any(raw in out + err for raw in RAW)
    assert not any(raw in duckdb_dump(tmp_path / "wh.duckdb") for raw in RAW)


def test_run_with_names_block_blocks_the_batch(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PIPEWARDEN_HASH_KEY", "test-key")
    cfg = _pipeline(tmp_path, "version: 1\nnames: {action: block}\n")
    assert main(["run", cfg, "--format", "json"]) == 1
    out, err = capsys.readouterr()
    batch = json.loads(out)["batches"][0]
    assert batch["status"] == "blocked" and "names: block" in batch["reason"]
    assert not any(raw in out + err for raw in RAW)


def test_guard_scan_and_sentinel_show_no_pii_key(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("PIPEWARDEN_HASH_KEY", raising=False)
    data = tmp_path / f"batch_{SSN}.json"
    data.write_text(json.dumps(records()))
    for fmt in ("text", "json"):
        main(["guard", "scan", "--data", str(data), "--format", fmt])
        main(["sentinel", "--source", str(data), "--target", str(tmp_path / "s.json"),
              "--format", fmt])  # fmt: skip
        out, err = capsys.readouterr()
        assert not any(raw in out + err for raw in RAW), out + err
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nnames: {action: block}\n")
    assert main(["guard", "scan", "--data", str(data), "--policy", str(policy)]) == 1
    out, err = capsys.readouterr()
    assert "names: block" in out + err
    # applying or writing names that change from call to call is refused
    code = main(["sentinel", "--source", str(data), "--target", str(tmp_path / "s.json"),
                 "--write-target"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 2 and "PIPEWARDEN_HASH_KEY" in err
