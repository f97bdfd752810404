"""``pipewarden mcp`` and ``pipewarden skill install|check``."""

from __future__ import annotations

import click

from ..cli import format_option
from ..output import emit


@click.command("mcp")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--store", "store_url", default=None,
              help="A store for the resources (instead of a pipeline config).")  # fmt: skip
@click.option("--schema", "namespace", default=None, help="Namespace of --store.")
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio",
              show_default=True, help="stdio, or streamable HTTP at http://HOST:PORT/mcp.")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True, help="With --transport http.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
def mcp_command(config, store_url, namespace, transport, host, port):
    """Serve every pipewarden command as an MCP tool (pip install 'pipewarden[mcp]').

    CONFIG (a pipeline config) is the default of the tools that take one, and the store the
    resources read (the datasets, their schema, docs and run log)."""
    from ..errors import InputError

    if config is not None:
        from ..run import load_config

        load_config(config)  # a bad config is exit 2 now, not at the first tool call
    if transport == "http" and host not in ("127.0.0.1", "localhost", "::1"):
        raise InputError(
            f"--host {host}: the MCP server has no authentication; it listens on loopback only",
            hint="put it behind a proxy that authenticates, and keep --host 127.0.0.1",
        )
    from .server import serve

    serve(config, store_url, namespace, transport=transport, host=host, port=port)


@click.group("skill")
def skill_group() -> None:
    """The data-engineer skill: SKILL.md, scripts, references and assets for AI agents."""


@skill_group.command("install")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Replace an installed copy.")
@format_option
def skill_install(directory, force, fmt):
    """Copy the skill to DIRECTORY/data-engineer (e.g. ~/.claude/skills or .agents/skills)."""
    from .skill import install

    doc = install(directory, force=force)

    def render(d, console):
        console.print(f"installed the skill [bold]{d['name']}[/] in {d['path']} "
                      f"({len(d['files'])} files)")  # fmt: skip

    emit(doc, fmt, render)


@skill_group.command("check")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@format_option
def skill_check(directory, fmt):
    """Check a skill folder (default: the one shipped): the front matter and layout rules of
    the Agent Skills format, and that its scripts and references are the project's own."""
    from ..errors import GateFailed
    from .skill import check

    doc = check(directory)

    def render(d, console):
        for p in d["problems"]:
            console.print(f"[red]problem[/] {p}")
        console.print(("ok: " if d["ok"] else "failed: ") + f"{d['path']}, {d['files']} files")

    emit(doc, fmt, render)
    if not doc["ok"]:
        raise GateFailed(f"{len(doc['problems'])} problem(s) in the skill", doc)


COMMANDS = [mcp_command, skill_group]
