"""What changed and what the machine saw: the context of a failure.

- **code**: the git commit now, whether the tree is dirty, and the log and diff since the
  commit of the pipeline's last successful run (from the store's run log);
- **data**: the dataset's schema changes since then, its quarantine counts, its breaker;
- **process**: the wrapped command's exit code or signal, its wall and CPU time, its peak
  memory, the cgroup's memory limit and OOM-kill count;
- **container**: where a Docker socket answers, the container's memory limit, ``OOMKilled``
  and exit code.

Every text in it goes through :func:`pipewarden.rca.redact.scrub`: a diff can hold a password
or a customer's e-mail address, the report never does.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

from .memory import instant
from .redact import scrub

MAX_DIFF = 12_000  # characters of diff kept
MAX_COMMITS = 20
GIT_TIMEOUT = 10


def _git(repo: Path, *args: str) -> str | None:
    try:
        res = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            errors="replace",
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout if res.returncode == 0 else None


def git_state(repo: str | Path | None) -> dict[str, Any] | None:
    """The commit and dirtiness of the repository holding ``repo`` (None outside one)."""
    if repo is None:
        return None
    root = _git(Path(repo), "rev-parse", "--show-toplevel")
    if not root:
        return None
    head = (_git(Path(repo), "rev-parse", "HEAD") or "").strip() or None
    status = _git(Path(repo), "status", "--porcelain", "--untracked-files=no") or ""
    return {"root": root.strip(), "commit": head, "dirty": bool(status.strip())}


def git_context(repo: str | Path | None, since_commit: str | None) -> dict[str, Any] | None:
    """Commits and diff between the last successful run's commit and now (the working tree's
    uncommitted changes included)."""
    state = git_state(repo)
    if state is None:
        return None
    r = Path(state["root"])
    out: dict[str, Any] = {**state, "since": since_commit}
    if since_commit and _git(r, "cat-file", "-e", f"{since_commit}^{{commit}}") is None:
        out["note"] = f"commit {since_commit[:12]} of the last success is not in this repository"
        since_commit = None
    rng = f"{since_commit}..HEAD" if since_commit else "-5"
    log = _git(r, "log", "--format=%h %ad %s", "--date=short", f"-{MAX_COMMITS}", rng)
    if since_commit is None:
        log = _git(r, "log", "--format=%h %ad %s", "--date=short", "-5")
    out["commits"] = [scrub(x) for x in (log or "").splitlines() if x.strip()]
    base = since_commit or "HEAD"
    stat = _git(r, "diff", "--stat", base) or ""
    out["diff_stat"] = [scrub(x.strip()) for x in stat.splitlines()[-30:] if x.strip()]
    if since_commit or state["dirty"]:
        diff = _git(r, "diff", "--unified=2", base) or ""
        clipped = diff[:MAX_DIFF]
        out["diff"] = scrub(clipped) + ("\n[... diff clipped ...]" if len(diff) > MAX_DIFF else "")
        out["changed_files"] = [
            x for x in (_git(r, "diff", "--name-only", base) or "").splitlines() if x
        ][:50]
    return out


def data_context(store: Any, dataset: str | None, since: str | None) -> dict[str, Any] | None:
    """Schema changes since ``since`` (an ISO time), quarantine counts and breaker state."""
    if store is None or not dataset:
        return None
    out: dict[str, Any] = {"dataset": dataset}
    try:
        from ..schema import history as schema_history

        conn = getattr(store, "_aux_conn", None) or getattr(store, "conn", None)
        hist = []
        if conn is not None:
            hist = schema_history.history(conn, store.dialect, dataset, store.namespace)
        changes = []
        after = instant(since)
        for h in hist:
            at = h.get("applied_at")
            at = at.isoformat() if hasattr(at, "isoformat") else str(at or "")
            when = instant(at)
            if after is None or when is None or when > after:
                ddl = [scrub(str(s))[:300] for s in (h.get("ddl") or [])][:10]
                changes.append({"version": h.get("version"), "at": at, "ddl": ddl})
        out["schema_changes"] = changes[-10:]
    except Exception as exc:  # the dataset's table may not exist yet
        out["schema_changes_error"] = type(exc).__name__
    try:
        out["quarantine"] = store.quarantine_counts(dataset)
    except Exception as exc:
        out["quarantine_error"] = type(exc).__name__
    try:
        breaker = store.load_state(dataset, "anomaly.breaker")
        if breaker:
            out["breaker"] = {k: breaker.get(k) for k in ("state", "opened_at", "reason")
                              if k in breaker}  # fmt: skip
            if out["breaker"].get("reason"):
                out["breaker"]["reason"] = scrub(str(out["breaker"]["reason"]))
    except Exception as exc:
        out["breaker_error"] = type(exc).__name__
    return out


def cgroup_memory() -> dict[str, Any] | None:
    """This process's cgroup (v2) memory limit, peak and OOM-kill count, where readable."""
    base = Path("/sys/fs/cgroup")
    try:
        rel = Path("/proc/self/cgroup").read_text().strip().splitlines()[-1].split(":", 2)[2]
    except (OSError, IndexError):
        return None
    d = base / rel.lstrip("/")
    if not (d / "memory.max").exists():
        d = base
    out: dict[str, Any] = {}
    try:
        limit = (d / "memory.max").read_text().strip()
        out["memory_limit"] = None if limit == "max" else int(limit)
    except (OSError, ValueError):
        return None
    for name in ("memory.peak", "memory.current"):
        with contextlib.suppress(OSError, ValueError):
            out[name.split(".")[1]] = int((d / name).read_text().strip())
    try:
        events = dict(
            line.split() for line in (d / "memory.events").read_text().splitlines() if line
        )
        out["oom_kill"] = int(events.get("oom_kill", 0))
    except (OSError, ValueError):
        pass
    return out


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 2.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


DOCKER_SOCKET = "/var/run/docker.sock"


def container_stats(
    container: str | None = None, socket_path: str | None = None
) -> dict[str, Any] | None:
    """Memory limit, OOMKilled and exit code of a container from the Docker Engine API, when
    its socket answers (None when there is no Docker here). ``container`` defaults to this
    host's name (a container's hostname is its id)."""
    path = socket_path or os.environ.get("PIPEWARDEN_DOCKER_SOCKET", DOCKER_SOCKET)
    if not os.path.exists(path):
        return None
    name = container or socket.gethostname()
    conn = _UnixHTTPConnection(path)
    try:
        conn.request("GET", f"/containers/{name}/json", headers={"Host": "docker"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            return {"container": name, "error": f"HTTP {resp.status}"}
        doc = json.loads(body)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return {"container": name, "error": type(exc).__name__}
    finally:
        conn.close()
    state = doc.get("State") or {}
    host = doc.get("HostConfig") or {}
    return {
        "container": scrub(str(doc.get("Name") or name)).lstrip("/"),
        "oom_killed": bool(state.get("OOMKilled")),
        "exit_code": state.get("ExitCode"),
        "status": state.get("Status"),
        "memory_limit": host.get("Memory") or None,
        "restart_count": doc.get("RestartCount"),
    }
