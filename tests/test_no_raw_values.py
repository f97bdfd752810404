"""No raw value anywhere: PII planted in values, free text, top-level keys, nested keys and a
file name, and a password in the DSN; ``run`` (DuckDB and PostgreSQL), ``guard scan``,
``sentinel``, ``anomaly train/score`` and ``quarantine list/replay`` run in text and JSON, with
errors provoked (a malformed file, a row of the wrong type, an unreachable server); then
stdout, stderr, every table of both stores (names and rows) and every file written are
searched for the raw values. The policy masks every entity (a ``quarantine`` rule keeps the
original payload for review by design, so it is not used here)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from conftest import duckdb_dump

from pipewarden.cli import main

PASSWORD = "s3cretPW-4471"
EMAIL = "jane.roe@example.com"
SSN = "509-88-8712"
CARD = "5555555555554444"
PHONE = "(212) 555-0199"
IBAN = "DE89 3704 0044 0532 0130 00"
IP = "203.0.113.77"
KEY_EMAIL = "max.mustermann@example.org"
KEY_SSN = "621-44-0917"
KEY_CARD = "4111111111111111"
FILE_SSN = "734-21-6655"
# every raw value, and the forms it could take once its separators are dropped
RAW = [PASSWORD, EMAIL, "jane.roe", SSN, "509888712", CARD, "5555 5555", PHONE, "2125550199",
       "555-0199", IBAN, "DE89370400440532013000", IP, KEY_EMAIL, "max.mustermann", KEY_SSN,
       "621440917", KEY_CARD, FILE_SSN, "734216655"]  # fmt: skip


def records(n: int, start: int = 0) -> list[dict]:
    out = []
    for i in range(start, start + n):
        out.append(
            {
                "id": i,
                "amount": 10.5 + i,
                "email": EMAIL,
                "phone": PHONE,
                "ssn": SSN,
                "note": f"call {PHONE} or mail {EMAIL}; card {CARD}, IBAN {IBAN}, from {IP}",
                KEY_EMAIL: i,  # data keyed by customer
                f"card_{KEY_CARD}": {"visits": i},
                "meta": {KEY_SSN: "x", "items": [{f"ssn_{KEY_SSN}": i}], "ok": True},
            }
        )
    return out


POLICY = """
version: 1
rules:
  - {entity: EMAIL_ADDRESS, action: mask, method: hash}
  - {entity: PHONE_NUMBER, action: mask, method: partial}
  - {entity: [US_SSN, CREDIT_CARD, IBAN_CODE, IP_ADDRESS], action: mask, method: redact}
"""

PIPELINE = """
version: 1
dataset: crm
source: {{path: "in/*.jsonl"}}
store: {store}
contract: {{data_type: quarantine}}
steps:
  - {{type: guardian, policy: policy.yaml}}
  - {{type: anomaly, threshold: 0.99}}
