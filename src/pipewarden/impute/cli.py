"""``pipewarden impute``: fill missing cells from the other columns, and say what was filled."""

from __future__ import annotations

import contextlib

import click

from ..cli import format_option
from ..output import emit


def _render(doc: dict, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    console.print(
        f"[bold]{escape(str(doc.get('data')))}[/]: {doc['rows']} rows, "
        f"{doc['cells_filled']} of {doc['cells_missing']} missing cells filled in "
        f"{doc['rows_with_fills']} rows ({doc['engine']}, {doc['mode']})"
    )
    table = Table("column", "missing", "filled", "model", "expected error", "status")
    for name, c in doc["columns"].items():
        if "expected_nrmse" in c:
            err = f"NRMSE {c['expected_nrmse']:.3f}"
        elif "expected_error_rate" in c:
            err = f"{c['expected_error_rate']:.1%} wrong (mode {c['mode_error_rate']:.1%})"
        else:
            err = ""
        status = c["status"]
        if c.get("left_null_no_known_value_in_row"):
            status += f"; {c['left_null_no_known_value_in_row']} rows with no known value left null"
        table.add_row(
            escape(name), str(c["missing"]), str(c["filled"]), escape(str(c.get("model") or "")),
            err, escape(status),
        )  # fmt: skip
    console.print(table)
    if doc.get("excluded"):
        left = ", ".join(f"{k} ({v})" for k, v in sorted(doc["excluded"].items()))
        console.print(f"[dim]never used or filled: {escape(left)}[/]")
    if doc.get("absent_columns"):
        console.print(f"[dim]not in this batch: {escape(', '.join(doc['absent_columns']))}[/]")
    if doc.get("out"):
        console.print(
            f"written: {escape(doc['out'])} (filled columns per row in {escape(doc['flag_column'])})"
        )
    if doc.get("model_saved"):
        console.print(f"model saved: {escape(doc['model_saved'])}")


@click.command("impute")
@click.option("--data", required=True, help="The batch to fill: JSON, JSONL, CSV or Parquet.")
@click.option("--history", default=None, help="Train on this file (default: on the batch).")
@click.option("--store", "store_url", default=None, help="Train on a dataset of this store.")
@click.option("--schema", "namespace", default=None, help="The store's schema (namespace).")
@click.option("--dataset", default=None, help="With --store: the dataset whose rows train.")
@click.option("--model", default=None, help="Use a saved imputer (a directory) instead.")
@click.option("--save-model", default=None, help="Save the trained imputer to this directory.")
@click.option(
    "--column",
    "columns",
    multiple=True,
    help="A column that may be filled (repeatable; default: every column with signal).",
)
@click.option(
    "--mode",
    type=click.Choice(["accurate", "preserve_variance"]),
    default="accurate",
    show_default=True,
    help="accurate: the conditional mean (mode); preserve_variance: keeps the column's spread.",
)
@click.option(
    "--engine", type=click.Choice(["embedded", "h2o"]), default="embedded", show_default=True
)
@click.option(
    "--h2o-algorithm",
    type=click.Choice(["glrm", "gbm"]),
    default=None,
    help="h2o engine: GLRM (low-rank, default) or a GBM per column.",
)
@click.option("--h2o-url", default=None, help="h2o engine: an existing cluster (else local).")
@click.option(
    "--max-error",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Fill a column only if its expected NRMSE is at most this (default 0.95).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--exclude", multiple=True, help="A column never used or filled (repeatable).")
@click.option("--region", default="US", show_default=True, help="Region of phone numbers.")
@click.option("--out", default=None, help="Write the filled records here (JSONL).")
@click.option("--flag-column", default="_pw_imputed", show_default=True)
@format_option
def impute_command(
    data, history, store_url, namespace, dataset, model, save_model, columns, mode, engine,
    h2o_algorithm, h2o_url, max_error, seed, exclude, region, out, flag_column, fmt,
) -> int:  # fmt: skip
    """Fill the missing cells of a batch from its other columns; report per column what was
    filled, by which model, with what expected error."""
    from ..h2o_cluster import session
    from .api import impute_file

    options = {}
    if h2o_algorithm:
        options["algorithm"] = h2o_algorithm
    if h2o_url:
        options["url"] = h2o_url
    ctx = session() if engine == "h2o" or h2o_url else contextlib.nullcontext()
    with ctx:
        doc = impute_file(
            data, history=history, store_url=store_url, namespace=namespace, dataset=dataset,
            model=model, save_model=save_model, columns=list(columns) or None, mode=mode,
            engine=engine, engine_options=options, max_error=max_error, seed=seed,
            exclude=list(exclude), region=region.upper(), out=out, flag_column=flag_column,
        )  # fmt: skip
    emit(doc, fmt, _render)
    return 0


COMMANDS = [impute_command]
