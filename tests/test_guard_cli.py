"""``pipewarden guard ...`` and scripts/compliance_guardian.py: findings, determinism, exit codes,
and no raw PII value in any output stream."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipewarden.cli import main

ROOT = Path(__file__).resolve().parents[1]

# known values that validate; none may ever appear in anything printed or logged
SECRETS = {
    "email": "jane.roe@example.com",
    "ssn": "123-45-6788",
    "ssn_bare": "234567891",
    "card": "4111 1111 1111 1111",
    "card_mc2": "2221000000000009",
    "phone": "(212) 555-0199",
    "iban": "DE89370400440532013000",
    "ip": "192.168.10.77",
}
RECORDS = [
    {
        "id": 1,
        "email": SECRETS["email"],
        "ssn": SECRETS["ssn_bare"],
        "order_id": 345678912,
        "note": f"ssn {SECRETS['ssn']}, card {SECRETS['card']}, call {SECRETS['phone']}",
        "customer": {"iban": SECRETS["iban"], "ip": SECRETS["ip"]},
    },
    {
        "id": 2,
        "email": "other.person@example.org",
        "ssn": "345-67-8912",
        "order_id": 456789123,
        "note": f"paid with {SECRETS['card_mc2']} on 2023-01-15, ZIP 10001-1234, SKU 4821-77-A",
        "customer": {"iban": "GB82WEST12345698765432", "ip": "10.0.0.1"},
    },
]


def secrets_in(text: str) -> list[str]:
    found = []
    for value in [
        *SECRETS.values(),
        "other.person@example.org",
        "345-67-8912",
        "GB82WEST12345698765432",
    ]:
        compact = value.replace(" ", "").replace("-", "")
        if value in text or compact in text.replace(" ", "").replace("-", ""):
            found.append(value)
    return found


@pytest.fixture
def data(tmp_path):
    p = tmp_path / "batch.json"
    p.write_text(json.dumps(RECORDS))
    return p


@pytest.fixture
def policy(tmp_path):
    p = tmp_path / "policy.yaml"
    p.write_text(
        """version: 1
rules:
  - {entity: "*", action: mask, method: partial}
  - {entity: US_SSN, action: quarantine}
  - {entity: CREDIT_CARD, action: block}
