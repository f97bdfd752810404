"""``pipewarden ingest status|reset`` and the controller's memory in the store, on DuckDB and a
real PostgreSQL."""

from __future__ import annotations

import json

import pytest

from pipewarden.cli import main
from pipewarden.ingest import memory
from pipewarden.store import open_store


@pytest.fixture(params=["duckdb", "postgres"])
def target(request, tmp_path):
    """(store URL, namespace or None)."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path}/w.duckdb", None
    dsn, schema = request.getfixturevalue("pg_schema")
    return dsn, schema


def _open(target):
    url, ns = target
    return open_store(url, namespace=ns)


def _cli(capsys, *args) -> tuple[int, dict]:
    code = main([*args, "--format", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def _where(target) -> list[str]:
    url, ns = target
    return ["--store", url] + (["--schema", ns] if ns else [])


LEARNED = {
    "law": "cubic",
    "limit": 15.2,
    "ceiling": 16.0,
    "latency_ms": 21.5,
    "last_throttle_at": "2026-01-01T00:00:00+00:00",
    "conventions": {"retry_after": "seconds"},
}


def test_memory_is_kept_per_source_and_host_and_adds_up_runs(target):
    store = _open(target)
    try:
        memory.save(store, "orders", "API.example.com", LEARNED, {"requests": 100, "throttled": 3})
        memory.save(
            store, "orders", "api.example.com", {**LEARNED, "limit": 15.8}, {"requests": 50}
        )
        memory.save(store, "users", "other.example.com", LEARNED, {"requests": 7})
        got = memory.load(store, "orders", "api.example.com")
        assert got["limit"] == 15.8 and got["runs"] == 2 and got["requests"] == 150
        assert got["throttled"] == 3
        assert [(e["source"], e["host"]) for e in memory.entries(store)] == [
            ("orders", "api.example.com"),
            ("users", "other.example.com"),
        ]
    finally:
        store.close()


def test_status_and_reset_commands(target, capsys):
    store = _open(target)
    try:
        memory.save(store, "orders", "api.example.com", LEARNED, {"requests": 10})
        memory.save(store, "orders", "cdn.example.com", LEARNED, {"requests": 10})
        memory.save(store, "users", "api.example.com", LEARNED, {"requests": 10})
    finally:
        store.close()
    code, doc = _cli(capsys, "ingest", "status", "orders", *_where(target))
    assert code == 0
    assert [h["host"] for h in doc["hosts"]] == ["api.example.com", "cdn.example.com"]
    assert doc["hosts"][0]["limit"] == 15.2 and doc["hosts"][0]["ceiling"] == 16.0
    assert doc["known"] == ["orders", "users"]

    code, doc = _cli(
        capsys, "ingest", "reset", "orders", "--host", "cdn.example.com", *_where(target)
    )
    assert code == 0 and doc["deleted"] == 1
    code, doc = _cli(capsys, "ingest", "reset", "orders", *_where(target))
    assert code == 0 and doc["deleted"] == 1
    code, doc = _cli(capsys, "ingest", "status", "orders", *_where(target))
    assert code == 0 and doc["hosts"] == [] and doc["known"] == ["users"]

    # nothing to forget: exit 2 naming what is there
    code, doc = _cli(capsys, "ingest", "reset", "orders", *_where(target))
    assert code == 2 and "users" in doc["hint"]

    # the text output
    assert main(["ingest", "status", *_where(target)]) == 0
    out = capsys.readouterr().out
    assert "users" in out and "limit" in out and "15.2" in out


def test_status_of_a_store_that_does_not_exist_is_exit_2(tmp_path, capsys):
    code = main(["ingest", "status", "--store", f"duckdb:///{tmp_path}/none.duckdb"])
    assert code == 2
    assert not (tmp_path / "none.duckdb").exists()
    assert main(["ingest", "status"]) == 2  # which store?


def test_a_state_written_in_a_batch_transaction_rolls_back_with_it(target):
    store = _open(target)
    try:
        with pytest.raises(RuntimeError), store.transaction() as w:
            w.save_state("orders", "http:cursor", {"next": 3})
            raise RuntimeError("the load failed")
        assert store.load_state("orders", "http:cursor") is None
        with store.transaction() as w:
            w.save_state("orders", "http:cursor", {"next": 4})
        assert store.load_state("orders", "http:cursor") == {"next": 4}
    finally:
        store.close()
