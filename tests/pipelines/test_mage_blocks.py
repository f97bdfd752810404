"""pipewarden.mage: the blocks a Mage project calls, each one library call on a pipeline config.
Their results are the CLI's JSON documents; a failed check stops the pipeline; the scaffolded
`--blocks` pipeline passes `validate pipeline` and runs under the real `mage run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipewarden.anomaly.breaker import Breaker
from pipewarden.mage import blocks
from pipewarden.pipelines.mage import validate_pipeline
from pipewarden.pipelines.scaffold import scaffold
from pipewarden.run import load_config, source_files
from pipewarden.store import open_store

from .magekit import block_outputs, copy_project, mage_files_text, mage_run

EMAILS = [f"mira.{i}@example.org" for i in range(30)]


def _rows(start: int, n: int, **extra) -> list[dict]:
    return [
        {"id": i, "amount": round(10 + i * 1.25, 2), "email": EMAILS[i % len(EMAILS)],
         "country": ["NL", "DE", "FR"][i % 3], **extra}
        for i in range(start, start + n)
    ]  # fmt: skip


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _project(root: Path, **options) -> str:
    """A scaffolded --blocks pipeline over data/*.jsonl: day 1 clean, day 2 with a new column
    (a schema change) and three amounts that are not numbers (quarantined by the contract)."""
    scaffold("mage", "orders", root, source="data/*.jsonl", blocks=True, **options)
    _write(root / "data" / "day1.jsonl", _rows(0, 20))
    day2 = _rows(20, 10, coupon="SPRING")
    for r in day2[:3]:
        r["amount"] = "n/a"
    _write(root / "data" / "day2.jsonl", day2)
    return str(root / "pipewarden" / "orders.yaml")


def _no_raw_pii(text: str) -> None:
    leaked = [e for e in EMAILS if e in text]
    assert not leaked, f"raw e-mail addresses in the output: {leaked[:3]}"


def test_each_block_returns_the_cli_document_for_the_same_input(tmp_path, run_cli):
    config = _project(tmp_path)
    got = {
        "breaker": blocks.breaker_check(config),
        "sentinel": blocks.sentinel_check(config),
        "guardian": blocks.guardian_check(config),
        "anomaly": blocks.anomaly_check(config),
    }
    assert all(o["passed"] and o["exit_code"] == 0 and o["config"] == config for o in got.values())
    store = f"duckdb://{tmp_path / 'pipewarden' / 'warehouse.duckdb'}"
    files = source_files(load_config(config))  # the paths as the run names them
    cli = {
        "breaker": [run_cli("breaker", "status", "--config", config)],
        "sentinel": [
            run_cli(
                "sentinel",
                "--source",
                f,
                "--dsn",
                store,
                "--table",
                "orders",
                "--namespace",
                "main",
                "--contract",
                "tables=evolve,columns=evolve,data_type=quarantine",
            )
            for f in files
        ],  # fmt: skip
        "guardian": [run_cli("guard", "scan", "--data", f, "--dataset", "orders") for f in files],
        "anomaly": [run_cli("anomaly", "score", "--config", config, "--data", f) for f in files],
    }
    for check, outcomes in cli.items():
        assert [code for code, _ in outcomes] == [0] * len(outcomes), check
        assert got[check]["results"] == [doc for _, doc in outcomes], check
    _no_raw_pii(json.dumps(got))
    # each file is planned against the store as it is now (empty: a first load each)
    assert got["sentinel"]["summary"].startswith("day1.jsonl: evolve, 20 of 20 rows fit")


def test_the_load_is_the_gate_and_every_row_is_accounted_for(tmp_path):
    config = _project(tmp_path)
    out = blocks.load(config)
    (report,) = out["results"]
    t = report["totals"]
    assert (t["rows_read"], t["rows_loaded"], t["rows_quarantined"]) == (30, 27, 3)
    assert out["summary"].startswith("2 batch(es): 30 rows read, 27 loaded, 3 quarantined")
    _no_raw_pii(json.dumps(out))
    again = blocks.load(blocks.docs(out))  # a block takes the output of the block upstream
    assert again["results"][0]["totals"]["rows_loaded"] == 0  # the same files load once


def test_a_failed_check_stops_the_pipeline_with_its_reason(tmp_path):
    config = _project(tmp_path)
    blocks.load(config)
    store = open_store(f"duckdb://{tmp_path / 'pipewarden' / 'warehouse.duckdb'}")
    try:
        Breaker(store, "orders").record(True, True, "row count 3 against 300")
    finally:
        store.close()
    with pytest.raises(blocks.PipelineStopped) as stopped:
        blocks.breaker_check(config)
    assert "breaker of orders is open" in str(stopped.value)
    assert stopped.value.output["exit_code"] == 1
    assert blocks.breaker_check(config, stop=False)["passed"] is False
    # a contract that freezes columns rejects day 3's new column
    text = Path(config).read_text().replace("columns: evolve", "columns: freeze")
    Path(config).write_text(text)
    _write(tmp_path / "data" / "day3.jsonl", _rows(40, 5, vip=True))
    with pytest.raises(blocks.PipelineStopped, match="day3.jsonl: reject"):
        blocks.sentinel_check(config)


def test_a_guardian_policy_that_blocks_stops_the_pipeline(tmp_path):
    config = _project(tmp_path)
    (tmp_path / "pipewarden" / "policy.yaml").write_text(
        "version: 1\nrules:\n  - {entity: EMAIL_ADDRESS, action: block}\n"
    )
    cfg = yaml.safe_load(Path(config).read_text())
    cfg["steps"][0]["policy"] = "policy.yaml"
    Path(config).write_text(yaml.safe_dump(cfg, sort_keys=False))
    with pytest.raises(blocks.PipelineStopped) as stopped:
        blocks.guardian_check(config)
    assert "failed" in stopped.value.output["summary"]
    _no_raw_pii(json.dumps(stopped.value.output) + str(stopped.value))


def test_a_block_given_something_else_says_what_it_takes(tmp_path):
    from pipewarden.errors import InputError

    with pytest.raises(InputError, match="no such pipeline config"):
        blocks.load(str(tmp_path / "missing.yaml"))
    with pytest.raises(InputError, match="takes a pipeline config path"):
        blocks.sentinel_check(42)


def test_scaffold_blocks_writes_one_block_per_check_and_validates(tmp_path, run_cli):
    code, doc = run_cli("scaffold", "mage", "orders", "--dir", str(tmp_path), "--blocks")
    assert code == 0
    meta = yaml.safe_load((tmp_path / "pipelines" / "orders" / "metadata.yaml").read_text())
    chain = [b["uuid"] for b in meta["blocks"]]
    assert chain == [f"orders_{r}" for r in ("config", "breaker", "sentinel", "guardian",
                                             "anomaly", "load", "docs", "report")]  # fmt: skip
    for rel in doc["files"]:
        text = (tmp_path / rel).read_text()
        if rel.endswith(".py") and "pipelines/" not in rel:
            assert "from pipewarden.mage import" in text, rel  # a face: one call, no logic
    code, checked = run_cli("validate", "pipeline", str(tmp_path))
    assert code == 0 and checked["findings"] == []
    code, doc = run_cli("scaffold", "airflow", "orders", "--dir", str(tmp_path / "a"), "--blocks")
    assert code == 2


@pytest.mark.mage
def test_the_blocks_run_in_a_real_mage_and_a_breaker_stops_it(tmp_path, mage_venv, mage_template):
    project, env = copy_project(tmp_path, mage_template)
    _project(project)
    assert validate_pipeline(project)["findings"] == []
    res = mage_run(project, "orders", mage_venv, env)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "Pipeline run completed" in out, out[-3000:]
    outputs = block_outputs(project, "orders", env)
    assert set(outputs) == {f"orders_{r}" for r in ("config", "breaker", "sentinel", "guardian",
                                                    "anomaly", "load", "docs", "report")}  # fmt: skip
    load = outputs["orders_load"]
    assert load["passed"] and load["exit_code"] == 0
    totals = load["results"][0]["totals"]
    assert (totals["rows_read"], totals["rows_loaded"], totals["rows_quarantined"]) == (30, 27, 3)
    assert "pipewarden load: 2 batch(es): 30 rows read, 27 loaded, 3 quarantined" in out
    assert outputs["orders_report"]["docs"]["check"] == "docs"
    _no_raw_pii(out + mage_files_text(project, env))

    # the breaker opens (as a failing batch opens it): the next run stops at the breaker block
    store = open_store(f"duckdb://{project / 'pipewarden' / 'warehouse.duckdb'}")
    try:
        Breaker(store, "orders").record(True, True, "row count 3 against 300")
    finally:
        store.close()
    _write(project / "data" / "day3.jsonl", _rows(40, 10))
    res = mage_run(project, "orders", mage_venv, env)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    assert "pipewarden breaker: breaker of orders is open" in out
    assert "PipelineStopped: pipewarden breaker stopped the pipeline" in out
    assert "pipewarden sentinel:" not in out and "pipewarden load:" not in out
    store = open_store(f"duckdb://{project / 'pipewarden' / 'warehouse.duckdb'}")
    try:
        assert store.count("orders") == 27  # day 3 was not loaded
    finally:
        store.close()
    _no_raw_pii(out)


def test_a_scaffold_for_the_stack_reads_its_environment(tmp_path, monkeypatch, run_cli):
    """--source ${DATA_LAKE}/... and --h2o-url ${PIPEWARDEN_H2O_URL}: the config names the
    variables, expanded when the pipeline runs; an unset one is an error naming its key."""
    code, _ = run_cli("scaffold", "mage", "orders", "--dir", str(tmp_path), "--blocks",
                      "--source", "${DATA_LAKE}/orders/*.jsonl",
                      "--h2o-url", "${PIPEWARDEN_H2O_URL}")  # fmt: skip
    assert code == 0
    config = tmp_path / "pipewarden" / "orders.yaml"
    raw = yaml.safe_load(config.read_text())
    assert raw["source"]["path"] == "${DATA_LAKE}/orders/*.jsonl"
    assert raw["steps"][1] == {"type": "anomaly", "engine": "h2o",
                               "h2o": {"url": "${PIPEWARDEN_H2O_URL}"}}  # fmt: skip
    monkeypatch.setenv("DATA_LAKE", str(tmp_path / "lake"))
    monkeypatch.delenv("PIPEWARDEN_H2O_URL", raising=False)
    from pipewarden.run import ConfigError

    with pytest.raises(ConfigError, match="PIPEWARDEN_H2O_URL is not set") as err:
        load_config(config)
    assert err.value.key == "steps[1].h2o.url"
    monkeypatch.setenv("PIPEWARDEN_H2O_URL", "http://127.0.0.1:54321")
    cfg = load_config(config)
    assert cfg["source"]["path"] == f"{tmp_path / 'lake'}/orders/*.jsonl"
    assert cfg["steps"][1]["h2o"]["url"] == "http://127.0.0.1:54321"
    code, doc = run_cli("scaffold", "mage", "x", "--dir", str(tmp_path / "y"),
                        "--h2o-url", "h2o:54321")  # fmt: skip
    assert code == 2 and "not an http(s) URL" in doc["error"]


def test_a_bad_source_file_stops_the_load_with_exit_2_and_the_line(tmp_path):
    config = _project(tmp_path)
    (tmp_path / "data" / "day3.jsonl").write_text('{"id": 1}\n{"id": 2,\n')
    with pytest.raises(blocks.PipelineStopped) as stopped:
        blocks.load(config)
    out = stopped.value.output
    assert out["exit_code"] == 2 and out["results"][0]["exit_code"] == 2
    assert "day3.jsonl: invalid" in out["summary"] and "line 2" in out["summary"]
    assert out["results"][0]["totals"]["rows_loaded"] == 27  # days 1 and 2 committed before
