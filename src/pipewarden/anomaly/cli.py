"""``pipewarden anomaly score|train`` and ``pipewarden breaker status|reset``."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

import click

from ..cli import format_option
from ..errors import GateFailed, InputError
from ..output import emit

# the detector (numpy, scikit-learn) is imported inside each command, so that the start-up
# of every other pipewarden command does not pay for it
from . import DEFAULT_STORE

H2O_ALGOS = {"if": "isolation_forest", "eif": "extended_isolation_forest"}


def _engine_options(f):
    f = click.option(
        "--h2o-algorithm",
        type=click.Choice(sorted(H2O_ALGOS)),
        default=None,
        help="h2o engine: if (Isolation Forest) or eif (Extended Isolation Forest, default).",
    )(f)
    f = click.option(
        "--h2o-url",
        default=None,
        help="h2o engine: an existing cluster, e.g. http://h2o-compute:54321 (must be reachable; "
        "without it a local H2O is started and shut down).",
    )(f)
    f = click.option(
        "--preset",
        type=click.Choice(["forest", "ensemble"]),
        default=None,
        help="sklearn engine: forest (default: scikit-learn's forest ranking, broken values "
        "first) or ensemble (also broken correlations; docs/anomaly.md).",
    )(f)
    f = click.option(
        "--engine", type=click.Choice(["sklearn", "h2o"]), default=None, help="Default: sklearn."
    )(f)
    f = click.option(
        "--region",
        default=None,
        help="Region of phone numbers without a country code (e.g. GB), for the check that "
        "keeps PII out of models and the batch history. Default: US.",
    )(f)
    f = click.option("--exclude", multiple=True, help="A column never scored (repeatable).")(f)
    f = click.option(
        "--include", multiple=True, help="A column to score even if it looks like an id or text."
    )(f)
    f = click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="A pipeline config: its anomaly step options, dataset and store are the defaults.",
    )(f)
    return f


def _expand(text: str) -> str:
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: os.environ.get(m.group(1), ""), text)


def _pipeline(config_path: str | None) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """(anomaly step options, {store, namespace, dataset}, base directory) of a pipeline config."""
    if not config_path:
        return {}, {}, Path.cwd()
    import yaml

    from .. import yamlsafe

    p = Path(config_path)
    try:
        doc = yamlsafe.safe_load(p.read_text())
    except FileNotFoundError as exc:
        raise InputError("no such file", file=config_path) from exc
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise InputError(
            "not valid YAML", file=config_path, line=None if line is None else line + 1
        ) from exc
    if not isinstance(doc, dict):
        raise InputError("a pipeline config is a mapping", file=config_path)
    steps = [
        s for s in doc.get("steps") or [] if isinstance(s, dict) and s.get("type") == "anomaly"
    ]
    options = dict(steps[0]) if steps else {}
    if isinstance(options.get("h2o"), dict) and isinstance(options["h2o"].get("url"), str):
        options["h2o"] = {**options["h2o"], "url": _expand(options["h2o"]["url"])}
    store = doc.get("store") or {}
    base = p.resolve().parent
    url = None
    if store.get("kind") == "postgres":
        url = _expand(str(store.get("dsn", "")))
    else:
        path = Path(store.get("path", "warehouse.duckdb"))
        url = "duckdb:///" + str(path if path.is_absolute() else base / path).lstrip("/")
    target = {"store": url, "namespace": store.get("schema"), "dataset": doc.get("dataset")}
    return options, target, base


def _config(
    config_path,
    threshold=None,
    model=None,
    engine=None,
    include=(),
    exclude=(),
    h2o_url=None,
    h2o_algorithm=None,
    region=None,
    preset=None,
):
    from . import detector

    options, target, base = _pipeline(config_path)
    key = "steps[]." if config_path else ""
    if threshold is not None:
        options["threshold"] = threshold
    if model is not None:
        options["model"] = model
    elif options.get("model") and not Path(options["model"]).is_absolute():
        options["model"] = str(base / options["model"])
    if engine is not None:
        options["engine"] = engine
    if include:
        options["include"] = list(include)
    if exclude:
        options["exclude"] = list(exclude)
    if region:
        options["region"] = region.upper()
    if h2o_url or h2o_algorithm:
        h = dict(options.get("h2o") or {})
        if h2o_url:
            h["url"] = h2o_url
        if h2o_algorithm:
            h["algorithm"] = H2O_ALGOS[h2o_algorithm]
        options["h2o"] = h
    if preset:
        options["sklearn"] = {**(options.get("sklearn") or {}), "preset": preset}
    cfg = detector.parse_config(options, key=key)
    return cfg, target


def _h2o_session(cfg):
    """The H2O this command starts is shut down when it ends (see h2o_engine.session)."""
    if cfg.engine != "h2o":
        return contextlib.nullcontext()
    from .h2o_engine import session

    return session()


def _render_score(doc: dict, console) -> None:
    from rich.markup import escape

    s = doc.get("scored") or {}
    head = f"[bold]{escape(str(doc.get('dataset')))}[/]: {doc.get('rows')} rows"
    console.print(head)
    if s:
        console.print(
            f"engine {s.get('engine')} ({s.get('status')}): {escape(s.get('message', ''))}"
        )
        for f in s.get("flagged", [])[:20]:
            console.print(f"  row {f['row']}: score {f['score']:.3f}  {escape(f['reason'])}")
        if s.get("flagged_rows", 0) > 20:
            console.print(f"  ... {s['flagged_rows'] - 20} more (use --format json)")
        if s.get("excluded"):
            left = ", ".join(f"{k} ({v})" for k, v in sorted(s["excluded"].items()))
            console.print(f"[dim]left out: {escape(left)}[/]")
    for m in doc.get("monitors", []):
        if m["status"] in ("ok",):
            continue
        col = f"({m['column']})" if m["column"] else ""
        style = {"alarm": "yellow", "severe": "red"}.get(m["status"], "dim")
        console.print(
            f"  [{style}]{m['monitor']}{escape(col)} {m['status']}[/]: {escape(m['message'])}"
        )
    if "breaker" in doc:
        b = doc["breaker"]
        console.print(
            f"breaker: [bold]{b['state']}[/]"
            + (f" ({escape(b['reason'])})" if b.get("reason") else "")
        )
    if doc.get("decision") == "quarantine_batch":
        console.print(f"[bold red]batch quarantined:[/] {escape(str(doc.get('reason')))}")


@click.group("anomaly")
def anomaly_group() -> None:
    """Row anomaly scores, batch health monitors and the circuit breaker."""


@anomaly_group.command("score")
@click.option(
    "--data", required=True, help="The batch: JSON, JSONL, CSV or Parquet ('-' for stdin)."
)
@click.option(
    "--model",
    default=None,
    help="A model directory from `anomaly train` (default: fit on the batch).",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="Row threshold on the normalised score (default 0.7: 1% of clean rows).",
)
@click.option(
    "--circuit-breaker",
    is_flag=True,
    help="Also run the batch monitors and the dataset's circuit breaker (state in --store).",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    help=f"Store URL for the breaker and the history (default: $PIPEWARDEN_STORE or {DEFAULT_STORE}).",
)
@click.option(
    "--dataset",
    default=None,
    help="Dataset name for the breaker and the history (default: the file name).",
)
@click.option("--fail-on-flagged", is_flag=True, help="Exit 1 when any row is flagged.")
@click.option(
    "--scores-out",
    default=None,
    help="Write every row's score, flag and reason to this file (.parquet, .csv or .jsonl).",
)
@_engine_options
@format_option
def score_cmd(
    data,
    model,
    threshold,
    circuit_breaker,
    store_url,
    dataset,
    fail_on_flagged,
    scores_out,
    config_path,
    include,
    exclude,
    region,
    engine,
    preset,
    h2o_url,
    h2o_algorithm,
    fmt,
):
    """Score the rows of a batch in [0, 1]; flag those at or above the threshold."""
    from . import detector

    cfg, target = _config(
        config_path,
        threshold,
        model,
        engine,
        include,
        exclude,
        h2o_url,
        h2o_algorithm,
        region,
        preset,
    )
    with _h2o_session(cfg):
        doc = detector.score(
            data,
            cfg,
            circuit_breaker=circuit_breaker,
            store_url=store_url or target.get("store"),
            dataset=dataset or target.get("dataset"),
            namespace=None if store_url else target.get("namespace"),
            scores_out=scores_out,
        )
    emit(doc, fmt, _render_score)
    if doc.get("decision") == "quarantine_batch":
        raise GateFailed(str(doc.get("reason")), doc)
    if fail_on_flagged and (doc.get("scored") or {}).get("flagged_rows"):
        raise GateFailed(f"{doc['scored']['flagged_rows']} row(s) flagged", doc)


@anomaly_group.command("train")
@click.option("--data", required=True, help="History to learn from: JSON, JSONL, CSV or Parquet.")
@click.option("--out", required=True, help="The model directory to write.")
@_engine_options
@format_option
def train_cmd(
    data, out, config_path, include, exclude, region, engine, preset, h2o_url, h2o_algorithm, fmt
):
    """Fit a model on history and save it; score new batches with `score --model`."""
    from . import detector

    cfg, _ = _config(
        config_path, None, None, engine, include, exclude, h2o_url, h2o_algorithm, region, preset
    )
    cfg.model = None
    with _h2o_session(cfg):
        doc = detector.train(data, out, cfg)

    def render(d, console):
        console.print(
            f"model [bold]{d['model']}[/]: engine {d['engine']}, {d['rows']} rows, "
            f"{len(d['features'])} features in {d['seconds']} s"
        )
        if d["excluded"]:
            console.print(
                "left out: " + ", ".join(f"{k} ({v})" for k, v in sorted(d["excluded"].items()))
            )

    emit(doc, fmt, render)


def _breaker_args(f):
    f = click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="A pipeline config: its store, dataset and breaker options.",
    )(f)
    f = click.option("--dataset", default=None, help="The dataset.")(f)
    f = click.option(
        "--store",
        "store_url",
        default=None,
        help=f"Store URL (default: $PIPEWARDEN_STORE or {DEFAULT_STORE}).",
    )(f)
    return f


def _breaker_target(store_url, dataset, config_path):
    cfg, target = _config(config_path)
    dataset = dataset or target.get("dataset")
    if not dataset:
        raise InputError("which dataset?", key="--dataset", hint="pass --dataset NAME or --config")
    namespace = None if store_url else target.get("namespace")
    return cfg, store_url or target.get("store"), dataset, namespace


def _render_breaker(doc, console):
    from rich.markup import escape

    style = {"closed": "green", "open": "red", "half_open": "yellow"}[doc["state"]]
    console.print(f"{escape(doc['dataset'])}: breaker [bold {style}]{doc['state']}[/]")
    if doc.get("seen") is False:
        known = ", ".join(doc.get("known") or []) or "none"
        console.print(
            f"  no batch of {escape(doc['dataset'])} has gone through the breaker in this store"
            f" (datasets with a breaker here: {escape(known)})"
        )
    if doc.get("reason"):
        console.print(f"  reason: {escape(doc['reason'])}")
    if doc.get("retry_at"):
        console.print(f"  canary batches from {doc['retry_at']}")
    if doc.get("batches_to_hold") is not None:
        console.print(f"  canary batches after {doc['batches_to_hold']} more held batch(es)")
    if doc.get("held"):
        console.print(f"  held batches: {len(doc['held'])} (latest {escape(doc['held'][-1])})")
        console.print(f"  {escape(doc['release'])}")
    console.print(
        f"  window: {sum(doc['window'])} failed of {len(doc['window'])} "
        f"(opens at {doc['config']['failure_rate']:.0%} after {doc['config']['min_batches']})"
    )


@click.group("breaker")
def breaker_group() -> None:
    """The circuit breaker of a dataset: closed, open or half-open."""


@breaker_group.command("status")
@_breaker_args
@format_option
def status_cmd(store_url, dataset, config_path, fmt):
    """Show the breaker's state; exit 1 when it is open."""
    from . import detector

    cfg, url, dataset, namespace = _breaker_target(store_url, dataset, config_path)
    doc = detector.breaker_status(url, dataset, cfg, namespace)
    emit(doc, fmt, _render_breaker)
    if doc["state"] == "open":
        raise GateFailed(f"circuit breaker of {dataset} is open: {doc['reason']}", doc)


@breaker_group.command("reset")
@_breaker_args
@click.option(
    "--rebaseline",
    is_flag=True,
    help="Also forget the batch history before now (after an intended change in the data).",
)
@format_option
def reset_cmd(store_url, dataset, config_path, rebaseline, fmt):
    """Close the breaker by hand."""
    from . import detector

    cfg, url, dataset, namespace = _breaker_target(store_url, dataset, config_path)
    doc = detector.breaker_reset(url, dataset, cfg, rebaseline=rebaseline, namespace=namespace)
    emit(doc, fmt, _render_breaker)


COMMANDS = [anomaly_group, breaker_group]
