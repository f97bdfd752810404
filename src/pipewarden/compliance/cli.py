"""``pipewarden guard``: scan a batch for PII under a policy, check a policy, evaluate accuracy."""

from __future__ import annotations

import click

from ..cli import format_option
from ..errors import GateFailed
from ..output import emit

INPUT_FORMATS = ["auto", "json", "jsonl", "csv", "parquet"]
OUTPUT_FORMATS = ["json", "jsonl", "csv", "parquet"]
MODES = ["precision", "recall"]


@click.group("guard")
def guard() -> None:
    """Compliance guardian: PII detection and policy as code."""


@guard.command("scan")
@click.option("--data", "data", required=True, help="Data file (json, jsonl, csv, parquet) or '-'.")
@click.option("--policy", type=click.Path(dir_okay=False), help="Policy YAML file.")
@click.option("--input-format", type=click.Choice(INPUT_FORMATS), default="auto", show_default=True)
@click.option("--strict", is_flag=True, default=None, help="Fail on any finding no rule allows.")
@click.option("--region", help="Region of phone numbers without a country code (e.g. US, GB).")
@click.option("--dataset", help="Dataset name that policy rules match (default: the file stem).")
@click.option(
    "--mode", type=click.Choice(MODES), help="precision or recall (default: the policy's)."
)
@click.option("--max-findings", type=click.IntRange(0), default=1000, show_default=True)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the masked batch here ('-': stdout, the report then goes to stderr).",
)
@click.option(
    "--output-format",
    type=click.Choice(OUTPUT_FORMATS),
    help="Format of --output (default: the input's; stdin input: jsonl).",
)
@format_option
def scan_cmd(
    data, policy, input_format, strict, region, dataset, mode, max_findings, output, output_format,
    fmt,
) -> None:  # fmt: skip
    """Scan a batch for PII and apply the policy; exit 1 when the gate fails. With --output,
    also write the batch as it would load: masks applied, PII keys renamed, rows the policy
    quarantines or blocks left out (a filter for shell pipelines and orchestrator tasks)."""
    from .guardian import scan

    report = scan(
        data,
        policy=policy,
        fmt=input_format,
        strict=strict,
        region=region.upper() if region else None,
        dataset=dataset,
        max_findings=max_findings,
        mode=mode,
        output=output,
        output_format=output_format,
    )
    emit(report, fmt, _render_scan, to_stderr=output == "-")
    if not report["passed"]:
        raise GateFailed("; ".join(report["failures"]), report)


def _render_scan(doc: dict, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    status = "[green]passed[/]" if doc["passed"] else "[bold red]failed[/]"
    console.print(
        f"guard scan {escape(doc['source'])}: {doc['rows']} rows, {doc['findings_total']} "
        f"findings in {doc['rows_with_findings']} rows, {status}"
    )
    if doc["columns"]:
        t = Table("column", "entity", "score", "share", "distinct", "by", title="PII columns")
        for c in doc["columns"]:
            t.add_row(
                escape(c["column"]), c["entity"], f"{c['score']:.2f}", f"{c['share']:.2f}",
                f"{c['distinct']:.2f}", c["by"],
            )  # fmt: skip
        console.print(t)
    if doc["by_entity"]:
        t = Table("entity", "findings", "rows", title="by entity")
        for e, v in doc["by_entity"].items():
            t.add_row(e, str(v["findings"]), str(v["rows"]))
        console.print(t)
    acts = ", ".join(f"{k} {v}" for k, v in doc["actions"].items() if v)
    if acts:
        console.print(f"actions: {acts}")
    if doc["findings"]:
        t = Table("row", "column", "entity", "span", "score", "preview", "action", title="findings")
        for f in doc["findings"][:20]:
            t.add_row(
                str(f["row"]), escape(f["column"]), f["entity"], f"{f['start']}-{f['end']}",
                f"{f['score']:.2f}", escape(f["preview"]), f["action"],
            )  # fmt: skip
        console.print(t)
        if doc["findings_total"] > 20:
            console.print(f"... {doc['findings_total'] - 20} more (use --format json)")
    for n in doc.get("names") or []:
        what = f"renamed to {n['renamed']}" if n.get("renamed") else "kept"
        console.print(
            f"key {escape(n['path'])} holds {n['entity']} ({escape(n['preview'])}): {escape(what)}"
        )
    out = doc.get("output")
    if out:
        if out["written"]:
            console.print(
                f"output: {out['rows']} rows written to {escape(out['path'])} ({out['format']})"
            )
        else:
            console.print(f"output: nothing written to {escape(out['path'])} (the gate failed)")
    for w in doc["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(w)}")
    for f in doc["failures"]:
        console.print(f"[red]failure:[/] {escape(f)}")


@guard.command("policy-check")
@click.argument("policy", type=click.Path(dir_okay=False))
@format_option
def policy_check_cmd(policy, fmt) -> None:
    """Validate a policy file; exit 1 listing every problem by key."""
    from .policy import check_policy

    result = check_policy(policy)

    def render(doc, console):
        from rich.markup import escape

        if doc["valid"]:
            console.print(
                f"{escape(doc['policy'])}: valid ({doc['rules']} rules, "
                f"{doc['exceptions']} exceptions)"
            )
        for p in doc["problems"]:
            console.print(f"[red]{escape(p['key'])}[/]: {escape(p['error'])}")

    emit(result, fmt, render)
    if not result["valid"]:
        raise GateFailed(f"{len(result['problems'])} problem(s) in {policy}", result)


@guard.command("eval")
@click.option("--data", "data", help="Labelled JSONL file (default: the bundled evaluation set).")
@click.option("--policy", type=click.Path(dir_okay=False), help="Policy (region, national ids).")
@click.option("--min-f2", type=click.FloatRange(0, 1), help="Fail when an entity's F2 is lower.")
@click.option(
    "--mode", type=click.Choice(MODES), help="precision or recall (default: the policy's)."
)
@click.option(
    "--outside",
    is_flag=True,
    help="Use the bundled outside-built set (values from Faker locales the rules were not written against).",
)
@format_option
def eval_cmd(data, policy, min_f2, mode, outside, fmt) -> None:
    """Precision, recall and F2 per entity on a labelled data set."""
    from .evaluate import evaluate, outside_set

    if outside and data:
        raise click.UsageError("give --data or --outside, not both")
    result = evaluate(outside_set() if outside else data, policy=policy, mode=mode)

    def render(doc, console):
        from rich.table import Table

        t = Table("entity", "support", "tp", "fp", "fn", "precision", "recall", "F2",
                  title=f"guard eval: {doc['records']} records, {doc['values']} values")  # fmt: skip
        for e, m in doc["entities"].items():
            t.add_row(
                e, str(m["support"]), str(m["tp"]), str(m["fp"]), str(m["fn"]),
                f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f2']:.3f}",
            )  # fmt: skip
        console.print(t)

    emit(result, fmt, render)
    if min_f2 is not None:
        low = [e for e, m in result["entities"].items() if m["f2"] < min_f2]
        if low:
            raise GateFailed(f"F2 below {min_f2} for {', '.join(low)}", result)


COMMANDS = [guard]
