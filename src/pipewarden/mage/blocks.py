"""The Mage blocks: each is one library call on a pipeline config, nothing more.

A block takes the pipeline config (``pipewarden/<name>.yaml``, relative to the Mage project) or
the output of the block upstream of it (which carries the config), calls the library function
the CLI command calls, and returns one JSON-ready dict::

    {"config": "/abs/pipewarden/orders.yaml", "check": "sentinel", "passed": true,
     "exit_code": 0, "summary": "orders.jsonl: evolve, 20 fit, ...", "results": [{...}]}

``results`` holds the command's ``--format json`` documents (one per source file for the
sentinel, guardian and anomaly checks; one for the breaker, the load and the docs), with
credentials redacted as the CLI redacts them; they carry masked previews only, never a raw
value. ``exit_code`` follows the CLI's contract (0 passed, 1 the gate failed). A failed check
raises :class:`PipelineStopped` (unless ``stop=False``): Mage marks the block failed and runs
nothing downstream of it, so a breaker that is open or a batch the contract rejects never
reaches the load.

The check blocks run before the load and show each verdict as its own block; the load block
(:func:`load`) is the gate itself (:func:`pipewarden.run.run_pipeline`), which runs the same
checks again on what it writes, so nothing loads unchecked even when a check block is removed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import EXIT_GATE, EXIT_OK, InputError
from ..redact import redact_doc

CHECKS = ("breaker", "sentinel", "guardian", "anomaly")


class PipelineStopped(RuntimeError):
    """A check failed: the block fails and Mage runs nothing downstream. ``output`` is what
    the block would have returned (the reason is in ``summary``)."""

    def __init__(self, output: dict[str, Any]) -> None:
        self.output = output
        super().__init__(f"pipewarden {output['check']} stopped the pipeline: {output['summary']}")


def config_path(path: str | os.PathLike) -> str:
    """The absolute path of a pipeline config; a relative one is relative to the Mage project
    (``get_repo_path()``), or to the working directory outside Mage."""
    p = Path(path)
    if not p.is_absolute():
        try:
            from mage_ai.settings.repo import get_repo_path

            base = Path(get_repo_path())
        except ImportError:
            base = Path.cwd()
        p = base / p
    if not p.is_file():
        raise InputError("no such pipeline config", file=str(p), hint="pipewarden scaffold mage")
    return str(p)


def _config(upstream: Any) -> str:
    if isinstance(upstream, dict) and "config" in upstream:
        upstream = upstream["config"]
    if not isinstance(upstream, (str, os.PathLike)):
        raise InputError(
            "a pipewarden block takes a pipeline config path or the output of a pipewarden block",
            hint="put the config block upstream of it",
        )
    return config_path(upstream)


def _finish(
    check: str, config: str, passed: bool, summary: str, results: list, stop: bool,
    exit_code: int | None = None,
):  # fmt: skip
    out = {
        "config": config,
        "check": check,
        "passed": passed,
        "exit_code": exit_code if exit_code is not None else EXIT_OK if passed else EXIT_GATE,
        "summary": summary,
        "results": [redact_doc(r) for r in results],
    }
    out = redact_doc(out)
    print(f"pipewarden {check}: {out['summary']}", flush=True)
    if not passed and stop:
        raise PipelineStopped(out)
    return out


def _name(source: str) -> str:
    """A source file as a summary names it: its name, PII in it masked."""
    from ..compliance.names import mask_name

    return mask_name(Path(source).name)


def _step(cfg: dict, kind: str) -> dict | None:
    return next((dict(s) for s in cfg["steps"] if s.get("type") == kind), None)


def _store_url(cfg: dict) -> tuple[str, str]:
    """(store URL, namespace) of a config; the store is created as a run would create it."""
    from ..run import open_config_store

    open_config_store(cfg).close()
    st = cfg["store"]
    if st["kind"] == "postgres":
        return st["dsn"], st["schema"]
    path = Path(st["path"])
    return f"duckdb://{path if path.is_absolute() else cfg['_base_dir'] / path}", st["schema"]


def _detector(cfg: dict):
    from ..anomaly.detector import parse_config

    options = _step(cfg, "anomaly") or {}
    det = parse_config(options)
    if det.model and not Path(det.model).is_absolute():
        det.model = str(cfg["_base_dir"] / det.model)
    return det


def breaker_check(upstream: Any, *, stop: bool = True) -> dict[str, Any]:
    """``pipewarden breaker status --config C``: stops the pipeline while the dataset's
    circuit breaker is open (``breaker reset`` closes it)."""
    from ..anomaly.detector import breaker_status
    from ..run import load_config

    config = _config(upstream)
    cfg = load_config(config)
    url, namespace = _store_url(cfg)
    doc = breaker_status(url, cfg["dataset"], _detector(cfg), namespace)
    summary = f"breaker of {cfg['dataset']} is {doc['state']}"
    if doc.get("reason"):
        summary += f": {doc['reason']}"
    return _finish("breaker", config, doc["state"] != "open", summary, [doc], stop)


def sentinel_check(upstream: Any, *, stop: bool = True) -> dict[str, Any]:
    """``pipewarden sentinel`` of each source file against the store's current schema under
    the config's contract (a plan: nothing is applied). Stops on ``reject``."""
    from ..run import load_config, source_files
    from ..schema.sentinel import sentinel

    config = _config(upstream)
    cfg = load_config(config)
    url, namespace = _store_url(cfg)
    src = cfg["source"]
    docs = [
        sentinel(
            f,
            None,
            fmt=src["format"],
            table=cfg["dataset"],
            namespace=namespace,
            contract=cfg.get("contract"),
            dsn=url,
            chunk_rows=src["chunk_rows"],
            encoding=src["encoding"],
            records_path=src.get("records_path"),
            short_rows=src["csv"]["short_rows"],
        )  # fmt: skip
        for f in source_files(cfg)
    ]
    parts = [
        f"{_name(d['source'])}: {d['decision']}"
        + (f" ({d['reason']})" if d.get("reason") else "")
        + f", {d['rows']['accepted']} of {d['rows']['read']} rows fit, "
        f"{d['rows']['quarantined']} would be quarantined, "
        f"{len(d['delta']['changes'])} schema change(s)"
        for d in docs
    ]
    passed = all(d["decision"] != "reject" for d in docs)
    return _finish("sentinel", config, passed, "; ".join(parts), docs, stop)