"""
    )
    return p


def run(args, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err, caplog.text


def test_json_findings_carry_the_fields_and_are_deterministic(data, capsys, caplog):
    code, out, _, _ = run(
        ["guard", "scan", "--data", str(data), "--format", "json"], capsys, caplog
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["findings_total"] == len(doc["findings"]) > 0
    for f in doc["findings"]:
        assert {"row", "column", "entity", "start", "end", "score", "preview"} <= set(f)
    got = {(f["row"], f["column"], f["entity"]) for f in doc["findings"]}
    assert (1, "ssn", "US_SSN") in got
    assert (1, "customer.iban", "IBAN_CODE") in got
    assert (2, "note", "CREDIT_CARD") in got  # Mastercard 2-series
    assert not any(f["column"] == "order_id" for f in doc["findings"])
    labels = {c["column"]: c["entity"] for c in doc["columns"]}
    assert labels["ssn"] == "US_SSN" and "order_id" not in labels
    _, again, _, _ = run(["guard", "scan", "--data", str(data), "--format", "json"], capsys, caplog)
    assert again == out


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("strict", [False, True])
def test_no_raw_value_in_any_stream(data, policy, fmt, strict, capsys, caplog):
    args = ["guard", "scan", "--data", str(data), "--policy", str(policy), "--format", fmt]
    if strict:
        args.append("--strict")
    code, out, err, logs = run(args, capsys, caplog)
    assert code == 1  # the card rule blocks
    assert out and "CREDIT_CARD" in out + err
    for stream in (out, err, logs):
        assert secrets_in(stream) == [], stream


def test_no_raw_value_in_errors_of_a_malformed_data_file(tmp_path, capsys, caplog):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"ssn": "123-45-6788", "email": "jane.roe@example.com",}')
    for fmt in ("text", "json"):
        code, out, err, logs = run(
            ["guard", "scan", "--data", str(bad), "--format", fmt], capsys, caplog
        )
        assert code == 2
        assert "bad.json" in out + err
        assert "Traceback" not in err
        for stream in (out, err, logs):
            assert secrets_in(stream) == []


def test_script_behaves_like_the_command(data, policy):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    script = [sys.executable, str(ROOT / "scripts" / "compliance_guardian.py")]
    a = subprocess.run(
        [*script, "scan", "--data", str(data), "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
    )
    b = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipewarden",
            "guard",
            "scan",
            "--data",
            str(data),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout
    c = subprocess.run(
        [*script, "scan", "--data", str(data), "--strict"], capture_output=True, text=True, env=env
    )
    assert c.returncode == 1
    assert "gate failed" in c.stderr
    assert secrets_in(c.stdout + c.stderr) == []


def test_strict_without_policy_fails_the_gate(data, capsys, caplog):
    code, out, err, _ = run(["guard", "scan", "--data", str(data), "--strict"], capsys, caplog)
    assert code == 1 and "--strict" in err


def test_malformed_policy_exits_2_naming_the_key(data, tmp_path, capsys, caplog):
    p = tmp_path / "p.yaml"
    p.write_text("version: 1\nrules:\n  - {entity: US_SSN, action: shred}\n")
    code, out, err, _ = run(
        ["guard", "scan", "--data", str(data), "--policy", str(p)], capsys, caplog
    )
    assert code == 2
    assert "rules[0].action" in err and "p.yaml" in err and "Traceback" not in err
    p.write_text("version: 1\nrules: [\n")
    code, out, err, _ = run(
        ["guard", "scan", "--data", str(data), "--policy", str(p), "--format", "json"],
        capsys,
        caplog,
    )
    assert code == 2 and json.loads(out)["line"] is not None


def test_missing_data_file_exits_2(tmp_path, capsys, caplog):
    code, _, err, _ = run(["guard", "scan", "--data", str(tmp_path / "none.json")], capsys, caplog)
    assert code == 2 and "none.json" in err


def test_policy_check(tmp_path, policy, capsys, caplog):
    code, out, _, _ = run(
        ["guard", "policy-check", str(policy), "--format", "json"], capsys, caplog
    )
    assert code == 0 and json.loads(out)["valid"] and json.loads(out)["rules"] == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nrules:\n  - {entity: US_SSN, action: shred}\n  - {action: mask, colums: [a]}\n"
    )
    code, out, _, _ = run(["guard", "policy-check", str(bad), "--format", "json"], capsys, caplog)
    doc = json.loads(out)
    assert code == 1 and not doc["valid"]
    assert [p["key"] for p in doc["problems"]] == ["rules[0].action", "rules[1].colums"]


def test_eval_prints_precision_recall_f2_per_entity(capsys, caplog):
    code, out, _, _ = run(["guard", "eval", "--format", "json", "--min-f2", "0.9"], capsys, caplog)
    assert code == 0
    doc = json.loads(out)
    assert set(doc["entities"]) == {
        "EMAIL_ADDRESS", "US_SSN", "CREDIT_CARD", "PHONE_NUMBER", "IBAN_CODE", "IP_ADDRESS",
    }  # fmt: skip
    for m in doc["entities"].values():
        assert {"precision", "recall", "f2", "tp", "fp", "fn"} <= set(m)
        assert m["f2"] >= 0.9


def test_eval_on_a_custom_labelled_file(tmp_path, capsys, caplog):
    p = tmp_path / "labelled.jsonl"
    rows = [
        {
            "fields": {"note": "ssn 123-45-6788"},
            "labels": [{"field": "note", "start": 4, "end": 15, "entity": "US_SSN"}],
        },
        {"fields": {"note": "order 123456788"}, "labels": []},
        {
            "fields": {"note": "mail a@b.io"},
            "labels": [{"field": "note", "start": 5, "end": 11, "entity": "EMAIL_ADDRESS"}],
        },
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    code, out, _, _ = run(["guard", "eval", "--data", str(p), "--format", "json"], capsys, caplog)
    doc = json.loads(out)
    assert doc["entities"]["US_SSN"] == {
        "support": 1, "tp": 1, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f2": 1.0,
    }  # fmt: skip
    p.write_text('{"fields": {"note": "x"}}\nnot json\n')
    code, out, err, _ = run(["guard", "eval", "--data", str(p)], capsys, caplog)
    assert code == 2 and "line 2" in err


def test_every_batch_format_gives_the_same_findings(tmp_path, capsys, caplog):
    import csv

    flat = [{k: v for k, v in r.items() if k != "customer"} for r in RECORDS]
    (tmp_path / "b.json").write_text(json.dumps(flat))
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in flat) + "\n")
    with open(tmp_path / "b.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(flat[0]))
        w.writeheader()
        w.writerows(flat)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(flat), tmp_path / "b.parquet")
    seen = []
    for name in ("b.json", "b.jsonl", "b.csv", "b.parquet"):
        code, out, _, _ = run(
            ["guard", "scan", "--data", str(tmp_path / name), "--format", "json"], capsys, caplog
        )
        assert code == 0
        seen.append(
            [(f["row"], f["column"], f["entity"], f["start"]) for f in json.loads(out)["findings"]]
        )
    assert seen[0] == seen[1] == seen[2] == seen[3] and seen[0]
