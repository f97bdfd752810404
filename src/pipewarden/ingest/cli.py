"""``pipewarden ingest status|reset``."""

from __future__ import annotations

import click

from ..cli import format_option
from ..output import emit


def _target(f):
    f = click.option("--schema", "namespace", default=None, help="Namespace of the store.")(f)
    f = click.option(
        "--store", "store_url", default=None, help="Store URL (default: $PIPEWARDEN_STORE)."
    )(f)
    f = click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="A pipeline config: its store and source name.",
    )(f)
    return f


def _render_status(doc, console):
    from rich.markup import escape

    if not doc["hosts"]:
        known = ", ".join(doc["known"]) or "none"
        what = f"source {doc['source']!r}" if doc["source"] else "any source"
        console.print(f"no memory of {escape(what)} (sources with a memory: {escape(known)})")
        return
    for h in doc["hosts"]:
        ceiling = h.get("ceiling")
        console.print(
            f"[bold]{escape(h['source'])}[/] @ {escape(h['host'])}: limit "
            f"[bold]{h.get('limit')}[/]" + (f" (refused near {ceiling})" if ceiling else "")
            + f", latency {h.get('latency_ms')} ms, law {h.get('law')}"
        )  # fmt: skip
        conv = ", ".join(f"{k}: {v}" for k, v in (h.get("conventions") or {}).items())
        console.print(
            f"  last throttle: {h.get('last_throttle_at') or 'never'}; headers: {conv or 'none'};"
            f" {h.get('runs', 0)} run(s), {h.get('requests', 0)} requests, "
            f"{h.get('throttled', 0)} throttled; updated {h.get('updated_at')}"
        )


@click.group("ingest")
def ingest_group() -> None:
    """The adaptive controller's memory: learned limits per source and host."""


@ingest_group.command("status")
@click.argument("source", required=False)
@_target
@format_option
def status_cmd(source, config_path, store_url, namespace, fmt):
    """Show what was learned about SOURCE (every source without it)."""
    from .status import ingest_status

    doc = ingest_status(source, config_path=config_path, store_url=store_url, namespace=namespace)
    emit(doc, fmt, _render_status)


@ingest_group.command("reset")
@click.argument("source", required=False)
@click.option("--host", default=None, help="Only this host (default: every host of SOURCE).")
@_target
@format_option
def reset_cmd(source, host, config_path, store_url, namespace, fmt):
    """Forget what was learned about SOURCE: the next run starts cold."""
    from .status import ingest_reset

    doc = ingest_reset(
        source, host=host, config_path=config_path, store_url=store_url, namespace=namespace
    )
    emit(
        doc,
        fmt,
        lambda d, c: c.print(f"forgot {d['deleted']} host memory(ies) of {d['source']!r}"),
    )


COMMANDS = [ingest_group]
