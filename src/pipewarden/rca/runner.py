"""The library calls behind ``pipewarden rca`` and ``pipewarden incidents``, and the hook by
which ``pipewarden run`` records each run's outcome and explains a failed one."""

from __future__ import annotations

import os
import time
import uuid
from contextlib import suppress
from datetime import datetime
from typing import Any

from ..errors import InputError
from . import memory
from .redact import scrub
from .report import diagnose, run_command

MAX_FAILURE_TEXT = 64 * 1024  # characters of a failed run's text kept in its run-log entry


def _store_for(config, store_url, namespace, create):
    from .cli import open_rca_store

    return open_rca_store(config, store_url, namespace, create)


def explain(
    *,
    log: str | None = None,
    command: list[str] | None = None,
    kind: str | None = None,
    config: str | None = None,
    store_url: str | None = None,
    namespace: str | None = None,
    pipeline: str | None = None,
    dataset: str | None = None,
    run_id: str | None = None,
    repo: str | None = None,
    record: bool = True,
    llm_url: str | None = None,
    llm_model: str | None = None,
    echo_to_stderr: bool = False,
    retries: int = 0,
    retry_base: float = 1.0,
) -> dict[str, Any]:
    """Explain one failure (a log file, a wrapped command, or a recorded run). A wrapped
    command is run again up to ``retries`` times while its failure is retryable."""
    from .cli import _read_log

    given = [x for x in (log, command, run_id) if x]
    if len(given) != 1:
        raise InputError(
            "give one of: a log file, --run RUN_ID, or a command after --",
            hint="pipewarden rca job.log | pipewarden rca --config p.yaml --run last | "
            "pipewarden rca -- python etl.py",
        )
    if command is not None and not command:
        raise InputError("no command after --", hint="pipewarden rca -- python etl.py")
    text = _read_log(log) if log else None
    store, cfg = _store_for(config, store_url, namespace, create=record and run_id is None)
    try:
        if cfg:
            pipeline = pipeline or cfg["name"]
            dataset = dataset or cfg["dataset"]
            repo = repo or str(cfg["_base_dir"])
        if run_id:
            if store is None or not pipeline:
                raise InputError(
                    "--run needs the store and the pipeline",
                    hint="give --config pipeline.yaml (or --store and --pipeline)",
                )
            entry = memory.find_execution(store, pipeline, None if run_id == "last" else run_id)
            if entry is None:
                raise InputError(
                    f"no recorded {'failed ' if run_id == 'last' else ''}run "
                    f"{'' if run_id == 'last' else repr(run_id) + ' '}of pipeline {pipeline!r}",
                    hint="pipewarden rca lists them with --format json of incidents list",
                )
            failure = entry.get("failure") or {}
            doc = diagnose(
                failure.get("text") or "",
                exit_code=failure.get("exit_code"),
                outcomes=failure.get("outcomes"),
                source={"run_id": entry.get("run_id"), "kind": entry.get("kind")},
                store=store,
                pipeline=pipeline,
                dataset=dataset,
                repo=repo,
                record=False,
                at_commit=entry.get("git_commit"),
                llm_url=llm_url,
                llm_model=llm_model,
            )
            doc["run"] = {k: entry.get(k) for k in ("run_id", "status", "exit_code", "seconds",
                                                      "recorded_at", "git_commit")}  # fmt: skip
            return doc
        if command is not None:
            return _wrap(command, store, pipeline, dataset, repo or os.getcwd(), record,
                         llm_url, llm_model, echo_to_stderr, retries, retry_base)  # fmt: skip
        return diagnose(
            text or "",
            kind=kind,
            source={"file": log},
            store=store,
            pipeline=pipeline,
            dataset=dataset,
            repo=repo,
            record=record and store is not None,
            llm_url=llm_url,
            llm_model=llm_model,
        )
    finally:
        if store is not None:
            store.close()


