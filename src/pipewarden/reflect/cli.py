"""``pipewarden docs build|check``: thin wrappers over :mod:`pipewarden.reflect.docs`."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from ..cli import format_option
from ..errors import GateFailed
from ..output import emit
from .docs import GIT_MODES, docs_build, docs_check

_common = [
    click.argument("config", required=False, type=click.Path(dir_okay=False)),
    click.option("--store", "store_url", help="Store URL instead of a config (with --path)."),
    click.option("--namespace", help="Schema of the store's tables (with --store)."),
    click.option("--path", help="The docs folder [default: the config's docs.path]."),
    click.option("--dataset", "datasets", multiple=True, help="Only this dataset (repeatable)."),
]


def _options(fn):
    for deco in reversed(_common):
        fn = deco(fn)
    return format_option(fn)


@click.group("docs")
def docs_group() -> None:
    """Docs of the datasets, regenerated from the store (reflection loop)."""


def _render_build(doc: dict, console: Any) -> None:
    console.print(
        f"docs of {len(doc['datasets'])} dataset(s) in [bold]{escape(doc['path'])}[/]: "
        f"{len(doc['written'])} file(s) written, {doc.get('comments', 0)} comment(s) updated"
    )
    for rel in doc["written"]:
        console.print(f"  {escape(rel)}")
    if doc.get("commit"):
        console.print(f"committed {doc['commit'][:12]}")
    elif doc.get("staged"):
        console.print(f"staged {len(doc['staged'])} file(s)")
    for note in doc.get("notes") or []:
        console.print(f"[yellow]note:[/] {escape(note)}")


@docs_group.command("build")
@_options
@click.option("--git", "git_mode", type=click.Choice(GIT_MODES),
              help="Commit, stage or only write the files [default: the config's docs.git].")  # fmt: skip
def build_command(config, store_url, namespace, path, datasets, fmt, git_mode):
    """Regenerate the docs (pages, index, migrations) from the store and write the
    descriptions to the database."""
    doc = docs_build(config, store_url=store_url, namespace=namespace, path=path,
                     datasets=list(datasets) or None, git_mode=git_mode)  # fmt: skip
    emit(doc, fmt, _render_build)
    return 0


def _render_check(doc: dict, console: Any) -> None:
    if doc["ok"]:
        console.print(f"[green]docs up to date[/] in {escape(doc['path'])}")
    for d in doc["drift"]:
        console.print(f"[red]{escape(d['status'])}[/]: {escape(d['file'])}")
        for line in d.get("diff", [])[2:12]:
            console.print(f"    {escape(line)}")
    if doc["comments_to_update"]:
        console.print(
            f"{doc['comments_to_update']} database comment(s) differ from the descriptions "
            "(docs build writes them)"
        )
    for note in doc.get("notes") or []:
        console.print(f"[yellow]note:[/] {escape(note)}")


@docs_group.command("check")
@_options
def check_command(config, store_url, namespace, path, datasets, fmt):
    """Exit 1 when the docs differ from what the store says (a CI gate, a pre-commit hook)."""
    doc = docs_check(config, store_url=store_url, namespace=namespace, path=path,
                     datasets=list(datasets) or None)  # fmt: skip
    emit(doc, fmt, _render_check)
    if not doc["ok"]:
        raise GateFailed(
            f"{len(doc['drift'])} docs file(s) differ from the store: run pipewarden docs build",
            doc,
        )
    return 0


COMMANDS = [docs_group]
