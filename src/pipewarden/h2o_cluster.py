"""The H2O cluster every H2O engine uses (the anomaly engine, the imputer, feature discovery).

- ``url`` given: the cluster must be up. We check it ourselves (``GET /3/Cloud`` with a short
  timeout) and then call ``h2o.connect``, which never starts a JVM; an unreachable URL is an
  :class:`~pipewarden.errors.InputError` naming ``h2o.url``. (``h2o.init(url=...)`` would quietly
  start a local JVM instead when the URL does not answer.)
- no ``url``: a local H2O is started on demand on a free port bound to 127.0.0.1 (never an
  H2O someone else runs on 54321), reused by later calls of this process, and shut down by
  :func:`shutdown` (the CLI calls it after each command; it is also registered ``atexit``).
  A cluster we only connected to is never shut down.

Each engine keeps its own persistence; they share the one cluster of the process.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import sys
import urllib.error
import urllib.request
from typing import Any

from .errors import InputError

_SESSION: dict[str, Any] = {"started": False, "url": None, "pid": None}


def h2o_module(hint: str = "pip install 'pipewarden[h2o]' (and Java 11+)"):
    """The ``h2o`` package, or an InputError saying how to install it (``hint``: the
    caller's alternative, e.g. an engine that needs no JVM)."""
    try:
        import h2o
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise InputError("the h2o engine needs the h2o package", key="engine", hint=hint) from exc
    return h2o


def check_reachable(url: str, timeout: float = 5.0) -> None:
    """Raise InputError unless an H2O cluster answers at ``url``."""
    target = url.rstrip("/") + "/3/Cloud"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as resp:
            body = json.loads(resp.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(
            f"the H2O cluster at {url} is unreachable ({reason})",
            key="h2o.url",
            hint="start the cluster or fix the URL; no local H2O is started in its place",
        ) from exc
    if not isinstance(body, dict) or "cloud_name" not in body:
        raise InputError(
            f"{url} answered, but not as an H2O cluster",
            key="h2o.url",
            hint="point h2o.url at the H2O REST port (54321 by default)",
        )


def _free_port() -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 65535:
            continue
        with socket.socket() as s2:  # H2O also takes port + 1
            try:
                s2.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a local H2O")


@contextlib.contextmanager
def _quiet():
    """H2O prints banners and progress bars on stdout: keep stdout for our one document."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def ensure_cluster(
    url: str | None = None,
    max_mem: str = "1g",
    nthreads: int = -1,
    connect_timeout: float = 5.0,
) -> str:
    """Connect to ``url`` or start (once) a local H2O; returns the URL in use."""
    h2o = h2o_module()
    if url:
        if _SESSION["url"] == url and h2o.connection() and h2o.connection().connected:
            return url
        check_reachable(url, connect_timeout)
        try:
            with _quiet():
                h2o.connect(url=url, verbose=False, telemetry=False)
        except Exception as exc:
            raise InputError(
                f"cannot use the H2O cluster at {url}: {exc}",
                key="h2o.url",
                hint="the cluster must run the same H2O version as the client",
            ) from exc
        h2o.no_progress()
        _SESSION.update(url=url)
        return url
    if _SESSION["started"]:
        return _SESSION["url"]
    port = _free_port()
    try:
        with _quiet():
            h2o.init(
                ip="127.0.0.1",
                port=port,
                name=f"pipewarden-{os.getpid()}-{port}",
                nthreads=nthreads,
                max_mem_size=max_mem,
                bind_to_localhost=True,
                verbose=False,
                telemetry=False,
                strict_version_check=True,
            )
    except Exception as exc:
        raise InputError(
            f"cannot start a local H2O: {exc}",
            key="engine",
            hint="the h2o engine needs Java 11+ on PATH (or set h2o.url to a running cluster)",
        ) from exc
    h2o.no_progress()
    _stop_on_sigterm()
    conn = h2o.connection()
    server = getattr(conn, "local_server", None)
    _SESSION.update(
        started=True,
        url=f"http://127.0.0.1:{port}",
        pid=getattr(getattr(server, "_process", None), "pid", None),
    )
    return _SESSION["url"]


def _stop_on_sigterm() -> None:
    """``atexit`` does not run on SIGTERM (a scheduler stopping a task): stop the local H2O
    then too, instead of leaving its JVM behind. Only when nobody else handles SIGTERM."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def handler(signum, frame):  # pragma: no cover - exercised by a signal
        shutdown()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, handler)


def local_pid() -> int | None:
    """The process id of the local H2O this process started (None when none runs)."""
    return _SESSION["pid"] if _SESSION["started"] else None


def shutdown() -> bool:
    """Shut down the local H2O we started (a cluster we only connected to is left alone).
    Returns True when a cluster was stopped."""
    if not _SESSION["started"]:
        _SESSION.update(url=None)
        return False
    import h2o

    conn = h2o.connection()
    server = getattr(conn, "local_server", None) if conn else None
    with _quiet():
        with contextlib.suppress(Exception):
            h2o.cluster().shutdown()
        if server is not None:
            with contextlib.suppress(Exception):
                server.shutdown()
    proc = getattr(server, "_process", None)
    if proc is not None:
        with contextlib.suppress(Exception):
            proc.wait(timeout=20)
    _SESSION.update(started=False, url=None, pid=None)
    return True


atexit.register(shutdown)


@contextlib.contextmanager
def session():
    """Shut down, on leaving, a local H2O started inside the block, and only that one (an H2O
    this process already ran before the block, e.g. a test session's, is left running)."""
    running = _SESSION["started"]
    try:
        yield
    finally:
        if not running:
            shutdown()
