"""Scaffolded pipelines: valid configs, clean under our validators, and accepted by the real
Airflow DagBag and the real `mage run`."""

from __future__ import annotations

import json
import os
import subprocess
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from pipewarden.pipelines.airflow import validate_dags
from pipewarden.pipelines.mage import validate_pipeline
from pipewarden.pipelines.scaffold import config_schema, scaffold

from .magekit import copy_project, mage_run

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"


def test_templates_ship_as_package_data_and_the_schema_is_the_run_schema():
    files = resources.files("pipewarden.pipelines").joinpath("templates")
    names = {p.name for p in files.iterdir()}
    assert {
        "airflow_dag_template.py",
        "mage_pipeline_template.py",
        "mage_block_template.py",
        "dbt_model_template.sql",
        "pipeline_config_schema.json",
    } <= names
    shipped = files.joinpath("pipeline_config_schema.json").read_bytes()
    assert shipped == (SRC / "pipewarden" / "pipeline_config_schema.json").read_bytes()
    assert json.loads(shipped) == config_schema()


@pytest.mark.parametrize("kind", ["airflow", "mage", "dbt"])
def test_scaffold_writes_a_valid_pipeline_config(kind, tmp_path, run_cli):
    code, doc = run_cli("scaffold", kind, "orders", "--dir", str(tmp_path))
    assert code == 0 and "pipewarden/orders.yaml" in doc["files"]
    cfg = yaml.safe_load((tmp_path / "pipewarden" / "orders.yaml").read_text())
    jsonschema.Draft202012Validator(config_schema()).validate(cfg)
    assert [s["type"] for s in cfg["steps"]] == ["guardian", "anomaly"]
    assert cfg["dataset"] == "orders" and cfg["source"]["path"] == "../data/orders.jsonl"
    for rel in doc["files"]:
        assert (tmp_path / rel).is_file()
        assert "__PW_" not in (tmp_path / rel).read_text(), rel


def test_scaffold_refuses_to_overwrite_and_bad_names(tmp_path, run_cli):
    assert run_cli("scaffold", "airflow", "orders", "--dir", str(tmp_path))[0] == 0
    before = (tmp_path / "dags" / "orders.py").read_text()
    (tmp_path / "dags" / "orders.py").write_text("# mine\n")
    code, doc = run_cli("scaffold", "airflow", "orders", "--dir", str(tmp_path))
    assert code == 2 and "--force" in doc["hint"]
    assert (tmp_path / "dags" / "orders.py").read_text() == "# mine\n"
    assert run_cli("scaffold", "airflow", "orders", "--dir", str(tmp_path), "--force")[0] == 0
    assert (tmp_path / "dags" / "orders.py").read_text() == before
    code, doc = run_cli("scaffold", "mage", "1-bad name", "--dir", str(tmp_path / "x"))
    assert code == 2 and not (tmp_path / "x").exists()


def test_dbt_model_is_incremental_over_the_pipewarden_source(tmp_path):
    scaffold("dbt", "orders", tmp_path, unique_key="order_id", updated_at="changed_at")
    sql = (tmp_path / "models" / "pipewarden" / "orders.sql").read_text()
    assert "materialized='incremental'" in sql and "unique_key='order_id'" in sql
    assert "{% if is_incremental() %}" in sql and "{{ source('pipewarden', 'orders') }}" in sql
    assert "max(changed_at)" in sql and "{{ this }}" in sql
    src = yaml.safe_load((tmp_path / "models" / "pipewarden" / "_orders_sources.yml").read_text())
    assert src["sources"][0]["tables"][0]["name"] == "orders"


