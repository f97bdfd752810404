"""Commands of the main job: ``pipewarden run``, ``pipewarden quarantine list|replay``,
``pipewarden demo``. Each parses its arguments and calls one function of :mod:`pipewarden.run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from .cli import format_option
from .errors import EXIT_OK, GateFailed, PipewardenError
from .output import emit


def _short(source: str) -> str:
    """A source path as a short name for the text report (the JSON report has it in full)."""
    return Path(source).name if source not in ("-", "<stdin>") else source


STATUS_STYLE = {
    "loaded": "green",
    "skipped": "dim",
    "blocked": "bold red",
    "failed": "bold red",
    "invalid": "bold red",
}


MAX_LISTED = 25  # schema changes listed per batch in the text output
MAX_STATEMENT = 400  # characters of a DDL statement shown in the text output
ALL_IN_JSON = " (--format json lists everything)"


def _clip(stmt: str) -> str:
    if len(stmt) <= MAX_STATEMENT:
        return stmt
    return f"{stmt[:MAX_STATEMENT]} ... ({len(stmt):,} characters{ALL_IN_JSON})"


def _phases_line(phases: dict) -> str:
    """``rows/s per phase: read 950k/s (2.1 s), ...`` from a batch's ``phases``."""
    from .phases import rate

    parts = [
        f"{name} {rate(p['rows'], p['seconds'])} ({p['seconds']:.1f} s)"
        for name, p in phases.items()
        if p["rows"]
    ]
    return "rows/s per phase: " + ", ".join(parts)


def _render_run(doc: dict, console: Any) -> None:
    st = doc["store"]
    console.print(
        f"[bold]pipeline[/] {escape(doc['pipeline'])} -> dataset [bold]{escape(doc['dataset'])}[/]"
        f" in {escape(st['kind'])} {escape(str(st['url']))} (schema {escape(st['schema'])})"
    )
    table = Table(show_edge=False)
    for col in ("batch", "status", "decision", "read", "loaded", "quarantined", "schema"):
        table.add_column(
            col, justify="right" if col in ("read", "loaded", "quarantined") else "left"
        )
    for b in doc["batches"]:
        style = STATUS_STYLE.get(b["status"], "")
        table.add_row(
            escape(_short(b["source"])),
            f"[{style}]{b['status']}[/]" if style else b["status"],
            escape(str(b.get("decision") or "")),
            str(b["rows_read"]),
            str(b["rows_loaded"]),
            str(b["rows_quarantined"]),
            str(b.get("schema_version", "")),
        )
    console.print(table)
    for b in doc["batches"]:
        lines = []
        changes = (b.get("delta") or {}).get("changes", [])
        for ch in changes[:MAX_LISTED]:
            types = " -> ".join(str(ch[k]) for k in ("from", "to") if ch.get(k))
            lines.append(
                f"  {ch.get('op')} {escape(str(ch.get('column')))} {escape(types)}: "
                f"{escape(str(ch.get('action')))}"
                + (" [red](breaking)[/]" if ch.get("breaking") else "")
            )
        if len(changes) > MAX_LISTED:
            lines.append(f"  ... and {len(changes) - MAX_LISTED} more changes{ALL_IN_JSON}")
        for stmt in b.get("ddl") or []:
            lines.append(f"  [dim]{escape(_clip(stmt))}[/]")
        for name, rep in (b.get("steps") or {}).items():
            for part in rep if isinstance(rep, list) else [rep]:
                if isinstance(part, dict) and part.get("summary"):
                    lines.append(f"  {escape(name)}: {escape(str(part['summary']))}")
        if b.get("phases"):
            lines.append(f"  [dim]{escape(_phases_line(b['phases']))}[/]")
        if b.get("reasons"):
            why = ", ".join(f"{k}: {v}" for k, v in sorted(b["reasons"].items()))
            lines.append(f"  quarantined because {escape(why)}")
        if b.get("reason") and b["status"] != "loaded":
            lines.append(f"  {escape(b['reason'])}")
        docs = b.get("docs") or {}
        if docs.get("error"):
            lines.append(f"  [yellow]docs: {escape(docs['error'])}[/]")
        elif docs:
            done = f"commit {docs['commit'][:12]}" if docs.get("commit") else (
                f"{len(docs.get('staged') or [])} staged" if docs.get("staged") else
                f"{len(docs.get('written') or [])} files written")  # fmt: skip
            lines.append(f"  docs {docs.get('docs_version', '')} ({docs['reason']}): {done}")
        if b.get("error"):
            lines.append(
                f"  [red]failed: {escape(b['error'])}; nothing of this batch was written[/]"
            )
        if lines:
            console.print(f"[bold]{escape(_short(b['source']))}[/]")
            for line in lines:
                console.print(line)
    if doc.get("not_run"):
        console.print(f"not run after the failure: {escape(', '.join(doc['not_run']))}")
    t = doc["totals"]
    held = (
        f" + {t['rows_not_written']} in blocked or failed batches (nothing written)"
        if t.get("rows_not_written")
        else ""
    )
    console.print(
        f"[bold]total[/]: {t['rows_read']} read = {t['rows_loaded']} loaded + "
        f"{t['rows_quarantined']} quarantined{held}, {t['batches']} batches"
    )


