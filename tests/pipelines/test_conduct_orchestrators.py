"""Sensors and RCA with the real orchestrators: the Airflow sensor parsed by the real DagBag,
the Mage sensor block run by the real `mage run`, and the RCA of their real logs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def rca(*args: str) -> tuple[int, dict | None]:
    res = subprocess.run(
        [sys.executable, "-m", "pipewarden", "rca", "--format", "json", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return res.returncode, (json.loads(res.stdout) if res.stdout.strip() else None)


@pytest.mark.airflow
def test_airflow_json_log_from_the_real_structlog_transformer(tmp_path, airflow_python):
    """error_detail as Airflow 3's own structlog configuration renders a real exception."""
    code = r"""
import json, structlog
from structlog.tracebacks import ExceptionDictTransformer
def task():
    open('/dev/full', 'w').write('x' * 100000)
try:
    try:
        task()
    except OSError as exc:
        raise RuntimeError('task failed') from exc
except Exception as exc:
    detail = ExceptionDictTransformer(show_locals=False)((type(exc), exc, exc.__traceback__))
    print(json.dumps({"event": "Task failed with exception", "level": "error",
                      "error_detail": detail}, default=str))
"""
    res = subprocess.run([airflow_python, "-c", code], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    (tmp_path / "task.log").write_text(res.stdout)
    rc, doc = rca(str(tmp_path / "task.log"), "--kind", "airflow")
    assert rc == 0 and doc["verdict"]["class"] == "disk_full", doc["causes"]
