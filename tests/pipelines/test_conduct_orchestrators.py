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


# --------------------------------------------------------------------------- Airflow sensor

import os  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402

from pipewarden.pipelines.airflow import validate_dags  # noqa: E402
from pipewarden.pipelines.mage import validate_pipeline  # noqa: E402
from pipewarden.pipelines.scaffold import scaffold  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"

_DAGBAG = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
from airflow.models.dagbag import DagBag
from airflow.sdk import BaseSensorOperator
bag = DagBag(dag_folder=sys.argv[1], include_examples=False, safe_mode=False)
dag = bag.dags.get("orders")
sensors = {}
for t in (dag.tasks if dag else []):
    if isinstance(t, BaseSensorOperator):
        sensors[t.task_id] = {"cls": type(t).__name__, "mode": t.mode,
                              "downstream": sorted(t.downstream_task_ids),
                              "dependency": getattr(t, "dependency", None),
                              "backoff": t.exponential_backoff}
print("@@" + json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                         "tasks": sorted(dag.task_ids) if dag else [], "sensors": sensors}))
"""


def test_scaffolded_sensor_dag_is_parsed_by_the_real_dagbag(tmp_path, airflow_python):
    scaffold("airflow", "orders", tmp_path, wait_for=["file:data/orders.jsonl", "table:customers"])
    assert validate_dags([tmp_path / "dags"])["findings"] == []
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow_home"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONPATH": str(SRC)}  # fmt: skip
    res = subprocess.run([airflow_python, "-c", _DAGBAG, str(tmp_path / "dags")],
                         capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads(res.stdout.rsplit("@@", 1)[1])
    assert doc["errors"] == {}
    assert {"check_config", "guard_and_load", "summarize", "wait_for_file_orders",
            "wait_for_table_customers"} <= set(doc["tasks"])  # fmt: skip
    s = doc["sensors"]["wait_for_file_orders"]
    assert s == {"cls": "PipewardenDependencySensor", "mode": "reschedule",
                 "downstream": ["check_config"], "dependency": "file_orders", "backoff": True}  # fmt: skip


# --------------------------------------------------------------------------- Mage sensor block


@pytest.fixture(scope="module")
def mage_project(tmp_path_factory, mage_venv) -> Path:
    where = tmp_path_factory.mktemp("mage_sensor")
    env = {**os.environ, "MAGE_DATA_DIR": str(where / "mage_data")}
    env.pop("VIRTUAL_ENV", None)
    res = subprocess.run([str(mage_venv / "bin" / "mage"), "init", "proj"], cwd=where,
                         capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    return where / "proj"


def _mage_run(project: Path, mage_venv: Path, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC), "MAGE_DATA_DIR": str(data_dir)}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run([str(mage_venv / "bin" / "mage"), "run", str(project), "orders"],
                          cwd=project.parent, capture_output=True, text=True, env=env,
                          timeout=600)  # fmt: skip


@pytest.mark.mage
@pytest.mark.slow
def test_mage_sensor_block_waits_then_times_out_in_real_mage_run(tmp_path, mage_venv,
                                                                  mage_project):  # fmt: skip
    project = tmp_path / "proj"
    shutil.copytree(mage_project, project)
    scaffold("mage", "orders", project, wait_for=["file:data/orders.jsonl"])
    assert validate_pipeline(project)["ok"]
    cfg_path = project / "pipewarden" / "orders.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["dependencies"][0].update(poke_interval=0.2, max_interval=0.2,
                                  timeout={"default": 2, "floor": 0.5, "min_history": 1})  # fmt: skip
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    # 1. the file is there: the sensor passes at once and the whole pipeline runs
    (project / "data").mkdir()
    (project / "data" / "orders.jsonl").write_text(
        "".join(json.dumps({"id": i, "amount": i * 1.5}) + "\n" for i in range(20))
    )
    res = _mage_run(project, mage_venv, tmp_path / "mage_data")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "pipewarden sensor: orders:file_orders satisfied" in out
    assert "pipewarden run of orders finished" in out
    # 2. the file is late: the sensor fails the pipeline after its timeout (learned from
    # the one wait above: floor 0.5 s), instead of Mage's poll-forever
    (project / "data" / "orders.jsonl").unlink()
    res = _mage_run(project, mage_venv, tmp_path / "mage_data")
    out = res.stdout + res.stderr
    assert "Sensor has timed out" in out, out[-3000:]
    assert "pipewarden run of orders finished" not in out
    log = tmp_path / "mage_run.log"
    log.write_text(out)
    rc, doc = rca(str(log))
    assert rc == 0 and doc["verdict"]["class"] == "timeout", doc["causes"]
    assert doc["fixes"][0]["id"] == "wait-for-upstream"


_MAGE_LOG = r"""
import logging, sys
import pandas as pd
from mage_ai.data_preparation.logging.logger import DictLogger
handler = logging.FileHandler(sys.argv[1])
handler.setFormatter(logging.Formatter('%(asctime)s %(message)s', '%Y-%m-%dT%H:%M:%S'))
base = logging.getLogger('orders_transform')
base.addHandler(handler)
base.setLevel(logging.INFO)
log = DictLogger(base, logging_tags=dict(block_uuid='orders_transform', pipeline_uuid='orders'))
log.info('Start executing block with TransformerBlock.')
try:
    df = pd.DataFrame({'amount': [1.5, 2.5]})
    df['amount_eur'].sum()
