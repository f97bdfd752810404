"""The data-engineer skill: the Agent Skills format's rules (checked by the format's reference
library, skills-ref, and by `pipewarden skill check`), scripts and references that are the
project's own files (links, so they cannot drift), `skill install`, and the wheel that ships it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import skills_ref

from pipewarden.agent.skill import check, shipped

ROOT = Path(__file__).resolve().parents[1]
SKILL = ROOT / "skills" / "data-engineer"


def test_the_skill_passes_the_reference_validator_and_our_check():
    assert skills_ref.validate(SKILL) == []
    got = check(SKILL)
    assert got["ok"], got["problems"]
    assert got["name"] == "data-engineer" and got["body_lines"] < 500
    props = skills_ref.read_properties(SKILL)
    assert "Use when" in props.description and len(props.description) <= 1024
    assert shipped().resolve() == SKILL.resolve()  # the package ships this folder


def test_scripts_references_and_assets_are_links_to_the_projects_files():
    project = {p.name for p in (ROOT / "scripts").glob("*.py")}
    linked = {p.name for p in (SKILL / "scripts").iterdir()}
    assert linked == project  # every script, and nothing else
    for sub in ("scripts", "references", "assets"):
        for p in (SKILL / sub).iterdir():
            assert p.is_symlink(), f"{sub}/{p.name} must link to the project's file"
            target = p.resolve()
            assert target.is_file() and ROOT in target.parents, p
            assert "skills" not in target.relative_to(ROOT).parts
    assert (SKILL / "references" / "pipeline_config_schema.json").resolve() == (
        ROOT / "src" / "pipewarden" / "pipeline_config_schema.json"
    )


def _copy(tmp_path: Path) -> Path:
    dest = tmp_path / "data-engineer"
    shutil.copytree(SKILL, dest, symlinks=False)
    return dest


@pytest.mark.parametrize(
    "edit, ours, reference",
    [
        (lambda t: t.replace("name: data-engineer", "name: Data_Engineer"), "name:", "lowercase"),
        (lambda t: t.replace("name: data-engineer", "name: data-engineers"), "folder", "match"),
        (lambda t: t.replace("license: Apache-2.0", "triggers: load"), "'triggers'", "Unexpected"),
        (lambda t: t.replace("description: >-", "description: >-\n  " + "x" * 1100), "1024",
         "1024"),
    ],
)  # fmt: skip
def test_a_broken_front_matter_is_found_by_both(tmp_path, edit, ours, reference):
    dest = _copy(tmp_path)
    (dest / "SKILL.md").write_text(edit((dest / "SKILL.md").read_text()))
    got = check(dest)
    assert not got["ok"] and any(ours in p for p in got["problems"]), got["problems"]
    assert any(reference in p for p in skills_ref.validate(dest))


def test_drift_from_the_cli_is_found(tmp_path):
    """A command, an option, a script, a linked file, a tool or a Mage block that does not
    exist, and a tool the table leaves out."""
    dest = _copy(tmp_path)
    text = (dest / "SKILL.md").read_text()
    text = text.replace("`pipewarden run pipeline.yaml`", "`pipewarden run pipeline.yaml --fast`")
    text = text.replace("`pipewarden wait pipeline.yaml`", "`pipewarden hold pipeline.yaml`")
    text = text.replace("(`scripts/rca_agent.py`)", "(`scripts/rca_bot.py`)")
    text = text.replace("[references/rules.md](references/rules.md)", "[r](references/rulez.md)")
    text = text.replace("| `quarantine_replay` |", "| `quarantine_redo` |")
    text = text.replace("breaker_check, sentinel_check", "breaker_check, check_schema")
    (dest / "SKILL.md").write_text(text)
    (dest / "scripts" / "old_tool.py").write_text(
        "from _pipewarden import run\nrun(['frobnicate'])\n"
    )
    problems = "\n".join(check(dest)["problems"])
    for needle in ("--fast is not an option", "`pipewarden hold pipeline.yaml`: no such command",
                   "scripts/rca_bot.py", "references/rulez.md", "`quarantine_redo`: no such MCP tool",
                   "scripts/old_tool.py: does not run a pipewarden command",
                   "`quarantine_replay`: an MCP tool the table of tools does not name",
                   "`check_schema`: pipewarden.mage has no such block"):  # fmt: skip
        assert needle in problems, problems


def test_skill_install_copies_files_and_the_scripts_run(tmp_path, capsys):
    from pipewarden.cli import main

    target = tmp_path / "agent-skills"
    assert main(["skill", "install", str(target), "--format", "json"]) == 0
    dest = target / "data-engineer"
    assert not any(p.is_symlink() for p in dest.rglob("*"))
    assert (dest / "scripts" / "schema_sentinel.py").read_bytes() == (
        ROOT / "scripts" / "schema_sentinel.py"
    ).read_bytes()
    assert os.access(dest / "scripts" / "validate_dag.py", os.X_OK)
    assert check(dest)["ok"] and skills_ref.validate(dest) == []
    res = subprocess.run(
        [sys.executable, str(dest / "scripts" / "check_cyclic_dependencies.py"), "--help"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0 and "cycles" in res.stdout.lower()
    capsys.readouterr()
    assert main(["skill", "install", str(target)]) == 2  # no silent overwrite
    assert "--force" in capsys.readouterr().err
    (dest / "SKILL.md").write_text("stale")
    assert main(["skill", "install", str(target), "--force"]) == 0
    assert (dest / "SKILL.md").read_text() == (SKILL / "SKILL.md").read_text()
    assert main(["skill", "check", str(dest)]) == 0


@pytest.mark.slow
def test_the_wheel_ships_the_skills_files(tmp_path):
    """A wheel holds the files the links point at (setuptools copies their content)."""
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    (wheel,) = tmp_path.glob("pipewarden-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        base = "pipewarden/agent/skills/data-engineer/"
        assert {base + "SKILL.md", base + "scripts/_pipewarden.py",
                base + "references/run.md", base + "assets/pipeline.yaml"} <= names  # fmt: skip
        got = zf.read(base + "scripts/validate_dag.py")
    assert got == (ROOT / "scripts" / "validate_dag.py").read_bytes()
