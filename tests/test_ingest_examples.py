"""examples/http_source: the pipeline config, the Mage data loader block and the Airflow DAG
that use the http source, run against the real local API (tests/apiserver.py)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from httpkit import ApiServer

from pipewarden.cli import main
from pipewarden.run import load_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "http_source"


@pytest.fixture(scope="module")
def api():
    server = ApiServer(max_seconds=300)
    try:
        yield server
    finally:
        server.close()


def _identity(f):
    return f


def test_the_mage_block_loads_the_api_and_the_next_run_is_warm(api, tmp_path, monkeypatch):
    api.configure(total=120, per_page=10, token="t0ken-for-the-example", threshold=6)
    monkeypatch.setenv("ORDERS_API_URL", api.base)
    monkeypatch.setenv("ORDERS_API_TOKEN", "t0ken-for-the-example")
    config = tmp_path / "pipeline.yaml"  # the example, its warehouse in tmp_path
    config.write_text((EXAMPLES / "pipeline.yaml").read_text())
    monkeypatch.setenv("PIPEWARDEN_PIPELINE", str(config))
    cfg = load_config(config)
    assert cfg["source"]["kind"] == "http"
    # Mage injects its decorators into the block's globals; the block is then called
    block = runpy.run_path(
        str(EXAMPLES / "mage_load_orders_api.py"),
        init_globals={"data_loader": _identity, "test": _identity},
    )
    report = block["load_orders_api"]()
    block["test_output"](report)
    assert report["totals"]["rows_loaded"] == 120
    assert not report["ingest"]["controller"]["warm_start"]
    api.add(10)
    again = block["load_orders_api"]()
    assert again["ingest"]["controller"]["warm_start"]
    assert again["totals"]["rows_read"] == 11  # the new records and the inclusive boundary


def test_the_mage_block_fails_on_refused_credentials(api, tmp_path, monkeypatch):
    api.configure(total=20, per_page=10, token="the-right-one")
    monkeypatch.setenv("ORDERS_API_URL", api.base)
    monkeypatch.setenv("ORDERS_API_TOKEN", "a-wrong-one")
    config = tmp_path / "pipeline.yaml"
    config.write_text((EXAMPLES / "pipeline.yaml").read_text())
    monkeypatch.setenv("PIPEWARDEN_PIPELINE", str(config))
    block = runpy.run_path(
        str(EXAMPLES / "mage_load_orders_api.py"),
        init_globals={"data_loader": _identity, "test": _identity},
    )
    with pytest.raises(RuntimeError, match="HTTP 401") as err:
        block["load_orders_api"]()
    assert "a-wrong-one" not in str(err.value)


def test_the_airflow_dag_validates(capsys):
    assert main(["validate", "dag", str(EXAMPLES / "airflow_orders_api.py")]) == 0
