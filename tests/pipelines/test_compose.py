"""docker-compose.agentic.yml is a valid Compose file with the promised shape.

No Docker engine runs here, so the file is checked against the Compose Specification's JSON
Schema, vendored in tests/data/compose-spec.json from the PyPI wheel check-jsonschema 0.39.0
(check_jsonschema/builtin_schemas/vendor/compose-spec.json; see tests/data/README.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.agentic.yml"
SCHEMA = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())


def _doc() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_the_file_is_valid_against_the_compose_spec():
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(_doc()))
    assert errors == []


def test_the_schema_catches_a_broken_file():
    doc = _doc()
    doc["services"]["mage"]["healthcheck"]["interval"] = ["10s"]
    doc["services"]["h2o"]["networkz"] = ["agentic"]
    assert len(list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc))) >= 2


def test_services_network_volume_limits_and_health():
    doc = _doc()
    services = doc["services"]
    assert set(services) == {"mage", "h2o", "postgres", "pipewarden"}
    assert doc["networks"]["agentic"]["driver"] == "bridge"
    for name, svc in services.items():
        assert svc["networks"] == ["agentic"], name
        assert svc["deploy"]["resources"]["limits"]["memory"], name
        if name != "pipewarden":  # the servers; pipewarden is a command run on demand
            assert svc["healthcheck"]["test"], name
    for name in ("mage", "h2o", "pipewarden"):
        assert "data_lake:/data_lake" in services[name]["volumes"], name
    assert "data_lake" in doc["volumes"]
    env = services["mage"]["environment"]
    assert (
        "@postgres:5432/" in env["PIPEWARDEN_DSN"]
        and env["PIPEWARDEN_H2O_URL"] == "http://h2o:54321"
    )
    assert services["mage"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Mage's blocks import pipewarden with the H2O client, as the test's Mage venv has them
    assert "pip install -q '/tmp/pipewarden[h2o]'" in services["mage"]["command"][-1]
    assert ".:/opt/pipewarden:ro" in services["mage"]["volumes"]
    assert "h2o==3.46.0.12" in (ROOT / "tests" / "requirements-mage.txt").read_text()
    assert services["h2o"]["image"].endswith(":3.46.0.12")  # the client's version


def test_the_pipewarden_service_runs_the_cli_and_mcp_in_the_stack():
    """Not started by `up` (profile tools); its entrypoint runs `pipewarden ARGS` with the
    environment Mage has, the install's output kept off stdout (the MCP protocol's channel)."""
    services = _doc()["services"]
    pw = services["pipewarden"]
    assert pw["profiles"] == ["tools"]
    assert pw["environment"] == services["mage"]["environment"]  # one anchor, one truth
    script = pw["entrypoint"][2]
    assert "pip install -q '/tmp/pipewarden[h2o,mcp]' >&2" in script
    assert script.endswith('exec pipewarden "$$@"')  # $$: a literal $ in the Compose file
    assert pw["depends_on"]["postgres"]["condition"] == "service_healthy"


# --------------------------------------------------------------------------- the topology, run
# No Docker here: the same topology with real local processes. Each service of the compose
# file is a process on this machine (postgres: the local PostgreSQL, h2o: the session's H2O
# JVM reached by URL, mage: `mage run`), the data_lake volume a folder; the Mage service's
# environment is read from the compose file and only its service addresses are swapped.

ROWS = 120


def _local_environment(environment: dict, dsn: str, h2o_url: str, lake: Path) -> dict:
    """The mage service's environment with each service address swapped for its local process."""
    swaps = {
        "PIPEWARDEN_DSN": ("@postgres:5432/", dsn),
        "PIPEWARDEN_H2O_URL": ("http://h2o:54321", h2o_url),
        "DATA_LAKE": ("/data_lake", str(lake)),
    }
    assert set(environment) == set(swaps), "the compose file's mage environment changed"
    local = {}
    for key, value in environment.items():
        where, here = swaps[key]
        assert where in value, (key, value)  # the compose file names the service as expected
        local[key] = here
    return local