def _wrap(command, store, pipeline, dataset, repo, record, llm_url, llm_model, echo,
          retries: int = 0, retry_base: float = 1.0) -> dict:  # fmt: skip
    """Run the command; while it fails with a retryable class (by the signature library) and
    retries are left, wait (full jitter, at least the Retry-After seen) and run it again."""
    import sys

    from ..conduct.retry import FullJitter

    backoff = FullJitter(base=retry_base, cap=60.0)
    attempts: list[dict[str, Any]] = []
    previous = 0.0
    for attempt in range(retries + 1):
        doc = _wrap_once(command, store, pipeline, dataset, repo, record, llm_url, llm_model,
                         echo)  # fmt: skip
        ok = doc.get("status") == "succeeded"
        attempts.append({"exit_code": doc.get("context", {}).get("process", {}).get("exit_code"),
                         "class": None if ok else doc["verdict"]["class"]})  # fmt: skip
        if ok or attempt == retries or not doc["verdict"]["retryable"]:
            break
        wait = max(backoff.delay(attempt, previous), doc["retry"].get("after_seconds") or 0.0)
        previous = wait
        print(f"pipewarden rca: {doc['verdict']['class']} is retryable: attempt "
              f"{attempt + 2} of {retries + 1} in {wait:.1f} s", file=sys.stderr, flush=True)  # fmt: skip
        time.sleep(wait)
    if retries:
        doc["attempts"] = attempts
    return doc


def _wrap_once(command, store, pipeline, dataset, repo, record, llm_url, llm_model, echo) -> dict:
    from .context import git_state

    git = git_state(repo) or {}
    run_id = uuid.uuid4().hex[:16]
    res = run_command(command, echo_to_stderr=echo)
    proc = res["process"]
    code = proc["exit_code"]
    outcomes = ["oom_killed"] if proc.get("oom_kills_during_run") else []
    entry = {
        "run_id": run_id,
        "kind": "command",
        "command": proc["command"],
        "exit_code": code,
        "started_at": proc["started_at"],
        "seconds": proc["seconds"],
        "cpu_seconds": proc["cpu_seconds"],
        "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"),
        "status": "succeeded" if code == 0 else "failed",
    }
    if code == 0:
        if store is not None and pipeline and record:
            memory.record_execution(store, pipeline, entry)
        return {"status": "succeeded", "run_id": run_id, "exit_code": 0,
                "context": {"process": proc}}  # fmt: skip
    exit_codes = [code] if code >= 0 else [code, 128 - code]
    doc = diagnose(
        res["output"],
        exit_code=exit_codes[-1],
        outcomes=outcomes,
        source={"command": proc["command"], "run_id": run_id},
        store=store,
        pipeline=pipeline,
        dataset=dataset,
        repo=repo,
        process=proc,
        record=record and store is not None,
        llm_url=llm_url,
        llm_model=llm_model,
        at_commit=git.get("commit"),
    )
    doc["run_id"] = run_id
    if store is not None and pipeline and record:
        entry.update(
            error_class=doc["verdict"]["class"],
            fingerprint=doc["fingerprint"],
            failure={
                "text": scrub(res["output"][-MAX_FAILURE_TEXT:]),
                "exit_code": exit_codes[-1],
                "outcomes": outcomes,
            },
        )
        memory.record_execution(store, pipeline, entry)
    return doc


def list_incidents(config, store_url, namespace, pipeline, only_open) -> dict[str, Any]:
    store, cfg = _store_for(config, store_url, namespace, create=False)
    if store is None:
        raise InputError("give --config or --store", hint="pipewarden incidents list -h")
    try:
        found = memory.incidents(store)
    finally:
        store.close()
    if pipeline:
        found = [i for i in found if i.get("pipeline") == pipeline]
    if only_open:
        found = [i for i in found if not i.get("resolution")]
    return {"incidents": found, "count": len(found)}


def resolve_incident(fingerprint, fix, note, config, store_url, namespace) -> dict[str, Any]:
    if not (fix or note):
        raise InputError("say what fixed it", hint="--fix ID and/or --note TEXT")
    store, _ = _store_for(config, store_url, namespace, create=False)
    if store is None:
        raise InputError("give --config or --store", hint="pipewarden incidents resolve -h")
    try:
        return memory.resolve(store, fingerprint, fix=fix, note=note, by=os.environ.get("USER"))
    finally:
        store.close()


