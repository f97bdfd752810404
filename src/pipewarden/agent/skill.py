"""The data-engineer skill: ``skills/data-engineer/`` in the repository, shipped in the package
(``pipewarden/agent/skills`` links to it, and a wheel holds the files themselves).

Its ``scripts/`` are links to the project's ``scripts/*.py``, its ``references/`` links to the
docs and the JSON schemas, its ``assets/`` links to the scaffold templates and the sample: a
checkout cannot hold a copy that drifts, and ``install`` copies the files the links point at.
:func:`check` applies the Agent Skills format's rules (front matter, name, description, the
fields it allows, a body under 500 lines, the files the body links to) and checks that every
``pipewarden`` command and option, script and MCP tool the body names exists.
"""

from __future__ import annotations

import re
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError

NAME = "data-engineer"
NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
ALLOWED = {"name", "description", "license", "compatibility", "metadata", "allowed-tools"}
MAX_BODY_LINES = 500


def shipped() -> Path:
    """The skill folder this installation ships."""
    return Path(str(resources.files("pipewarden.agent").joinpath("skills", NAME)))


def install(directory: str | Path, *, force: bool = False) -> dict[str, Any]:
    """Copy the skill to ``directory/data-engineer`` (the files, not the links), all or
    nothing: written beside the target and moved into place."""
    src = shipped()
    if not (src / "SKILL.md").is_file():  # pragma: no cover - a broken installation
        raise InputError(f"the skill is missing from this installation ({src})",
                         hint="reinstall pipewarden")  # fmt: skip
    root = Path(directory).expanduser()
    if root.exists() and not root.is_dir():
        raise InputError("not a folder", file=str(root), hint="give the skills folder")
    dest = root / NAME
    if dest.exists() and not force:
        raise InputError("the skill is already installed here", file=str(dest),
                         hint="--force replaces it")  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{NAME}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, symlinks=False, ignore=shutil.ignore_patterns("__pycache__"))
    for script in (tmp / "scripts").glob("*.py"):
        if not script.name.startswith("_"):
            script.chmod(0o755)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    return {"name": NAME, "path": str(dest), "files": files}


def front_matter(text: str) -> tuple[dict[str, Any], list[str], list[str]]:
    """(front matter, body lines, problems) of a SKILL.md."""
    if not text.startswith("---\n"):
        return {}, text.splitlines(), ["SKILL.md must start with a YAML front matter (---)"]
    head, sep, body = text[4:].partition("\n---\n")
    if not sep:
        return {}, [], ["the front matter is not closed by a line ---"]
    from ..yamlsafe import safe_load

    try:
        meta = safe_load(head)
    except yaml.YAMLError as exc:
        return {}, body.splitlines(), [f"the front matter is not valid YAML: {exc}"]
    if not isinstance(meta, dict):
        return {}, body.splitlines(), ["the front matter must be a mapping"]
    return meta, body.splitlines(), []


def format_problems(folder: Path, meta: dict[str, Any], body: list[str]) -> list[str]:
    """The Agent Skills format's rules."""
    problems = []
    for key in sorted(set(meta) - ALLOWED):
        problems.append(f"front matter: {key!r} is not a field of the format "
                        f"({', '.join(sorted(ALLOWED))})")  # fmt: skip
    name = meta.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > 64:
        problems.append("name: 1-64 lowercase letters, digits and single hyphens, "
                        "not at either end")  # fmt: skip
    elif name != folder.name:
        problems.append(f"name: {name!r} must equal the folder's name {folder.name!r}")
    desc = meta.get("description")
    if not isinstance(desc, str) or not desc.strip() or len(desc) > 1024:
        problems.append("description: 1-1024 characters saying what the skill does and when")
    comp = meta.get("compatibility")
    if comp is not None and (not isinstance(comp, str) or not 1 <= len(comp) <= 500):
        problems.append("compatibility: 1-500 characters")
    md = meta.get("metadata")
    if md is not None and not (
        isinstance(md, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in md.items())  # fmt: skip
    ):
        problems.append("metadata: a mapping of strings to strings")
    tools = meta.get("allowed-tools")
    if tools is not None and not isinstance(tools, str):
        problems.append("allowed-tools: a space-separated string")
    if len(body) >= MAX_BODY_LINES:
        problems.append(f"the body has {len(body)} lines: keep it under {MAX_BODY_LINES} "
                        "and move detail to references/")  # fmt: skip
    return problems


