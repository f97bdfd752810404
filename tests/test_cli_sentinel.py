"""`pipewarden sentinel` and scripts/schema_sentinel.py: output, exit codes, target files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipewarden.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *args):
    code = main(["sentinel", *args, "--format", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def jsonl(path: Path, rows) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_first_load_then_fits_then_evolves(tmp_path, capsys):
    target = tmp_path / "schema.json"
    src = jsonl(tmp_path / "b1.jsonl", [{"id": 1, "name": "a"}, {"id": 2, "name": None}])
    code, doc = run(capsys, "--source", str(src), "--target", str(target), "--write-target",
                    "--table", "b1")  # fmt: skip
    assert code == 0 and doc["decision"] == "evolve"
    assert [c["op"] for c in doc["delta"]["changes"]] == ["add", "add"]
    assert doc["ddl"][-1].startswith('CREATE TABLE "b1" ("id" BIGINT, "name" TEXT')
    assert doc["rows"] == {"read": 2, "accepted": 2, "quarantined": 0, "discarded": 0,
                           "values_discarded": 0}  # fmt: skip
    written = json.loads(target.read_text())
    assert written["version"] == 1 and written["format"] == "pipewarden.schema"

    code, doc = run(capsys, "--source", str(src), "--target", str(target), "--table", "b1")
    assert code == 0 and doc["decision"] == "pass" and doc["ddl"] == []

    src2 = jsonl(tmp_path / "b2.jsonl", [{"id": 3, "name": "c", "email": "x"}, {"id": "oops"}])
    code, doc = run(capsys, "--source", str(src2), "--target", str(target), "--table", "b1",
                    "--write-target")  # fmt: skip
    assert code == 0 and doc["decision"] == "evolve"
    ops = {(c["op"], c["column"]): c for c in doc["delta"]["changes"]}
    assert ops[("add", "email")]["action"] == "alter"
    assert ops[("type_change", "id")]["breaking"] is True
    assert doc["ddl"] == ["SET LOCAL lock_timeout = '5s'",
                          'ALTER TABLE "b1" ADD COLUMN "email" TEXT']  # fmt: skip
    assert doc["rows"]["accepted"] == 1 and doc["rows"]["quarantined"] == 1
    # a value that is not PII is shown in the message (it used to be masked as ****)
    assert doc["issues"][0]["row"] == 2 and "(oops) does not fit" in doc["issues"][0]["message"]
    assert json.loads(target.read_text())["version"] == 2


def test_freeze_rejects_with_exit_1(tmp_path, capsys):
    target = tmp_path / "schema.json"
    target.write_text(json.dumps({"columns": [{"name": "id", "type": "bigint"}], "version": 3}))
    src = jsonl(tmp_path / "b.jsonl", [{"id": 1, "new": True}, {"id": None, "more": 1}])
    code, doc = run(capsys, "--source", str(src), "--target", str(target), "--contract",
                    "columns=freeze,overrides.more.columns=evolve", "--write-target")  # fmt: skip
    assert code == 1 and doc["decision"] == "reject" and "new column 'new'" in doc["reason"]
    assert doc["ddl"] == [] and doc["rows"]["accepted"] == 0
    assert not any(c["action"] == "alter" for c in doc["delta"]["changes"])
    assert json.loads(target.read_text())["version"] == 3  # not written


@pytest.mark.parametrize("contract,accepted,quarantined,discarded", [
    ("quarantine", 1, 1, 0), ("discard_row", 1, 0, 1), ("discard_value", 2, 0, 0),
])  # fmt: skip
def test_column_modes(tmp_path, capsys, contract, accepted, quarantined, discarded):
    target = tmp_path / "schema.json"
    target.write_text(json.dumps({"columns": [{"name": "id", "type": "bigint"}]}))
    src = jsonl(tmp_path / "b.jsonl", [{"id": 1}, {"id": 2, "new": "x"}])
    code, doc = run(capsys, "--source", str(src), "--target", str(target), "--contract",
                    f"columns={contract}")  # fmt: skip
    assert code == 0 and doc["ddl"] == []
    assert (doc["rows"]["accepted"], doc["rows"]["quarantined"], doc["rows"]["discarded"]) == (
        accepted, quarantined, discarded,
    )  # fmt: skip


def test_json_schema_target(tmp_path, capsys):
    target = tmp_path / "t.schema.json"
    target.write_text(json.dumps({
        "type": "object", "required": ["id"],
        "properties": {"id": {"type": "integer"}, "at": {"type": ["string", "null"], "format": "date-time"}},
    }))  # fmt: skip
    src = jsonl(tmp_path / "b.jsonl", [{"id": 1, "at": "2024-01-01T00:00:00Z"}, {"at": None}])
    code, doc = run(capsys, "--source", str(src), "--target", str(target), "--write-target",
                    "--contract", "data_type=evolve")  # fmt: skip
    ops = {(c["op"], c["column"]) for c in doc["delta"]["changes"]}
    assert ("nullability", "id") in ops and code == 0
    assert 'ALTER TABLE "t" ALTER COLUMN "id" DROP NOT NULL' in doc["ddl"]  # the target names it
    written = json.loads(target.read_text())
    assert written["required"] == [] and written["properties"]["id"]["type"] == ["integer", "null"]


def _closed_target(path: Path) -> Path:
    path.write_text(json.dumps({
        "type": "object", "additionalProperties": False,
        "properties": {"id": {"type": "integer"}, "note": {"type": ["string", "null"]}},
    }))  # fmt: skip
    return path


def test_closed_json_schema_target_freezes_new_columns(tmp_path, capsys):
    target = _closed_target(tmp_path / "t.schema.json")
    before = target.read_text()
    src = jsonl(tmp_path / "b.jsonl", [{"id": 1, "note": "a"}, {"id": 2, "email": "x"}])
    code, doc = run(capsys, "--source", str(src), "--target", str(target), "--write-target")
    assert code == 1 and doc["decision"] == "reject"
    assert "new column 'email'" in doc["reason"] and "additionalProperties: false" in doc["reason"]
    assert doc["contract"]["columns"] == "freeze" and doc["target"]["closed"] is True
    assert doc["ddl"] == [] and target.read_text() == before


def test_closed_target_keeps_other_column_modes_and_stays_closed(tmp_path, capsys):
    target = _closed_target(tmp_path / "t.schema.json")
    doc = json.loads(target.read_text())
    target.write_text(json.dumps({**doc, "required": ["id"]}))
    src = jsonl(tmp_path / "b.jsonl", [{"id": 1, "note": None}, {"id": None, "email": "x"}])
    code, doc = run(capsys, "--source", str(src), "--target", str(target), "--write-target",
                    "--contract", "columns=discard_value")  # fmt: skip
    assert code == 0 and doc["contract"]["columns"] == "discard_value"
    assert doc["rows"]["accepted"] == 2 and doc["target_written"] is True
    written = json.loads(target.read_text())
    assert written["additionalProperties"] is False  # evolving a column keeps the file closed
    assert set(written["properties"]) == {"id", "note"} and written["required"] == []


def test_open_json_schema_target_still_evolves(tmp_path, capsys):
    target = tmp_path / "t.schema.json"
    target.write_text(json.dumps({"type": "object", "properties": {"id": {"type": "integer"}}}))
    src = jsonl(tmp_path / "b.jsonl", [{"id": 1, "email": "x"}])
    code, doc = run(capsys, "--source", str(src), "--target", str(target), "--write-target")
    assert code == 0 and doc["target"]["closed"] is False
    assert "email" in json.loads(target.read_text())["properties"]


@pytest.mark.parametrize("body", [b"", b'[{"a": 1},', b"\xff\xfe", b'[{"a":1}]{"a":2}'])
def test_bad_input_exit_2_and_nothing_written(tmp_path, capsys, body):
    src = tmp_path / "bad.json"
    src.write_bytes(body)
    target = tmp_path / "schema.json"
    code = main(["sentinel", "--source", str(src), "--target", str(target), "--write-target",
                 "--format", "json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 2 and doc["file"] == str(src) and not target.exists()


def test_script_behaves_like_the_command(tmp_path):
    src = jsonl(tmp_path / "b.jsonl", [{"id": 1}])
    args = ["--source", str(src), "--target", str(tmp_path / "s.json"), "--ddl"]
    script = subprocess.run([sys.executable, str(ROOT / "scripts" / "schema_sentinel.py"), *args],
                            capture_output=True, text=True)  # fmt: skip
    command = subprocess.run([sys.executable, "-m", "pipewarden", "sentinel", *args],
                             capture_output=True, text=True)  # fmt: skip
    assert script.returncode == command.returncode == 0
    assert script.stdout == command.stdout
    assert (
        script.stdout.startswith("BEGIN;\nSET LOCAL lock_timeout")
        and "CREATE TABLE" in script.stdout
    )
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "schema_sentinel.py"),
                          "--source", str(tmp_path / "missing.json"), "--target", "x.json"],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "no such file" in bad.stderr


def test_stdin_and_text_output_with_hostile_names(tmp_path, capsys, monkeypatch):
    import io

    rows = [{"[bold red]x[/]": 1, 'q"; drop table t; --': "2024-01-01"}]
    data = "\n".join(json.dumps(r) for r in rows).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code = main(["sentinel", "--source", "-", "--target", str(tmp_path / "s.json"),
                 "--dialect", "duckdb"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "<stdin> -> table s (duckdb): evolve" in out  # named after the target file
    assert "[bold red]x[/]" in out  # printed as text, not as markup


def test_parquet_source_and_hash_check(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist([{"a": 1, "b": "x"}]), src)
    target = tmp_path / "s.json"
    target.write_text(json.dumps({"format": "pipewarden.schema", "version": 2, "hash": "edited",
                                  "columns": [{"name": "a", "type": "bigint"}]}))  # fmt: skip
    code, doc = run(capsys, "--source", str(src), "--target", str(target))
    assert code == 0 and doc["format"] == "parquet"
    assert doc["target"]["hash_ok"] is False and doc["target"]["version"] == 2
    assert doc["schema"]["version"] == 3


def test_bad_target_and_bad_calls(tmp_path, capsys):
    src = jsonl(tmp_path / "b.jsonl", [{"a": 1}])
    bad = tmp_path / "t.json"
    bad.write_text('{"columns": [{"name": "a", "type": "varchar"}]}')
    code = main(["sentinel", "--source", str(src), "--target", str(bad)])
    assert code == 2 and "unknown type 'varchar'" in capsys.readouterr().err
    assert main(["sentinel", "--source", str(src), "--target", str(bad), "--apply"]) == 2
    assert "--apply needs --dsn" in capsys.readouterr().err
    assert main(["sentinel", "--source", str(src)]) == 2
    assert (
        main(["sentinel", "--source", str(src), "--target", "x.json", "--contract", "columns=melt"])
        == 2
    )
    assert "unknown contract mode 'melt'" in capsys.readouterr().err


def test_json_schema_target_keeps_idents(tmp_path, capsys):
    target = tmp_path / "t.schema.json"
    name = "n" * 70
    src = jsonl(tmp_path / "b.jsonl", [{name: 1, "N" * 70: 2}])
    code, _ = run(capsys, "--source", str(src), "--target", str(target), "--write-target")
    written = json.loads(target.read_text())
    assert code == 0 and written["type"] == "object"
    assert written["properties"][name]["x-pipewarden-ident"] == "n" * 63
    code, doc = run(capsys, "--source", str(src), "--target", str(target))
    assert code == 0 and doc["decision"] == "pass" and doc["target"]["kind"] == "jsonschema"


def test_row_numbers_are_absolute_across_chunks(tmp_path, capsys):
    target = tmp_path / "s.json"
    target.write_text(json.dumps({"columns": [{"name": "n", "type": "bigint"}], "version": 1}))
    src = jsonl(tmp_path / "b.jsonl", [{"n": 1}, {"n": 2}, {"n": "x"}, {"n": 4}, {"n": "y"}])
    code, doc = run(capsys, "--source", str(src), "--target", str(target), "--chunk-rows", "2")
    assert code == 0 and doc["batches"] == 3
    assert [i["row"] for i in doc["issues"]] == [3, 5]
    assert doc["rows"] == {"read": 5, "accepted": 3, "quarantined": 2, "discarded": 0,
                           "values_discarded": 0}  # fmt: skip


def test_progress_callback(tmp_path):
    from pipewarden.schema.sentinel import sentinel

    src = jsonl(tmp_path / "b.jsonl", [{"n": i} for i in range(5)])
    calls = []
    sentinel(str(src), str(tmp_path / "s.json"), chunk_rows=2,
             progress=lambda *a: calls.append(a))  # fmt: skip
    assert calls == [("infer", 2, None), ("infer", 4, None), ("infer", 5, None),
                     ("check", 2, 5), ("check", 4, 5), ("check", 5, 5)]  # fmt: skip


def test_contract_closed_turns_only_evolve_into_freeze():
    from pipewarden.schema.contract import Contract

    spec = "columns=evolve,overrides.a.columns=evolve,overrides.b.columns=quarantine"
    closed = Contract.parse(spec).closed()
    assert closed.columns == "freeze" and closed.data_type == "evolve"
    assert closed.overrides == {"a": {"columns": "freeze"}, "b": {"columns": "quarantine"}}
    assert Contract.parse("columns=discard_row").closed() == Contract.parse("columns=discard_row")