# --------------------------------------------------------------------------- the run's hook


def failure_text(report: dict[str, Any]) -> str:
    """The lines of a run report that say why it failed (already free of row values)."""
    lines = []
    for b in report.get("batches") or []:
        bad = b.get("status") in ("blocked", "failed", "invalid")
        if bad or b.get("decision") == "quarantine_batch":
            why = b.get("error") or b.get("reason") or ""
            lines.append(f"{b.get('source')}: {b.get('status')}: {why}")
    return "\n".join(lines)


def after_run(cfg: dict[str, Any], report: dict[str, Any], seconds: float) -> dict | None:
    """Record a run of ``pipewarden run`` in the run log; for a failed run, explain it and
    return the one-line verdict with the command that shows the whole report. Never raises:
    the run's own outcome stands whatever happens here."""
    try:
        from ..run import open_config_store

        store = open_config_store(cfg)
    except Exception:
        return None
    try:
        from .context import git_state

        git = git_state(cfg["_base_dir"]) or {}
        failed = report.get("exit_code", 0) != 0
        # a batch held whole by an open breaker loads nothing: the run is degraded
        degraded = any(b.get("decision") == "quarantine_batch" for b in report.get("batches") or [])
        entry: dict[str, Any] = {
            "run_id": report.get("run_id"),
            "kind": "run",
            "status": "failed" if failed else "degraded" if degraded else "succeeded",
            "exit_code": report.get("exit_code"),
            "seconds": round(seconds, 3),
            "started_at": time.strftime(
                "%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - seconds)
            ),
            "totals": report.get("totals"),
            "git_commit": git.get("commit"),
            "git_dirty": git.get("dirty"),
        }
        verdict = None
        if failed or degraded:
            text = failure_text(report)
            doc = diagnose(
                text,
                run_report=report,
                source={"run_id": report.get("run_id")},
                store=store,
                pipeline=cfg["name"],
                dataset=cfg["dataset"],
                repo=None,
                record=True,
                at_commit=git.get("commit"),
            )
            from .parse import outcome_of_batch

            outcomes = [o for b in report.get("batches") or [] if (o := outcome_of_batch(b))]
            entry.update(
                error_class=doc["verdict"]["class"],
                fingerprint=doc["fingerprint"],
                failure={"text": scrub(text)[:MAX_FAILURE_TEXT], "outcomes": outcomes},
            )
            cfg_file = cfg.get("_file") or "pipeline.yaml"
            verdict = {
                "class": doc["verdict"]["class"],
                "summary": doc["verdict"]["summary"],
                "fingerprint": doc["fingerprint"],
                "command": f"pipewarden rca --config {cfg_file} --run {report.get('run_id')}",
            }
        memory.record_execution(store, cfg["name"], entry)
        _escalate(cfg, store, entry, verdict)
        return verdict
    except Exception:
        return None
    finally:
        with suppress(Exception):
            store.close()


def _escalate(cfg: dict[str, Any], store: Any, entry: dict[str, Any], verdict: dict | None) -> None:
    """A failing pipeline climbs its ladder as the failure ages (since the first failure after
    the last success); a success resolves it."""
    from ..conduct.escalation import Escalator
    from ..conduct.wait import escalation_config

    esc = Escalator(cfg["name"], escalation_config(cfg), store)
    if entry["status"] == "succeeded":
        esc.resolve("failure", f"{cfg['name']} succeeded")
        return
    if entry["status"] != "failed" or verdict is None:
        return
    first = entry.get("recorded_at")
    for e in reversed(memory.executions(store, cfg["name"])):
        if e.get("status") == "succeeded":
            break
        first = e.get("recorded_at") or first
    try:
        age = max(0.0, time.time() - datetime.fromisoformat(str(first)).timestamp())
    except ValueError:
        age = 0.0
    esc.update("failure", age, f"{cfg['name']} failed: {verdict['summary']}",
               {"class": verdict["class"], "fingerprint": verdict["fingerprint"],
                "report": verdict["command"]})  # fmt: skip
