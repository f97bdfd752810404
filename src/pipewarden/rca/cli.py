"""``pipewarden rca`` (explain a failure) and ``pipewarden incidents list|resolve``."""

from __future__ import annotations

import os
import sys
from contextlib import suppress
from pathlib import Path
from typing import Any

import click

from ..cli import format_option
from ..errors import GateFailed, InputError
from ..output import emit

MAX_LOG = 64 * 1024 * 1024  # bytes of a log file read (the parser keeps its head and tail)


class _WrapCommand(click.Command):
    """Everything after ``--`` is the command to run, never an option or the log file."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            i = args.index("--")
            ctx.meta["pw_command"] = args[i + 1 :]
            args = args[:i]
        return super().parse_args(ctx, args)


def _render(doc: dict, console: Any) -> None:
    from rich.markup import escape

    v = doc["verdict"]
    style = "bold red" if v["class"] != "unknown" else "yellow"
    console.print(f"[{style}]{escape(v['class'])}[/] ({v['confidence']:.0%}): {escape(v['title'])}")
    exc = doc.get("exception") or {}
    if exc.get("type"):
        where = exc.get("top_frame") or {}
        at = f" at {where['file']}:{where['line']} in {where['function']}" if where else ""
        console.print(f"  {escape(exc['type'])}: {escape(exc.get('message') or '')}{escape(at)}")
    for c in doc["causes"]:
        console.print(
            f"[bold]cause[/] {escape(c['class'])} {c['confidence']:.0%}"
            + (" (retryable)" if c["retryable"] else "")
        )
        for e in c["evidence"][:3]:
            line = f"line {e['line']}: " if e.get("line") else ""
            console.print(
                f"    {e['level']} {escape(str(e['kind']))}={escape(str(e['value']))} "
                f"[dim]{escape(line + (e.get('excerpt') or ''))}[/]"
            )
    if doc["fixes"]:
        console.print("[bold]fixes[/]")
        for i, f in enumerate(doc["fixes"][:5], 1):
            origin = f" [dim]({f['from']})[/]" if f.get("from") else ""
            console.print(f"  {i}. {escape(f['text'])}{origin}")
    r = doc["retry"]
    after = f", after {r['after_seconds']:g} s (Retry-After)" if r.get("after_seconds") else ""
    console.print(f"[bold]retry[/]: {'yes' if r['retry'] else 'no'}{after}: {escape(r['why'])}")
    for s in doc.get("similar") or []:
        res = s.get("resolution") or {}
        how = (
            f"resolved ({res.get('how')}): {res.get('fix') or ''} {res.get('note') or ''}".strip()
            if res
            else "still open"
        )
        console.print(
            f"[bold]seen before[/] {s['fingerprint']} x{s.get('count')} "
            f"(similarity {s['similarity']:.2f}): {escape(how)}"
        )
    code = (doc.get("context") or {}).get("code") or {}
    if code.get("commits"):
        since = code.get("since")
        label = (
            f"commits since the last success ({since[:12]})"
            if since
            else "recent commits (no successful run recorded)"
        )
        console.print(f"[bold]{label}[/]: " + escape("; ".join(code["commits"][:5])))
    if code.get("changed_files"):
        console.print("[bold]changed files[/]: " + escape(", ".join(code["changed_files"][:10])))
    data = (doc.get("context") or {}).get("data") or {}
    if data.get("schema_changes"):
        console.print(
            f"[bold]schema changes since the last success[/]: {len(data['schema_changes'])}"
        )
    if doc.get("llm"):
        llm = doc["llm"]
        if llm.get("error"):
            console.print(f"[dim]LLM: {escape(llm['error'])}[/]")
        else:
            console.print(
                f"[bold]LLM ({escape(llm['model'])})[/]: {escape(llm.get('summary') or '')}"
            )
            for f in llm.get("fixes") or []:
                console.print(f"  - {escape(f)}")
    console.print(f"[dim]fingerprint {doc['fingerprint']}: {escape(doc['template'][:160])}[/]")


def _read_log(path: str) -> str:
    if path == "-":
        data = sys.stdin.buffer.read(MAX_LOG)
        label = "<stdin>"
    else:
        p = Path(path)
        if p.is_dir():
            raise InputError("is a folder, not a log file", file=path)
        try:
            with open(p, "rb") as f:
                size = p.stat().st_size
                if size > MAX_LOG:  # the head and the tail: where a failure is
                    head = f.read(MAX_LOG // 2)
                    f.seek(size - MAX_LOG // 2)
                    data = head + b"\n" + f.read()
                else:
                    data = f.read()
        except FileNotFoundError:
            raise InputError("no such log file", file=path, hint="check the path") from None
        except OSError as exc:
            raise InputError(f"cannot read the log: {exc.strerror}", file=path) from None
        label = path
    if not data.strip():
        raise InputError("the log is empty", file=label, hint="give the failed task's log")
    for enc in ("utf-8", "utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8",):
        with suppress(UnicodeDecodeError):
            return data.decode(enc)
    return data.decode("latin-1")


def open_rca_store(
    config: str | None, store_url: str | None, namespace: str | None, create: bool
) -> tuple[Any, dict | None]:
    """(store or None, config or None) for the options of rca and incidents."""
    if config:
        from ..run import load_config, open_config_store

        cfg = load_config(config)
        return open_config_store(cfg, create=create), cfg
    if store_url:
        from ..store import open_store

        return open_store(store_url, namespace=namespace, create=create), None
    env = os.environ.get("PIPEWARDEN_STORE")
    if env:
        from ..store import open_store

        return open_store(env, namespace=namespace, create=create), None
    return None, None


@click.command("rca", cls=_WrapCommand)
@click.argument("log", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--kind",
    type=click.Choice(["auto", "text", "airflow", "mage"]),
    default="auto",
    show_default=True,
    help="What the log is: auto detects Airflow 3 JSON task logs and Mage block logs.",
)
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    help="A pipeline config: its store, pipeline name and folder (for git).",
)
@click.option(
    "--store",
    "store_url",
    help="Store URL for the run log and incident memory (or $PIPEWARDEN_STORE).",
)
@click.option("--schema", "namespace", help="Schema (namespace) of the store's tables.")
@click.option("--pipeline", help="Pipeline name in the run log (default: the config's name).")
@click.option("--dataset", help="Dataset for the data context (default: the config's).")
@click.option(
    "--run",
    "run_id",
    help="Explain a recorded failed run (its id or a prefix; 'last' for the last failure).",
)
@click.option(
    "--repo",
    type=click.Path(file_okay=False),
    help="Git repository for the code context (default: the config's folder, or the current one when wrapping).",
)
@click.option(
    "--record/--no-record",
    default=True,
    show_default=True,
    help="Remember the incident (and a wrapped command's execution) in the store.",
)
@click.option("--propagate", is_flag=True, help="Exit with the wrapped command's own exit code.")
@click.option(
    "--retries",
    type=click.IntRange(0, 20),
    default=0,
    show_default=True,
    help="Run a wrapped command again, up to this many times, while its failure is retryable (jittered backoff, Retry-After honoured).",
)
@click.option(
    "--retry-base",
    type=click.FloatRange(0, 600),
    default=1.0,
    show_default=True,
    help="Base of the backoff, in seconds.",
)
@click.option(
    "--llm-url",
    help="OpenAI-compatible endpoint to refine the summary (key from $PIPEWARDEN_LLM_API_KEY or $OPENAI_API_KEY); off by default.",
)
@click.option("--llm-model", default="gpt-4o-mini", show_default=True)
@format_option
@click.pass_context
def rca_command(
    ctx: click.Context,
    log: str | None,
    kind: str,
    config: str | None,
    store_url: str | None,
    namespace: str | None,
    pipeline: str | None,
    dataset: str | None,
    run_id: str | None,
    repo: str | None,
    record: bool,
    propagate: bool,
    retries: int,
    retry_base: float,
    llm_url: str | None,
    llm_model: str,
    fmt: str,
) -> None:
    """Explain a failure: its class, evidence, fixes and whether to retry.

    Give a log or traceback file (- for stdin), an Airflow 3 JSON task log, a Mage block log,
    a recorded run (--run), or wrap a command: pipewarden rca -- python etl.py.
    Exit 0 when the failure is classified, 1 when it is unknown, 2 for bad input.
    """
    from .runner import explain

    doc = explain(
        log=log,
        command=ctx.meta.get("pw_command"),
        kind=None if kind == "auto" else ("airflow_json" if kind == "airflow" else
                                           "mage_json" if kind == "mage" else "text"),
        config=config,
        store_url=store_url,
        namespace=namespace,
        pipeline=pipeline,
        dataset=dataset,
        run_id=run_id,
        repo=repo,
        record=record,
        llm_url=llm_url,
        llm_model=llm_model,
        echo_to_stderr=fmt == "json",
        retries=retries,
        retry_base=retry_base,
    )  # fmt: skip
    emit(doc, fmt, _render_any)
    code = doc.get("exit_code", 0)
    wrapped = (doc.get("context") or {}).get("process") or {}
    if propagate and "exit_code" in wrapped:
        raise click.exceptions.Exit(_shell_code(wrapped["exit_code"]))
    if code == 1:
        raise GateFailed("unknown failure: no signature matched", doc)


def _shell_code(code: int) -> int:
    return 128 - code if code < 0 else code


def _render_any(doc: dict, console: Any) -> None:
    if doc.get("status") == "succeeded":
        console.print(
            f"the command succeeded in {doc['context']['process']['seconds']:.1f} s: nothing to explain"
        )
        return
    _render(doc, console)


@click.group("incidents")
def incidents_group() -> None:
    """The incident memory: failures by fingerprint and what resolved them."""


def _render_incidents(doc: dict, console: Any) -> None:
    from rich.markup import escape

    if not doc["incidents"]:
        console.print("no incidents recorded")
    for i in doc["incidents"]:
        res = i.get("resolution")
        state = f"resolved ({res['how']})" if res else "[bold red]open[/]"
        console.print(
            f"{i['fingerprint']} {escape(str(i.get('class')))} x{i['count']} "
            f"{escape(str(i.get('pipeline') or ''))} last {i.get('last_at')} {state}"
        )
        console.print(f"    [dim]{escape(str(i.get('template') or ''))[:160]}[/]")


def _store_options(fn):
    """--config | --store [--schema]: where the incident memory is."""
    fn = click.option("--schema", "namespace", help="Schema (namespace) of the store's tables.")(fn)
    fn = click.option("--store", "store_url", help="Store URL (or $PIPEWARDEN_STORE).")(fn)
    return click.option("--config", "config", type=click.Path(dir_okay=False),
                        help="A pipeline config: its store.")(fn)  # fmt: skip


@incidents_group.command("list")
@_store_options
@click.option("--pipeline", help="Only this pipeline's incidents.")
@click.option("--open", "only_open", is_flag=True, help="Only incidents not resolved yet.")
@format_option
def incidents_list(config, store_url, namespace, pipeline, only_open, fmt) -> None:
    """List incidents by fingerprint, newest first, with their resolution."""
    from .runner import list_incidents

    emit(list_incidents(config, store_url, namespace, pipeline, only_open), fmt, _render_incidents)


@incidents_group.command("resolve")
@click.argument("fingerprint")
@click.option("--fix", "fix", help="The fix id or a short name of what fixed it.")
@click.option("--note", help="What was done (scrubbed of secrets and PII before it is stored).")
@_store_options
@format_option
def incidents_resolve(fingerprint, fix, note, config, store_url, namespace, fmt) -> None:
    """Record what resolved an incident: the next failure like it ranks that fix first."""
    from .runner import resolve_incident

    doc = resolve_incident(fingerprint, fix, note, config, store_url, namespace)
    emit(doc, fmt, lambda d, c: c.print(f"resolved {d['fingerprint']}: {d.get('fix') or ''}"))


COMMANDS = [rca_command, incidents_group]
