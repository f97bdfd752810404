"""The impute step inside `pipewarden run`, on DuckDB and on a real PostgreSQL: fills reach the
typed table only, the raw landing keeps the nulls, every fill is recorded in <dataset>__imputed,
no row is dropped or duplicated, and the model lives (versioned, refreshed) in the store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import psycopg
import pytest

from pipewarden.run import run_pipeline
from pipewarden.store import open_store


def _rows(n: int, seed: int, null_every: int = 0, bad_every: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x = float(rng.normal())
        r = {
            "id": seed * 100_000 + i,
            "x": round(x, 4),
            "y": round(3 * x + float(rng.normal(0, 0.2)), 4),
            "segment": "high" if x > 0 else "low",
            "qty": int(round(20 + 4 * x)),
        }
        if null_every and i % null_every == 0:
            r["y"] = None
            r["segment"] = None
            if i % (2 * null_every) == 0:
                r.pop("qty")  # a missing key is a missing cell too
        if bad_every and i % bad_every == 1:
            r["qty"] = "not a number"  # the sentinel quarantines it: never filled nor loaded
        out.append(r)
    return out


def _project(
    tmp_path: Path, store: str, step: str, contract: str = "{data_type: quarantine}"
) -> Path:
    (tmp_path / "in").mkdir(exist_ok=True)
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(
        "version: 1\ndataset: sales\n"
        'source:\n  path: "in/*.jsonl"\n'
        f"store:\n{store}"
        f"contract: {contract}\n"
        "steps:\n" + step
    )
    return cfg


def _jsonl(path: Path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


STEP = "  - type: impute\n    min_rows: 100\n    refresh: {every_batches: 2}\n"


def _check(cfg: Path, tmp_path: Path, store_url: str, ns: str | None, query) -> None:
    _jsonl(tmp_path / "in" / "day1.jsonl", _rows(300, seed=1))  # clean history
    rep = run_pipeline(cfg, fmt="json")
    assert rep["exit_code"] == 0, rep
    b1 = rep["batches"][0]
    assert b1["steps"]["impute"]["cells_filled"] == 0
    _jsonl(tmp_path / "in" / "day2.jsonl", _rows(200, seed=2, null_every=5, bad_every=50))
    rep = run_pipeline(cfg, fmt="json")
    b2 = rep["batches"][1]
    assert b2["status"] == "loaded", b2
    imp = b2["steps"]["impute"]
    # conservation: every row read is loaded or quarantined, none twice
    assert b2["rows_read"] == 200 == b2["rows_loaded"] + b2["rows_quarantined"]
    assert b2["rows_quarantined"] == 4  # the four bad qty rows, not filled
    assert imp["columns"]["y"]["filled"] == 40 and imp["columns"]["segment"]["filled"] == 40
    assert imp["columns"]["qty"]["filled"] == 20
    assert b2["rows_imputed"] == 40
    assert "filled 100 of" in imp["summary"] and imp["model"]["version"] == 1
    typed = query("SELECT count(*), count(y), count(segment), count(qty) FROM {t}", "sales")
    assert typed == [(496, 496, 496, 496)]
    raw = [
        p if isinstance(p, dict) else json.loads(p)
        for (p,) in query("SELECT payload FROM {t}", "sales__raw")
    ]
    assert len(raw) == 496
    assert sum(1 for p in raw if p.get("y", 0) is None) == 40  # the nulls as they arrived
    flags = query(
        'SELECT "offset", imputed_columns, model_version FROM {t} ORDER BY 1', "sales__imputed"
    )
    assert len(flags) == 40 and flags[0][0] == 0 and flags[1][0] == 5
    cols = flags[0][1] if isinstance(flags[0][1], list) else json.loads(flags[0][1])
    assert cols == ["qty", "segment", "y"] and flags[0][2] == 1
    # the filled values are good ones: the model knows y = 3x
    pairs = query("SELECT t.x, t.y FROM {t} AS t WHERE t.id IN (200000, 200005, 200010)", "sales")
    assert all(abs(y - 3 * x) < 0.5 for x, y in pairs)
    store = open_store(store_url, namespace=ns)
    try:
        state = store.load_state("sales", "impute_model")
        assert state["version"] == 1 and state["batches_since"] == 2
        assert state["model"]["format"] == "pipewarden.imputer"
    finally:
        store.close()
    # refresh.every_batches: 2 -> the third batch trains version 2 on the history
    _jsonl(tmp_path / "in" / "day3.jsonl", _rows(50, seed=3, null_every=10))
    rep = run_pipeline(cfg, fmt="json")
    imp3 = rep["batches"][2]["steps"]["impute"]
    assert imp3["model"]["version"] == 2 and "refresh after 2 batches" in imp3["model"]["note"]
    assert imp3["cells_filled"] == 13


def test_impute_step_on_duckdb(tmp_path):
    cfg = _project(tmp_path, "  kind: duckdb\n  path: wh.duckdb\n", STEP)
    url = f"duckdb:///{tmp_path}/wh.duckdb"

    def query(sql, table):
        store = open_store(url)
        try:
            return store._aux_query(sql.format(t=store.qualify(table)))
        finally:
            store.close()

    _check(cfg, tmp_path, url, None, query)


@pytest.mark.postgres
def test_impute_step_on_postgres(tmp_path, pg_schema):
    dsn, ns = pg_schema
    cfg = _project(tmp_path, f"  kind: postgres\n  dsn: {dsn}\n  schema: {ns}\n", STEP)

    def query(sql, table):
        with psycopg.connect(dsn) as conn:
            return conn.execute(sql.format(t=f'"{ns}"."{table}"')).fetchall()

    _check(cfg, tmp_path, dsn, ns, query)


def test_warm_up_fills_nothing_and_says_so(tmp_path):
    cfg = _project(tmp_path, "  kind: duckdb\n  path: wh.duckdb\n", "  - type: impute\n")
    _jsonl(tmp_path / "in" / "day1.jsonl", _rows(50, seed=1, null_every=5))
    rep = run_pipeline(cfg, fmt="json")
    b = rep["batches"][0]
    assert b["rows_loaded"] == 50 and "rows_imputed" not in b
    assert b["steps"]["impute"]["summary"].startswith("warming up: the history has 50 row(s)")


def test_a_saved_model_that_no_longer_matches_fills_nothing_and_says_why(tmp_path):
    from pipewarden.impute.model import ImputerModel

    ImputerModel.fit(_rows(300, seed=1)).save(tmp_path / "model")
    cfg = _project(
        tmp_path, "  kind: duckdb\n  path: wh.duckdb\n", "  - type: impute\n    model: model\n"
    )
    rows = _rows(40, seed=2, null_every=4)
    for r in rows:
        r["x"] = f"x{r['x']}"
    _jsonl(tmp_path / "in" / "day1.jsonl", rows)
    rep = run_pipeline(cfg, fmt="json")
    b = rep["batches"][0]
    assert b["status"] == "loaded" and b["rows_loaded"] == 40
    assert "nothing filled: column 'x' was numeric" in b["steps"]["impute"]["summary"]