def _render_quarantine(doc: dict, console: Any) -> None:
    reason = (doc.get("filters") or {}).get("reason")
    only = f" (reason {escape(reason)})" if reason else ""
    for name, c in sorted(doc["counts"].items()):
        console.print(
            f"[bold]{escape(name)}[/]: {c['pending']} pending, {c['replayed']} replayed{only}"
        )
    if not doc["rows"]:
        console.print("no quarantined rows match")
        return
    for r in doc["rows"]:
        prev = r["preview"]
        prev_text = (
            ", ".join(f"{k}={v}" for k, v in prev.items()) if isinstance(prev, dict) else prev
        )
        where = f" on {r['column']}" if r["column"] else ""
        console.print(
            f"{escape(r['dataset'])} row {r['row']} (batch {escape(r['batch_id'][:12])}, "
            f"schema v{r['schema_version']}) {r['status']}: [bold]{escape(r['reason'])}[/]"
            f"{escape(where)}: {escape(str(r['message'] or ''))}"
        )
        console.print(f"    [dim]{escape(prev_text)}[/]")


def _render_replay(doc: dict, console: Any) -> None:
    console.print(
        f"[bold]{escape(doc['dataset'])}[/]: {doc['rows_considered']} pending rows replayed: "
        f"{doc['rows_replayed']} loaded, {doc['rows_still_quarantined']} still quarantined"
    )
    for stmt in doc.get("ddl") or []:
        console.print(f"  [dim]{escape(_clip(stmt))}[/]")
    if doc.get("reasons"):
        why = ", ".join(f"{k}: {v}" for k, v in sorted(doc["reasons"].items()))
        console.print(f"  still quarantined because {escape(why)}")
    listed = doc.get("still_held") or []
    for r in listed[:MAX_HELD_SHOWN]:
        where = f" on {r['column']}" if r.get("column") else ""
        console.print(
            f"  row {r['row']} of batch {escape(r['batch_id'][:12])}: [bold]{escape(r['reason'])}"
            f"[/]{escape(where)}: {escape(str(r.get('message') or ''))}"
        )
    more = doc["rows_still_quarantined"] - min(len(listed), MAX_HELD_SHOWN)
    if listed and more > 0:
        console.print(
            f"  ... and {more} more still held (pipewarden quarantine list shows them all)"
        )


MAX_HELD_SHOWN = 20  # rows a replay's text output lists with why they stayed


def _render_demo(doc: dict, console: Any) -> None:
    console.print(
        f"[bold]demo[/]: copied {len(doc['files'])} files into {escape(doc['directory'])}"
    )
    _render_run(doc["run"], console)
    console.print()
    console.print("[bold]quarantine[/] (masked previews):")
    _render_quarantine(doc["quarantine"], console)
    console.print()
    console.print("[bold]next[/]:")
    for line in doc["next"]:
        console.print(f"  {escape(line)}")


