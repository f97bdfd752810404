"""`pipewarden anomaly score|train`, `pipewarden breaker status|reset` and the script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipewarden.anomaly.synth import records
from pipewarden.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, recs) -> str:
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    return str(path)


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def files(tmp_path):
    recs, _ = records(1200, anomaly_share=0.0, seed=6)
    history = _write(tmp_path / "history.jsonl", recs[:1000])
    batch = [dict(r) for r in recs[1000:1100]]
    batch[3]["x2"] = batch[3]["x2"] + 1e6
    return tmp_path, history, _write(tmp_path / "batch.jsonl", batch)


def test_score_fits_on_the_batch_and_names_columns(files, capsys):
    _, _, batch = files
    assert main(["anomaly", "score", "--data", batch, "--format", "json"]) == 0
    doc = _json(capsys)
    top = doc["scored"]["flagged"][0]
    assert top["row"] == 3 and top["columns"][0] == "x2" and top["score"] >= 0.7
    # the batch covers a few hours: its timestamps cannot teach an hour of day or a weekday
    assert doc["scored"]["excluded"] == {"id": "id", "ts": "short_time_span"}


def test_train_then_score_with_the_model(files, capsys):
    tmp, history, batch = files
    model = str(tmp / "model")
    assert main(["anomaly", "train", "--data", history, "--out", model, "--format", "json"]) == 0
    trained = _json(capsys)
    assert trained["rows"] == 1000 and "x0" in trained["features"]
    assert main(["anomaly", "score", "--data", batch, "--model", model, "--format", "json"]) == 0
    doc = _json(capsys)
    assert doc["scored"]["fitted_on"] == "model"
    assert doc["scored"]["flagged"][0]["row"] == 3


def test_breaker_opens_exits_1_and_can_be_reset(files, capsys, tmp_path):
    _, history, _ = files
    store = f"duckdb:///{tmp_path}/state.duckdb"
    recs, _ = records(1000, anomaly_share=0.0, seed=6)
    model = str(tmp_path / "m")
    assert main(["anomaly", "train", "--data", history, "--out", model, "--format", "json"]) == 0
    capsys.readouterr()
    bad = _write(tmp_path / "bad.jsonl", [dict(r, x1=r["x1"] * 50 + 1e5) for r in recs[:100]])
    args = ["anomaly", "score", "--data", bad, "--model", model, "--circuit-breaker",
            "--store", store, "--dataset", "sales", "--format", "json"]  # fmt: skip
    assert main(args) == 1
    doc = _json(capsys)
    assert doc["decision"] == "quarantine_batch" and doc["breaker"]["state"] == "open"
    assert "severe breach" in doc["reason"]
    # status says open, with the reason, and exits 1
    assert (
        main(["breaker", "status", "--store", store, "--dataset", "sales", "--format", "json"]) == 1
    )
    status = _json(capsys)
    assert status["state"] == "open" and "flagged" in status["reason"]
    assert (
        main(["breaker", "reset", "--store", store, "--dataset", "sales", "--format", "json"]) == 0
    )
    assert _json(capsys)["state"] == "closed"
    assert main(["breaker", "status", "--store", store, "--dataset", "sales"]) == 0
    # a typo in the dataset: status says no batch went through it and names the known ones;
    # reset refuses (exit 2) instead of writing a breaker for a dataset that does not exist
    capsys.readouterr()
    assert main(["breaker", "status", "--store", store, "--dataset", "sale"]) == 0
    assert "no batch of sale has gone through" in capsys.readouterr().out
    assert main(["breaker", "reset", "--store", store, "--dataset", "sale"]) == 2
    err = capsys.readouterr().err
    assert "no circuit breaker in this store" in err and "here: sales" in err


def test_breaker_commands_never_create_a_store(tmp_path, capsys):
    """A mistyped store path is an error (exit 2), not a new empty DuckDB file there."""
    store = tmp_path / "nowhere" / "state.duckdb"
    for cmd in ("status", "reset"):
        assert main(["breaker", cmd, "--store", f"duckdb:///{store}", "--dataset", "d"]) == 2
        assert "no such store" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


def test_script_behaves_like_the_command(files, tmp_path):
    _, _, batch = files
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "anomaly_detector.py"),
            "score",
            "--data",
            batch,
            "--threshold",
            "0.7",
            "--circuit-breaker",
            "--store",
            f"duckdb:///{tmp_path}/s.duckdb",
            "--format",
            "json",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["breaker"]["state"] == "closed" and doc["scored"]["flagged"][0]["row"] == 3
    assert doc["monitors"][0]["status"] == "learning"


def test_missing_file_is_a_clear_error(capsys, tmp_path):
    assert main(["anomaly", "score", "--data", str(tmp_path / "nope.json")]) == 2
    assert "nope.json" in capsys.readouterr().err


def test_config_error_names_the_key(tmp_path, capsys):
    cfg = tmp_path / "pipeline.yml"
    cfg.write_text(
        "version: 1\ndataset: sales\nsource: {path: x.json}\n"
        "steps:\n  - type: anomaly\n    breaker: {window: -1}\n"
    )
    assert main(["breaker", "status", "--config", str(cfg)]) == 2
    assert "steps[].breaker.window" in capsys.readouterr().err


def test_breaker_needs_a_dataset(capsys):
    assert main(["breaker", "status", "--store", "duckdb:///tmp/x.duckdb"]) == 2
    assert "--dataset" in capsys.readouterr().err


def test_unreachable_h2o_url_is_exit_2_naming_the_key(files, capsys):
    _, _, batch = files
    code = main(["anomaly", "score", "--data", batch, "--engine", "h2o",
                 "--h2o-url", "http://127.0.0.1:9", "--format", "json"])  # fmt: skip
    assert code == 2
    doc = _json(capsys)
    assert doc["key"] == "h2o.url" and "unreachable" in doc["error"]


def test_one_row_batch_gets_a_clear_answer(tmp_path, capsys):
    one = _write(tmp_path / "one.jsonl", [{"a": 1.5, "b": "x"}])
    assert main(["anomaly", "score", "--data", one, "--format", "json"]) == 0
    assert _json(capsys)["scored"]["status"] == "too_few_rows"
    assert main(["anomaly", "score", "--data", one]) == 0
    assert "anomaly train" in capsys.readouterr().out


@pytest.mark.parametrize("ext", ["parquet", "csv", "jsonl"])
def test_scores_out_writes_every_rows_score_flag_and_reason(tmp_path, ext):
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from pipewarden.anomaly.synth import records as synth
    from pipewarden.cli import main

    recs, _ = synth(400, anomaly_share=0.0, seed=3)
    recs[5]["x2"] = recs[5]["x2"] + 1e6
    data = tmp_path / "batch.json"
    data.write_text(json.dumps(recs))
    out = tmp_path / f"scores.{ext}"
    assert main(["anomaly", "score", "--data", str(data), "--scores-out", str(out)]) == 0
    if ext == "parquet":
        rows = pq.read_table(out).to_pylist()
    elif ext == "csv":
        rows = pcsv.read_csv(out).to_pylist()
    else:
        rows = pa.Table.from_pylist([json.loads(x) for x in out.read_text().splitlines()])
        rows = rows.to_pylist()
    assert [r["row"] for r in rows] == list(range(400))
    assert all(0 <= r["score"] <= 1 for r in rows)
    assert rows[5]["flagged"] and "x2: unusually high" in rows[5]["reason"]
    assert sum(r["flagged"] for r in rows) >= 1 and rows[0]["reason"] in (None, "")


def test_scores_out_with_an_unknown_extension_is_exit_2(tmp_path, capsys):
    from pipewarden.cli import main

    data = tmp_path / "batch.json"
    data.write_text(json.dumps([{"x": i} for i in range(20)]))
    code = main(["anomaly", "score", "--data", str(data), "--scores-out", str(tmp_path / "s.xls")])
    assert code == 2 and "--scores-out" in capsys.readouterr().err


def test_preset_chooses_the_engine_and_is_saved_with_the_model(tmp_path):
    from pipewarden.anomaly.synth import records as synth
    from pipewarden.cli import main

    recs, _ = synth(300, anomaly_share=0.0, seed=4)
    data = tmp_path / "history.json"
    data.write_text(json.dumps(recs))
    for preset, scale, residual in (("ensemble", "robust", 0.5), (None, "data", 0.0)):
        out = tmp_path / f"model-{preset}"
        args = ["anomaly", "train", "--data", str(data), "--out", str(out)]
        assert main(args + (["--preset", preset] if preset else [])) == 0
        params = json.loads((out / "model.json").read_text())["engine"]["params"]
        assert params["forest_scale"] == scale and params["weights"]["residual"] == residual
    assert main(["anomaly", "score", "--data", str(data), "--preset", "fast"]) == 2
