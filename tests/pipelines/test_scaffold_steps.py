"""Scaffolds with the impute and features steps (`--step impute --step features:SPEC`): the
configs fit the run's schema, the Airflow DAG and the Mage pipeline pass our validators, the
config the DAG's task runs loads the features and the fills, and a real `mage run` of the
scaffolded pipeline does the same."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml

from pipewarden.features.spec import Feature, compute
from pipewarden.pipelines.airflow import validate_dags
from pipewarden.pipelines.mage import validate_pipeline
from pipewarden.pipelines.scaffold import config_schema, scaffold
from pipewarden.run import run_pipeline
from pipewarden.store import open_store

from .test_features import mage_project
from .test_scaffold import dagbag

FEATURES = [
    Feature("amount_x_qty", "product", ["amount", "qty"]),
    Feature("day_month", "date_part", ["day"], part="month"),
]
NAMES = [f.name for f in FEATURES]


def _project(root: Path) -> list[dict]:
    """A spec under specs/ and 300 rows (every 10th amount missing) under data/."""
    (root / "specs").mkdir(parents=True, exist_ok=True)
    (root / "specs" / "orders-features.json").write_text(json.dumps({
        "format": "pipewarden.features", "format_version": 1, "target": "total",
        "dataset": "orders", "features": [f.to_dict() for f in FEATURES]}))  # fmt: skip
    rng = np.random.default_rng(0)
    rows = []
    for i in range(300):
        qty = int(rng.integers(1, 9))
        price = round(float(rng.uniform(5, 50)), 2)
        rows.append({"id": i, "qty": qty, "price": price, "amount": round(qty * price, 2),
                     "day": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}"})  # fmt: skip
    for r in rows[::10]:
        r["amount"] = None
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "orders.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


STEPS = ["--step", "features:specs/orders-features.json", "--step", "impute"]


def _check_store(db: Path, rows: list[dict]) -> None:
    store = open_store(f"duckdb:///{db}")
    try:
        got = store._aux_query(
            f"SELECT id, amount, qty, day, {', '.join(NAMES)} FROM {store.qualify('orders')} "
            "ORDER BY id"
        )
        imputed = store._aux_query(f"SELECT count(*) FROM {store.qualify('orders__imputed')}")
    finally:
        store.close()
    assert len(got) == len(rows) == 300
    assert imputed == [(30,)]  # every missing amount filled (and its feature with it)
    for (i, amount, qty, day, xq, month), row in zip(got, rows, strict=True):
        assert qty == row["qty"] and str(day) == row["day"], i
        want = compute(FEATURES, [{**row, "amount": amount}])[0]
        assert xq == pytest.approx(want["amount_x_qty"]) and month == want["day_month"], i
        if row["amount"] is not None:
            assert amount == row["amount"]


@pytest.mark.parametrize("kind", ["airflow", "mage", "dbt"])
def test_scaffold_adds_the_steps_to_the_config(kind, tmp_path, run_cli):
    _project(tmp_path)
    code, doc = run_cli("scaffold", kind, "orders", "--dir", str(tmp_path), *STEPS)
    assert code == 0, doc
    cfg = yaml.safe_load((tmp_path / "pipewarden" / "orders.yaml").read_text())
    jsonschema.Draft202012Validator(config_schema()).validate(cfg)
    assert cfg["steps"] == [
        {"type": "guardian"}, {"type": "anomaly"}, {"type": "impute"},
        {"type": "features", "spec": "../specs/orders-features.json"},
    ]  # fmt: skip
    head = (tmp_path / "pipewarden" / "orders.yaml").read_text().splitlines()[1]
    assert "guardian, anomaly, impute, features" in head


def test_bad_steps_are_refused_before_anything_is_written(tmp_path, run_cli):
    for step in ("features:nope.json", "impute:fast", "features", "anomaly"):
        code, doc = run_cli("scaffold", "mage", "orders", "--dir", str(tmp_path), "--step", step)
        assert code == 2, (step, doc)
        assert not (tmp_path / "pipewarden").exists()
    code, doc = run_cli("scaffold", "mage", "orders", "--dir", str(tmp_path), "--step",
                        "features:nope.json")  # fmt: skip
    assert "no such feature spec" in doc["error"]


def test_the_airflow_scaffold_passes_validate_dag_and_its_config_runs(tmp_path):
    rows = _project(tmp_path)
    scaffold("airflow", "orders", tmp_path, steps=STEPS[1::2])
    dags = validate_dags([tmp_path / "dags"])
    assert dags["findings"] == [] and dags["dags"][0]["dag_id"] == "orders"
    # what the DAG's guard_and_load task calls
    rep = run_pipeline(tmp_path / "pipewarden" / "orders.yaml", fmt="json")
    assert rep["exit_code"] == 0, rep
    b = rep["batches"][0]
    assert b["rows_read"] == 300 == b["rows_loaded"] + b["rows_quarantined"]
    assert b["steps"]["features"]["cells_from_fills"] == 30
    _check_store(tmp_path / "pipewarden" / "warehouse.duckdb", rows)


def test_the_airflow_scaffold_with_the_steps_is_parsed_by_airflow(tmp_path, airflow_python):
    _project(tmp_path)
    scaffold("airflow", "orders", tmp_path, steps=STEPS[1::2])
    doc = dagbag(tmp_path, airflow_python)
    assert doc["errors"] == {} and doc["dag_ids"] == ["orders"]
    assert doc["tasks"] == ["build_docs", "check_config", "guard_and_load", "summarize"]
    # the DAG runs the config that holds the steps
    dag = (tmp_path / "dags" / "orders.py").read_text()
    assert "orders.yaml" in dag
    cfg = yaml.safe_load((tmp_path / "pipewarden" / "orders.yaml").read_text())
    assert [s["type"] for s in cfg["steps"]][-2:] == ["impute", "features"]


@pytest.mark.mage
def test_the_mage_scaffold_with_the_steps_runs_in_a_real_mage(tmp_path, mage_venv):
    project, env, mage = mage_project(tmp_path, mage_venv)
    where = project.parent
    rows = _project(project)
    scaffold("mage", "orders", project, steps=STEPS[1::2])
    doc = validate_pipeline(project)
    assert doc["ok"] and doc["findings"] == [], doc["findings"]
    res = subprocess.run([mage, "run", str(project), "orders"], cwd=where, capture_output=True,
                         text=True, env=env, timeout=600)  # fmt: skip
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "Pipeline run completed" in out, out[-3000:]
    assert "pipewarden run of orders finished: exit code 0" in out, out[-3000:]
    _check_store(project / "pipewarden" / "warehouse.duckdb", rows)