def test_scaffolded_pipelines_pass_our_validators(tmp_path):
    scaffold("airflow", "orders", tmp_path / "af")
    scaffold("mage", "orders", tmp_path / "mg")
    dags = validate_dags([tmp_path / "af" / "dags"])
    assert dags["findings"] == [] and dags["dags"][0]["dag_id"] == "orders"
    mage = validate_pipeline(tmp_path / "mg")
    assert mage["findings"] == [] and mage["pipelines"][0]["blocks"] == 4
    meta = yaml.safe_load((tmp_path / "mg" / "pipelines" / "orders" / "metadata.yaml").read_text())
    by = {b["uuid"]: b for b in meta["blocks"]}
    assert by["orders_config"]["downstream_blocks"] == ["orders_guard"]
    assert by["orders_guard"]["upstream_blocks"] == ["orders_config"]
    assert by["orders_guard"]["downstream_blocks"] == ["orders_docs"]
    assert by["orders_docs"]["upstream_blocks"] == ["orders_guard"]
    assert by["orders_docs"]["downstream_blocks"] == ["orders_report"]
    assert by["orders_report"]["upstream_blocks"] == ["orders_docs"]


def test_airflow_template_follows_airflow_3_practice():
    text = (
        resources.files("pipewarden.pipelines")
        .joinpath("templates", "airflow_dag_template.py")
        .read_text()
    )
    for needle in (
        "schedule=",
        "catchup=False",
        '"retry_exponential_backoff": True',
        '"execution_timeout"',
        "dagrun_timeout=",
        "DeadlineAlert(",
        "logging.getLogger",
        "run_pipeline(",
    ):
        assert needle in text, needle
    assert "sla" not in text.replace("sla_", "").split("DeadlineAlert")[0].lower().split()


