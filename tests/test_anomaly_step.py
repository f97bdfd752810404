"""The anomaly step of `pipewarden run` and its config."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from pipewarden.anomaly.model import Model
from pipewarden.anomaly.synth import records
from pipewarden.batch import Batch
from pipewarden.errors import InputError
from pipewarden.steps import StepContext, build
from pipewarden.store.base import MemoryStateStore
from pipewarden.verdict import merge


def _ctx(store, base=Path(".")):
    return StepContext(dataset="sales", batch_id="b1", store=store, base_dir=base)


def test_step_flags_rows_with_score_and_columns_and_reports_monitors():
    recs, _ = records(500, anomaly_share=0.0, seed=2)
    recs[7] = dict(recs[7], x5=recs[7]["x5"] + 1e6)
    options = {"type": "anomaly", "quarantine_before_model": True, "quarantine_threshold": 0.7}
    step = build(options, Path("."))
    verdict = step.check(Batch(recs, "sales.json", batch_id="b1"), _ctx(MemoryStateStore()))
    assert verdict.step == "anomaly" and verdict.decision == "pass"
    issue = next(i for i in verdict.issues if i.row == 7)
    assert issue.reason == "anomaly" and issue.score >= 0.7 and issue.column.startswith("x5")
    assert "x5: unusually high" in issue.message
    assert verdict.report["monitors"][0]["monitor"] == "row_count"
    assert verdict.report["breaker"]["state"] == "closed"
    out = merge(len(recs), [verdict])
    assert out.rows_loaded + out.rows_quarantined == len(recs)


def test_step_uses_a_model_relative_to_the_config(tmp_path):
    recs, _ = records(400, anomaly_share=0.0, seed=2)
    Model.fit(recs).save(tmp_path / "models" / "sales")
    step = build({"type": "anomaly", "model": "models/sales"}, tmp_path)
    verdict = step.check(Batch(recs[:1], "one.json"), _ctx(MemoryStateStore(), tmp_path))
    assert verdict.report["scored"]["status"] == "scored"
    assert verdict.report["scored"]["fitted_on"] == "model"


def test_report_flagged_rows_can_be_quarantined_only_on_request():
    recs, _ = records(300, anomaly_share=0.05, seed=2)
    step = build({"type": "anomaly", "quarantine_rows": False}, Path("."))
    verdict = step.check(Batch(recs, "x.json"), _ctx(MemoryStateStore()))
    assert verdict.issues == [] and verdict.report["scored"]["flagged_rows"] > 0


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"threshold": 1.5}, "steps[].threshold"),
        ({"breaker": {"window": 0}}, "steps[].breaker.window"),
        ({"monitors": {"min_histroy": 3}}, "steps[].monitors.min_histroy"),
        ({"engine": "spark"}, "steps[].engine"),
        ({"h2o": {"algorithm": "kmeans"}}, "steps[].h2o.algorithm"),
        ({"treshold": 0.5}, "steps[].treshold"),
    ],
)
def test_config_errors_name_the_key(options, key):
    with pytest.raises(InputError) as err:
        build({"type": "anomaly", **options}, Path("."))
    assert err.value.key == key


def test_pipeline_schema_accepts_a_full_anomaly_step():
    schema = json.loads(
        resources.files("pipewarden").joinpath("pipeline_config_schema.json").read_text()
    )
    config = {
        "version": 1,
        "dataset": "sales",
        "source": {"path": "in/*.json"},
        "steps": [
            {
                "type": "anomaly",
                "engine": "h2o",
                "threshold": 0.8,
                "h2o": {"url": "http://h2o:54321", "algorithm": "isolation_forest"},
                "monitors": {"min_history": 7, "max_age_seconds": 86400},
                "breaker": {"window": 20, "min_batches": 10, "cool_down_seconds": 900},
            }
        ],
    }
    jsonschema.validate(config, schema)
    config["steps"][0]["breaker"]["nope"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, schema)


def test_a_batch_in_several_chunks_is_one_call_for_the_breaker_and_monitors():
    recs, _ = records(600, anomaly_share=0.0, seed=2)
    store = MemoryStateStore()
    step = build({"type": "anomaly"}, Path("."))
    for offset in (0, 250, 500):  # one file read in chunks of 250 rows
        chunk = Batch(recs[offset : offset + 250], "big.json", offset=offset, batch_id="big")
        verdict = step.check(chunk, _ctx(store))
        assert verdict.decision == "pass"
    assert len(store.metrics_history("sales", "anomaly.batch")) == 1
    assert store.load_state("sales", "anomaly.breaker")["batches"] == 1


def test_a_batch_in_warm_up_is_fitted_once_and_its_later_chunks_scored_with_that_fit(
    monkeypatch,
):
    from pipewarden.anomaly import detector
    from pipewarden.anomaly import step as step_module

    fits = []
    real = detector.fit_model

    def counting(records, cfg):
        fits.append(len(records))
        return real(records, cfg)

    monkeypatch.setattr(detector, "fit_model", counting)
    monkeypatch.setattr(step_module, "fit_model", counting)
    recs, _ = records(600, anomaly_share=0.0, seed=2)
    recs[520] = dict(recs[520], x5=recs[520]["x5"] + 1e6)  # far out, in the last chunk
    store = MemoryStateStore()
    step = build({"type": "anomaly"}, Path("."))
    reports = []
    for batch_id in ("big", "next"):
        for offset in (0, 250, 500):
            chunk = Batch(recs[offset : offset + 250], "big.json", offset=offset, batch_id=batch_id)
            verdict = step.check(chunk, _ctx(store))
            assert verdict.issues == []  # warm-up: ranked, never quarantined for a score
            reports.append(verdict.report)
    assert fits == [250, 250]  # one fit per batch, on its first chunk
    assert all(r["model"]["status"] == "warm-up" for r in reports)
    assert all(r["scored"]["fitted_on"] == "batch" for r in reports)
    # the last chunk's far row is ranked against the first chunk's fit, and flagged
    assert reports[2]["scored"]["flagged"][0]["row"] == 521
    # a first chunk too small to fit on: each chunk says so, as before
    step = build({"type": "anomaly"}, Path("."))
    small = step.check(Batch(recs[:5], "s.json", batch_id="small"), _ctx(store))
    assert small.report["scored"]["status"] == "too_few_rows"
    step.close()