"""


def _write_batches(root: Path) -> None:
    (root / "in").mkdir()
    first = records(40)
    (root / "in" / f"batch_{FILE_SSN}_1.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in first)
    )
    second = records(40, 40)
    second[3]["amount"] = "not a number"  # held by the sentinel: its payload must be masked
    (root / "in" / f"batch_{FILE_SSN}_2.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in second)
    )


class Outputs:
    def __init__(self, capsys) -> None:
        self.capsys = capsys
        self.text: list[str] = []

    def __call__(self, *args: str) -> int:
        code = main(list(args))
        out = self.capsys.readouterr()
        # the command line itself holds the planted values (file names, the DSN): not searched
        self.text.append(f"{args[0]} {args[1]} #{len(self.text)} -> {code}\n{out.out}\n{out.err}")
        return code


def _postgres_dump(dsn: str, schema: str) -> str:
    import psycopg

    parts = []
    with psycopg.connect(dsn) as conn:
        tables = conn.execute(
            "select table_name from information_schema.tables where table_schema = %s", (schema,)
        ).fetchall()
        for (table,) in tables:
            rows = conn.execute(
                f'select row_to_json(t)::text from "{schema}"."{table}" t'
            ).fetchall()
            cols = conn.execute(
                "select column_name from information_schema.columns where table_schema = %s "
                "and table_name = %s",
                (schema, table),
            ).fetchall()
            parts.append(f"{table} {cols} {rows}")
        # the DDL history and comments live in these tables too; types and indexes by name
        parts.append(str(conn.execute(
            "select indexname, indexdef from pg_indexes where schemaname = %s", (schema,)
        ).fetchall()))  # fmt: skip
    return "\n".join(parts)


def _files(root: Path, before: set[Path]) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p not in before
    }


def _leaks(where: str, text: str) -> list[str]:
    return [f"{raw!r} in {where}" for raw in RAW if raw in text]


@pytest.mark.slow
def test_no_raw_value_in_any_output_table_or_file(tmp_path, capsys, monkeypatch, pg_dsn):
    monkeypatch.setenv("PIPEWARDEN_HASH_KEY", "a-test-key")
    monkeypatch.setenv("PIPEWARDEN_STORE", f"duckdb://{tmp_path / 'state.duckdb'}")
    monkeypatch.chdir(tmp_path)
    _write_batches(tmp_path)
    (tmp_path / "policy.yaml").write_text(POLICY)
    schema = f"pwtest_{uuid.uuid4().hex[:12]}"
    host = pg_dsn.split("@", 1)[1]
    dsn_with_password = f"postgresql://postgres:{PASSWORD}@{host}"  # trust auth ignores it
    (tmp_path / "duck.yaml").write_text(PIPELINE.format(store="{kind: duckdb, path: wh.duckdb}"))
    (tmp_path / "pg.yaml").write_text(
        PIPELINE.format(store=f'{{kind: postgres, dsn: "{dsn_with_password}", schema: {schema}}}')
    )
    (tmp_path / "down.yaml").write_text(
        PIPELINE.format(
            store=f'{{kind: postgres, dsn: "postgresql+psycopg://u:{PASSWORD}@127.0.0.1:1/x"}}'
        )
    )
    bad = tmp_path / f"bad_{FILE_SSN}.jsonl"
    bad.write_text(json.dumps(records(1)[0]) + "\n{not json\n")
    (tmp_path / "badrun").mkdir()
    (tmp_path / "badrun" / "in").mkdir()
    (tmp_path / "badrun" / "in" / bad.name).write_text(bad.read_text())
    (tmp_path / "badrun" / "policy.yaml").write_text(POLICY)
    (tmp_path / "badrun" / "p.yaml").write_text(
        PIPELINE.format(store="{kind: duckdb, path: bad.duckdb}")
    )
    data = tmp_path / "in" / f"batch_{FILE_SSN}_1.jsonl"
    inputs = {p for p in tmp_path.rglob("*") if p.is_file()}

    run = Outputs(capsys)
    try:
        for fmt in ("text", "json"):
            assert run("run", "duck.yaml", "--format", fmt) == 0
            assert run("run", "pg.yaml", "--format", fmt) == 0
            assert run("run", "down.yaml", "--format", fmt) in (1, 2)  # a fault, not a pass
            assert run("run", "badrun/p.yaml", "--format", fmt) == 2
            for cfg in ("duck.yaml", "pg.yaml"):
                assert run("quarantine", "list", cfg, "--format", fmt) == 0
                assert run("quarantine", "replay", cfg, "--format", fmt) == 0
            assert run("quarantine", "list", "--store", dsn_with_password, "--schema", schema,
                       "--format", fmt) == 0  # fmt: skip
            assert run("guard", "scan", "--data", str(data), "--policy", "policy.yaml",
                       "--output", f"masked_{fmt}.jsonl", "--format", fmt) == 0  # fmt: skip
            assert run("guard", "scan", "--data", str(bad), "--format", fmt) == 2
            assert run("sentinel", "--source", str(data), "--target", f"schema_{fmt}.json",
                       "--write-target", "--format", fmt) == 0  # fmt: skip
            assert run("sentinel", "--source", str(data), "--dsn", dsn_with_password,
                       "--namespace", schema, "--format", fmt) in (0, 1)  # fmt: skip
            assert run("anomaly", "train", "--data", str(data), "--out", f"model_{fmt}",
                       "--format", fmt) == 0  # fmt: skip
            assert run("anomaly", "score", "--data", str(data), "--model", f"model_{fmt}",
                       "--circuit-breaker", "--format", fmt) in (0, 1)  # fmt: skip
        leaks = []
        for out in run.text:
            leaks += _leaks(f"the output of {out.splitlines()[0]}", out)
        dumps = {
            "wh.duckdb": duckdb_dump(tmp_path / "wh.duckdb"),
            "state.duckdb": duckdb_dump(tmp_path / "state.duckdb"),
            f"PostgreSQL schema {schema}": _postgres_dump(pg_dsn, schema),
        }
        for where, text in dumps.items():
            leaks += _leaks(where, text)
        written = _files(tmp_path, inputs)
        assert "wh.duckdb" in written and any(name.startswith("model_") for name in written)
        for name, content in written.items():
            leaks += _leaks(f"file {name}", content.decode("latin-1"))
        assert not leaks, leaks
        # the checks did run: the data is there, masked and renamed
        assert "pii_email_" in dumps["wh.duckdb"] and "[US_SSN]" in dumps["wh.duckdb"]
        assert "batch_[US_SSN]_1.jsonl" in dumps["wh.duckdb"]
        assert "type_mismatch" in dumps[f"PostgreSQL schema {schema}"]
        shown = "\n".join(run.text)
        assert f"postgresql://postgres@{host}" in shown  # where it ran, without the password
        assert "postgresql://u@127.0.0.1:1/x" in shown  # the unreachable one, in the error
    finally:
        import psycopg

        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'drop schema if exists "{schema}" cascade')
