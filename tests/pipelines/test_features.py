"""Feature discovery finds a planted interaction and lifts a held-out score; the emitted dbt
model computes the discovery's values in DuckDB and in a real PostgreSQL, and the emitted Mage
block computes them in a real `mage run`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import duckdb
import numpy as np
import psycopg
import pytest
import yaml

from pipewarden.cli import main
from pipewarden.features.discover import discover
from pipewarden.features.emit import emit_features
from pipewarden.features.spec import Feature, compute
from pipewarden.pipelines.mage import validate_pipeline

SRC = Path(__file__).resolve().parents[2] / "src"


def _rows(n: int = 400, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a, b, c = (float(x) for x in rng.uniform(0.5, 3, 3))
        out.append({
            "a": round(a, 4), "b": round(b, 4), "c": round(c, 4),
            "shop": ["north", "south", "o'hara"][i % 3],
            "day": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
            "y": round(a * b * 4 + c + float(rng.normal(0, 0.3)), 4),
        })  # fmt: skip
    return out


@pytest.fixture(scope="module")
def spec() -> dict:
    return discover(_rows(), "y", max_features=3)


def test_discovery_finds_the_interaction_and_lifts_the_held_out_score(spec):
    names = [f["name"] for f in spec["features"]]
    assert names and names[0] in ("a_x_b", "b_x_a"), spec["candidates"][:3]
    assert spec["interactions"][0]["pair"] in (["a", "b"], ["b", "a"])
    assert spec["lift"]["test"]["lift"] > 0  # a GBM alone already fits most of it
    kinds = {c["kind"] for c in spec["candidates"]}
    assert {"product", "ratio", "date_part", "frequency"} <= kinds


def _sample_features() -> list[Feature]:
    return [
        Feature("a_x_b", "product", ["a", "b"]),
        Feature("a_per_c", "ratio", ["a", "c"]),
        Feature("day_month", "date_part", ["day"], part="month"),
        Feature("day_isodow", "date_part", ["day"], part="isodow"),
        Feature("day_dayofyear", "date_part", ["day"], part="dayofyear"),
        Feature("shop_frequency", "frequency", ["shop"], shares={"north": 0.5, "o'hara": 0.25}),
    ]


def _sample_spec(features) -> dict:
    return {"format": "pipewarden.features", "format_version": 1, "target": "y",
            "dataset": "sales", "features": [f.to_dict() for f in features]}  # fmt: skip


def _sample_rows() -> list[dict]:
    rows = _rows(30)
    rows[0]["c"] = 0.0  # a ratio over 0 is null
    rows[1]["a"] = None
    rows[2]["day"] = None
    rows[3]["shop"] = None
    rows[4]["shop"] = "west"  # unseen: share 0
    return rows


def _sql(tmp_path: Path, features) -> str:
    emit_features(_sample_spec(features), tmp_path, name="sales_features", source="sales")
    text = (tmp_path / "models" / "pipewarden" / "sales_features.sql").read_text()
    body = text.split("}}", 1)[1]  # after the config block
    return body.replace("{{ source('pipewarden', 'sales') }}", "sales")


def _expected(features, rows):
    return [[d[f.name] for f in features] for d in compute(features, rows)]


def _close(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        for x, y in zip(g, w, strict=True):
            assert (x is None and y is None) or x == pytest.approx(y, rel=1e-9), (g, w)


def test_the_dbt_model_computes_the_same_values_in_duckdb(tmp_path):
    features = _sample_features()
    rows = _sample_rows()
    sql = _sql(tmp_path, features)
    con = duckdb.connect()
    con.execute("CREATE TABLE sales (a DOUBLE, b DOUBLE, c DOUBLE, shop TEXT, day DATE, y DOUBLE)")
    con.executemany("INSERT INTO sales VALUES (?, ?, ?, ?, ?, ?)",
                    [[r[k] for k in ("a", "b", "c", "shop", "day", "y")] for r in rows])  # fmt: skip
    names = ", ".join(f'"{f.name}"' for f in features)
    got = con.execute(f"SELECT {names} FROM ({sql}) AS m").fetchall()
    _close([list(g) for g in got], _expected(features, rows))


@pytest.mark.postgres
def test_the_dbt_model_computes_the_same_values_in_postgres(tmp_path, pg_schema):
    dsn, ns = pg_schema
    features = _sample_features()
    rows = _sample_rows()
    sql = _sql(tmp_path, features).replace(" sales ", f' "{ns}".sales ')
    with psycopg.connect(dsn) as conn:
        conn.execute(f'CREATE TABLE "{ns}".sales (a float8, b float8, c float8, shop text, '
                     "day date, y float8)")  # fmt: skip
        with conn.cursor() as cur:
            cur.executemany(f'INSERT INTO "{ns}".sales VALUES (%s, %s, %s, %s, %s, %s)',
                            [[r[k] for k in ("a", "b", "c", "shop", "day", "y")] for r in rows])  # fmt: skip
        names = ", ".join(f'"{f.name}"' for f in features)
        got = conn.execute(f"SELECT {names} FROM ({sql}) AS m").fetchall()
    _close([list(g) for g in got], _expected(features, rows))


def test_emit_refuses_bad_specs_and_overwrites(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**_sample_spec([]), "features": []}))
    capsys.readouterr()
    assert main(["features", "emit", "--spec", str(bad), "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert "chose no feature" in doc["error"]
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(_sample_spec(_sample_features())))
    assert main(["features", "emit", "--spec", str(spec), "--dir", str(tmp_path / "p"),
                 "--format", "json"]) == 0  # fmt: skip
    assert main(["features", "emit", "--spec", str(spec), "--dir", str(tmp_path / "p"),
                 "--format", "json"]) == 2  # fmt: skip
    evil = _sample_spec([Feature("x", "product", ["a", "b"])])
    evil["features"][0]["name"] = 'x" from t; drop table t; --'
    spec.write_text(json.dumps(evil))
    assert main(["features", "emit", "--spec", str(spec), "--dir", str(tmp_path / "q"),
                 "--format", "json"]) == 2  # fmt: skip
    assert not (tmp_path / "q").exists()


_LOADER = """import json, os
import pandas as pd
if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader


