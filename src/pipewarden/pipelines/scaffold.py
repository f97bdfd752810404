"""``pipewarden scaffold airflow|mage|dbt``: a pipeline that ingests a source through pipewarden.

Every scaffold writes a pipewarden pipeline config ``pipewarden/<name>.yaml`` (checked against
``pipeline_config_schema.json``, the same schema ``pipewarden run`` uses) with the schema
sentinel's contract, the ``guardian`` and ``anomaly`` steps and the warehouse store, plus the
orchestrator's files that run it through :func:`pipewarden.run.run_pipeline`:

- airflow: ``dags/<name>.py`` (Airflow 3, from ``airflow_dag_template.py``);
- mage: ``pipelines/<name>/metadata.yaml`` (both upstream and downstream lists),
  ``data_loaders/<name>_config.py``, ``transformers/<name>_guard.py``,
  ``data_exporters/<name>_report.py`` in a Mage project (``mage init`` makes one); with
  ``blocks``, one block per check instead of the guard block (config -> breaker -> sentinel
  -> guardian -> anomaly -> load -> docs -> report), each a call of :mod:`pipewarden.mage`;
- dbt: ``models/pipewarden/<name>.sql`` (incremental) and ``models/pipewarden/_<name>_sources.yml``.

Nothing is overwritten unless ``force``; every file is rendered and validated before the first
one is written, so a failed scaffold writes nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from importlib import resources
from pathlib import Path

import yaml

from ..errors import InputError
from ..store.base import dataset_name_problem

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,47}$")
KINDS = ("airflow", "mage", "dbt")


def template(name: str) -> str:
    """The text of a template shipped in ``pipewarden/pipelines/templates``."""
    return (
        resources.files("pipewarden.pipelines")
        .joinpath("templates", name)
        .read_text(encoding="utf-8")
    )


def config_schema() -> dict:
    """``pipeline_config_schema.json``: the one schema of ``pipewarden run`` configs."""
    text = (
        resources.files("pipewarden")
        .joinpath("pipeline_config_schema.json")
        .read_text(encoding="utf-8")
    )
    return json.loads(text)


def pipeline_config(
    name: str,
    source: str,
    store: str,
    dependencies: list | None = None,
    steps: list[dict] | None = None,
    h2o_url: str | None = None,
) -> dict:
    anomaly: dict = {"type": "anomaly"}
    if h2o_url:  # the H2O engine on a cluster reached by URL (never a local JVM in its place)
        anomaly.update(engine="h2o", h2o={"url": h2o_url})
    doc: dict = {
        "version": 1,
        "name": name,
        "dataset": name,
        "source": {"path": source, "format": "auto"},
        "contract": {"tables": "evolve", "columns": "evolve", "data_type": "quarantine"},
        "steps": [{"type": "guardian"}, anomaly, *(steps or [])],
        # the reflection loop: docs rebuilt on every schema change (and by the docs block/task)
        "docs": {"path": f"docs/{name}", "git": "off"},
    }
    if store == "postgres":
        doc["store"] = {"kind": "postgres", "dsn": "${PIPEWARDEN_DSN}", "schema": "public"}
    else:
        doc["store"] = {"kind": "duckdb", "path": "warehouse.duckdb"}
    if dependencies:
        doc["criticality"] = "high"
        doc["dependencies"] = dependencies
    import jsonschema

    errors = sorted(jsonschema.Draft202012Validator(config_schema()).iter_errors(doc), key=str)
    if errors:  # pragma: no cover - the scaffold and the schema disagree: a bug
        raise InputError(f"scaffolded config does not fit the schema: {errors[0].message}")
    return doc


def _render(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(f"__PW_{key}__", value)
    return text


def _mage_block(
    role: str, decorator: str, function: str, doc: str, body: str, test: str, values: dict
) -> str:
    text = template("mage_block_template.py")
    return _render(
        text,
        {
            **values,
            "ROLE": role,
            "DECORATOR": decorator,
            "FUNCTION": function,
            "DOC": doc,
            "BODY": body,
            "TEST": test,
        },
    )


def _files(
    kind: str,
    name: str,
    source: str,
    store: str,
    unique_key: str,
    updated_at: str,
    wait_for: list[dict] | None = None,
    steps: list[dict] | None = None,
    blocks: bool = False,
    h2o_url: str | None = None,
) -> dict[str, str]:
    cfg_rel = f"pipewarden/{name}.yaml"
    files: dict[str, str] = {}
    # the source path is relative to the pipeline config file (or starts at ${VAR} or /)
    absolute = os.path.isabs(source) or source.startswith("${")
    src = source if absolute else os.path.relpath(source, "pipewarden")
    cfg = pipeline_config(name, src, store, wait_for, steps, h2o_url)
    checks = ", ".join(["schema sentinel"] + [s["type"] for s in cfg["steps"]])
    header = (
        f"# pipewarden pipeline `{name}`: `pipewarden run {cfg_rel}` (or pipewarden.run.run_pipeline)\n"
        f"# reads the source, checks every batch ({checks}) and loads\n"
        "# what passes into the store; the rest goes to the quarantine with its reason.\n"
    )
    files[cfg_rel] = header + yaml.safe_dump(cfg, sort_keys=False)
    values = {"NAME": name}
    if kind == "airflow":
        values["CONFIG_REL"] = f"../{cfg_rel}"
        files[f"dags/{name}.py"] = _airflow_sensors(
            _render(template("airflow_dag_template.py"), values), wait_for or []
        )
    elif kind == "mage":
        values["CONFIG_REL"] = cfg_rel
        files.update(_mage_files(name, cfg_rel, values, wait_for or [], blocks, checks))
    elif kind == "dbt":
        values.update(CONFIG_REL=cfg_rel, UNIQUE_KEY=unique_key, UPDATED_AT=updated_at)
        files[f"models/pipewarden/{name}.sql"] = _render(template("dbt_model_template.sql"), values)
        schema = "public" if store == "postgres" else "main"
        sources = {
            "version": 2,
            "sources": [
                {
                    "name": "pipewarden",
                    "description": "Tables pipewarden loads after its checks.",
                    "schema": schema,
                    "tables": [
                        {"name": name, "description": f"Loaded by `pipewarden run {cfg_rel}`."}
                    ],
                }
            ],
            "models": [
                {
                    "name": name,
                    "columns": [{"name": unique_key, "data_tests": ["unique", "not_null"]}],
                }
            ],
        }
        files[f"models/pipewarden/_{name}_sources.yml"] = yaml.safe_dump(sources, sort_keys=False)
    else:
        raise InputError(f"unknown scaffold kind {kind!r}", hint=f"one of {', '.join(KINDS)}")
    return files


STEP_KINDS = ("impute", "features")


def parse_steps(specs: list[str] | tuple[str, ...] | None, root: Path) -> list[dict]:
    """``impute`` or ``impute:MODE``, ``features:SPEC`` (a `features discover` spec, relative
    to the project) -> the ``steps`` entries added after guardian and anomaly; impute first, so
    the features of filled cells are computed from the fills (docs/features.md)."""
    out: list[dict] = []
    for spec in specs or ():
        what, _, arg = spec.partition(":")
        if what == "impute" and arg in ("", "accurate", "preserve_variance"):
            out.append({"type": "impute", **({"mode": arg} if arg else {})})
        elif what == "features" and arg:
            from ..features.spec import load_spec

            load_spec(arg if os.path.isabs(arg) else root / arg)  # a bad spec: nothing written
            rel = arg if os.path.isabs(arg) else os.path.relpath(arg, "pipewarden")
            out.append({"type": "features", "spec": rel})
        else:
            raise InputError(
                f"--step {spec!r} is not impute[:MODE] or features:SPEC",
                hint="impute, impute:preserve_variance or features:specs/orders-features.json",
            )
    return sorted(out, key=lambda s: STEP_KINDS.index(s["type"]))


WAIT_KINDS = ("file", "table", "upstream", "http")


def parse_wait_for(specs: list[str] | tuple[str, ...] | None, kind: str) -> list[dict]:
    """``file:PATH`` (relative to the project), ``table:DATASET``, ``upstream:PIPELINE`` or
    ``http:URL`` -> ``dependencies`` entries of the pipeline config."""
    deps: list[dict] = []
    for spec in specs or ():
        what, _, target = spec.partition(":")
        if what not in WAIT_KINDS or not target:
            raise InputError(
                f"--wait-for {spec!r} is not KIND:TARGET",
                hint="file:data/orders.jsonl, table:customers, upstream:crm_sync or "
                "http:https://api.example.com/health",
            )
        if kind == "dbt":
            raise InputError("--wait-for is for airflow and mage scaffolds")
        if what == "file":
            target = target if os.path.isabs(target) else os.path.relpath(target, "pipewarden")
            label = Path(target).name.split(".")[0] or "file"
        elif what == "http":
            label = "health"
        else:
            label = target
        dep_name = re.sub(r"[^A-Za-z0-9_]+", "_", f"{what}_{label}").strip("_")[:60]
        if any(d["name"] == dep_name for d in deps):
            dep_name = f"{dep_name}_{len(deps) + 1}"
        deps.append({"name": dep_name, what: target, "timeout": {"default": 3600}})
    return deps


_AIRFLOW_CHAIN = re.compile(r"^(    \S.*)check_config\(\)(.*)\n", re.M)  # the task chain
_AIRFLOW_IMPORT = "from airflow.sdk import dag, task\n"


def _airflow_sensors(text: str, deps: list[dict]) -> str:
    """The DAG with a PipewardenDependencySensor task (reschedule mode, learned timeout)
    upstream of check_config for each dependency."""
    if not deps:
        return text
    chains = list(_AIRFLOW_CHAIN.finditer(text))
    if not chains or _AIRFLOW_IMPORT not in text:  # pragma: no cover - a template change
        raise InputError("the Airflow template has changed: scaffold cannot add sensors")
    chain = chains[-1]
    lines = ["    config = check_config()\n"]
    for dep in deps:
        lines.append(
            f"    PipewardenDependencySensor(\n"
            f'        task_id="wait_for_{dep["name"]}",\n'
            f"        config=str(PIPELINE_CONFIG),\n"
            f'        dependency="{dep["name"]}",\n'
            f'        mode="reschedule",\n'
            f"    ) >> config\n"
        )
    lines.append(f"{chain.group(1)}config{chain.group(2)}\n")
    text = text[: chain.start()] + "".join(lines) + text[chain.end() :]
    return text.replace(
        _AIRFLOW_IMPORT,
        _AIRFLOW_IMPORT + "from pipewarden.conduct.airflow import PipewardenDependencySensor\n",
    )


def _write_all(root: Path, files: dict[str, str]) -> None:
    """Write every file or none: each goes to a temporary sibling first, and only when all are
    written are they moved into place (a folder in the way, a read-only or missing place is an
    error naming the file, with nothing left behind)."""
    for rel in files:
        if (root / rel).is_dir():
            raise InputError("a folder is in the way", file=str(root / rel), hint="move it away")
    done: list[tuple[Path, Path]] = []
    try:
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            done.append((tmp, path))
            tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        for tmp, _ in done:
            with contextlib.suppress(OSError):
                tmp.unlink()
        where = exc.filename or str(root)
        raise InputError(f"cannot write: {exc.strerror}", file=str(where)) from None
    for tmp, path in done:
        os.replace(tmp, path)


def scaffold(
    kind: str,
    name: str,
    directory: str | Path = ".",
    *,
    source: str | None = None,
    store: str = "duckdb",
    unique_key: str = "id",
    updated_at: str = "updated_at",
    force: bool = False,
    wait_for: list[str] | tuple[str, ...] | None = None,
    steps: list[str] | tuple[str, ...] | None = None,
    blocks: bool = False,
    h2o_url: str | None = None,
) -> dict:
    """Write a pipeline of ``kind`` named ``name`` under ``directory``; returns what was written."""
    if not NAME_RE.fullmatch(name or ""):
        raise InputError(
            f"pipeline name {name!r} is not valid",
            hint="use letters, digits and '_' (not first), at most 48 characters: it names the dataset",
        )
    why = dataset_name_problem(name)
    if why:
        raise InputError(f"pipeline name {name!r} cannot name a dataset: {why}", key="name")
    if store not in ("duckdb", "postgres"):
        raise InputError(f"unknown store {store!r}", hint="duckdb or postgres")
    for label, col in (("unique key", unique_key), ("updated-at column", updated_at)):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", col):
            raise InputError(f"{label} {col!r} is not a plain column name")
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise InputError("not a folder", file=str(root))
    source = source or f"data/{name}.jsonl"
    if blocks and kind != "mage":
        raise InputError("--blocks is for mage scaffolds", key="blocks")
    if h2o_url is not None and not re.fullmatch(
        r"(https?://\S+|\$\{[A-Za-z_][A-Za-z0-9_]*\})", h2o_url
    ):
        raise InputError(
            f"--h2o-url {h2o_url!r} is not an http(s) URL or ${{VAR}}",
            hint="e.g. http://h2o:54321 or '${PIPEWARDEN_H2O_URL}'",
        )
    files = _files(
        kind, name, source, store, unique_key, updated_at, parse_wait_for(wait_for, kind),
        parse_steps(steps, root), blocks, h2o_url,
    )  # fmt: skip
    clashes = [p for p in files if (root / p).exists()]
    if clashes and not force:
        raise InputError(
            f"would overwrite {', '.join(clashes)}",
            file=str(root),
            hint="pass --force to overwrite",
        )
    _write_all(root, files)
    hints = {
        "airflow": f"put {root / 'dags'} in Airflow's dags folder; the DAG runs pipewarden/{name}.yaml",
        "mage": f"mage run {root} {name}",
        "dbt": f"pipewarden run {root / 'pipewarden' / (name + '.yaml')} && dbt run -s {name}",
    }
    if kind == "mage" and not (root / "metadata.yaml").exists():
        hints["mage"] = (
            f"{root} is not a Mage project yet: run `mage init {root}` first, then {hints['mage']}"
        )
    return {
        "kind": kind,
        "name": name,
        "directory": str(root),
        "files": sorted(files),
        "config": f"pipewarden/{name}.yaml",
        "next": hints[kind],
    }


# the --blocks layout: (block, Mage type, folder, function of pipewarden.mage, what it does)
MAGE_CHECK_BLOCKS = (
    ("breaker", "transformer", "transformers", "breaker_check",
     "Stop while the dataset's circuit breaker is open (pipewarden breaker status)."),
    ("sentinel", "transformer", "transformers", "sentinel_check",
     "The schema sentinel's plan of each source file; stop when the contract rejects it."),
    ("guardian", "transformer", "transformers", "guardian_check",
     "The PII scan of each source file under the policy; stop when the policy fails it."),
    ("anomaly", "transformer", "transformers", "anomaly_check",
     "Row anomaly scores of each source file (the anomaly step's engine and model)."),
    ("load", "transformer", "transformers", "load",
     "The gate: every batch checked and loaded, the rest quarantined; stop when one is blocked."),
    ("docs", "transformer", "transformers", "docs",
     "The reflection loop after the load: the dataset's docs rebuilt from the store."),
    ("report", "data_exporter", "data_exporters", "report",
     "Hand on the last block's output; the store has already loaded the rows."),
)  # fmt: skip


def _mage_files(
    name: str, cfg_rel: str, values: dict, wait_for: list[dict], blocks: bool, checks: str
) -> dict[str, str]:
    """The blocks and metadata.yaml of a Mage pipeline: config -> guard (the whole run) ->
    docs -> report, or with ``blocks`` one block per check, each a call of pipewarden.mage."""
    files: dict[str, str] = {}
    for dep in wait_for:
        files[f"sensors/{name}_wait_{dep['name']}.py"] = _render(
            template("mage_sensor_template.py"), {**values, "DEPENDENCY": dep["name"]}
        )
    if blocks:
        chain = [(f"{name}_config", "data_loader")]
        files[f"data_loaders/{name}_config.py"] = _mage_block(
            "data loader", "data_loader", "pipeline_config",
            "The pipewarden config of this pipeline, for the blocks downstream.",
            "    from pipewarden.mage import config_path\n\n"
            f"    return config_path('{cfg_rel}')",
            "    assert str(output).endswith('.yaml'), 'not a pipeline config path'",
            values,
        )  # fmt: skip
        for role, btype, folder, call, doc in MAGE_CHECK_BLOCKS:
            test = (
                "    assert isinstance(output, dict), 'no report'"
                if role == "report"
                else "    assert output['passed'], output['summary']"
            )
            arg = "*args" if role == "report" else "args[0]"
            files[f"{folder}/{name}_{role}.py"] = _mage_block(
                btype.replace("_", " "), btype, role if role != "load" else "load_through_gate",
                doc, f"    from pipewarden.mage import {call}\n\n    return {call}({arg})",
                test, values,
            )  # fmt: skip
            chain.append((f"{name}_{role}", btype))
    else:
        files[f"data_loaders/{name}_config.py"] = _mage_block(
            "data loader", "data_loader", "pipeline_config",
            "The pipewarden config of this pipeline: the guard block runs it.",
            "    from pathlib import Path\n\n"
            "    from mage_ai.settings.repo import get_repo_path\n\n"
            f"    config = Path(get_repo_path()) / '{cfg_rel}'\n"
            "    if not config.is_file():\n"
            "        raise FileNotFoundError(f'pipeline config {config} is missing')\n"
            "    return str(config)",
            "    assert str(output).endswith('.yaml'), 'not a pipeline config path'",
            values,
        )  # fmt: skip
        files[f"transformers/{name}_guard.py"] = _render(
            template("mage_pipeline_template.py"), values
        )
        files[f"transformers/{name}_docs.py"] = _mage_block(
            "transformer", "transformer", "build_docs",
            "The reflection loop after the load: the dataset's docs rebuilt from the store.",
            "    from pathlib import Path\n\n"
            "    from mage_ai.settings.repo import get_repo_path\n\n"
            "    from pipewarden.reflect import docs_build\n\n"
            "    report = args[0] if args else {}\n"
            f"    docs = docs_build(str(Path(get_repo_path()) / '{cfg_rel}'))\n"
            f"    print('pipewarden docs of {name}:', len(docs['written']), 'file(s) written in', "
            "docs['path'])\n"
            "    return {**report, 'docs': {k: docs[k] for k in ('written', 'commit', 'path')}}",
            "    assert 'docs' in output, 'the docs were not built'",
            values,
        )  # fmt: skip
        files[f"data_exporters/{name}_report.py"] = _mage_block(
            "data exporter", "data_exporter", "report",
            "Print the run's summary; pipewarden's store has already loaded the rows.",
            "    report = args[0] if args else {}\n"
            f"    print('pipewarden run of {name} finished: exit code', report.get('exit_code'), "
            "report.get('totals'))\n"
            "    return report",
            "    assert isinstance(output, dict), 'no report'",
            values,
        )  # fmt: skip
        chain = [(f"{name}_{role}", btype) for role, btype in (
            ("config", "data_loader"), ("guard", "transformer"), ("docs", "transformer"),
            ("report", "data_exporter"))]  # fmt: skip
    waits = [f"{name}_wait_{d['name']}" for d in wait_for]
    graph = [(w, "sensor", [], [chain[0][0]]) for w in waits]
    for i, (uuid, btype) in enumerate(chain):
        up = [chain[i - 1][0]] if i else waits
        down = [chain[i + 1][0]] if i + 1 < len(chain) else []
        graph.append((uuid, btype, up, down))
    what = f"{checks} steps" + (", one block per check" if blocks else "")
    meta = {
        "name": name,
        "uuid": name,
        "type": "python",
        "description": f"Ingest {name} through pipewarden's {what}.",
        "executor_type": "local_python",
        "retry_config": {
            "retries": 2,
            "delay": 10,
            "max_delay": 120,
            "exponential_backoff": True,
        },
        "tags": ["pipewarden"],
        "blocks": [
            {
                "uuid": uuid,
                "name": uuid,
                "type": btype,
                "language": "python",
                "executor_type": "local_python",
                "upstream_blocks": up,
                "downstream_blocks": down,
                "configuration": {},
                "retry_config": None,
                "timeout": None,
            }
            for uuid, btype, up, down in graph
        ],
        "callbacks": [],
        "conditionals": [],
        "widgets": [],
    }
    files[f"pipelines/{name}/metadata.yaml"] = yaml.safe_dump(meta, sort_keys=False)
    files[f"pipelines/{name}/__init__.py"] = ""
    return files
