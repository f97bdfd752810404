"""``pipewarden wait``: wait for a pipeline's dependencies with learned timeouts."""

from __future__ import annotations

from typing import Any

import click

from ..cli import format_option
from ..errors import GateFailed
from ..output import emit


def _render(doc: dict, console: Any) -> None:
    from rich.markup import escape

    for r in doc["dependencies"]:
        style = {"satisfied": "green", "skipped": "yellow"}.get(r["status"], "bold red")
        waited = r.get("waited_seconds")
        console.print(
            f"[{style}]{r['status']}[/] {escape(r['dependency'])} after {waited:.1f} s "
            f"(timeout {r.get('timeout_seconds', 0):.0f} s"
            + (f": {escape(r['timeout_from'])}" if r.get("timeout_from") else "")
            + ")"
        )
        if r.get("reason"):
            console.print(f"  {escape(r['reason'])}")


@click.command("wait")
@click.argument("pipeline", type=click.Path(dir_okay=False))
@click.option("--dependency", "name", help="Only this dependency (default: all, in order).")
@format_option
def wait_command(pipeline: str, name: str | None, fmt: str) -> None:
    """Wait for the dependencies a pipeline config declares (a file, a table's new batch, an
    upstream run, an HTTP health check, a PostgreSQL query), each with a timeout learned
    from its past waits; escalate by the pipeline's criticality while waiting.

    Exit 0 when every dependency arrived (or was skipped: soft_fail), 1 when one timed out,
    2 for a bad config.
    """
    from .wait import wait_for

    doc = wait_for(pipeline, name)
    emit(doc, fmt, _render)
    if doc["exit_code"]:
        late = [r["dependency"] for r in doc["dependencies"] if r["status"] == "timed_out"]
        raise GateFailed(f"dependency timed out: {', '.join(late)}", doc)


COMMANDS = [wait_command]