_DAGBAG = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1], include_examples=False, safe_mode=False)
dag = bag.dags.get("orders")
print("@@" + json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dag_ids": sorted(bag.dag_ids),
    "catchup": getattr(dag, "catchup", None),
    "tasks": sorted(dag.task_ids) if dag else [],
    "retries": dag.default_args.get("retries") if dag else None,
    "deadline": bool(getattr(dag, "deadline", None)) if dag else False,
    "schedule": str(getattr(dag, "schedule", None)) if dag else None,
}))
"""


def dagbag(root: Path, airflow_python: str) -> dict:
    """What the real Airflow's DagBag makes of root/dags (the orders DAG): import errors, DAG
    ids, the DAG's tasks, catchup, retries, deadline and schedule."""
    home = root / "airflow_home"
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    res = subprocess.run(
        [airflow_python, "-c", _DAGBAG, str(root / "dags")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=root,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.rsplit("@@", 1)[1])


def test_scaffolded_dag_is_parsed_by_the_real_airflow_dagbag(tmp_path, airflow_python):
    scaffold("airflow", "orders", tmp_path)
    doc = dagbag(tmp_path, airflow_python)
    assert doc["errors"] == {}
    assert doc["dag_ids"] == ["orders"]
    assert doc["tasks"] == ["build_docs", "check_config", "guard_and_load", "summarize"]
    assert doc["catchup"] is False and doc["retries"] == 3 and doc["deadline"] is True
    assert doc["schedule"] == "@daily"


@pytest.mark.mage
def test_scaffolded_mage_pipeline_runs_with_the_real_mage(tmp_path, mage_venv, mage_template):
    project, env = copy_project(tmp_path, mage_template)
    scaffold("mage", "orders", project)
    (project / "data").mkdir()
    (project / "data" / "orders.jsonl").write_text(
        "".join(json.dumps({"id": i, "amount": i * 1.5, "country": "NL"}) + "\n" for i in range(20))
    )
    assert validate_pipeline(project)["ok"]
    res = mage_run(project, "orders", mage_venv, env)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "Pipeline run completed" in out
    assert "pipewarden run of orders finished" in out  # the last block ran: every edge was followed
    # the run wrote the docs (its config has a docs section), the docs block ran after it
    docs = project / "pipewarden" / "docs" / "orders"
    assert "pipewarden docs of orders: 0 file(s) written" in out  # already up to date
    assert (docs / "orders.md").is_file() and (docs / "migrations/orders/0001_create.sql").is_file()


@pytest.mark.mage
def test_mage_exits_0_on_upstream_only_lists_and_we_catch_it(tmp_path, mage_venv, mage_template):
    project, env = copy_project(tmp_path, mage_template)
    scaffold("mage", "orders", project)
    meta_path = project / "pipelines" / "orders" / "metadata.yaml"
    meta = yaml.safe_load(meta_path.read_text())
    for b in meta["blocks"]:
        b["downstream_blocks"] = []
    meta_path.write_text(yaml.safe_dump(meta, sort_keys=False))
    res = mage_run(project, "orders", mage_venv, env)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "Pipeline run completed" in out  # Mage is silent...
    assert "pipewarden run of orders finished" not in out  # ...but ran only the first block
    doc = validate_pipeline(project)
    assert not doc["ok"]
    assert {f["rule"] for f in doc["findings"]} == {"mage-edge-mismatch"}


_MAGE_LOAD = r"""
import json, sys
from mage_ai.data_preparation.models.pipeline import Pipeline
out = {}
for uuid in sys.argv[2:]:
    try:
        p = Pipeline(uuid, repo_path=sys.argv[1])
        out[uuid] = "loaded: " + ",".join(f"{b.uuid}>{'|'.join(b.downstream_block_uuids)}" for b in p.blocks_by_uuid.values())
    except Exception as exc:
        out[uuid] = f"{type(exc).__name__}: {exc}"
print("@@" + json.dumps(out))
"""

_LOADER = "@data_loader\ndef load(*a, **k):\n    return 1\n"
_TRANSFORMER = "@transformer\ndef t(x, *a, **k):\n    return x\n"


@pytest.mark.mage
def test_we_report_what_the_real_mage_refuses_and_what_it_lets_through(
    tmp_path, mage_venv, mage_template
):
    project, env = copy_project(tmp_path, mage_template)
    (project / "data_loaders" / "a.py").write_text(_LOADER)
    (project / "transformers" / "b.py").write_text(_TRANSFORMER)
    cases = {
        "bad_type": (
            "- {uuid: a, type: data_loder}\n",
            "mage-block-type-invalid",
            "Invalid block type",
        ),
        "dup": (
            "- {uuid: a, type: data_loader}\n- {uuid: a, type: data_loader}\n",
            "mage-block-duplicate",
            "duplicate blocks",
        ),
        "down_cycle": (
            "- {uuid: a, type: data_loader, upstream_blocks: [b], downstream_blocks: [b]}\n"
            "- {uuid: b, type: transformer, upstream_blocks: [a], downstream_blocks: [a]}\n",
            "cycle",
            "A cycle was detected",
        ),
        # Mage loads these without a word
        "unknown": (
            "- {uuid: a, type: data_loader, downstream_blocks: [b, ghost]}\n"
            "- {uuid: b, type: transformer, upstream_blocks: [a]}\n",
            "mage-downstream-unknown",
            "loaded: a>b,",
        ),
        "up_cycle": (
            "- {uuid: a, type: data_loader, upstream_blocks: [b]}\n- {uuid: b, type: transformer, upstream_blocks: [a]}\n",
            "cycle",
            "loaded: a>,b>",
        ),
    }
    for name, (blocks, _rule, _msg) in cases.items():
        (project / "pipelines" / name).mkdir()
        (project / "pipelines" / name / "metadata.yaml").write_text(
            f"name: {name}\nuuid: {name}\ntype: python\nblocks:\n{blocks}"
        )
    res = subprocess.run(
        [str(mage_venv / "bin" / "python"), "-c", _MAGE_LOAD, str(project), *cases],
        capture_output=True,
        text=True,
        env=env,
        cwd=project,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    mage = json.loads(res.stdout.rsplit("@@", 1)[1])
    for name, (_blocks, rule, msg) in cases.items():
        assert msg in mage[name], (name, mage[name])
        ours = validate_pipeline(project / "pipelines" / name)
        assert rule in {f["rule"] for f in ours["findings"]}, (name, ours["findings"])


def test_bad_names_and_places_are_refused_before_anything_is_written(tmp_path, run_cli):
    for name in ("orders\n", "orders__raw", "_pw_runs"):
        code, doc = run_cli("scaffold", "airflow", name, "--dir", str(tmp_path))
        assert code == 2, (name, doc)
    (tmp_path / "dags" / "orders.py").mkdir(parents=True)
    code, doc = run_cli("scaffold", "airflow", "orders", "--dir", str(tmp_path), "--force")
    assert code == 2 and "folder is in the way" in doc["error"]
    assert not (tmp_path / "pipewarden").exists()  # nothing half-written
