"""The features step inside `pipewarden run`, on DuckDB and on a real PostgreSQL: the spec's
features become typed columns through the sentinel (a frozen contract refuses them like any new
column), hold the values of the discovery's reference and of the emitted dbt model run over the
loaded table, stay out of the raw landing and the quarantine, are computed again on replay and
from imputed cells, and no row is dropped or duplicated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import psycopg
import pytest
from test_impute_run import _jsonl, _project

from pipewarden.features.emit import emit_features
from pipewarden.features.spec import Feature, compute
from pipewarden.run import replay_quarantine, run_pipeline
from pipewarden.store import open_store

FEATURES = [
    Feature("a_x_b", "product", ["a", "b"]),
    Feature("a_per_c", "ratio", ["a", "c"]),
    Feature("day_month", "date_part", ["day"], part="month"),
    Feature("day_isodow", "date_part", ["day"], part="isodow"),
    Feature("shop_frequency", "frequency", ["shop"], shares={"north": 0.5, "o'hara": 0.25}),
]
NAMES = [f.name for f in FEATURES]


def _rows(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a, b, c = (round(float(x), 4) for x in rng.uniform(0.5, 3, 3))
        out.append({"id": seed * 1000 + i, "a": a, "b": b, "c": c,
                    "shop": ["north", "south", "o'hara"][i % 3],
                    "day": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}", "qty": i % 7})  # fmt: skip
    out[0]["c"] = 0.0  # a ratio over 0 is null
    out[1]["a"] = None
    out[2].pop("day")  # a missing key is a null input
    out[3]["shop"] = "west"  # not seen by the discovery: share 0
    return out


def _spec(tmp_path: Path, features=FEATURES) -> Path:
    path = tmp_path / "sales-features.json"
    path.write_text(json.dumps({"format": "pipewarden.features", "format_version": 1,
                                "target": "y", "dataset": "sales",
                                "features": [f.to_dict() for f in features]}))  # fmt: skip
    return path


def _close(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        for x, y in zip(g, w, strict=True):
            assert (x is None and y is None) or x == pytest.approx(y, rel=1e-12), (g, w)


STEP = "  - type: features\n    spec: sales-features.json\n"
DUCK = "  kind: duckdb\n  path: wh.duckdb\n"


def _check(tmp_path: Path, cfg: Path, query, table: str) -> None:
    _spec(tmp_path)
    rows = _rows(60, seed=1)
    rows[35]["qty"] = "not a number"  # quarantined by the sentinel: its payload as it arrived
    _jsonl(tmp_path / "in" / "day1.jsonl", rows[:30])
    _jsonl(tmp_path / "in" / "day2.jsonl", rows[30:])
    rep = run_pipeline(cfg, fmt="json")
    assert rep["exit_code"] == 0, rep
    b1, b = rep["batches"]
    added = {c["column"]: c["to"] for c in b1["delta"]["changes"] if c["op"] == "add"}
    assert {n: added.get(n) for n in NAMES} == dict.fromkeys(NAMES, "double"), added
    assert b["rows_read"] == 30 == b["rows_loaded"] + b["rows_quarantined"]
    assert b["rows_quarantined"] == 1
    feat = b1["steps"]["features"]
    assert feat["columns"]["a_x_b"] == {"kind": "product", "inputs": ["a", "b"], "values": 29,
                                        "nulls": 1}  # fmt: skip
    assert "5 feature(s) on 30 row(s)" in feat["summary"]
    assert "5 feature(s) on 29 row(s)" in b["steps"]["features"]["summary"]
    # typed double precision columns holding the reference values (nulls included)
    types = dict(query("SELECT column_name, data_type FROM information_schema.columns "
                       f"WHERE table_name = 'sales' AND table_schema = '{table}'"))  # fmt: skip
    assert {types[n].lower() for n in NAMES} <= {"double", "double precision"}, types
    cols = ", ".join(f'"{n}"' for n in NAMES)
    got = query(f"SELECT {cols} FROM {{t}} ORDER BY id", "sales")
    loaded = [r for i, r in enumerate(rows) if i != 35]
    want = [[d[n] for n in NAMES] for d in compute(FEATURES, loaded)]
    _close([list(g) for g in got], want)
    # the emitted dbt model, run over the loaded table, computes the same values
    emit_features(_spec(tmp_path), tmp_path / "dbt", name="sales_features", source="sales")
    sql = (tmp_path / "dbt" / "models" / "pipewarden" / "sales_features.sql").read_text()
    received = "(SELECT id, a, b, c, shop, day, qty FROM {t})"  # the table without the step
    body = sql.split("}}", 1)[1].replace("{{ source('pipewarden', 'sales') }}", received)
    _close([list(g) for g in query(f"SELECT {cols} FROM ({body}) AS m ORDER BY id", "sales")],
           want)  # fmt: skip
    # the raw landing and the quarantine hold the records as they arrived
    raw = [p if isinstance(p, dict) else json.loads(p)
           for (p,) in query("SELECT payload FROM {t}", "sales__raw")]  # fmt: skip
    assert len(raw) == 59 and not any(set(NAMES) & set(p) for p in raw)
    held = query("SELECT payload FROM {t}", "sales__quarantine")
    payload = held[0][0] if isinstance(held[0][0], dict) else json.loads(held[0][0])
    assert payload == rows[35]
    # replayed once qty's bad value may be discarded: the features computed again
    text = cfg.read_text().replace(
        "contract: {data_type: quarantine}",
        "contract: {data_type: quarantine, overrides: {qty: {data_type: discard_value}}}",
    )
    cfg.write_text(text)
    rep = replay_quarantine(cfg)
    assert rep["rows_replayed"] == 1, rep
    got = query(f"SELECT {cols} FROM {{t}} WHERE id = 1035", "sales")
    _close([list(g) for g in got], [[d[n] for n in NAMES] for d in compute(FEATURES, [rows[35]])])
    raw = query("SELECT payload FROM {t}", "sales__raw")
    assert len(raw) == 60 and not any(
        set(NAMES) & set(p if isinstance(p, dict) else json.loads(p)) for (p,) in raw
    )


def test_features_step_on_duckdb(tmp_path):
    cfg = _project(tmp_path, DUCK, STEP)
    url = f"duckdb:///{tmp_path}/wh.duckdb"

    def query(sql, table=None):
        store = open_store(url)
        try:
            return store._aux_query(sql.format(t=store.qualify(table)) if table else sql)
        finally:
            store.close()

    _check(tmp_path, cfg, query, "main")


@pytest.mark.postgres
def test_features_step_on_postgres(tmp_path, pg_schema):
    dsn, ns = pg_schema
    cfg = _project(tmp_path, f"  kind: postgres\n  dsn: {dsn}\n  schema: {ns}\n", STEP)

    def query(sql, table=None):
        with psycopg.connect(dsn) as conn:
            return conn.execute(sql.format(t=f'"{ns}"."{table}"') if table else sql).fetchall()

    _check(tmp_path, cfg, query, ns)


def test_a_frozen_contract_refuses_the_feature_columns_like_any_new_column(tmp_path):
    cfg = _project(tmp_path, DUCK, "  []\n", contract="{columns: freeze}")
    cfg.write_text(cfg.read_text().replace("steps:\n  []\n", "steps: []\n"))
    _jsonl(tmp_path / "in" / "day1.jsonl", _rows(20, seed=1))
    assert run_pipeline(cfg, fmt="json")["exit_code"] == 0
    _spec(tmp_path)
    cfg.write_text(cfg.read_text().replace("steps: []\n", "steps:\n" + STEP))
    _jsonl(tmp_path / "in" / "day2.jsonl", _rows(20, seed=2))
    rep = run_pipeline(cfg, fmt="json")
    b = rep["batches"][-1]
    assert rep["exit_code"] == 1 and b["status"] == "blocked", b
    assert b["reason"].startswith("sentinel:") and "a_x_b" in b["reason"]
    store = open_store(f"duckdb:///{tmp_path}/wh.duckdb")
    try:
        assert store._aux_query(f"SELECT count(*) FROM {store.qualify('sales')}") == [(20,)]
    finally:
        store.close()


def test_a_record_holding_a_feature_name_blocks_the_batch(tmp_path):
    _spec(tmp_path)
    cfg = _project(tmp_path, DUCK, STEP)
    rows = _rows(20, seed=1)
    rows[7]["a_x_b"] = 12.5  # received: the step never overwrites it
    _jsonl(tmp_path / "in" / "day1.jsonl", rows)
    rep = run_pipeline(cfg, fmt="json")
    b = rep["batches"][0]
    assert rep["exit_code"] == 1 and b["status"] == "blocked" and b["rows_loaded"] == 0
    assert "row 8 already has a key 'a_x_b'" in b["reason"]


def test_a_missing_spec_is_a_clear_input_error(tmp_path):
    from pipewarden.errors import InputError

    cfg = _project(tmp_path, DUCK, "  - type: features\n    spec: nope.json\n")
    _jsonl(tmp_path / "in" / "day1.jsonl", _rows(5, seed=1))
    with pytest.raises(InputError, match="nope.json: no such feature spec"):
        run_pipeline(cfg, fmt="json")
    cfg = _project(tmp_path, DUCK, "  - type: features\n")
    with pytest.raises(InputError, match="spec"):
        run_pipeline(cfg, fmt="json")


def test_features_of_imputed_cells_are_computed_from_the_fills(tmp_path):
    """impute before features: a feature whose input was filled holds the value computed from
    the fill, and is recorded as filled; the imputer neither fills nor learns the features."""
    feats = [Feature("x_x_y", "product", ["x", "y"])]
    _spec(tmp_path, feats)
    steps = "  - type: impute\n    min_rows: 100\n" + STEP
    cfg = _project(tmp_path, DUCK, steps)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(300):
        x = round(float(rng.normal()), 4)
        rows.append({"id": i, "x": x, "y": round(3 * x + float(rng.normal(0, 0.2)), 4),
                     "z": round(float(rng.normal()), 4)})  # fmt: skip
    _jsonl(tmp_path / "in" / "day1.jsonl", rows)
    assert run_pipeline(cfg, fmt="json")["exit_code"] == 0
    day2 = [{**r, "id": 1000 + r["id"]} for r in rows[:50]]
    for r in day2[::5]:
        r["y"] = None
    _jsonl(tmp_path / "in" / "day2.jsonl", day2)
    rep = run_pipeline(cfg, fmt="json")
    b = rep["batches"][-1]
    assert b["rows_loaded"] == 50 and b["rows_imputed"] == 10, b
    assert "x_x_y" not in b["steps"]["impute"]["columns"]
    assert b["steps"]["features"]["cells_from_fills"] == 10
    store = open_store(f"duckdb:///{tmp_path}/wh.duckdb")
    try:
        got = store._aux_query(
            f"SELECT x, y, x_x_y FROM {store.qualify('sales')} WHERE id >= 1000 AND id % 5 = 0"
        )
        flags = store._aux_query(f"SELECT imputed_columns FROM {store.qualify('sales__imputed')}")
    finally:
        store.close()
    assert len(got) == 10 and all(x * y == pytest.approx(xy) for x, y, xy in got)
    assert all(abs(y - 3 * x) < 0.8 for x, y, _ in got)
    assert all(json.loads(c) == ["x_x_y", "y"] for (c,) in flags)


def test_the_columns_of_a_chunk_read_before_the_features_include_them(tmp_path):
    """A step before the features may have read the chunk's columns already (the guardian
    checks its keys from them): the features added to the records in place are in the
    columns inference reads next."""
    from pipewarden.batch import Batch
    from pipewarden.steps import build

    _spec(tmp_path)
    step = build({"type": "features", "spec": "sales-features.json"}, tmp_path)
    batch = Batch(_rows(6, 1), "t.jsonl")
    assert "a_x_b" not in batch.columns()  # read (and kept) before the features
    assert step.derive(batch) is None
    cols = batch.columns()
    assert list(cols)[-len(NAMES) :] == NAMES
    assert list(cols["a_x_b"]) == [r["a_x_b"] for r in batch.records]
