"""Fixtures of the pipeline validators' tests: the real Airflow and the real Mage, each in its own
cached virtualenv (see venvs.py), and a runner for the CLI that returns (exit code, JSON)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import missing

from .venvs import VenvError, ensure_venv, python_of

ROOT = Path(__file__).resolve().parents[2]


def _venv(kind: str) -> Path:
    if os.environ.get("PIPEWARDEN_SKIP_VENVS") == "1":
        missing(kind, "PIPEWARDEN_SKIP_VENVS=1")
    try:
        return ensure_venv(kind)
    except (VenvError, OSError) as exc:
        missing(kind, f"cannot create its virtualenv: {exc}")
    except Exception as exc:  # a timeout
        missing(kind, f"cannot create its virtualenv: {exc!r}")
    raise AssertionError("unreachable")  # pragma: no cover


@pytest.fixture(scope="session")
def airflow_python() -> str:
    """The Python of the Airflow virtualenv."""
    return str(python_of(_venv("airflow")))


@pytest.fixture(scope="session")
def mage_venv() -> Path:
    """The Mage virtualenv (pipewarden is installed in it; tests put src/ first on PYTHONPATH)."""
    return _venv("mage")


@pytest.fixture(scope="session")
def mage_template(tmp_path_factory, mage_venv) -> Path:
    """One `mage init` per session; each test works on its own copy (magekit.copy_project)."""
    from .magekit import mage_init

    return mage_init(tmp_path_factory.mktemp("mage_init"), mage_venv)


@pytest.fixture
def run_cli(capsys):
    """run_cli(*args) -> (exit code, parsed JSON document) of `pipewarden ... --format json`."""
    from pipewarden.cli import main

    def run(*args: str):
        capsys.readouterr()
        code = main([*args, "--format", "json"])
        out = capsys.readouterr().out
        return code, (json.loads(out) if out.strip() else None)

    return run


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path_factory, monkeypatch):
    """The CLI caches DAG analyses by default: keep the tests' cache out of the home folder."""
    monkeypatch.setenv("PIPEWARDEN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "pw-cache"))
