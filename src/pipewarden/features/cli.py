"""``pipewarden features discover|emit``."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import click

from ..cli import format_option
from ..output import emit


def _render_discover(doc: dict, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    lift = doc["lift"]["test"]
    console.print(
        f"target [bold]{escape(doc['target'])}[/] ({doc['task']}, {doc['rows']} rows): "
        f"held-out {doc['score']} {lift['raw']:.4f} raw -> {lift['with_features']:.4f} with "
        f"{len(doc['features'])} feature(s) (lift {lift['lift']:+.4f})"
    )
    table = Table("candidate", "kind", "inputs", "valid lift", "chosen")
    chosen = {f["name"] for f in doc["features"]}
    for c in doc["candidates"][:20]:
        table.add_row(escape(c["name"]), c["kind"], escape(", ".join(c["inputs"])),
                      f"{c.get('lift', 0):+.4f}", "yes" if c["name"] in chosen else "")  # fmt: skip
    console.print(table)
    if doc.get("interactions"):
        pairs = ", ".join(f"{a}×{b} H={h['friedman_h']:.2f}" for h in doc["interactions"]
                          for a, b in [h["pair"]])  # fmt: skip
        console.print(f"interactions (Friedman's H): {escape(pairs)}")
    h2o = doc.get("h2o") or {}
    for key in ("automl_raw", "automl_with_features"):
        if key in h2o:
            console.print(
                f"H2O AutoML {key.split('_', 1)[1]}: {h2o[key]['leader']} {h2o[key]['test']}"
            )
    if doc.get("out"):
        console.print(f"spec written: {escape(doc['out'])} (next: pipewarden features emit)")


@click.group("features")
def features_group() -> None:
    """Find features that lift a model of a target, and emit them as a transformation block."""


@features_group.command("discover")
@click.option("--data", default=None, help="A file of rows (JSON, JSONL, CSV, Parquet).")
@click.option("--store", "store_url", default=None, help="A store: its dataset's rows.")
@click.option("--schema", "namespace", default=None, help="The store's schema.")
@click.option("--dataset", default=None, help="The dataset (with --store).")
@click.option("--target", required=True, help="The column to predict.")
@click.option("--engine", type=click.Choice(["embedded", "h2o"]), default="embedded",
              show_default=True, help="h2o: also H2O AutoML and H2O's interaction statistics.")  # fmt: skip
@click.option("--max-runtime", type=click.IntRange(5), default=60, show_default=True,
              help="Seconds for each H2O AutoML run (a ceiling when --max-models is given).")  # fmt: skip
@click.option("--max-models", type=click.IntRange(1), default=None,
              help="Models each H2O AutoML run trains: the result does not depend on the "
                   "machine's load.")  # fmt: skip
@click.option("--h2o-url", default=None, help="An existing H2O cluster (else a local one).")
@click.option("--max-features", type=click.IntRange(1), default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--exclude", multiple=True, help="A column never used (repeatable).")
@click.option("--out", default=None, help="Write the spec (JSON) here, for `features emit`.")
@format_option
def discover_command(data, store_url, namespace, dataset, target, engine, max_runtime,
                     max_models, h2o_url, max_features, seed, exclude, out, fmt) -> int:  # fmt: skip
    """Rank candidate features (interactions, ratios, date parts, frequencies) by their lift
    on a held-out split."""
    from ..h2o_cluster import session
    from .api import discover_rows

    ctx = session() if engine == "h2o" else contextlib.nullcontext()
    with ctx:
        doc = discover_rows(
            data=data, store_url=store_url, namespace=namespace, dataset=dataset, target=target,
            engine=engine, max_runtime=max_runtime, max_models=max_models, h2o_options={"url": h2o_url} if h2o_url else {},
            max_features=max_features, seed=seed, exclude=list(exclude),
        )  # fmt: skip
    if out:
        Path(out).write_text(json.dumps(doc, indent=1) + "\n")
        doc["out"] = out
    emit(doc, fmt, _render_discover)
    return 0


@features_group.command("emit")
@click.option("--spec", required=True, help="A spec from `features discover --out`.")
@click.option("--dir", "directory", default=".", show_default=True, help="The project folder.")
@click.option("--name", default=None, help="The model and block name (default <source>_features).")
@click.option("--source", default=None, help="The table the features read (default: the dataset).")
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
@format_option
def emit_command(spec, directory, name, source, force, fmt) -> int:
    """Write the chosen features as a dbt model and a Mage transformer block."""
    from .emit import emit_features

    doc = emit_features(spec, directory, name=name, source=source, force=force)
    emit(doc, fmt, lambda d, c: c.print(f"wrote {', '.join(d['files'])} under {d['directory']}"))
    return 0


COMMANDS = [features_group]
