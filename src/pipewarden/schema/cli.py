"""``pipewarden sentinel``: a thin wrapper over :func:`pipewarden.schema.sentinel.sentinel`."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from ..cli import format_option
from ..errors import GateFailed
from ..output import emit, err_console, printable_doc
from .sentinel import sentinel


def ddl_script(ddl: list[str]) -> str:
    """The DDL as one script, in a transaction (``SET LOCAL`` needs one)."""
    if not ddl:
        return "-- nothing to change\n"
    return "BEGIN;\n" + "".join(f"{s};\n" for s in ddl) + "COMMIT;\n"


def _render(doc: dict, console) -> None:
    rows = doc["rows"]
    colour = {"pass": "green", "evolve": "yellow", "reject": "red"}[doc["decision"]]
    console.print(
        f"[bold]{escape(doc['source'])}[/] -> table [bold]{escape(doc['table'])}[/] "
        f"({doc['dialect']}): [bold {colour}]{doc['decision']}[/]"
        + (f" - {escape(doc['reason'])}" if doc["reason"] else "")
    )
    console.print(
        f"rows read {rows['read']}: {rows['accepted']} fit, {rows['quarantined']} would be "
        f"quarantined, {rows['discarded']} discarded (sentinel stores no rows: `pipewarden run` "
        f"loads them and keeps those in {escape(doc['table'])}__quarantine); schema version "
        f"{doc['from_version']} -> {doc['schema']['version']}"
    )
    if doc.get("table_from") == "source file name":
        console.print(
            "[yellow]the table is named after the source file: pass --table (or a target "
            "schema with a title) to keep one table across files[/]"
        )
    changes = doc["delta"]["changes"]
    if changes:
        table = Table("op", "column", "from", "to", "breaking", "action", box=None)
        for c in changes:
            table.add_row(
                c["op"], escape(repr(c["column"])), c["from"] or "", c["to"] or "",
                "yes" if c["breaking"] else "", c["action"],
            )  # fmt: skip
        console.print(table)
    for issue in doc["issues"][:5]:
        console.print(f"  row {issue['row']}: {issue['reason']} {escape(issue['message'])}")
    if doc["applied"]:
        console.print("applied: DDL run and schema version recorded")
    docs = doc.get("docs") or {}
    if docs.get("error"):
        console.print(f"[yellow]docs: {escape(docs['error'])}[/]")
    elif docs:
        done = f"commit {docs['commit'][:12]}" if docs.get("commit") else (
            f"{len(docs.get('written') or [])} docs file(s) written")  # fmt: skip
        console.print(f"docs {docs.get('docs_version', '')}: {done}")
    if doc["target_written"]:
        console.print(f"target written: {escape(doc['target']['path'])}")


@contextlib.contextmanager
def _progress(fmt: str):
    """A progress bar on stderr when it is a terminal and the output is text; else nothing."""
    console = err_console()
    if fmt == "json" or not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   console=console, transient=True)  # fmt: skip
    tasks: dict[str, Any] = {}
    with bar:

        def update(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                label = "reading every row" if stage == "infer" else "checking rows"
                tasks[stage] = bar.add_task(label, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def _docs_settings(path: str | None, git: str, apply: bool):
    if path is None:
        return None
    from ..errors import InputError

    if not apply:
        raise InputError("--docs needs --apply (docs follow an applied change)", key="docs")
    from pathlib import Path

    from ..reflect import settings_from_config

    return settings_from_config(
        {"docs": {"path": str(Path(path).resolve()), "git": git}, "_base_dir": Path.cwd(),
         "dataset": ""}
    )  # fmt: skip


@click.command("sentinel")
@click.option(
    "--source", required=True, help="JSON array, JSON Lines, CSV or Parquet file; - for stdin."
)
@click.option(
    "--target", help="Schema file: ours (schema.json) or a JSON Schema. Missing = first load."
)
@click.option(
    "--ddl",
    "show_ddl",
    is_flag=True,
    help="Print the DDL script on stdout (the summary goes to stderr).",
)
@click.option(
    "--dialect",
    type=click.Choice(["postgres", "duckdb"]),
    help="SQL dialect [default: postgres, or the --dsn's].",
)
@click.option("--table", help="Table (dataset) name [default: the source file's name].")
@click.option("--namespace", help="Database schema that holds the table.")
@click.option(
    "--contract",
    help="Contract file (YAML/JSON), one mode (freeze), or inline columns=freeze,data_type=quarantine,...",
)
@click.option(
    "--apply", is_flag=True, help="Run the DDL and record the schema version, in one transaction."
)
@click.option(
    "--dsn", help="PostgreSQL DSN or DuckDB file: the current schema comes from its history."
)
@click.option("--write-target", "write", is_flag=True, help="Write the evolved schema to --target.")
@click.option(
    "--docs",
    "docs_path",
    type=click.Path(file_okay=False),
    help="With --apply: regenerate the table's docs in this folder (docs/reflect.md).",
)
@click.option(
    "--docs-git",
    type=click.Choice(["commit", "stage", "off"]),
    default="off",
    show_default=True,
    help="With --docs: commit the docs and the migration, stage them, or only write them.",
)
@click.option(
    "--input-format",
    "input_format",
    type=click.Choice(["auto", "json", "jsonl", "csv", "parquet"]),
    default="auto",
    show_default=True,
)
@click.option(
    "--chunk-rows", type=click.IntRange(min=1, max=100_000_000), default=100_000, show_default=True
)
@click.option("--encoding", default="utf-8", show_default=True)
@click.option(
    "--records-path",
    help="Where the records are inside a JSON document: data.items or /data/items.",
)
@click.option(
    "--short-rows",
    type=click.Choice(["pad", "quarantine", "error"]),
    default="pad",
    show_default=True,
    help="A CSV row with fewer fields than the header: read the rest as empty, hold it, or fail.",
)
@format_option
def sentinel_command(
    source, target, show_ddl, dialect, table, namespace, contract, apply, dsn, write,
    docs_path, docs_git, input_format, chunk_rows, encoding, records_path, short_rows, fmt,
):  # fmt: skip
    """Infer a batch's schema from every row, diff it against the target, plan safe DDL."""
    with _progress(fmt) as progress:
        doc = sentinel(
            source, target, fmt=input_format, dialect=dialect, table=table,
            namespace=namespace, contract=contract, apply=apply, dsn=dsn, write=write,
            chunk_rows=chunk_rows, encoding=encoding, progress=progress,
            docs=_docs_settings(docs_path, docs_git, apply),
            records_path=records_path, short_rows=short_rows,
        )  # fmt: skip
    if fmt == "json":
        emit(doc, fmt)
    elif show_ddl:
        _render(printable_doc(doc, one_line=True), err_console())
        sys.stdout.write(ddl_script(doc["ddl"]))
    else:
        emit(doc, fmt, _render, one_line=True)
    if doc["decision"] == "reject":
        raise GateFailed(doc["reason"] or "the contract rejects the batch", doc)
    return 0


COMMANDS = [sentinel_command]
