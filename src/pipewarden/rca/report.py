"""Root-cause analysis of one failure: classify, fingerprint, recall, gather context, report.

:func:`diagnose` is the library call behind ``pipewarden rca``; :func:`run_and_diagnose`
wraps a command. The report is one dict: ``verdict`` (class, confidence, retryable, the one
line), ranked ``causes`` with evidence, ranked ``fixes``, a ``retry`` recommendation, the
``fingerprint`` and ``template``, ``similar`` past incidents and their resolutions, ``context``
(code, data, process, container) and ``exit_code`` (0 classified, 1 unknown). Nothing in it is
a raw log line: excerpts are scrubbed of secrets and PII.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from ..errors import EXIT_GATE, EXIT_OK
from . import memory
from .classify import classify, rank_fixes
from .parse import Parsed, parse
from .redact import scrub
from .signatures import UNKNOWN

MAX_EXCERPT = 300  # characters of one evidence line in the report
CAPTURE_BYTES = 4 * 1024 * 1024  # output of a wrapped command kept for the analysis

BACKOFF_NOTE = "exponential backoff with full jitter (base 1 s, cap 60 s), at most 5 attempts"


def _excerpt(p: Parsed, line: int | None) -> str | None:
    if line is None or line >= len(p.lines):
        return None
    text = p.lines[line].strip()
    return scrub(text)[:MAX_EXCERPT]


def _retry(top, p: Parsed) -> dict[str, Any]:
    if top is None:
        return {"retry": False, "why": "unknown failure: look at it before retrying"}
    sig = top.signature
    out: dict[str, Any] = {"retry": sig.retryable}
    if sig.retryable:
        out["why"] = sig.retry_note or f"{sig.title}: usually transient"
        out["policy"] = BACKOFF_NOTE
        if p.retry_after is not None:
            out["after_seconds"] = p.retry_after
    else:
        out["why"] = sig.retry_note or f"{sig.title}: a retry fails the same way; fix it first"
    return out


def _one_line(doc: dict[str, Any]) -> str:
    v = doc["verdict"]
    if v["class"] == UNKNOWN:
        return "unknown failure: no signature matched (see the log's last error lines)"
    retry = "retry with backoff" if v["retryable"] else "do not retry before fixing"
    fix = doc["fixes"][0]["text"] if doc["fixes"] else ""
    return f"{v['class']} ({v['confidence']:.0%}): {v['title']}; {retry}; fix: {fix}"


def diagnose(
    text: str,
    *,
    exit_code: int | None = None,
    kind: str | None = None,
    run_report: dict | None = None,
    source: dict | None = None,
    store: Any = None,
    pipeline: str | None = None,
    dataset: str | None = None,
    repo: str | os.PathLike | None = None,
    process: dict | None = None,
    record: bool = True,
    llm_url: str | None = None,
    llm_model: str | None = None,
    at_commit: str | None = None,
    outcomes: list[str] | None = None,
) -> dict[str, Any]:
    """Classify a failure's log and build the report (see the module's doc). With a
    ``store`` and a ``pipeline``: context from the run log, similar past incidents, and (with
    ``record``) the incident is remembered."""
    from .context import cgroup_memory, container_stats

    docker = container_stats()
    if docker and docker.get("oom_killed"):  # the engine saw the OOM killer: a structured code
        outcomes = [*(outcomes or []), "oom_killed"]
    p = parse(text, exit_code=exit_code, kind=kind, report=run_report, outcomes=outcomes)
    causes = classify(p)
    top = causes[0] if causes else None
    exc = p.primary_exception
    frame = p.top_frame()
    frame_key = f"{Path(frame.file).name}:{frame.func}" if frame else None
    if exc is not None:
        message = f"{exc.name}: {exc.message}"
    elif top is not None:
        best = top.best
        message = p.lines[best.line] if best.line is not None else str(best.value)
    else:
        message = next((p.lines[i] for i in sorted(p.primary_lines, reverse=True)), "")
    tmpl = memory.template(message)
    cls = top.cls if top else UNKNOWN
    fp = memory.fingerprint(cls, exc.name if exc else None, frame_key, tmpl)

    fixes: list[dict[str, Any]] = []
    if top is not None:
        fixes = rank_fixes(top, p)
        for other in causes[1:3]:
            extra = rank_fixes(other, p)[:1]
            fixes.extend(f for f in extra if f["id"] not in {x["id"] for x in fixes})
    doc: dict[str, Any] = {
        "verdict": {
            "class": cls,
            "title": top.signature.title if top else "no signature matched",
            "confidence": top.confidence if top else 0.0,
            "retryable": top.signature.retryable if top else False,
        },
        "causes": [
            {
                "class": c.cls,
                "title": c.signature.title,
                "confidence": c.confidence,
                "retryable": c.signature.retryable,
                "evidence": [{**m.to_dict(), "excerpt": _excerpt(p, m.line)} for m in c.matches],
            }
            for c in causes[:3]
        ],
        "fixes": fixes,
        "retry": _retry(top, p),
        "fingerprint": fp,
        "template": tmpl,
        "exception": {
            "type": exc.type if exc else None,
            "message": scrub(exc.message)[:MAX_EXCERPT] if exc else None,
            "top_frame": frame.to_dict() if frame else None,
        },
        "source": {**(source or {}), "kind": p.kind, "lines": len(p.lines)},
        "pipeline": pipeline,
        "similar": [],
        "context": {},
    }
    ctx: dict[str, Any] = {}
    last_ok = None
    if store is not None and pipeline:
        last_ok = memory.last_success(store, pipeline)
        ctx["last_success"] = (
            {k: last_ok.get(k) for k in ("run_id", "recorded_at", "git_commit", "kind")}
            if last_ok
            else None
        )
    if repo is not None:
        from .context import git_context

        since = last_ok.get("git_commit") if last_ok else None
        ctx["code"] = git_context(repo, since)
    if store is not None and (dataset or pipeline):
        from .context import data_context

        since = last_ok.get("recorded_at") if last_ok else None
        ctx["data"] = data_context(store, dataset or pipeline, since)
    if process:
        ctx["process"] = process
    cg = cgroup_memory()
    if cg:
        ctx["cgroup"] = cg
    if docker:
        ctx["container"] = docker
    doc["context"] = ctx
    incident = {
        "fingerprint": fp,
        "class": cls,
        "exception_type": exc.name if exc else None,
        "top_frame": frame_key,
        "template": tmpl,
        "pipeline": pipeline,
        "git_commit": at_commit or ((ctx.get("code") or {}).get("commit")),
    }
    if store is not None:
        past = memory.similar(store, incident)
        doc["similar"] = past
        # a fix that resolved this very failure before goes first
        for s in past:
            res = s.get("resolution") or {}
            if s["same_fingerprint"] and res.get("fix"):
                fixes.insert(0, {"id": res["fix"], "text": res.get("note") or res["fix"],
                                 "class": cls, "from": "incident memory"})  # fmt: skip
                break
        if record:
            memory.record_incident(store, incident)
    doc["fixes"] = _dedupe(fixes)
    doc["verdict"]["summary"] = _one_line(doc)
    if llm_url:
        from .llm import refine

        doc["llm"] = refine(doc, llm_url, llm_model or "gpt-4o-mini")
    doc["exit_code"] = EXIT_OK if top is not None else EXIT_GATE
    return doc


def _dedupe(fixes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for f in fixes:
        if f["id"] not in seen:
            seen.add(f["id"])
            out.append(f)
    return out


# --------------------------------------------------------------------------- wrapping


def run_command(argv: list[str], *, echo_to_stderr: bool = False) -> dict[str, Any]:
    """Run a command, passing its output through (to stderr when ``echo_to_stderr``, so a
    JSON report alone is on stdout), and keep the tail of its output for the analysis.
    Returns exit code (negative: killed by that signal), output, timings, peak memory."""
    from .context import cgroup_memory

    before = cgroup_memory() or {}
    tail: deque[str] = deque()
    size = [0]
    lock = threading.Lock()
    started = time.time()
    t0 = time.perf_counter()
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            bufsize=1,
        )
    except FileNotFoundError:
        from ..errors import InputError

        raise InputError(f"no such command: {argv[0]}", hint="check the command after --") from None
    except PermissionError:
        from ..errors import InputError

        raise InputError(f"cannot execute {argv[0]}", hint="check its permissions") from None

    def pump(stream, out) -> None:
        for line in stream:
            out.write(line)
            out.flush()
            with lock:
                tail.append(line)
                size[0] += len(line)
                while size[0] > CAPTURE_BYTES and len(tail) > 1:
                    size[0] -= len(tail.popleft())

    out_target = sys.stderr if echo_to_stderr else sys.stdout
    threads = [
        threading.Thread(target=pump, args=(proc.stdout, out_target), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, sys.stderr), daemon=True),
    ]
    for t in threads:
        t.start()
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        code = proc.wait()
    for t in threads:
        t.join(timeout=5)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = cgroup_memory() or {}
    process: dict[str, Any] = {
        "command": scrub(" ".join(argv))[:500],
        "exit_code": code,
        "signal": signal.Signals(-code).name
        if code < 0 and -code in signal.valid_signals()
        else None,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(started)),
        "seconds": round(time.perf_counter() - t0, 3),
        "cpu_seconds": round(
            (usage.ru_utime - usage0.ru_utime) + (usage.ru_stime - usage0.ru_stime), 3
        ),
        "max_rss_bytes": usage.ru_maxrss * 1024,
    }
    if before.get("oom_kill") is not None and after.get("oom_kill") is not None:
        process["oom_kills_during_run"] = after["oom_kill"] - before["oom_kill"]
    return {"process": process, "output": "".join(tail)}
