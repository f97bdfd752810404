"""The real Mage in tests: one `mage init` per session (copied per test), `mage run` in a
subprocess with src/ first on PYTHONPATH, and the outputs Mage kept of each block."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def mage_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "MAGE_DATA_DIR": str(tmp_path / "mage_data"),
           **extra}  # fmt: skip
    env.pop("VIRTUAL_ENV", None)
    return env


def mage_init(where: Path, mage_venv: Path) -> Path:
    """A new Mage project ``where/proj`` made by the real `mage init`."""
    res = subprocess.run(
        [str(mage_venv / "bin" / "mage"), "init", "proj"],
        cwd=where, capture_output=True, text=True, env=mage_env(where), timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    return where / "proj"


def copy_project(tmp_path: Path, template: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the `mage init` project in ``tmp_path`` and the environment to run it."""
    project = tmp_path / "proj"
    shutil.copytree(template, project)
    return project, mage_env(tmp_path)


def mage_run(
    project: Path, name: str, mage_venv: Path, env: dict[str, str]
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(mage_venv / "bin" / "mage"), "run", str(project), name],
        cwd=project.parent, capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip


def block_outputs(project: Path, name: str, env: dict[str, str]) -> dict[str, object]:
    """What Mage kept as each block's output (its variables under MAGE_DATA_DIR)."""
    root = Path(env["MAGE_DATA_DIR"]) / project.name / "pipelines" / name / ".variables"
    return {
        p.parent.parent.name: json.loads(p.read_text())
        for p in sorted(root.glob("*/output_0/data.json"))
    }


def mage_files_text(project: Path, env: dict[str, str]) -> str:
    """Every file Mage wrote for the project's runs (outputs, samples, logs), as one text."""
    root = Path(env["MAGE_DATA_DIR"])
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())
