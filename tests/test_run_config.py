"""The pipeline config: validation errors name the file and the key path; ${ENV} expansion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipewarden.cli import main
from pipewarden.errors import InputError
from pipewarden.run import load_config, source_files

GOOD = """
version: 1
dataset: orders
source:
  path: "in/*.jsonl"
"""


def write(tmp_path: Path, text: str, name="pipeline.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        (
            GOOD.replace('path: "in/*.jsonl"', "path: a.xml\n  format: xml"),
            "source.format",
            "'xml' is not one of",
        ),
        (GOOD.replace("version: 1", "version: 2"), "version", "1 was expected"),
        (
            GOOD.replace("dataset: orders", "dataset: 'drop table;'"),
            "dataset",
            "'drop table;' is not 1-48 ASCII letters, digits and '_', not starting with a digit",
        ),
        (
            GOOD + "store:\n  kind: postgres\n  dsn: postgresql://h/db\n  schema: 9x\n",
            "store.schema",
            "'9x' is not 1-63 ASCII letters",
        ),
        (GOOD + "store:\n  kind: oracle\n", "store.kind", "'oracle' is not one of"),
        (GOOD + "store:\n  paht: x.duckdb\n", "store", "'paht' was unexpected"),
        (GOOD + "steps:\n  - type: nope\n", "steps[0].type", "'nope' is not one of"),
        (GOOD + "contract:\n  columns: maybe\n", "contract.columns", "'maybe' is not one of"),
        (GOOD + "source2: {}\n", "(top level)", "'source2' was unexpected"),
        ("version: 1\ndataset: x\n", "(top level)", "'source' is a required property"),
        (GOOD.replace("  path", "  chunk_rows: 0\n  path"), "source.chunk_rows", "minimum"),
        (
            GOOD.replace("  path", "  chunk_rows: 9223372036854775808\n  path"),
            "source.chunk_rows",
            "greater than the maximum",
        ),
        (GOOD.replace("dataset: orders", "dataset: _pw_runs"), "dataset", "store's own"),
        (GOOD.replace("dataset: orders", "dataset: t__raw"), "dataset", "companion tables"),
        (
            GOOD.replace("  path", "  encoding: utf8x\n  path"),
            "source.encoding",
            "unknown encoding 'utf8x'",
        ),
    ],
)
def test_config_errors_name_the_key_and_the_file(tmp_path, text, key, fragment):
    cfg = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_config(cfg)
    err = info.value
    assert err.key == key
    rendered = err.render()
    assert rendered.startswith(f"{cfg}: {key}: ")
    assert fragment in rendered


def test_cli_config_error_exit_2_and_json(tmp_path, capsys):
    cfg = write(tmp_path, GOOD.replace('path: "in/*.jsonl"', "path: a.xml\n  format: xml"))
    assert main(["run", str(cfg), "--format", "json"]) == 2
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert doc["key"] == "source.format" and doc["file"] == str(cfg)
    assert "Traceback" not in out.err and "source.format: 'xml' is not one of" in out.err


def test_yaml_syntax_error_names_the_line(tmp_path):
    cfg = write(tmp_path, "version: 1\ndataset: [x\nsource: {}\n")
    with pytest.raises(InputError) as info:
        load_config(cfg)
    assert info.value.line is not None and "not valid YAML" in info.value.render()


def test_missing_and_empty_config(tmp_path):
    with pytest.raises(InputError, match="no such pipeline config"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(InputError, match="empty"):
        load_config(write(tmp_path, "# nothing\n"))


def test_dsn_expands_env_and_names_a_missing_variable(tmp_path, monkeypatch):
    text = GOOD + "store:\n  kind: postgres\n  dsn: postgresql://u@${PW_HOST}:${PW_PORT:-5432}/db\n"
    cfg = write(tmp_path, text)
    monkeypatch.delenv("PW_HOST", raising=False)
    with pytest.raises(InputError) as info:
        load_config(cfg)
    assert info.value.key == "store.dsn" and "PW_HOST is not set" in info.value.render()
    monkeypatch.setenv("PW_HOST", "db.internal")
    assert load_config(cfg)["store"]["dsn"] == "postgresql://u@db.internal:5432/db"
    assert load_config(cfg)["store"]["schema"] == "public"


def test_postgres_needs_a_dsn(tmp_path):
    with pytest.raises(InputError) as info:
        load_config(write(tmp_path, GOOD + "store:\n  kind: postgres\n"))
    assert info.value.key == "store.dsn"


def test_source_glob_is_relative_to_the_config(tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    for n in ("b.jsonl", "a.jsonl", "c.json"):
        (tmp_path / "in" / n).write_text("{}\n")
    cfg = load_config(write(tmp_path, GOOD))
    monkeypatch.chdir("/")
    assert [Path(f).name for f in source_files(cfg)] == ["a.jsonl", "b.jsonl"]
    cfg["source"]["path"] = "in/none*.jsonl"
    with pytest.raises(InputError) as info:
        source_files(cfg)
    assert info.value.key == "source.path"


def test_defaults_are_filled(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg["store"] == {"kind": "duckdb", "path": "warehouse.duckdb", "schema": "main"}
    assert cfg["source"]["chunk_rows"] == 100_000 and cfg["name"] == "orders"