def _orders(start: int, n: int) -> list[dict]:
    return [
        {"id": i, "amount": round(20 + (i % 17) * 3.5, 2), "items": 1 + i % 5,
         "email": f"kim.{i}@example.com", "country": ["NL", "DE", "FR", "BE"][i % 4]}
        for i in range(start, start + n)
    ]  # fmt: skip


@pytest.mark.mage
@pytest.mark.postgres
@pytest.mark.h2o
def test_the_topology_runs_with_local_processes(
    tmp_path, pg_schema, h2o_cluster, mage_venv, mage_template
):
    import re

    import psycopg

    from pipewarden.pipelines.mage import validate_pipeline
    from pipewarden.pipelines.scaffold import scaffold

    from .magekit import block_outputs, copy_project, mage_files_text, mage_run

    dsn, schema = pg_schema
    services = _doc()["services"]
    assert "data_lake:/data_lake" in services["h2o"]["volumes"]  # H2O sees the same lake
    lake = tmp_path / "data_lake"
    local = _local_environment(services["mage"]["environment"], dsn, h2o_cluster, lake)

    project, env = copy_project(tmp_path, mage_template)
    env.update(local)
    scaffold("mage", "orders", project, source="${DATA_LAKE}/orders/*.jsonl", store="postgres",
             blocks=True, h2o_url="${PIPEWARDEN_H2O_URL}")  # fmt: skip
    config = project / "pipewarden" / "orders.yaml"
    text = config.read_text()
    # the scaffolded config reads the environment the compose file gives the mage service
    assert set(re.findall(r"\$\{(\w+)\}", text)) == set(local)
    config.write_text(text.replace("schema: public", f"schema: {schema}"))  # this test's schema
    assert validate_pipeline(project)["findings"] == []

    day1, day2 = _orders(0, ROWS), _orders(ROWS, 40)
    for r in day2[:5]:
        r["items"] = "several"  # not a number: quarantined by the contract
    (lake / "orders").mkdir(parents=True)
    for name, rows in (("day1", day1), ("day2", day2)):
        (lake / "orders" / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    res = mage_run(project, "orders", mage_venv, env)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "Pipeline run completed" in out, out[-3000:]
    outputs = block_outputs(project, "orders", env)
    scored = outputs["orders_anomaly"]["results"]
    assert [(d["scored"]["engine"], d["scored"]["status"]) for d in scored] == [
        ("h2o", "scored")
    ] * 2
    (report,) = outputs["orders_load"]["results"]
    assert report["store"]["kind"] == "postgres" and report["store"]["schema"] == schema
    batches = report["batches"]
    assert all(b["source"].startswith(str(lake)) for b in batches)
    assert [(b["rows_read"], b["rows_loaded"], b["rows_quarantined"]) for b in batches] == [
        (ROWS, ROWS, 0), (40, 35, 5)]  # fmt: skip
    assert batches[1]["reasons"] == {"type_mismatch": 5}
    with psycopg.connect(dsn) as conn:
        n = conn.execute(f'select count(*) from "{schema}".orders').fetchone()[0]
        held = conn.execute(f'select count(*) from "{schema}".orders__quarantine').fetchone()[0]
    assert (n, held) == (ROWS + 35, 5)
    # the pipewarden service's part: its CLI, in its environment, reads what Mage loaded
    import subprocess
    import sys

    assert services["pipewarden"]["environment"] == services["mage"]["environment"]
    res = subprocess.run(
        [sys.executable, "-m", "pipewarden.cli", "quarantine", "list", str(config), "--format",
         "json"],
        env={**os.environ, **local, "PYTHONPATH": str(ROOT / "src")}, cwd=project,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    listed = json.loads(res.stdout)
    assert listed["counts"]["orders"]["pending"] == 5
    assert {r["reason"] for r in listed["rows"]} == {"type_mismatch"}
    text = out + res.stdout + mage_files_text(project, env)
    assert not [r["email"] for r in day1 + day2 if r["email"] in text]
