"""Virtualenvs for the real Airflow and the real Mage (their pins conflict, so each gets its own).

``ensure_venv("airflow")`` returns the path of a virtualenv with the pinned requirements of
``tests/requirements-airflow.txt`` installed, created on first use under
``$PIPEWARDEN_VENV_CACHE`` (default ``~/.cache/pipewarden/test-venvs``) and named after a hash of
the requirements (and, for Mage, of pyproject.toml: pipewarden is installed in it), so a changed
pin or dependency builds a new one and an unchanged one is reused. Creation
holds a file lock (parallel test runs wait instead of clashing); a ``.complete`` marker is written
only when the install succeeded, so a broken half-install is never reused but rebuilt. Installs use ``uv`` when it is importable (much faster), pip otherwise.

Run ``python tests/pipelines/venvs.py airflow mage`` to create them ahead of the tests.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(
    os.environ.get("PIPEWARDEN_VENV_CACHE", Path.home() / ".cache" / "pipewarden" / "test-venvs")
)
TIMEOUT = int(os.environ.get("PIPEWARDEN_VENV_TIMEOUT", "1500"))


class VenvError(RuntimeError):
    pass


def requirements(kind: str) -> Path:
    return ROOT / "tests" / f"requirements-{kind}.txt"


def venv_path(kind: str) -> Path:
    text = requirements(kind).read_bytes()
    if kind == "mage":  # pipewarden is installed in it: new dependencies need a new venv
        text += (ROOT / "pyproject.toml").read_bytes()
    tag = f"{sys.version_info.major}.{sys.version_info.minor}"
    digest = hashlib.sha256(text + tag.encode()).hexdigest()[:12]
    return CACHE / f"{kind}-{digest}"


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def _uv() -> list[str] | None:
    try:
        import uv  # noqa: F401
    except ImportError:
        return None
    from uv import find_uv_bin

    return [find_uv_bin()]


def _run(cmd: list, log, **kw) -> None:
    log.write(f"+ {' '.join(map(str, cmd))}\n")
    log.flush()
    res = subprocess.run(
        [str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT, timeout=TIMEOUT, **kw
    )
    if res.returncode != 0:
        raise VenvError(f"{cmd[0]} exited {res.returncode}; see {log.name}")


def _build(kind: str, target: Path, log) -> None:
    uv = _uv()
    py = python_of(target)
    req = requirements(kind)
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    if uv:
        _run([*uv, "venv", "--seed", "--python", sys.executable, target], log, env=env)
        _run([*uv, "pip", "install", "--python", py, "-r", req], log, env=env)
        if kind == "mage":  # the scaffolded blocks import pipewarden
            _run([*uv, "pip", "install", "--python", py, ROOT], log, env=env)
    else:
        _run([sys.executable, "-m", "venv", target], log, env=env)
        _run([py, "-m", "pip", "install", "-q", "-r", req], log, env=env)
        if kind == "mage":
            _run([py, "-m", "pip", "install", "-q", ROOT], log, env=env)


def ensure_venv(kind: str) -> Path:
    """The path of the ready virtualenv for ``kind`` ("airflow" or "mage"); builds it once."""
    final = venv_path(kind)
    if (final / ".complete").exists():
        return final
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{kind}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be building it: wait for it
        if (final / ".complete").exists():
            return final
        # built in place (a venv's scripts hold absolute paths); the marker is written last, so a
        # half-built one (a crash, a timeout) is never taken for ready and is rebuilt next time
        shutil.rmtree(final, ignore_errors=True)
        started = time.monotonic()
        with open(CACHE / f"{final.name}.log", "w") as log:
            try:
                _build(kind, final, log)
            except (VenvError, subprocess.TimeoutExpired, OSError):
                shutil.rmtree(final, ignore_errors=True)
                raise
            log.write(f"built in {time.monotonic() - started:.0f}s\n")
        (final / ".complete").write_text(f"{time.monotonic() - started:.0f}s\n")
        return final


if __name__ == "__main__":
    for name in sys.argv[1:] or ["airflow", "mage"]:
        t0 = time.monotonic()
        print(name, ensure_venv(name), f"{time.monotonic() - t0:.0f}s", flush=True)
