"""Scripts called as files (as orchestrators call them): every scripts/*.py prints one line
and exits 2 when pipewarden or a dependency is not in the interpreter, never a traceback;
`sentinel` names the table after the target schema, not the daily file; and says it stores
no rows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipewarden.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (ROOT / "scripts").glob("*.py") if not p.name.startswith("_"))


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # -S: no site-packages, as an interpreter where pipewarden was never installed
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-S", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_a_script_without_pipewarden_says_so_in_one_line(tmp_path, script):
    """Copied away from the checkout: pipewarden is nowhere to be found."""
    for p in (ROOT / "scripts").glob("*.py"):
        shutil.copy(p, tmp_path / p.name)
    got = _run(str(tmp_path / script.name), "--help", cwd=tmp_path)
    assert got.returncode == 2, "use scripts/_pipewarden.py: " + got.stderr
    assert got.stdout == "" and "Traceback" not in got.stderr
    assert got.stderr.count("\n") == 1
    assert f"{script.name}: pipewarden is not installed in this interpreter" in got.stderr
    assert "pip install pipewarden" in got.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_a_script_missing_a_dependency_names_it(tmp_path, script):
    """From the checkout, the package is found beside the scripts, but not its dependencies."""
    got = _run(str(script), "--help", cwd=tmp_path)
    assert got.returncode == 2 and "Traceback" not in got.stderr
    assert "which pipewarden needs, is not installed in this interpreter" in got.stderr


def test_the_scripts_run_where_pipewarden_is_installed(tmp_path):
    got = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "schema_sentinel.py"), "--help"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert got.returncode == 0 and "--table" in got.stdout


def test_a_missing_module_inside_a_command_is_one_line(monkeypatch, capsys):
    import pipewarden.run as run_mod

    def missing(*a, **k):
        raise ModuleNotFoundError("No module named 'h2o'", name="h2o")

    monkeypatch.setattr(run_mod, "run_pipeline", missing)
    assert main(["run", "x.yaml", "--format", "json"]) == 2
    out = capsys.readouterr()
    assert "pip install 'pipewarden[h2o]'" in json.loads(out.out)["error"]
    assert "Traceback" not in out.err


def _source(tmp_path: Path, name: str) -> Path:
    p = tmp_path / name
    p.write_text('{"id": 1, "score": 2.5}\n{"id": 2, "score": "high"}\n')
    return p


def test_sentinel_names_the_table_after_the_targets_title(tmp_path, capsys):
    target = tmp_path / "orders.schema.json"
    target.write_text(
        json.dumps(
            {"title": "Order Events", "type": "object",
             "properties": {"id": {"type": "integer"}, "score": {"type": "number"}}}
        )
    )  # fmt: skip
    for day in ("batch_2024_05_01.jsonl", "batch_2024_05_02.jsonl"):
        code = main(["sentinel", "--source", str(_source(tmp_path, day)),
                     "--target", str(target), "--format", "json"])  # fmt: skip
        doc = json.loads(capsys.readouterr().out)
        assert code == 0 and doc["table"] == "order_events" and doc["table_from"] == "target title"
    target.write_text(json.dumps({"type": "object", "properties": {"id": {"type": "integer"}}}))
    main(["sentinel", "--source", str(_source(tmp_path, "b.jsonl")), "--target", str(target),
          "--format", "json"])  # fmt: skip
    assert json.loads(capsys.readouterr().out)["table"] == "orders"
    main(["sentinel", "--source", str(_source(tmp_path, "b.jsonl")), "--target", str(target),
          "--table", "mine", "--format", "json"])  # fmt: skip
    assert json.loads(capsys.readouterr().out)["table"] == "mine"


def test_sentinel_apply_does_not_claim_to_store_rows(tmp_path, capsys):
    src = tmp_path / "b.jsonl"
    src.write_text('{"id": 1, "score": 2.5}\n')
    db = tmp_path / "w.duckdb"
    assert main(["sentinel", "--source", str(src), "--dsn", str(db), "--apply"]) == 0
    src.write_text('{"id": 3, "score": "x"}\n')
    assert main(["sentinel", "--source", str(src), "--dsn", str(db), "--apply"]) == 0
    out = capsys.readouterr().out
    assert "1 would be quarantined" in out and "sentinel stores no rows" in out
    assert "named after the source file: pass --table" in out
    main(["sentinel", "--source", str(src), "--dsn", str(db), "--format", "json"])
    assert json.loads(capsys.readouterr().out)["rows_stored"] is False
