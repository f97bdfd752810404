"""``--mode import``: load DAG files with the real Airflow in a subprocess, with a timeout.

The subprocess runs the given Python (``--airflow-python``, else ``$PIPEWARDEN_AIRFLOW_PYTHON``,
else this interpreter), which must have Airflow installed. It gets a throwaway ``AIRFLOW_HOME``
and builds one ``DagBag`` per file with the examples off; each import error becomes an
``import-error`` finding. This executes the files: use it on code you trust.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from ..errors import InputError
from .findings import Finding

_SCRIPT = r"""
import json, os, sys, warnings
warnings.simplefilter("ignore")
try:
    from airflow.models.dagbag import DagBag
except Exception as exc:
    print(json.dumps({"no_airflow": repr(exc)}))
    sys.exit(0)
out = {}
for path in json.loads(sys.stdin.read()):
    # a DAG imports modules beside it, as from Airflow's dags folder (on its sys.path)
    sys.path.insert(0, os.path.dirname(path))
    try:
        bag = DagBag(dag_folder=path, include_examples=False, safe_mode=False)
    finally:
        sys.path.pop(0)
    for f, err in bag.import_errors.items():
        out[f] = str(err)
print("\n@@PIPEWARDEN@@" + json.dumps({"errors": out}))
"""


def _line_of(text: str, path: str) -> int | None:
    # the last traceback frame in the file itself: 'File "<path>", line N'
    import re

    hits = re.findall(r'File "' + re.escape(path) + r'", line (\d+)', text)
    return int(hits[-1]) if hits else None


def import_errors(
    files: list[str], python: str | None = None, timeout: float = 120.0
) -> list[Finding]:
    python = python or os.environ.get("PIPEWARDEN_AIRFLOW_PYTHON") or sys.executable
    abs_files = [os.path.abspath(f) for f in files]
    with tempfile.TemporaryDirectory(prefix="pw-airflow-home-") as home:
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
            # each file gets the timeout (Airflow's own per-file import timeout names the slow
            # one), and the whole traceback, so the error keeps the file's line
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": f"{timeout:g}",
            "AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACK_DEPTH": "100",
        }
        try:
            res = subprocess.run(
                [python, "-c", _SCRIPT],
                input=json.dumps(abs_files),
                capture_output=True,
                text=True,
                timeout=timeout * len(abs_files) + 60,  # per file, plus Airflow's start
                env=env,
                cwd=home,
            )
        except subprocess.TimeoutExpired:
            return [
                Finding(
                    f,
                    None,
                    "import-error",
                    f"Airflow did not finish importing the files within {timeout:g}s each",
                )
                for f in files
            ]
        except OSError as exc:
            raise InputError(
                f"cannot run {python}: {exc.strerror}", hint="pass --airflow-python"
            ) from None
    marker = res.stdout.rfind("@@PIPEWARDEN@@")
    if marker < 0:
        try:
            doc = json.loads(res.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            doc = {}
        if "no_airflow" in doc:
            raise InputError(
                f"Airflow is not importable by {python}",
                hint="install apache-airflow there or pass --airflow-python PATH",
            )
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        raise InputError(
            f"the Airflow subprocess failed: {' | '.join(tail)}", hint="check the Airflow install"
        )
    errors = json.loads(res.stdout[marker + len("@@PIPEWARDEN@@") :])["errors"]
    by_abs = dict(zip(abs_files, files, strict=True))
    out = []
    for path, text in sorted(errors.items()):
        shown = by_abs.get(path, path)
        last = text.strip().splitlines()[-1] if text.strip() else "import failed"
        out.append(Finding(shown, _line_of(text, path), "import-error", last[:500]))
    return out
