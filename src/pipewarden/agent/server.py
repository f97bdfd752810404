"""``pipewarden mcp``: every capability of pipewarden as an MCP tool.

Built on the MCP Python SDK's ``MCPServer`` (``pip install 'pipewarden[mcp]'``). Each tool is a
typed function whose arguments become the command's words; :func:`pipewarden.agent.invoke.invoke`
runs the command in this process and the tool returns :class:`ToolResult`: the exit code (0
passed, 1 the gate failed) and ``result``, the very document ``--format json`` prints. A command
that refuses its input (exit 2) or meets a database fault is a tool error whose text is the
CLI's message with its exit class (``exit 2 (bad input or call): batch.json: line 3: ...``),
never a traceback; results and messages are redacted and masked exactly as the CLI's are.

Tools that write (a run, a replay, DDL, a breaker reset, files) say so in their annotations
(``readOnlyHint: false``; ``destructiveHint`` where something is forgotten or overwritten) and
refuse unless called with ``confirm: true``. Paths are paths on the server's machine, relative
to its working directory; ``-`` (stdin) is refused, since stdin carries the protocol.

Resources read the server's store (``pipewarden mcp PIPELINE.yaml`` or ``--store``): the
datasets, the current schema of each, its docs page and the run log.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from .invoke import CommandFailed, invoke

INSTRUCTIONS = """\
pipewarden: deterministic guardrails in front of the warehouse. Typical session: scaffold a
pipeline (scaffold), validate it (validate_pipeline / validate_dag / validate_cycles), check a
batch before loading it (sentinel_plan, guard_scan, anomaly_score), load it (run), read what was
held back (quarantine_list), fix the contract or policy, then replay (quarantine_replay).
Every tool returns {exit_code, passed, result}: exit_code 0 passed, 1 the gate failed (result
says why: schema rejected, PII policy, breaker open, invalid pipeline); a tool error starting
"exit 2" means the input or the call was wrong (the message names the file, row or line and
what to do). Tools that write need confirm=true. Values are never shown raw: previews are masked.
"""


# every command of the CLI -> the tool that calls it (tests/test_mcp_server.py fails when a
# command is added without its tool); `serve` (a web server), `demo` (a copy of the sample)
# and the agent's own commands are not calls an agent makes
COVERED = {
    "sentinel": "sentinel_plan",
    "run": "run",
    "quarantine list": "quarantine_list",
    "quarantine replay": "quarantine_replay",
    "guard scan": "guard_scan",
    "guard policy-check": "guard_policy_check",
    "guard eval": "guard_eval",
    "anomaly score": "anomaly_score",
    "anomaly train": "anomaly_train",
    "breaker status": "breaker_status",
    "breaker reset": "breaker_reset",
    "validate dag": "validate_dag",
    "validate pipeline": "validate_pipeline",
    "validate cycles": "validate_cycles",
    "scaffold airflow": "scaffold",
    "scaffold mage": "scaffold",
    "scaffold dbt": "scaffold",
    "docs build": "docs_build",
    "docs check": "docs_check",
    "ingest status": "ingest_status",
    "ingest reset": "ingest_reset",
    "impute": "impute",
    "features discover": "features_discover",
    "features emit": "features_emit",
    "rca": "rca",
    "incidents list": "incidents_list",
    "incidents resolve": "incidents_resolve",
    "wait": "wait",
}
# the tools that call a command with the option that makes it write, apart from its reader
WRITING_TWINS = {"sentinel_apply", "guard_mask", "anomaly_check_batch", "impute_fill"}
TOOLS = set(COVERED.values()) | WRITING_TWINS


class ToolResult(BaseModel):
    """What a pipewarden tool returns: the command's exit code and its JSON document."""

    exit_code: Literal[0, 1] = Field(
        description="0: passed; 1: the gate failed (the result says why)"
    )
    passed: bool = Field(description="exit_code == 0")
    result: dict[str, Any] = Field(
        description="the document `pipewarden <command> --format json` prints for the same input"
    )


# --------------------------------------------------------------------------- argument types

FilePath = Annotated[
    str, Field(description="a file on the server's machine, relative to its working directory")
]
OptFile = Annotated[
    str | None,
    Field(description="a file on the server's machine (relative to its cwd)"),
]
Config = Annotated[
    str | None,
    Field(
        description="a pipeline config (pipeline.yaml); default: the one the server was "
        "started with",
    ),
]
StoreUrl = Annotated[
    str | None,
    Field(
        description="a store instead of a config: postgresql://... or a DuckDB file "
        "(warehouse.duckdb, duckdb:///path)",
    ),
]
Namespace = Annotated[str | None, Field(description="the database schema of the store's tables")]
Dataset = Annotated[str | None, Field(description="the dataset (table) name")]
Confirm = Annotated[
    bool,
    Field(
        description="must be true: this tool writes (it refuses otherwise)",
    ),
]
Region = Annotated[
    str | None,
    Field(description="region of phone numbers without a country code, e.g. GB"),
]
InputFormat = Literal["auto", "json", "jsonl", "csv", "parquet"]
Columns = Annotated[list[str] | None, Field(description="column names")]
Engine = Literal["sklearn", "h2o"]
Paths = Annotated[list[str], Field(min_length=1, description="files or folders")]
DocsDatasets = Annotated[list[str] | None, Field(description="only these datasets")]
ImputeMode = Literal["accurate", "preserve_variance"]


