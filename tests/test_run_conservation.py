"""Property: for any batch, loaded + quarantined == read, and the tables agree with the report."""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipewarden.run import run_pipeline
from pipewarden.store import open_store


def check(rep: dict, store, dataset: str) -> None:
    loaded = quarantined = 0
    for b in rep["batches"]:
        assert b["status"] in ("loaded", "blocked", "skipped")
        if b["status"] == "loaded":
            assert b["rows_loaded"] + b["rows_quarantined"] == b["rows_read"]
        else:
            assert b["rows_loaded"] == b["rows_quarantined"] == 0
        loaded += b["rows_loaded"]
        quarantined += b["rows_quarantined"]

    def n(t):
        return store.count(t) if store.has_table(t) else 0

    typed = sum(b["rows_loaded"] for b in rep["batches"] if "note" not in b)
    assert n(dataset) == typed and n(dataset + "__raw") == loaded
    assert n(dataset + "__quarantine") == quarantined


values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**62), max_value=2**62),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.text(max_size=6),
    st.lists(st.integers(0, 9), max_size=2),
)
records = st.lists(
    st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), values, min_size=1),
    min_size=1,
    max_size=25,
)


def run_two_batches(first, second, mode, dataset="t", store_yaml="") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        for name, rows in (("1.jsonl", first), ("2.jsonl", second)):
            (root / "in" / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        (root / "pipeline.yaml").write_text(
            f"version: 1\ndataset: {dataset}\nsource:\n  path: in/*.jsonl\n  chunk_rows: 7\n"
            f"{store_yaml}contract:\n  columns: {mode}\n  data_type: {mode}\n"
        )
        rep = run_pipeline(root / "pipeline.yaml", fmt="json")
        rep["_duckdb"] = str(root / "warehouse.duckdb")
        if not store_yaml:  # check the DuckDB file before the directory goes
            store = open_store(rep["_duckdb"])
            try:
                check(rep, store, dataset)
            finally:
                store.close()
        return rep


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=records,
    second=records,
    mode=st.sampled_from(["quarantine", "discard_row", "discard_value", "evolve"]),
)
def test_every_row_is_accounted_for(first, second, mode):
    run_two_batches(first, second, mode)


@pytest.mark.postgres
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(first=records, second=records, mode=st.sampled_from(["quarantine", "evolve"]))
def test_every_row_is_accounted_for_on_postgres(pg_schema, first, second, mode):
    dsn, schema = pg_schema
    dataset = f"t_{uuid.uuid4().hex[:8]}"
    store_yaml = f"store:\n  kind: postgres\n  dsn: {dsn}\n  schema: {schema}\n"
    rep = run_two_batches(first, second, mode, dataset, store_yaml)
    store = open_store(dsn, namespace=schema)
    try:
        check(rep, store, dataset)
    finally:
        store.close()