@data_loader
def load(*args, **kwargs):
    rows = [json.loads(l) for l in open(os.environ['PW_SAMPLE'])]
    return pd.DataFrame(rows)
"""
_EXPORTER = """import os
if 'data_exporter' not in globals():
    from mage_ai.data_preparation.decorators import data_exporter


@data_exporter
def export(df, *args, **kwargs):
    df.to_json(os.environ['PW_OUT'], orient='records')
"""


def mage_project(tmp_path: Path, mage_venv: Path, **extra_env: str) -> tuple[Path, dict, str]:
    """A fresh `mage init` project under tmp_path, the environment to run it (src/ first on
    PYTHONPATH) and the mage executable."""
    where = tmp_path / "w"
    where.mkdir()
    env = {**os.environ, "MAGE_DATA_DIR": str(tmp_path / "mage_data"), "PYTHONPATH": str(SRC),
           **extra_env}  # fmt: skip
    env.pop("VIRTUAL_ENV", None)
    mage = str(mage_venv / "bin" / "mage")
    res = subprocess.run([mage, "init", "proj"], cwd=where, capture_output=True, text=True,
                         env=env, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    return where / "proj", env, mage


@pytest.mark.mage
def test_the_mage_block_computes_the_same_values_in_a_real_mage_run(tmp_path, mage_venv):
    features = _sample_features()
    rows = _sample_rows()
    project, env, mage = mage_project(tmp_path, mage_venv, PW_SAMPLE=str(tmp_path / "sample.jsonl"),
                                      PW_OUT=str(tmp_path / "out.json"))  # fmt: skip
    where = project.parent
    emit_features(_sample_spec(features), project, name="sales_features", source="sales")
    (project / "data_loaders" / "sales_sample.py").write_text(_LOADER)
    (project / "data_exporters" / "sales_out.py").write_text(_EXPORTER)
    blocks = [("sales_sample", "data_loader", [], ["sales_features"]),
              ("sales_features", "transformer", ["sales_sample"], ["sales_out"]),
              ("sales_out", "data_exporter", ["sales_features"], [])]  # fmt: skip
    (project / "pipelines" / "features").mkdir(parents=True)
    (project / "pipelines" / "features" / "metadata.yaml").write_text(yaml.safe_dump({
        "name": "features", "uuid": "features", "type": "python",
        "blocks": [{"uuid": u, "name": u, "type": t, "language": "python",
                    "upstream_blocks": up, "downstream_blocks": down} for u, t, up, down in blocks],
    }))  # fmt: skip
    assert validate_pipeline(project)["findings"] == []
    (tmp_path / "sample.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = subprocess.run([mage, "run", str(project), "features"], cwd=where,
                         capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "Pipeline run completed" in out, out[-3000:]
    got = json.loads((tmp_path / "out.json").read_text())
    _close([[g[f.name] for f in features] for g in got], _expected(features, rows))
    shutil.rmtree(where, ignore_errors=True)
