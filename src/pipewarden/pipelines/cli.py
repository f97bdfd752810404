"""``pipewarden validate dag|pipeline|cycles`` and ``pipewarden scaffold airflow|mage|dbt``."""

from __future__ import annotations

import click

from ..cli import format_option
from ..errors import GateFailed
from ..output import emit

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _render_findings(doc: dict, console) -> None:
    from rich.markup import escape

    for f in doc["findings"]:
        where = f["file"] + (f":{f['line']}" if f.get("line") else "")
        style = _STYLE.get(f["severity"], "")
        console.print(
            f"{escape(where)}: [{style}]{f['severity']}[/] [bold]{f['rule']}[/] {escape(f['message'])}"
        )
    extra = ""
    if doc["validator"] == "dag" and doc["dags"]:
        ids = [f"{d['dag_id'] or '(dynamic id)'} ({d['tasks']} tasks)" for d in doc["dags"][:20]]
        more = f" and {len(doc['dags']) - 20} more" if len(doc["dags"]) > 20 else ""
        console.print(f"DAGs found: {escape(', '.join(ids))}{more}")
    if doc["validator"] == "dag":
        extra = f" in {doc['files']} file(s), {len(doc['dags'])} DAG(s)"
    elif doc["validator"] == "pipeline":
        extra = f" in {len(doc['pipelines'])} pipeline(s)"
    elif doc["validator"] == "cycles":
        extra = f" in a {doc['kind']} graph of {doc['nodes']} nodes and {doc['edges']} edges"
    verdict = "[green]ok[/]" if doc["ok"] else "[bold red]failed[/]"
    console.print(f"{verdict}: {doc['errors']} error(s), {doc['warnings']} warning(s){extra}")


def _finish(doc: dict, fmt: str) -> None:
    emit(doc, fmt, _render_findings)
    if not doc["ok"]:
        raise GateFailed(f"{doc['errors']} error(s) found", doc)


@click.group("validate")
def validate() -> None:
    """Validate pipeline code statically: Airflow DAGs, Mage pipelines, dependency cycles."""


@validate.command("dag")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--mode",
    type=click.Choice(["static", "import"]),
    default="static",
    show_default=True,
    help="static: read the AST only; import: also load the files with the real Airflow in a subprocess.",
)
@click.option(
    "--config",
    "config",
    type=click.Path(),
    default=None,
    help="A pyproject.toml or .pipewarden.yaml (default: the nearest one).",
)
@click.option(
    "--airflow-python",
    default=None,
    help="Python with Airflow installed, for --mode import (default: $PIPEWARDEN_AIRFLOW_PYTHON or this one).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=120.0,
    show_default=True,
    help="Seconds for --mode import.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=0, max=1024),
    default=0,
    show_default=True,
    help="Processes to parse with, this one included (0: one per core from 300 files to parse, else 1).",
)
@click.option(
    "--cache/--no-cache",
    default=True,
    show_default=True,
    help="Keep each file's analysis by content hash in $PIPEWARDEN_CACHE_DIR (default ~/.cache/pipewarden).",
)
@format_option
def validate_dag(paths, mode, config, airflow_python, timeout, jobs, cache, fmt) -> None:
    """Validate Airflow DAG files (files or folders) without running them."""
    from .airflow import validate_dags

    doc = validate_dags(
        paths,
        mode=mode,
        config=config,
        airflow_python=airflow_python,
        timeout=timeout,
        jobs=jobs,
        cache=cache,
    )
    _finish(doc, fmt)


_CONFIG_HELP = (
    "A .pipewarden.yaml or pyproject.toml with a validate section (default: the nearest one "
    "above the first path)."
)


def _configured(doc: dict, paths, config) -> dict:
    from .config import load_config

    return load_config(paths[0], config).apply_doc(doc)


@validate.command("pipeline")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--config", type=click.Path(), default=None, help=_CONFIG_HELP)
@format_option
def validate_pipeline_cmd(paths, config, fmt) -> None:
    """Validate Mage projects or pipeline folders (or their metadata.yaml)."""
    from .mage import validate_pipeline

    _finish(_configured(validate_pipeline(list(paths)), paths, config), fmt)


