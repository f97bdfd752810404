"""The ``h2o`` engine: H2O's Isolation Forest and Extended Isolation Forest.

Cluster:

- ``url`` given: the cluster must be up. We check it ourselves (``GET /3/Cloud`` with a short
  timeout) and then call ``h2o.connect``, which never starts a JVM; an unreachable URL is an
  :class:`~pipewarden.errors.InputError` naming ``h2o.url``. (``h2o.init(url=...)`` would quietly
  start a local JVM instead when the URL does not answer.)
- no ``url``: a local H2O is started on demand on a free port bound to 127.0.0.1 (never an
  H2O someone else runs on 54321), reused by later calls of this process, and shut down by
  :func:`shutdown` (the CLI calls it after each command; it is also registered ``atexit``).
  A cluster we only connected to is never shut down.

Persistence: a trained model is saved as H2O's **binary model** (``h2o.download_model``, loaded
back with ``h2o.upload_model``), which works with a local or a remote cluster. The pinned
``h2o==3.46.0.12`` refuses MOJO export (it is reserved to H2O-3 Secure); pinning 3.46.0.11
only for MOJO would hold back the client and tie us to an export path the vendor has closed.
The price: a binary model loads only into the same H2O version, so the version is recorded in
``model.json`` and checked on load with a clear error.

Raw score: minus the mean path length (shorter paths = more anomalous), then the shared
calibration. The engine reads the same robust z-scores as every engine (EIF's random
hyperplanes need comparable scales; the plain forest does not care).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .engines import ModelError

ALGORITHMS = ("isolation_forest", "extended_isolation_forest")
_SESSION: dict[str, Any] = {"started": False, "url": None, "pid": None}


def _h2o():
    try:
        import h2o
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise InputError(
            "the h2o engine needs the h2o package",
            key="engine",
            hint="pip install 'pipewarden[h2o]' (and Java 11+), or use --engine sklearn",
        ) from exc
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
    h2o = _h2o()
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


class H2OEngine:
    name = "h2o"

    def __init__(
        self,
        algorithm: str = "extended_isolation_forest",
        ntrees: int = 100,
        sample_size: int = 256,
        extension_level: int | None = None,
        seed: int = 1,
        url: str | None = None,
        max_mem: str = "1g",
        nthreads: int = -1,
        connect_timeout: float = 5.0,
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise InputError(
                f"unknown H2O algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}",
                key="h2o.algorithm",
            )
        self.algorithm = algorithm
        self.ntrees = ntrees
        self.sample_size = sample_size
        self.extension_level = extension_level
        self.seed = seed
        self.url = url
        self.max_mem = max_mem
        self.nthreads = nthreads
        self.connect_timeout = connect_timeout
        self.model: Any = None
        self.n_features = 0

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> H2OEngine:
        known = {
            "algorithm", "ntrees", "sample_size", "extension_level", "seed", "url",
            "max_mem", "nthreads", "connect_timeout",
        }  # fmt: skip
        return cls(**{k: v for k, v in options.items() if k in known})

    def _connect(self) -> None:
        ensure_cluster(self.url, self.max_mem, self.nthreads, self.connect_timeout)

    def _upload(self, Z: np.ndarray):
        h2o = _h2o()
        names = [f"f{j}" for j in range(Z.shape[1])]
        fd, path = tempfile.mkstemp(suffix=".csv", prefix="pw-h2o-")
        os.close(fd)
        try:
            # a missing value (NaN) goes in as the median, z-score 0
            np.savetxt(path, np.clip(np.nan_to_num(Z), -1e6, 1e6), delimiter=",", fmt="%.6g",
                       header=",".join(names), comments="")  # fmt: skip
            with _quiet():
                return h2o.upload_file(
                    path, header=1, col_types=["numeric"] * len(names), col_names=names
                )
        finally:
            os.unlink(path)

    def fit(self, Z: np.ndarray) -> None:
        self._connect()
        from h2o.estimators import (
            H2OExtendedIsolationForestEstimator,
            H2OIsolationForestEstimator,
        )

        self.n_features = Z.shape[1]
        frame = self._upload(Z)
        sample = min(self.sample_size, Z.shape[0])
        if self.algorithm == "isolation_forest":
            est = H2OIsolationForestEstimator(
                ntrees=self.ntrees, sample_size=sample, seed=self.seed, ignore_const_cols=False
            )
        else:
            level = self.extension_level
            if level is None:
                level = max(self.n_features - 1, 0)
            est = H2OExtendedIsolationForestEstimator(
                ntrees=self.ntrees,
                sample_size=sample,
                extension_level=min(level, max(self.n_features - 1, 0)),
                seed=self.seed,
                ignore_const_cols=False,
            )
        with _quiet():
            est.train(training_frame=frame)
        self.model = est
        _h2o().remove(frame)

    def raw_scores(self, Z: np.ndarray) -> np.ndarray:
        h2o = _h2o()
        frame = self._upload(Z)
        with _quiet():
            pred = self.model.predict(frame)
        fd, path = tempfile.mkstemp(suffix=".csv", prefix="pw-h2o-pred-")
        os.close(fd)
        try:
            h2o.download_csv(pred["mean_length"], path)
            lengths = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=1)
        finally:
            os.unlink(path)
            h2o.remove(frame)
            h2o.remove(pred)
        return -np.asarray(lengths, dtype=float)

    def save(self, directory: Path) -> dict[str, Any]:
        h2o = _h2o()
        saved = h2o.download_model(self.model, path=str(directory), filename="h2o_model")
        return {
            "algorithm": self.algorithm,
            "ntrees": self.ntrees,
            "sample_size": self.sample_size,
            "extension_level": self.extension_level,
            "seed": self.seed,
            "n_features": self.n_features,
            "file": Path(saved).name,
            "h2o_version": h2o.__version__,
            "persistence": "h2o binary model (MOJO export is refused by the pinned H2O)",
        }

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], options: dict[str, Any]) -> H2OEngine:
        h2o = _h2o()
        if params.get("h2o_version") != h2o.__version__:
            raise InputError(
                f"the model was saved by H2O {params.get('h2o_version')} and H2O "
                f"{h2o.__version__} is installed; binary H2O models load only into the same version",
                file=str(directory),
                hint=f"install h2o=={params.get('h2o_version')} or train the model again",
            )
        conn = {
            k: options[k] for k in ("url", "max_mem", "nthreads", "connect_timeout") if k in options
        }
        eng = cls(
            params["algorithm"],
            params["ntrees"],
            params["sample_size"],
            params.get("extension_level"),
            params.get("seed", 1),
            **conn,
        )
        eng.n_features = params.get("n_features", 0)
        name = str(params["file"])
        if Path(name).name != name or name in ("", ".", ".."):
            # the binary model lies in the model directory: never upload another file
            raise ModelError("the H2O model file named in model.json is not in the directory")
        eng._connect()
        with _quiet():
            eng.model = h2o.upload_model(str(directory / params["file"]))
        return eng

    def close(self) -> None:
        if self.model is None:
            return
        with contextlib.suppress(Exception):
            _h2o().remove(self.model)
        self.model = None