def guardian_check(upstream: Any, *, stop: bool = True) -> dict[str, Any]:
    """``pipewarden guard scan`` of each source file under the guardian step's policy. Stops
    when the policy fails the batch (a block rule, a threshold, strict findings)."""
    from ..compliance.guardian import scan
    from ..run import load_config, source_files

    config = _config(upstream)
    cfg = load_config(config)
    step = _step(cfg, "guardian")
    if step is None:
        return _finish("guardian", config, True, "no guardian step in the config", [], stop)
    policy = step.get("policy")
    docs = [
        scan(
            f,
            policy=None if policy is None else cfg["_base_dir"] / policy,
            fmt=cfg["source"]["format"],
            strict=step.get("strict"),
            region=step.get("region"),
            dataset=cfg["dataset"],
            mode=step.get("mode"),
        )  # fmt: skip
        for f in source_files(cfg)
    ]
    parts = [
        f"{_name(d['source'])}: {d['rows']} rows, {d['findings_total']} finding(s) in "
        f"{d['rows_with_findings']} row(s)"
        + (f", failed: {'; '.join(d['failures'])}" if d["failures"] else "")
        for d in docs
    ]
    passed = all(d["passed"] for d in docs)
    return _finish("guardian", config, passed, "; ".join(parts), docs, stop)


def anomaly_check(upstream: Any, *, stop: bool = True) -> dict[str, Any]:
    """``pipewarden anomaly score --config C --data F`` of each source file: the anomaly
    step's engine and model (an H2O reached by ``h2o.url``), fitted on the batch when the step
    names no model. The breaker is not touched (the load's gate updates it)."""
    from ..anomaly.detector import score
    from ..h2o_cluster import session
    from ..run import load_config, source_files

    config = _config(upstream)
    cfg = load_config(config)
    if _step(cfg, "anomaly") is None:
        return _finish("anomaly", config, True, "no anomaly step in the config", [], stop)
    det = _detector(cfg)
    url, namespace = _store_url(cfg)
    files = source_files(cfg)
    with session():  # a local H2O started here is shut down; one reached by URL is not
        docs = [
            score(f, det, store_url=url, dataset=cfg["dataset"], namespace=namespace) for f in files
        ]
    parts = [f"{_name(f)}: {d['summary']}" for f, d in zip(files, docs, strict=True)]
    passed = all(d.get("decision") != "quarantine_batch" for d in docs)
    return _finish("anomaly", config, passed, "; ".join(parts), docs, stop)


def load(upstream: Any, *, stop: bool = True) -> dict[str, Any]:
    """``pipewarden run C``: every batch through the gate into the store; rows that fail a
    check go to the quarantine with their reason. Stops when a batch was blocked or failed."""
    from ..run import run_pipeline

    config = _config(upstream)
    doc = run_pipeline(config, fmt="json")
    t = doc["totals"]
    summary = (
        f"{t['batches']} batch(es): {t['rows_read']} rows read, {t['rows_loaded']} loaded, "
        f"{t['rows_quarantined']} quarantined, {t['rows_not_written']} not written"
    )
    blocked = [b for b in doc["batches"] if b["status"] in ("blocked", "failed", "invalid")]
    if blocked:
        summary += "; " + "; ".join(
            f"{_name(b['source'])}: {b['status']} ({b.get('error') or b['decision']})"
            for b in blocked
        )
    # exit 2 when a source file was bad input (the run stopped there), as `pipewarden run`
    ok = doc["exit_code"] == EXIT_OK
    return _finish("load", config, ok, summary, [doc], stop, exit_code=doc["exit_code"])


def docs(upstream: Any, *, stop: bool = True) -> dict[str, Any]:
    """``pipewarden docs build --config C``: the dataset's docs rebuilt from the store."""
    from ..reflect import docs_build

    config = _config(upstream)
    doc = docs_build(config)
    summary = f"{len(doc['written'])} docs file(s) written in {doc['path']}"
    return _finish("docs", config, True, summary, [doc], stop)


def report(*outputs: Any) -> dict[str, Any]:
    """The outputs of the blocks upstream, by check (what an exporter hands on)."""
    return {o["check"]: o for o in outputs if isinstance(o, dict) and "check" in o}
