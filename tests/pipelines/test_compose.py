"""docker-compose.agentic.yml is a valid Compose file with the promised shape.

No Docker engine runs here, so the file is checked against the Compose Specification's JSON
Schema, vendored in tests/data/compose-spec.json from the PyPI wheel check-jsonschema 0.39.0
(check_jsonschema/builtin_schemas/vendor/compose-spec.json; see tests/data/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
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
    assert set(services) == {"mage", "h2o", "postgres"}
    assert doc["networks"]["agentic"]["driver"] == "bridge"
    for name, svc in services.items():
        assert svc["networks"] == ["agentic"], name
        assert svc["deploy"]["resources"]["limits"]["memory"], name
        assert svc["healthcheck"]["test"], name
    for name in ("mage", "h2o"):
        assert "data_lake:/data_lake" in services[name]["volumes"], name
    assert "data_lake" in doc["volumes"]
    env = services["mage"]["environment"]
    assert (
        "@postgres:5432/" in env["PIPEWARDEN_DSN"]
        and env["PIPEWARDEN_H2O_URL"] == "http://h2o:54321"
    )
    assert services["mage"]["depends_on"]["postgres"]["condition"] == "service_healthy"