def _finish(doc: dict, fmt: str, render) -> None:
    emit(doc, fmt, render, one_line=True)
    verdict = (doc.get("run") or doc).get("rca")
    if verdict:  # the one-line RCA of a failed run, and where the whole report is
        from .output import err_console

        err_console().print(
            f"[bold]rca[/]: {escape(verdict['summary'])}\n  whole report: "
            f"{escape(verdict['command'])}"
        )
    batches = (doc.get("run") or doc).get("batches", [])
    invalid = [b for b in batches if b["status"] == "invalid"]
    if invalid:  # the report is printed (one JSON document); the error goes to stderr
        raise PipewardenError(invalid[0]["error"])
    if doc.get("exit_code", EXIT_OK) != EXIT_OK:
        bad = [
            b for b in (doc.get("run") or doc)["batches"] if b["status"] in ("blocked", "failed")
        ]
        why = "; ".join(
            f"{b['source']}: {b['status']}" + (f": {b['error']}" if b.get("error") else "")
            for b in bad
        )
        failed = GateFailed(why or "run failed", doc)
        failed.exit_code = doc["exit_code"]  # 2 for a database fault of the configuration
        raise failed


@click.command("run")
@click.argument("pipeline", type=click.Path(dir_okay=False))
@format_option
def run_command(pipeline: str, fmt: str) -> None:
    """Run a pipeline config: load every source batch through the sentinel and the steps.

    Exit 0 when every batch was loaded (or skipped: already loaded), 1 when a batch was blocked
    or failed (nothing of it was written), 2 for a bad config or bad input.
    """
    from .run import run_pipeline

    _finish(run_pipeline(pipeline, fmt=fmt), fmt, _render_run)


@click.group("quarantine")
def quarantine_group() -> None:
    """List and replay the rows the runs held back."""


@quarantine_group.command("list")
@click.argument("pipeline", required=False, type=click.Path(dir_okay=False))
@click.option("--store", "store_url", help="Store URL instead of a pipeline config.")
@click.option("--schema", "namespace", help="Schema (namespace) of the store's tables.")
@click.option("--dataset", help="Only this dataset (default: the config's, or every dataset).")
@click.option("--status", type=click.Choice(["pending", "replayed"]), help="Only this status.")
@click.option("--reason", help="Only this reason code (e.g. type_mismatch, pii).")
@click.option("--limit", type=click.IntRange(min=1, max=2**62), default=100, show_default=True)
@format_option
def quarantine_list(
    pipeline: str | None,
    store_url: str | None,
    namespace: str | None,
    dataset: str | None,
    status: str | None,
    reason: str | None,
    limit: int,
    fmt: str,
) -> None:
    """List quarantined rows with masked previews (the raw payload is never printed)."""
    from .run import list_quarantine

    doc = list_quarantine(
        pipeline,
        store_url=store_url,
        namespace=namespace,
        dataset=dataset,
        status=status,
        reason=reason,
        limit=limit,
    )
    emit(doc, fmt, _render_quarantine, one_line=True)


@quarantine_group.command("replay")
@click.argument("pipeline", type=click.Path(dir_okay=False))
@click.option("--reason", help="Only rows quarantined for this reason code.")
@click.option("--limit", type=click.IntRange(min=1, max=2**62), help="At most this many rows.")
@format_option
def quarantine_replay(pipeline: str, reason: str | None, limit: int | None, fmt: str) -> None:
    """Re-evaluate pending rows against the pipeline's current schema, contract and steps; load
    the rows that pass now (one transaction)."""
    from .run import replay_quarantine

    emit(
        replay_quarantine(pipeline, reason=reason, limit=limit),
        fmt,
        _render_replay,
        one_line=True,
    )


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    default="pipewarden-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where to copy the sample and create warehouse.duckdb.",
)
@format_option
def demo_command(directory: str, fmt: str) -> None:
    """Run the main job on bundled sample data into a local DuckDB file (an evolution and a
    quarantine), then list the quarantine."""
    from .run import run_demo

    _finish(run_demo(directory, fmt=fmt), fmt, _render_demo)


COMMANDS = [run_command, quarantine_group, demo_command]
