"""The README front door: `pipewarden demo` on the bundled sample (an evolution and a
quarantine), and the README's demo command exactly as written, on a fresh copy of the repo."""

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


def test_demo_shows_an_evolution_and_a_quarantine(tmp_path, capsys):
    target = tmp_path / "demo"
    assert main(["demo", "--dir", str(target), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    run = doc["run"]
    assert [b["status"] for b in run["batches"]] == ["loaded", "loaded", "loaded"]
    first, second, third = run["batches"]
    assert any("CREATE TABLE" in s.upper() for s in first["ddl"])
    assert any("ALTER TABLE" in s.upper() for s in second["ddl"])
    assert third["rows_quarantined"] == 2 and third["rows_loaded"] == 6
    assert run["totals"]["rows_read"] == run["totals"]["rows_loaded"] + 2
    rows = doc["quarantine"]["rows"]
    assert len(rows) == 2 and {r["column"] for r in rows} == {"quantity"}
    assert "@example.com" not in json.dumps(doc["quarantine"], default=str)
    assert (target / "warehouse.duckdb").exists() and (target / "pipeline.yaml").exists()
    # again: nothing is loaded twice
    assert main(["demo", "--dir", str(target), "--format", "json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert [b["status"] for b in again["run"]["batches"]] == ["skipped"] * 3


def test_demo_text_output(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "quarantine" in out and "ALTER TABLE" in out
    assert "@example.com" not in out
    assert (tmp_path / "pipewarden-demo" / "warehouse.duckdb").exists()


def readme_command(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    return text.split(marker, 1)[1].splitlines()[2]


@pytest.mark.slow
def test_readme_demo_command_on_a_fresh_copy(tmp_path):
    """The exact command of the README, in a copy of the repository's files (as a fresh clone
    has them), with a new virtualenv."""
    cmd = readme_command("<!-- demo-command -->")
    assert cmd.startswith("python3 -m venv .venv") and cmd.endswith("pipewarden demo")
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if files.returncode != 0:
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    for name in files.stdout.decode().split("\0"):
        if not name or not (ROOT / name).is_file():
            continue
        dest = clone / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    if shutil.which("python3", path=env["PATH"]) is None:
        env["PATH"] = str(Path(sys.base_prefix) / "bin") + os.pathsep + env["PATH"]
    proc = subprocess.run(
        ["bash", "-c", cmd], cwd=clone, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (clone / "pipewarden-demo" / "warehouse.duckdb").exists()
    assert "ALTER TABLE" in proc.stdout and "quarantine" in proc.stdout
