"""Bounded memory and crash safety of a batch much larger than its chunks.

DuckDB keeps what many INSERT statements of one transaction append in memory until the commit;
the store spools each table's chunks and inserts them with one streamed statement instead
(store/duckdb.py). These tests load files many chunks long under a memory cap, through the
spool file, and kill the loading process with SIGKILL half way on both stores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipewarden.run import run_pipeline
from pipewarden.store import duckdb as duck
from pipewarden.store import open_store

ROWS, WIDTH = 80_000, 2_500  # 200 MB of JSON Lines, 16 chunks of 5,000 rows
CAP_MB = 1_250


def _write_rows(path: Path, rows: int, width: int) -> None:
    pad = "x" * width
    with open(path, "w") as f:
        for i in range(rows):
            f.write(json.dumps({"id": i, "text": f"{i:08d}{pad}", "n": i % 7}) + "\n")


def _config(tmp: Path, data: str, store: str, chunk: int) -> Path:
    cfg = tmp / "pipeline.yaml"
    cfg.write_text(
        f"version: 1\ndataset: big\nsource:\n  path: {data}\n  chunk_rows: {chunk}\n{store}"
    )
    return cfg


CHILD = """
import json, resource, sys
cap = int(sys.argv[2]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
from pipewarden.run import run_pipeline
report = run_pipeline(sys.argv[1], fmt="json")
status = open("/proc/self/status").read().splitlines()
peak = [line.split()[1] for line in status if line.startswith("VmHWM")][0]
print(json.dumps({"totals": report["totals"], "peak_kb": int(peak)}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_file_of_many_chunks_loads_under_a_memory_cap(kind, tmp_path, request):
    """80,000 rows of 2.5 KB (200 MB, 16 chunks) under an address-space cap of 1.25 GB.
    Before the spool, the DuckDB load peaked at 2.0 GB of address space and 1.3 GB resident
    (DuckDB held every appended row of the open transaction), and under this cap its batch
    failed (DuckDB out of memory, nothing loaded); now 0.9 GB and 0.3-0.4 GB. PostgreSQL
    writes each chunk with its own COPY in the batch's transaction (the server holds the rows),
    so the client's memory is the chunk's. MALLOC_ARENA_MAX and the system allocator for Arrow
    keep the address space the allocators reserve (not use) small and the same from run to
    run."""
    _write_rows(tmp_path / "big.jsonl", ROWS, WIDTH)
    if kind == "postgres":
        dsn, schema = request.getfixturevalue("pg_schema")
        store = f"store:\n  kind: postgres\n  dsn: {dsn}\n  schema: {schema}\n"
    else:
        store = "store:\n  kind: duckdb\n  path: w.duckdb\n  memory_limit: 64MB\n"
    cfg = _config(tmp_path, "big.jsonl", store, 5_000)
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "ARROW_DEFAULT_MEMORY_POOL": "system"}
    res = subprocess.run(
        [sys.executable, "-c", CHILD, str(cfg), str(CAP_MB)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["totals"]["rows_loaded"] == ROWS
    st = (
        open_store(dsn, namespace=schema)
        if kind == "postgres"
        else open_store(str(tmp_path / "w.duckdb"))
    )
    try:
        assert st.count("big") == ROWS and st.count("big__raw") == ROWS
    finally:
        st.close()
    assert not list(tmp_path.glob(".pw-spool-*"))  # the spool folder is gone


def _rows(path: Path) -> list[tuple]:
    st = open_store(str(path))
    try:
        return st._aux_query('SELECT id, text, n FROM "main"."big" ORDER BY id')
    finally:
        st.close()


def test_rows_spooled_to_a_file_load_like_rows_kept_in_memory(tmp_path, monkeypatch):
    _write_rows(tmp_path / "d.jsonl", 2_000, 40)
    cfg = _config(tmp_path, "d.jsonl", "store:\n  kind: duckdb\n  path: mem.duckdb\n", 300)
    run_pipeline(cfg, fmt="json")
    in_memory = _rows(tmp_path / "mem.duckdb")
    monkeypatch.setattr(duck, "SPOOL_MEMORY_BYTES", 10_000)  # the second chunk goes to a file
    seen = []
    real = duck._Spool.reader

    def reader(self):
        seen.append(self.path)
        return real(self)

    monkeypatch.setattr(duck._Spool, "reader", reader)
    cfg = _config(tmp_path, "d.jsonl", "store:\n  kind: duckdb\n  path: file.duckdb\n", 300)
    rep = run_pipeline(cfg, fmt="json")
    assert rep["totals"]["rows_loaded"] == 2_000
    assert any(p and p.endswith(".arrows") for p in seen)
    assert _rows(tmp_path / "file.duckdb") == in_memory and len(in_memory) == 2_000
    assert not list(tmp_path.glob(".pw-spool-*"))


def test_a_failed_load_leaves_no_rows_and_no_spool(tmp_path, monkeypatch):
    _write_rows(tmp_path / "d.jsonl", 1_000, 40)
    monkeypatch.setattr(duck, "SPOOL_MEMORY_BYTES", 10_000)

    def boom(self, *a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(duck.DuckDBWriter, "mark_done", boom)
    cfg = _config(tmp_path, "d.jsonl", "store:\n  kind: duckdb\n  path: w.duckdb\n", 100)
    rep = run_pipeline(cfg, fmt="json")
    assert rep["batches"][0]["status"] == "failed"
    st = open_store(str(tmp_path / "w.duckdb"))
    try:
        assert not st.has_table("big") or st.count("big") == 0
        assert st.is_done("big", rep["batches"][0]["batch_id"]) is None
    finally:
        st.close()
    assert not list(tmp_path.glob(".pw-spool-*"))


KILLER = """
import os, signal, sys
from pipewarden.store import duckdb as duck, postgres as pg
duck.SPOOL_MEMORY_BYTES = 10_000  # spool to a file from the second chunk
calls = {"n": 0}

def killing(real):
    def wrapper(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == int(sys.argv[2]):  # half way through the batch
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    return wrapper

duck.DuckDBWriter._insert_arrow = killing(duck.DuckDBWriter._insert_arrow)
pg.PostgresWriter.copy_rows = killing(pg.PostgresWriter.copy_rows)
from pipewarden.run import run_pipeline
run_pipeline(sys.argv[1], fmt="json")
"""


@pytest.mark.parametrize("kind", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_kill_9_half_way_leaves_nothing_and_a_rerun_loads_every_row(kind, tmp_path, request):
    _write_rows(tmp_path / "d.jsonl", 3_000, 40)
    if kind == "postgres":
        dsn, schema = request.getfixturevalue("pg_schema")
        store_yaml = f"store:\n  kind: postgres\n  dsn: {dsn}\n  schema: {schema}\n"
    else:
        store_yaml = "store:\n  kind: duckdb\n  path: w.duckdb\n"
    cfg = _config(tmp_path, "d.jsonl", store_yaml, 250)  # 12 chunks, 2 writes each
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLER), str(cfg), "9"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == -signal.SIGKILL, res.stderr[-2000:]

    def store():
        if kind == "postgres":
            return open_store(dsn, namespace=schema)
        return open_store(str(tmp_path / "w.duckdb"))

    st = store()
    try:
        for table in ("big", "big__raw", "big__quarantine"):
            assert not st.has_table(table) or st.count(table) == 0, table
        assert st._aux_query(f"SELECT count(*) FROM {st.qualify('_pw_batches')}")[0][0] == 0
    finally:
        st.close()
    assert not list(tmp_path.glob(".pw-spool-*"))  # opening the store removed the leftover
    rep = run_pipeline(cfg, fmt="json")
    assert rep["totals"]["rows_loaded"] == 3_000 and rep["exit_code"] == 0
    again = run_pipeline(cfg, fmt="json")
    assert again["batches"][0]["status"] == "skipped"  # idempotent after the crash too
    st = store()
    try:
        assert st.count("big") == st.count("big__raw") == 3_000
    finally:
        st.close()