except Exception as err:
    log.exception('Failed to execute block orders_transform', error=err)
"""


@pytest.mark.mage
def test_rca_reads_a_mage_block_log_written_by_mages_own_logger(tmp_path, mage_venv):
    """Mage's DictLogger lines (a timestamp, then JSON with error and error_stacktrace) from
    a real pandas KeyError on a missing column."""
    log = tmp_path / "orders_transform.log"
    env = {**os.environ}
    env.pop("VIRTUAL_ENV", None)
    res = subprocess.run([str(mage_venv / "bin" / "python"), "-c", _MAGE_LOG, str(log)],
                         capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert '"error_stacktrace"' in log.read_text()
    rc, doc = rca(str(log), "--kind", "mage")
    assert rc == 0 and doc["verdict"]["class"] == "schema_mismatch", doc["causes"]
    assert doc["source"]["kind"] == "mage_json"
    assert doc["exception"]["type"] == "KeyError"


_AF_RUN = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
sys.path.append(sys.argv[2])  # pipewarden's own dependencies, after Airflow's packages
from airflow.exceptions import AirflowSensorTimeout
from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1], include_examples=False, safe_mode=False)
task = bag.dags["orders"].get_task("wait_for_file_orders")
task.mode = "poke"  # reschedule needs a scheduler's task instance; the poke loop is the same
try:
    task.execute({})
    outcome = "satisfied"
except AirflowSensorTimeout as exc:
    outcome = "timed out: " + str(exc)
print("@@" + json.dumps({"outcome": outcome, "timeout": task.timeout}))
"""


def test_sensor_operator_executes_in_real_airflow_with_its_learned_timeout(tmp_path,
                                                                           airflow_python):  # fmt: skip
    """Airflow's own BaseSensorOperator.execute drives our poke: it times out after the
    configured default, then, with the file there, it is satisfied; both waits are in the
    store for the next learned timeout."""
    import sysconfig

    scaffold("airflow", "orders", tmp_path, wait_for=["file:data/orders.jsonl"])
    cfg_path = tmp_path / "pipewarden" / "orders.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["dependencies"][0].update(poke_interval=0.1, max_interval=0.1,
                                  timeout={"default": 0.5, "min_history": 5})  # fmt: skip
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "home"), "PYTHONPATH": str(SRC),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}  # fmt: skip
    ours = sysconfig.get_paths()["purelib"]

    def execute() -> dict:
        res = subprocess.run([airflow_python, "-c", _AF_RUN, str(tmp_path / "dags"), ours],
                             capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)  # fmt: skip
        assert res.returncode == 0, res.stderr[-3000:]
        return json.loads(res.stdout.rsplit("@@", 1)[1])

    first = execute()
    assert (
        first["outcome"].startswith("timed out: Sensor has timed out") and first["timeout"] == 0.5
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "orders.jsonl").write_text('{"id": 1}\n')
    assert execute()["outcome"] == "satisfied"
    from pipewarden.store import open_store

    store = open_store(f"duckdb:///{tmp_path}/pipewarden/warehouse.duckdb")
    try:
        hist = store.metrics_history("orders:file_orders", "sensor_wait")
    finally:
        store.close()
    assert [h["outcome"] for h in hist] == ["timed_out", "satisfied"]