class _Refused(Exception):
    pass


def _path(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if value == "-":
        raise _Refused(f"{what}: '-' (stdin) cannot be read here, stdin carries the protocol: "
                       "give a file path")  # fmt: skip
    if value.startswith("-"):
        raise _Refused(f"{what}: {value!r} starts with '-': write it as ./{value}")
    return value


def words(*command: str, positional: Sequence[str | None] = (), **options: Any) -> list[str]:
    """The command line of ``pipewarden <command>``: ``None`` and ``False`` options left out,
    ``True`` a flag, a list repeated, every value attached (``--dataset=x``) so that no value
    is ever read as an option."""
    out = list(command)
    for name, value in options.items():
        flag = "--" + name.rstrip("_").replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            out.append(flag)
        elif isinstance(value, list | tuple):
            out += [f"{flag}={v}" for v in value]
        else:
            out.append(f"{flag}={value}")
    for value in positional:
        if value is not None:
            out.append(_path(value, "argument"))
    return out


def call(argv: list[str]) -> ToolResult:
    """Run the command; its document as a :class:`ToolResult`, its refusal as a ToolError."""
    from mcp.server.mcpserver.exceptions import ToolError

    try:
        outcome = invoke(argv)
    except CommandFailed as exc:
        raise ToolError(exc.render()) from None
    return ToolResult(
        exit_code=outcome.exit_code, passed=outcome.exit_code == 0, result=outcome.document
    )


def _annotations(kind: str, title: str):
    from mcp.types import ToolAnnotations

    read = kind == "read"
    return ToolAnnotations(
        title=title,
        readOnlyHint=read,
        destructiveHint=None if read else kind == "destructive",
        idempotentHint=read or kind == "idempotent",
        openWorldHint=False,
    )


def build_server(
    config: str | None = None,
    store: str | None = None,
    namespace: str | None = None,
    *,
    name: str = "pipewarden",
):
    """The MCP server: ``config`` (a pipeline config) is the default of every tool that takes
    one and, with ``store``/``namespace``, what the resources read."""
    from mcp.server import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    from .. import __version__

    server = MCPServer(name, version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")

    def tool(kind: str, title: str, writes: str | None = None):
        """Register a tool: ``kind`` read | write | idempotent | destructive; a tool that
        writes refuses without confirm=true (``writes`` says what it writes)."""

        def register(fn):
            import functools
            import inspect

            @functools.wraps(fn)
            def wrapped(*args: Any, **kwargs: Any) -> ToolResult:
                if writes and not kwargs.get("confirm"):
                    raise ToolError(
                        f"exit 2 (bad input or call): {fn.__name__} {writes}; nothing was "
                        "done: call it again with confirm=true to go ahead"
                    )
                try:
                    return fn(*args, **kwargs)
                except _Refused as exc:
                    raise ToolError(f"exit 2 (bad input or call): {exc}") from None

            wrapped.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
            doc = (fn.__doc__ or "").strip()
            if writes:
                doc += f"\n\nWrites: {writes}. Refuses unless confirm=true."
            server.add_tool(
                wrapped,
                name=fn.__name__,
                title=title,
                description=doc,
                annotations=_annotations(kind, title),
                structured_output=True,
            )
            return fn

        return register

    def cfg(value: str | None) -> str:
        """The config a tool names, else the server's; one of them is needed."""
        if value is None and config is None:
            raise _Refused("give `config` (a pipeline config): this server was started "
                           "without one")  # fmt: skip
        return _path(value if value is not None else config, "config")  # type: ignore[return-value]

    server_config = config

    def store_or_config(store_url: str | None, config_path: str | None) -> dict[str, Any]:
        """--store wins; else the given config, else the server's (or the server's store)."""
        if store_url or config_path:
            return {"store": store_url, "config": _path(config_path, "config")}
        if config:
            return {"store": None, "config": config}
        return {"store": store, "config": None}

    # ------------------------------------------------------------------ schema sentinel

    @tool("read", "Plan a batch's schema change")
    def sentinel_plan(
        source: FilePath,
        target: OptFile = None,
        dsn: StoreUrl = None,
        table: Dataset = None,
        namespace: Namespace = None,
        contract: Annotated[
            str | None,
            Field(
                description="a contract file, one mode (evolve|freeze|...) or "
                "k=v,... (columns=freeze,data_type=quarantine)",
            ),
        ] = None,
        dialect: Literal["postgres", "duckdb"] | None = None,
        input_format: InputFormat | None = None,
        records_path: Annotated[
            str | None, Field(description="where the records are: data, /a/b")
        ] = None,
        short_rows: Literal["pad", "quarantine", "error"] | None = None,
        encoding: str | None = None,
    ) -> ToolResult:
        """Infer the schema of a batch from every row, compare it with the target schema (a
        schema file, or the table's current version in `dsn`), and return the delta, the DDL
        that is safe for the dialect and the rows the contract would quarantine (masked).
        Writes nothing. result.decision: pass | evolve | reject (exit 1)."""
        return call(words("sentinel", source=_path(source, "source"),
                          target=_path(target, "target"), dsn=dsn, table=table,
                          namespace=namespace, contract=contract, dialect=dialect,
                          input_format=input_format, records_path=records_path,
                          short_rows=short_rows, encoding=encoding))  # fmt: skip

    @tool("idempotent", "Apply a batch's schema change", writes="runs the DDL and records the "
          "new schema version in the database (and the docs with `docs`)")  # fmt: skip
    def sentinel_apply(
        source: FilePath,
        dsn: Annotated[str, Field(description="postgresql://... or a DuckDB file")],
        confirm: Confirm = False,
        target: OptFile = None,
        table: Dataset = None,
        namespace: Namespace = None,
        contract: str | None = None,
        docs: Annotated[str | None, Field(description="regenerate the table's docs here")] = None,
        docs_git: Literal["commit", "stage", "off"] | None = None,
        input_format: InputFormat | None = None,
        records_path: str | None = None,
        short_rows: Literal["pad", "quarantine", "error"] | None = None,
        encoding: str | None = None,
    ) -> ToolResult:
        """sentinel_plan, then run the DDL and record the schema version in one transaction
        (only changes that are safe in place; a rejected batch applies nothing, exit 1)."""
        return call(words("sentinel", source=_path(source, "source"),
                          target=_path(target, "target"), dsn=dsn, apply=True, table=table,
                          namespace=namespace, contract=contract, docs=_path(docs, "docs"),
                          docs_git=docs_git, input_format=input_format,
                          records_path=records_path, short_rows=short_rows,
                          encoding=encoding))  # fmt: skip

    # ------------------------------------------------------------------ guardian

    @tool("read", "Scan a batch for PII")
    def guard_scan(
        data: FilePath,
        policy: OptFile = None,
        strict: bool = False,
        region: Region = None,
        dataset: Dataset = None,
        mode: Literal["precision", "recall"] | None = None,
        input_format: InputFormat | None = None,
        max_findings: int | None = None,
    ) -> ToolResult:
        """Find PII in every value, key and column of a batch and apply the policy: columns
        labelled PII, counts per entity and action, findings with row, column, entity and a
        masked preview (never the value). exit 1 when a block rule matched, a threshold was
        crossed, or `strict` found an unhandled finding."""
        return call(words("guard", "scan", data=_path(data, "data"),
                          policy=_path(policy, "policy"), strict=strict, region=region,
                          dataset=dataset, mode=mode, input_format=input_format,
                          max_findings=max_findings))  # fmt: skip

    @tool("idempotent", "Write the masked batch", writes="writes the batch as it would load "
          "(masks applied, PII keys renamed, quarantined rows left out) to `output`")  # fmt: skip
    def guard_mask(
        data: FilePath,
        output: FilePath,
        confirm: Confirm = False,
        policy: OptFile = None,
        strict: bool = False,
        region: Region = None,
        dataset: Dataset = None,
        mode: Literal["precision", "recall"] | None = None,
        input_format: InputFormat | None = None,
        output_format: Literal["json", "jsonl", "csv", "parquet"] | None = None,
    ) -> ToolResult:
        """guard_scan, and when the gate passes, the masked batch written to `output`."""
        return call(words("guard", "scan", data=_path(data, "data"),
                          output=_path(output, "output"), policy=_path(policy, "policy"),
                          strict=strict, region=region, dataset=dataset, mode=mode,
                          input_format=input_format, output_format=output_format))  # fmt: skip

    @tool("read", "Check a PII policy file")
    def guard_policy_check(policy: FilePath) -> ToolResult:
        """Validate a policy YAML file: every problem with its key. exit 1 when it has one."""
        return call(words("guard", "policy-check", positional=[policy]))

    @tool("read", "Evaluate the PII detector")
    def guard_eval(
        data: OptFile = None,
        outside: bool = False,
        policy: OptFile = None,
        mode: Literal["precision", "recall"] | None = None,
        min_f2: Annotated[float | None, Field(ge=0, le=1)] = None,
    ) -> ToolResult:
        """Precision, recall and F2 per entity on a labelled set (default: the bundled one;
        `outside`: the set built from sources the recognizers were not written against)."""
        return call(words("guard", "eval", data=_path(data, "data"), outside=outside,
                          policy=_path(policy, "policy"), mode=mode, min_f2=min_f2))  # fmt: skip

    # ------------------------------------------------------------------ anomaly + breaker

    @tool("read", "Score a batch's rows for anomalies")
    def anomaly_score(
        data: FilePath,
        model: OptFile = None,
        threshold: Annotated[float | None, Field(ge=0, le=1)] = None,
        config: OptFile = None,
        engine: Engine | None = None,
        h2o_url: str | None = None,
        h2o_algorithm: Literal["if", "eif"] | None = None,
        include: Columns = None,
        exclude: Columns = None,
        region: Region = None,
        fail_on_flagged: bool = False,
    ) -> ToolResult:
        """Score every row in [0, 1] (against `model` from anomaly_train, else the batch
        itself); flagged rows list the columns that made them unusual, never a value."""
        return call(words("anomaly", "score", data=_path(data, "data"),
                          model=_path(model, "model"), threshold=threshold,
                          config=_path(config, "config"), engine=engine, h2o_url=h2o_url,
                          h2o_algorithm=h2o_algorithm, include=include or [],
                          exclude=exclude or [], region=region,
                          fail_on_flagged=fail_on_flagged))  # fmt: skip

    @tool("write", "Score a batch through the monitors and the breaker", writes="records the "
          "batch in the dataset's history and breaker window (and `scores_out`)")  # fmt: skip
    def anomaly_check_batch(
        data: FilePath,
        confirm: Confirm = False,
        store: StoreUrl = None,
        dataset: Dataset = None,
        config: OptFile = None,
        model: OptFile = None,
        threshold: Annotated[float | None, Field(ge=0, le=1)] = None,
        engine: Engine | None = None,
        h2o_url: str | None = None,
        region: Region = None,
        scores_out: OptFile = None,
    ) -> ToolResult:
        """anomaly_score plus the batch health monitors (row count, nulls, distincts, shifts,
        category mix, duplicates) and the dataset's circuit breaker: exit 1 when the breaker
        is open (the batch would be quarantined whole)."""
        return call(words("anomaly", "score", data=_path(data, "data"), circuit_breaker=True,
                          store=store, dataset=dataset, config=_path(config, "config"),
                          model=_path(model, "model"), threshold=threshold, engine=engine,
                          h2o_url=h2o_url, region=region,
                          scores_out=_path(scores_out, "scores_out")))  # fmt: skip

    @tool("idempotent", "Train an anomaly model", writes="writes a model directory at `out`")
    def anomaly_train(
        data: FilePath,
        out: FilePath,
        confirm: Confirm = False,
        config: OptFile = None,
        engine: Engine | None = None,
        h2o_url: str | None = None,
        h2o_algorithm: Literal["if", "eif"] | None = None,
        include: Columns = None,
        exclude: Columns = None,
        region: Region = None,
    ) -> ToolResult:
        """Fit the encoding, robust statistics, engine and calibration on history."""
        return call(words("anomaly", "train", data=_path(data, "data"), out=_path(out, "out"),
                          config=_path(config, "config"), engine=engine, h2o_url=h2o_url,
                          h2o_algorithm=h2o_algorithm, include=include or [],
                          exclude=exclude or [], region=region))  # fmt: skip

    @tool("read", "Show a dataset's circuit breaker")
    def breaker_status(store: StoreUrl = None, dataset: Dataset = None,
                       config: Config = None) -> ToolResult:  # fmt: skip
        """State (closed, open, half_open), why it opened, the held batches and how to
        release them, the window of recent outcomes. exit 1 when open."""
        where = store_or_config(store, config)
        return call(words("breaker", "status", dataset=dataset, **where))

    @tool("destructive", "Reset a dataset's circuit breaker", writes="closes the breaker and "
          "empties its window (`rebaseline`: also forgets the monitors' history)")  # fmt: skip
    def breaker_reset(
        confirm: Confirm = False,
        store: StoreUrl = None,
        dataset: Dataset = None,
        config: Config = None,
        rebaseline: bool = False,
    ) -> ToolResult:
        """Close the breaker by hand."""
        where = store_or_config(store, config)
        return call(words("breaker", "reset", dataset=dataset, rebaseline=rebaseline, **where))

    # ------------------------------------------------------------------ run + quarantine

    @tool("write", "Run a pipeline", writes="loads every new batch of the config's source into "
          "the store (one transaction per batch)")  # fmt: skip
    def run(confirm: Confirm = False, config: Config = None) -> ToolResult:
        """Every file of the source is one batch: schema sentinel, the configured steps
        (guardian, anomaly, impute), then typed rows, raw landing and quarantine in one
        transaction. Per batch: status, decision, rows read/loaded/quarantined (read ==
        loaded + quarantined), the delta, the DDL, the quarantine reasons. exit 1 when a batch
        was blocked or failed."""
        return call(words("run", positional=[cfg(config)]))

    @tool("read", "List quarantined rows")
    def quarantine_list(
        config: Config = None,
        store: StoreUrl = None,
        schema: Namespace = None,
        dataset: Dataset = None,
        status: Literal["pending", "replayed"] | None = None,
        reason: str | None = None,
        limit: Annotated[int | None, Field(ge=1)] = None,
    ) -> ToolResult:
        """The rows runs held back, with the reason, column, batch and masked previews of the
        payload (never the raw payload)."""
        where = store_or_config(store, config)
        if where["store"] and not store:  # the server's own store
            schema = schema or namespace
        return call(words("quarantine", "list", store=where["store"], schema=schema,
                          dataset=dataset, status=status, reason=reason, limit=limit,
                          positional=[where["config"]]))  # fmt: skip

    @tool("write", "Replay quarantined rows", writes="loads the rows that pass now and marks "
          "them replayed")  # fmt: skip
    def quarantine_replay(
        confirm: Confirm = False,
        config: Config = None,
        reason: str | None = None,
        limit: Annotated[int | None, Field(ge=1)] = None,
    ) -> ToolResult:
        """Judge the pending rows again against the current schema, contract and steps of the
        config (after the contract was relaxed or a type fixed)."""
        return call(words("quarantine", "replay", reason=reason, limit=limit,
                          positional=[cfg(config)]))  # fmt: skip

    # ------------------------------------------------------------------ pipeline architect

    @tool("read", "Validate Airflow DAG files")
    def validate_dag(
        paths: Paths,
        config: OptFile = None,
        cache: bool = True,
        jobs: Annotated[int | None, Field(ge=0)] = None,
    ) -> ToolResult:
        """Static checks of Airflow DAG files (nothing is executed): syntax, dag_id/task_id,
        Airflow 3 removals, retries/owner, cycles with their path. exit 1 on an error."""
        return call(words("validate", "dag", config=_path(config, "config"),
                          no_cache=not cache, jobs=jobs, positional=paths))  # fmt: skip

    @tool("read", "Validate a Mage project or pipeline")
    def validate_pipeline(paths: Paths, config: OptFile = None) -> ToolResult:
        """Mage's own load errors and what Mage lets through (one-sided edges, missing block
        files, wrong decorators, cycles), with lines in metadata.yaml. exit 1 on an error."""
        return call(words("validate", "pipeline", config=_path(config, "config"),
                          positional=paths))  # fmt: skip

    @tool("read", "Find dependency cycles")
    def validate_cycles(paths: Paths, config: OptFile = None) -> ToolResult:
        """Cycles in an Airflow DAG, a Mage project, a dbt manifest or a JSON graph, each
        with a closed path. exit 1 when there is one."""
        return call(words("validate", "cycles", config=_path(config, "config"),
                          positional=paths))  # fmt: skip

    @tool("destructive", "Scaffold a pipeline", writes="writes the pipeline's files (a "
          "pipewarden config and the orchestrator's files; `force` overwrites)")  # fmt: skip
    def scaffold(
        kind: Literal["airflow", "mage", "dbt"],
        name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,47}$")],
        confirm: Confirm = False,
        dir: Annotated[str | None, Field(description="where (for mage: the Mage project)")] = None,
        source: OptFile = None,
        store: Literal["duckdb", "postgres"] | None = None,
        wait_for: Annotated[
            list[str] | None,
            Field(
                description="dependencies to wait for: KIND:TARGET (file:, table:, upstream:, http:)"
            ),
        ] = None,
        unique_key: str | None = None,
        updated_at: str | None = None,
        blocks: Annotated[
            bool,
            Field(description="mage: one block per check (pipewarden.mage), not one guard block"),
        ] = False,
        h2o_url: Annotated[
            str | None,
            Field(description="the anomaly step's H2O cluster: a URL or ${PIPEWARDEN_H2O_URL}"),
        ] = None,
        steps: Annotated[
            list[str] | None,
            Field(
                description="more steps after guardian and anomaly: impute[:MODE], features:SPEC"
            ),
        ] = None,
        force: bool = False,
    ) -> ToolResult:
        """A pipeline that ingests a source through the sentinel, guardian and anomaly steps
        and passes pipewarden's validators: airflow (dags/NAME.py), mage (blocks and
        metadata.yaml in a Mage project) or dbt (an incremental model)."""
        if kind != "dbt" and (unique_key or updated_at):
            raise _Refused("unique_key and updated_at are for kind=dbt")
        if kind != "mage" and blocks:
            raise _Refused("blocks is for kind=mage")
        return call(words("scaffold", kind, dir=_path(dir, "dir"), source=source,
                          store=store, wait_for=wait_for or [], unique_key=unique_key,
                          updated_at=updated_at, blocks=blocks, h2o_url=h2o_url, step=steps or [],
                          force=force,
                          positional=[name]))  # fmt: skip

    # ------------------------------------------------------------------ docs

    @tool("idempotent", "Build the datasets' docs", writes="writes the docs pages, index and "
          "migrations, the database comments, and commits them with git=commit")  # fmt: skip
    def docs_build(
        confirm: Confirm = False,
        config: Config = None,
        store: StoreUrl = None,
        namespace: Namespace = None,
        path: OptFile = None,
        datasets: DocsDatasets = None,
        git: Literal["commit", "stage", "off"] | None = None,
    ) -> ToolResult:
        """Regenerate each dataset's page, the index and the migrations from the store."""
        return call(words("docs", "build", store=store, namespace=namespace,
                          path=_path(path, "path"), dataset=datasets or [], git=git,
                          positional=[None if store else _path(config or server_config, "config")]))  # fmt: skip

    @tool("read", "Check the docs against the store")
    def docs_check(
        config: Config = None,
        store: StoreUrl = None,
        namespace: Namespace = None,
        path: OptFile = None,
        datasets: DocsDatasets = None,
    ) -> ToolResult:
        """Compare the docs folder with what the store says now: exit 1 with the drift."""
        return call(words("docs", "check", store=store, namespace=namespace,
                          path=_path(path, "path"), dataset=datasets or [],
                          positional=[None if store else _path(config or server_config, "config")]))  # fmt: skip

    # ------------------------------------------------------------------ ingest

    @tool("read", "Show what the HTTP ingestion learned")
    def ingest_status(
        source: str | None = None,
        config: Config = None,
        store: StoreUrl = None,
        schema: Namespace = None,
    ) -> ToolResult:
        """Per host of an HTTP source: the learned concurrency limit, ceiling, latency,
        last throttle and header conventions."""
        where = store_or_config(store, config)
        return call(words("ingest", "status", schema=schema, **where, positional=[source]))

    @tool("destructive", "Forget what the HTTP ingestion learned", writes="forgets the learned "
          "limits of the source (one host with `host`)")  # fmt: skip
    def ingest_reset(
        confirm: Confirm = False,
        source: str | None = None,
        host: str | None = None,
        config: Config = None,
        store: StoreUrl = None,
        schema: Namespace = None,
    ) -> ToolResult:
        """The source's next run starts cold (its cursor is kept)."""
        where = store_or_config(store, config)
        return call(words("ingest", "reset", host=host, schema=schema, **where,
                          positional=[source]))  # fmt: skip

    # ------------------------------------------------------------------ impute + features

    def _impute_words(data, history, store_url, schema, dataset, model, column, exclude,
                      mode, engine, h2o_algorithm, h2o_url, max_error, seed, region,
                      **more) -> list[str]:  # fmt: skip
        return words("impute", data=_path(data, "data"), history=_path(history, "history"),
                     store=store_url, schema=schema, dataset=dataset,
                     model=_path(model, "model"), column=column or [], exclude=exclude or [],
                     mode=mode, engine=engine, h2o_algorithm=h2o_algorithm, h2o_url=h2o_url,
                     max_error=max_error, seed=seed, region=region, **more)  # fmt: skip

    @tool("read", "Plan the imputation of a batch")
    def impute(
        data: FilePath,
        history: OptFile = None,
        store: StoreUrl = None,
        schema: Namespace = None,
        dataset: Dataset = None,
        model: OptFile = None,
        column: Columns = None,
        exclude: Columns = None,
        mode: ImputeMode | None = None,
        engine: Literal["embedded", "h2o"] | None = None,
        h2o_algorithm: Literal["glrm", "gbm"] | None = None,
        h2o_url: str | None = None,
        max_error: Annotated[float | None, Field(gt=0)] = None,
        seed: int | None = None,
        region: Region = None,
    ) -> ToolResult:
        """Per column: cells missing and fillable, the model and its expected error measured
        on hidden cells, or why a column stays null. Writes nothing (impute_fill writes)."""
        return call(_impute_words(data, history, store, schema, dataset, model, column,
                                  exclude, mode, engine, h2o_algorithm, h2o_url, max_error,
                                  seed, region))  # fmt: skip

    @tool("idempotent", "Fill a batch's missing cells", writes="writes the filled records "
          "(JSONL) to `out` and the imputer to `save_model`")  # fmt: skip
    def impute_fill(
        data: FilePath,
        out: FilePath,
        confirm: Confirm = False,
        history: OptFile = None,
        store: StoreUrl = None,
        schema: Namespace = None,
        dataset: Dataset = None,
        model: OptFile = None,
        save_model: OptFile = None,
        column: Columns = None,
        exclude: Columns = None,
        mode: ImputeMode | None = None,
        engine: Literal["embedded", "h2o"] | None = None,
        h2o_algorithm: Literal["glrm", "gbm"] | None = None,
        h2o_url: str | None = None,
        max_error: Annotated[float | None, Field(gt=0)] = None,
        seed: int | None = None,
        region: Region = None,
        flag_column: str | None = None,
    ) -> ToolResult:
        """impute, with the filled records written (flag_column names the filled columns)."""
        return call(_impute_words(data, history, store, schema, dataset, model, column,
                                  exclude, mode, engine, h2o_algorithm, h2o_url, max_error,
                                  seed, region, out=_path(out, "out"),
                                  save_model=_path(save_model, "save_model"),
                                  flag_column=flag_column))  # fmt: skip

    @tool("write", "Discover features for a target", writes="writes the spec to `out` when "
          "given (for features_emit)")  # fmt: skip
    def features_discover(
        target: Annotated[str, Field(description="the column to predict")],
        confirm: Confirm = False,
        data: OptFile = None,
        store: StoreUrl = None,
        schema: Namespace = None,
        dataset: Dataset = None,
        engine: Literal["embedded", "h2o"] | None = None,
        max_runtime: Annotated[int | None, Field(ge=1)] = None,
        max_models: Annotated[int | None, Field(ge=1)] = None,
        h2o_url: str | None = None,
        max_features: Annotated[int | None, Field(ge=1)] = None,
        seed: int | None = None,
        exclude: Columns = None,
        out: OptFile = None,
    ) -> ToolResult:
        """Rank candidate features (products/ratios of interacting pairs, date parts,
        category frequencies) by cross-validated lift; report the held-out lift."""
        return call(words("features", "discover", target=target, data=_path(data, "data"),
                          store=store, schema=schema, dataset=dataset, engine=engine,
                          max_runtime=max_runtime, max_models=max_models, h2o_url=h2o_url,
                          max_features=max_features,
                          seed=seed, exclude=exclude or [], out=_path(out, "out")))  # fmt: skip

    @tool("destructive", "Emit discovered features", writes="writes a dbt model, its docs and "
          "a Mage transformer block (`force` overwrites)")  # fmt: skip
    def features_emit(
        spec: FilePath,
        confirm: Confirm = False,
        dir: OptFile = None,
        name: str | None = None,
        source: str | None = None,
        force: bool = False,
    ) -> ToolResult:
        """The chosen features as a dbt model and a Mage transformer block."""
        return call(words("features", "emit", spec=_path(spec, "spec"), dir=_path(dir, "dir"),
                          name=name, source=source, force=force))  # fmt: skip

    # ------------------------------------------------------------------ rca + conduct

    @tool("read", "Explain a failure")
    def rca(
        log: OptFile = None,
        kind: Literal["auto", "text", "airflow", "mage"] | None = None,
        config: Config = None,
        store: StoreUrl = None,
        schema: Namespace = None,
        pipeline: str | None = None,
        dataset: Dataset = None,
        run: Annotated[
            str | None,
            Field(description="explain a recorded failed run: its id or 'last'"),
        ] = None,
        repo: OptFile = None,
    ) -> ToolResult:
        """A failure's class from the signature library, the evidence (scrubbed of secrets
        and PII), ranked fixes, whether to retry, a fingerprint, similar past incidents and
        the context (git, schema changes, quarantine, breaker). Records nothing."""
        where = store_or_config(store, config) if (store or config or run or pipeline) else {}
        return call(words("rca", kind=kind, schema=schema, pipeline=pipeline, dataset=dataset,
                          run=run, repo=_path(repo, "repo"), no_record=True, **where,
                          positional=[log]))  # fmt: skip

    @tool("read", "List incidents")
    def incidents_list(
        config: Config = None,
        store: StoreUrl = None,
        schema: Namespace = None,
        pipeline: str | None = None,
        open: bool = False,
    ) -> ToolResult:
        """Failures grouped by fingerprint, newest first, with what resolved them."""
        where = store_or_config(store, config)
        return call(words("incidents", "list", schema=schema, pipeline=pipeline, open=open,
                          **where))  # fmt: skip

    @tool("write", "Record what fixed an incident", writes="records the resolution in the "
          "incident memory")  # fmt: skip
    def incidents_resolve(
        fingerprint: str,
        confirm: Confirm = False,
        fix: str | None = None,
        note: str | None = None,
        config: Config = None,
        store: StoreUrl = None,
        schema: Namespace = None,
    ) -> ToolResult:
        """The next failure with the same fingerprint ranks this fix first."""
        where = store_or_config(store, config)
        return call(words("incidents", "resolve", fix=fix, note=note, schema=schema, **where,
                          positional=[fingerprint]))  # fmt: skip

    @tool("write", "Wait for a pipeline's dependencies", writes="records each wait (it may "
          "block for the dependency's learned timeout)")  # fmt: skip
    def wait(
        confirm: Confirm = False, config: Config = None, dependency: str | None = None
    ) -> ToolResult:
        """Wait for the config's dependencies in order (file, table batch, upstream run,
        HTTP health, SQL): exit 1 when one timed out."""
        return call(words("wait", dependency=dependency, positional=[cfg(config)]))

    _resources(server, config, store, namespace)
    return server


# ------------------------------------------------------------------------------ resources


def _resources(server: Any, config: str | None, store_url: str | None, namespace: str | None):
    """The store's datasets, their current schema, docs page and the run log."""
    import orjson
    from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

    def open_store():
        from ..run import load_config, open_config_store
        from ..store import open_store as open_url

        try:
            if config:
                return open_config_store(load_config(config), create=False)
            if store_url:
                return open_url(store_url, namespace=namespace, create=False)
        except CommandFailed as exc:  # pragma: no cover
            raise ResourceError(exc.render()) from None
        except Exception as exc:
            from ..cli import failure

            mapped = failure(exc)
            if mapped is None:
                raise
            raise ResourceError(f"exit {mapped[0]}: {mapped[1]}") from None
        raise ResourceError(
            "this server has no store: start it with `pipewarden mcp PIPELINE.yaml` or --store"
        )

    def dumps(doc: Any) -> str:
        from ..redact import redact_doc

        return orjson.dumps(redact_doc(doc), default=str, option=orjson.OPT_INDENT_2).decode()

    @contextmanager
    def store_of(dataset: str | None = None) -> Iterator[Any]:
        """The server's store, open; with ``dataset``, one it holds."""
        st = open_store()
        try:
            if dataset is not None and dataset not in st.datasets():
                raise ResourceNotFoundError(f"no dataset {dataset!r} in the store (known: "
                                            f"{', '.join(st.datasets()) or 'none'})")  # fmt: skip
            yield st
        finally:
            st.close()

    @server.resource("pipewarden://datasets", mime_type="application/json",
                     description="The datasets of the server's store")  # fmt: skip
    def datasets() -> str:
        with store_of() as st:
            return dumps({"datasets": st.datasets()})

    @server.resource("pipewarden://schema/{dataset}", mime_type="application/json",
                     description="The current schema of a dataset and its version history")  # fmt: skip
    def schema(dataset: str) -> str:
        from ..reflect.catalog import Db
        from ..schema.history import history

        with store_of(dataset) as st:
            db = Db.of_store(st)
            versions = history(db.conn, st.dialect, dataset, st.namespace)
            if st.dialect == "postgres":
                db.conn.rollback()
        latest = versions[-1] if versions else None
        return dumps({
            "dataset": dataset,
            "version": latest and latest.get("version"),
            "schema": latest and latest.get("schema"),
            "history": [{k: v for k, v in ver.items() if k != "schema"} for ver in versions],
        })  # fmt: skip

    @server.resource("pipewarden://docs/{dataset}", mime_type="text/markdown",
                     description="A dataset's docs page, generated from the store now")  # fmt: skip
    def docs(dataset: str) -> str:
        from pathlib import Path

        from ..reflect import render
        from ..reflect.catalog import Db
        from ..reflect.docs import DocsSettings, generate, settings_from_config
        from ..run import load_config

        settings = None
        if config:
            cfg = load_config(config)
            settings = settings_from_config(cfg) or settings_from_config({**cfg, "docs": {}})
        with store_of(dataset) as st:
            gen = generate(Db.of_store(st), settings or DocsSettings(path=Path(os.devnull)),
                           [dataset])  # fmt: skip
        return gen.files[render.page_path(dataset)]

    @server.resource("pipewarden://runs", mime_type="application/json",
                     description="The run log: every batch of every run, oldest first")  # fmt: skip
    def runs() -> str:
        with store_of() as st:
            return dumps({"runs": st.runs()})

    @server.resource("pipewarden://runs/{dataset}", mime_type="application/json",
                     description="The run log of one dataset")  # fmt: skip
    def dataset_runs(dataset: str) -> str:
        with store_of(dataset) as st:
            return dumps({"dataset": dataset, "runs": st.runs(dataset)})


def serve(
    config: str | None = None,
    store: str | None = None,
    namespace: str | None = None,
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8765,
) -> None:
    """Run the server until its client goes away (stdio) or it is stopped (http)."""
    server = build_server(config, store, namespace)
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=host, port=port)