LINK = re.compile(r"\]\(((?:scripts|references|assets)/[^)#\s]*)")
SCRIPT = re.compile(r"`?(scripts/[A-Za-z0-9_]+\.py)")
COMMAND = re.compile(r"`pipewarden ([^`]+)`")
TOOL_ROW = re.compile(r"^\| [^|]+ \| ((?:`[a-z_]+`(?:, )?)+) \|")


def _cli_command(words: list[str]):
    """The click command ``pipewarden WORDS...`` names, and the words after it."""
    from ..cli import cli, load_all

    load_all()
    cmd: Any = cli
    rest = list(words)
    while rest and hasattr(cmd, "commands") and rest[0] in cmd.commands:
        cmd = cmd.commands[rest.pop(0)]
    return (None if cmd is cli else cmd), rest


MAGE_IMPORT = re.compile(r"from pipewarden\.mage import\s+([A-Za-z_][\w,\s]*)")


def _mage_names(text: str) -> list[str]:
    """The names SKILL.md imports from pipewarden.mage that it does not have."""
    import pipewarden.mage as mage

    problems = []
    for m in MAGE_IMPORT.finditer(text):
        for name in re.findall(r"[A-Za-z_]\w*", m.group(1)):
            if not hasattr(mage, name):
                problems.append(f"`{name}`: pipewarden.mage has no such block")
    return problems


def drift_problems(folder: Path, body: list[str]) -> list[str]:
    """What the body names that does not exist: a linked file, a script, a command or one of
    its options, an MCP tool, a Mage block of pipewarden.mage; and an MCP tool the table of
    tools leaves out."""
    problems = []
    text = "\n".join(body)
    for rel in sorted(set(LINK.findall(text)) | set(SCRIPT.findall(text))):
        if not (folder / rel).exists():
            problems.append(f"{rel}: named in SKILL.md, missing from the skill")
    for command in sorted(set(COMMAND.findall(text))):
        words = command.split()
        cmd, rest = _cli_command(words)
        if cmd is None:
            problems.append(f"`pipewarden {command}`: no such command")
            continue
        options = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
        for word in rest:
            flag = word.split("=", 1)[0]
            if flag.startswith("--") and flag not in options:
                problems.append(f"`pipewarden {command}`: {flag} is not an option of "
                                f"`pipewarden {' '.join(words[: len(words) - len(rest)])}`")  # fmt: skip
    from .server import TOOLS as tools

    named = set()
    for line in body:
        m = TOOL_ROW.match(line)
        if m:
            for name in re.findall(r"`([a-z_]+)`", m.group(1)):
                named.add(name)
                if name not in tools:
                    problems.append(f"`{name}`: no such MCP tool")
    for name in sorted(set(tools) - named):
        problems.append(f"`{name}`: an MCP tool the table of tools does not name")
    problems += _mage_names(text)
    for script in (
        sorted((folder / "scripts").glob("*.py")) if (folder / "scripts").is_dir() else []
    ):
        if script.name.startswith("_"):
            continue
        m = re.search(r"run\((\[[^\]]*\])\)", script.read_text(encoding="utf-8"))
        words = yaml.safe_load(m.group(1)) if m else None
        if not words or _cli_command(words)[0] is None:
            problems.append(f"scripts/{script.name}: does not run a pipewarden command")
    return problems


def check(directory: str | Path | None = None) -> dict[str, Any]:
    """``pipewarden skill check``: the problems of a skill folder (default: the shipped one)."""
    folder = Path(directory) if directory is not None else shipped()
    skill_md = folder / "SKILL.md"
    if not skill_md.is_file():
        raise InputError("no SKILL.md here", file=str(folder), hint="give the skill's folder")
    meta, body, problems = front_matter(skill_md.read_text(encoding="utf-8"))
    if not problems:
        problems = format_problems(folder.resolve(), meta, body) + drift_problems(folder, body)
    files = sum(1 for p in folder.rglob("*") if p.is_file())
    return {"path": str(folder), "name": meta.get("name"), "ok": not problems,
            "problems": problems, "files": files, "body_lines": len(body)}  # fmt: skip
