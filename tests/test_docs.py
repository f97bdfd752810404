"""Every command is documented: a command without a section in docs/cli.md fails here."""

from __future__ import annotations

import re
from pathlib import Path

import click

from pipewarden.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def _commands(group: click.Group, prefix: str):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # the top group registers its commands lazily
        cmd = group.get_command(ctx, name)
        full = f"{prefix} {name}"
        yield full
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, full)


def test_every_command_has_a_section_in_docs_cli():
    text = (ROOT / "docs" / "cli.md").read_text()
    headings = set(re.findall(r"^#+ `([^`]+)`", text, flags=re.M))
    missing = [c for c in _commands(cli, "pipewarden") if c not in headings]
    assert not missing, f"commands without a section in docs/cli.md: {missing}"


def test_readme_gives_the_two_commands():
    text = (ROOT / "README.md").read_text()
    for marker in ("<!-- demo-command -->", "<!-- test-command -->"):
        after = text.split(marker, 1)[1].splitlines()
        assert after[1] == "```" and after[2].startswith("python3 -m venv .venv"), marker