@validate.command("cycles")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--config", type=click.Path(), default=None, help=_CONFIG_HELP)
@format_option
def validate_cycles(paths, config, fmt) -> None:
    """Find dependency cycles (each with its full path) in a DAG file, a Mage pipeline, a dbt manifest or a JSON edge list."""
    from .cycles import check_cycles

    _finish(_configured(check_cycles(list(paths)), paths, config), fmt)


def _render_scaffold(doc: dict, console) -> None:
    from rich.markup import escape

    console.print(
        f"[green]scaffolded[/] {doc['kind']} pipeline [bold]{escape(doc['name'])}[/] in {escape(doc['directory'])}:"
    )
    for f in doc["files"]:
        console.print(f"  {escape(f)}")
    console.print(f"next: {escape(doc['next'])}")


@click.group("scaffold")
def scaffold() -> None:
    """Write a pipeline that ingests a source through pipewarden's checks into the warehouse."""


def _scaffold_command(kind: str, help_text: str):
    @click.argument("name")
    @click.option(
        "--dir",
        "directory",
        default=".",
        show_default=True,
        type=click.Path(),
        help="Where to write (for mage: the Mage project).",
    )
    @click.option(
        "--source",
        default=None,
        help="The source file, relative to --dir (default: data/<name>.jsonl).",
    )
    @click.option(
        "--store",
        type=click.Choice(["duckdb", "postgres"]),
        default="duckdb",
        show_default=True,
        help="The warehouse.",
    )
    @click.option(
        "--step",
        "steps",
        multiple=True,
        help="A step after guardian and anomaly: impute, impute:preserve_variance or "
        "features:SPEC (a `features discover` spec, relative to --dir); repeatable.",
    )
    @click.option(
        "--h2o-url",
        default=None,
        help="The anomaly step uses the H2O engine on the cluster at this URL; "
        "'${PIPEWARDEN_H2O_URL}' reads it from the environment when the pipeline runs.",
    )
    @click.option("--force", is_flag=True, help="Overwrite files that exist.")
    @format_option
    def command(name, directory, source, store, h2o_url, force, fmt, **extra) -> None:
        for key in ("wait_for", "steps", "blocks"):
            if not extra.get(key):
                extra.pop(key, None)
        from .scaffold import scaffold as do_scaffold

        emit(
            do_scaffold(
                kind,
                name,
                directory,
                source=source,
                store=store,
                force=force,
                h2o_url=h2o_url,
                **extra,
            ),  # fmt: skip
            fmt,
            _render_scaffold,
        )

    command.__doc__ = help_text
    if kind in ("airflow", "mage"):
        command = click.option(
            "--wait-for",
            "wait_for",
            multiple=True,
            help="A dependency to wait for first, with a learned timeout: file:PATH, "
            "table:DATASET, upstream:PIPELINE or http:URL (repeatable).",
        )(command)
    if kind == "mage":
        command = click.option(
            "--blocks",
            is_flag=True,
            default=None,
            help="One block per check (breaker, sentinel, guardian, anomaly, the load through "
            "the gate, docs), each a call of pipewarden.mage, instead of one guard block.",
        )(command)
    if kind == "dbt":
        command = click.option(
            "--unique-key", default="id", show_default=True, help="The model's unique key column."
        )(command)
        command = click.option(
            "--updated-at",
            default="updated_at",
            show_default=True,
            help="The column that orders increments.",
        )(command)
    return scaffold.command(kind)(command)


_scaffold_command("airflow", "An Airflow 3 DAG (dags/NAME.py) and its pipewarden config.")
_scaffold_command(
    "mage",
    "A Mage pipeline (loader, guard, exporter blocks) in a Mage project, and its pipewarden config.",
)
_scaffold_command(
    "dbt",
    "A dbt incremental model over the table pipewarden loads, its source, and the pipewarden config.",
)

COMMANDS = [validate, scaffold]
