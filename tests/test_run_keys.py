"""Primary keys and write dispositions in the run, on both stores: merge upserts on the key,
replace loads each batch as a snapshot, duplicate and missing keys are held; conservation and
idempotency hold for every disposition, also across a failure half way and a replay."""

from __future__ import annotations

import json
import random
import uuid

import pytest
from runkit import assert_conserved, jsonl

from pipewarden.cli import main
from pipewarden.run import list_quarantine, replay_quarantine, run_pipeline


def _keyed(project, disposition: str, pk: str = "order_id", contract: str = "") -> None:
    project.config(
        contract=contract or "contract:\n  columns: evolve\n  data_type: quarantine\n",
        extra=f"primary_key: {pk}\nwrite_disposition: {disposition}\n",
    )


def _rows(project) -> dict[int, tuple]:
    """order_id -> (amount, quantity) in the typed table (quantity None when no batch had it)."""
    s = project.store()
    try:
        t = s.qualify("orders")
        has_q = s._aux_query(
            s.sql(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = ? "
                "AND table_name = 'orders' AND column_name = 'quantity'"
            ),
            (s.namespace,),
        )
        q = "quantity" if has_q else "NULL"
        got = s._aux_query(f"SELECT order_id, amount, {q} FROM {t}")
    finally:
        s.close()
    return {int(r[0]): (float(r[1]), None if r[2] is None else int(r[2])) for r in got}


def test_merge_upserts_on_the_key(project):
    _keyed(project, "merge")
    jsonl(
        project.root / "in" / "a_1.jsonl",
        [{"order_id": i, "amount": i, "quantity": 1} for i in range(10)],
    )
    jsonl(
        project.root / "in" / "a_2.jsonl",
        [{"order_id": i, "amount": i * 10, "quantity": 2} for i in range(5, 15)],
    )
    rep = run_pipeline(project.cfg, fmt="json")
    assert rep["exit_code"] == 0
    b1, b2 = rep["batches"]
    assert b1["write_disposition"] == "merge" and b1["rows_updated"] == 0
    assert b2["rows_loaded"] == 10 and b2["rows_updated"] == 5
    rows = _rows(project)
    assert len(rows) == 15
    assert rows[3] == (3.0, 1) and rows[7] == (70.0, 2) and rows[14] == (140.0, 2)
    c = project.counts()
    assert c["orders__raw"] == 20  # the raw landing keeps every loaded row


def test_duplicate_and_missing_keys_in_one_batch(project):
    _keyed(project, "merge")
    batch = [
        {"order_id": 1, "amount": 1.0, "quantity": 1},
        {"order_id": 2, "amount": 2.0, "quantity": 1},
        {"order_id": 1, "amount": 1.5, "quantity": 2},
        {"order_id": None, "amount": 9.0, "quantity": 9},
        {"amount": 8.0},
        {"order_id": 1, "amount": 1.75, "quantity": 3},
    ]
    jsonl(project.root / "in" / "a.jsonl", batch)
    rep = run_pipeline(project.cfg, fmt="json")
    b = rep["batches"][0]
    assert (b["rows_loaded"], b["rows_quarantined"]) == (2, 4)
    assert b["reasons"] == {"duplicate_key": 2, "null_key": 2}
    assert b["keys"] == {"primary_key": ["order_id"], "duplicate_key": 2, "null_key": 2}
    assert_conserved(rep)
    assert _rows(project) == {1: (1.75, 3), 2: (2.0, 1)}
    held = {r["row"]: r for r in list_quarantine(project.cfg)["rows"]}
    assert set(held) == {1, 3, 4, 5}
    assert held[1]["reason"] == "duplicate_key" and "row 6 of the batch" in held[1]["message"]
    assert held[5]["reason"] == "null_key" and held[5]["column"] == "order_id"


def test_append_with_a_primary_key_still_holds_duplicates(project):
    _keyed(project, "append")
    jsonl(
        project.root / "in" / "a.jsonl",
        [{"order_id": 1, "amount": 1.0}, {"order_id": 1, "amount": 2.0}],
    )
    jsonl(project.root / "in" / "b.jsonl", [{"order_id": 1, "amount": 3.0}])
    rep = run_pipeline(project.cfg, fmt="json")
    assert [b["rows_loaded"] for b in rep["batches"]] == [1, 1]
    assert project.counts()["orders"] == 2  # append adds; only one batch's repeats are held


def test_replace_loads_each_batch_as_the_table(project):
    _keyed(project, "replace")
    jsonl(
        project.root / "in" / "a_1.jsonl",
        [{"order_id": i, "amount": 1.0, "quantity": 1} for i in range(10)],
    )
    jsonl(project.root / "in" / "a_2.jsonl", [{"order_id": i, "amount": 2.0} for i in range(3)])
    rep = run_pipeline(project.cfg, fmt="json")
    assert [b.get("rows_replaced") for b in rep["batches"]] == [0, 10]
    assert _rows(project) == {i: (2.0, None) for i in range(3)}
    assert run_pipeline(project.cfg, fmt="json")["batches"][1]["status"] == "skipped"
    assert len(_rows(project)) == 3


def test_merge_needs_a_primary_key_and_the_key_must_be_in_the_batch(project, capsys):
    project.config(extra="write_disposition: merge\n")
    jsonl(project.root / "in" / "a.jsonl", [{"order_id": 1}])
    assert main(["run", str(project.cfg), "--format", "json"]) == 2
    assert json.loads(capsys.readouterr().out)["key"] == "write_disposition"
    project.config(extra="primary_key: [order_idd]\nwrite_disposition: merge\n")
    assert main(["run", str(project.cfg), "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert "'order_idd' in no row of the batch" in doc["batches"][0]["error"]
    assert project.counts()["orders"] == 0


@pytest.mark.parametrize("project", ["duckdb"], indirect=True)  # PostgreSQL merges by COPY
def test_a_table_named_as_the_merge_source_is_refused_not_read(project, capsys):
    """DuckDB reads a merge's chunk by replacement scan under a fixed name; a table of that
    name made by hand in the store would be read instead of the chunk. The run refuses with
    exit 2 before writing anything, and the rows already merged stay as they were."""
    import duckdb

    _keyed(project, "merge")
    jsonl(project.root / "in" / "a_1.jsonl", [{"order_id": i, "amount": i} for i in range(5)])
    assert run_pipeline(project.cfg, fmt="json")["exit_code"] == 0
    con = duckdb.connect(str(project.root / "wh.duckdb"))
    con.execute("CREATE TABLE _PW_Merge_Chunk AS SELECT 999 AS c0, 999.0 AS c1")
    con.close()
    jsonl(project.root / "in" / "a_2.jsonl", [{"order_id": i, "amount": -i} for i in range(3)])
    assert main(["run", str(project.cfg), "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    err = json.dumps(doc)
    assert "_PW_Merge_Chunk" in err and "rename or drop" in err
    assert _rows(project) == {i: (float(i), None) for i in range(5)}
    con = duckdb.connect(str(project.root / "wh.duckdb"))
    con.execute("DROP TABLE _PW_Merge_Chunk")
    con.close()
    assert run_pipeline(project.cfg, fmt="json")["exit_code"] == 0
    assert _rows(project) == {**{i: (float(i), None) for i in range(5)}, 0: (0.0, None),
                              1: (-1.0, None), 2: (-2.0, None)}  # fmt: skip


def _writer_class(kind: str):
    if kind == "duckdb":
        from pipewarden.store.duckdb import DuckDBWriter

        return DuckDBWriter
    from pipewarden.store.postgres import PostgresWriter

    return PostgresWriter


def test_a_merge_failing_half_way_leaves_nothing_and_reruns_once(project, monkeypatch):
    _keyed(project, "merge")
    project.config(
        contract="contract:\n  columns: evolve\n  data_type: quarantine\n",
        chunk_rows=3,
        extra="primary_key: order_id\nwrite_disposition: merge\n",
    )
    jsonl(project.root / "in" / "a_1.jsonl", [{"order_id": i, "amount": 1.0} for i in range(6)])
    assert run_pipeline(project.cfg, fmt="json")["exit_code"] == 0
    before, rows_before = project.counts(), _rows(project)
    jsonl(project.root / "in" / "a_2.jsonl", [{"order_id": i, "amount": 2.0} for i in range(3, 12)])
    cls = _writer_class(project.kind)
    original = cls.merge_typed
    calls = {"n": 0}

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the first chunk is merged already
            raise RuntimeError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "merge_typed", flaky)
    rep = run_pipeline(project.cfg, fmt="json")
    assert rep["batches"][1]["status"] == "failed"
    assert project.counts() == before and _rows(project) == rows_before
    monkeypatch.setattr(cls, "merge_typed", original)
    again = run_pipeline(project.cfg, fmt="json")
    assert [b["status"] for b in again["batches"]] == ["skipped", "loaded"]
    assert again["batches"][1]["rows_updated"] == 3
    rows = _rows(project)
    assert len(rows) == 12 and all(rows[i][0] == (1.0 if i < 3 else 2.0) for i in rows)


def test_replay_under_merge_upserts_the_fixed_rows(project):
    _keyed(project, "merge")
    jsonl(
        project.root / "in" / "a_1.jsonl",
        [{"order_id": i, "amount": 1.0, "quantity": 1} for i in range(4)],
    )
    jsonl(
        project.root / "in" / "a_2.jsonl",
        [
            {"order_id": 2, "amount": 5.0, "quantity": "two"},
            {"order_id": 9, "amount": 9.0, "quantity": "nine"},
        ],
    )
    rep = run_pipeline(project.cfg, fmt="json")
    assert rep["batches"][1]["rows_quarantined"] == 2
    _keyed(
        project,
        "merge",
        contract="contract:\n  overrides:\n    quantity: {data_type: discard_value}\n",
    )
    out = replay_quarantine(project.cfg)
    assert out["rows_replayed"] == 2
    rows = _rows(project)
    assert rows[2] == (5.0, None) and rows[9] == (9.0, None) and len(rows) == 5
    assert replay_quarantine(project.cfg)["rows_considered"] == 0


# ---- conservation and idempotency, any batches, every disposition


def _random_batches(seed: int) -> list[list[dict]]:
    rnd = random.Random(seed)
    out = []
    for _ in range(rnd.randint(1, 4)):
        batch = []
        for _ in range(rnd.randint(0, 12)):
            r: dict = {"order_id": rnd.choice([None, *range(8)]), "amount": rnd.random()}
            if rnd.random() < 0.3:
                r["quantity"] = rnd.randint(0, 5)
            batch.append(r)
        out.append(batch)
    return out


def _expected(batches: list[list[dict]], disposition: str) -> dict:
    """The key -> amount the typed table holds after ``batches`` (the last row of a key in a
    batch is loaded; replace keeps the last batch that loaded a row)."""
    table: dict = {}
    for batch in batches:
        last = {r["order_id"]: r for r in batch if r["order_id"] is not None}
        if disposition == "replace" and last:
            table = {}
        table.update({k: r["amount"] for k, r in last.items()})
    return table


@pytest.mark.parametrize("disposition", ["append", "merge", "replace"])
def test_every_row_is_accounted_for_under_each_disposition(project, disposition):
    for seed in range(5):
        ds = f"t{uuid.uuid4().hex[:6]}"
        for f in (project.root / "in").iterdir():
            f.unlink()
        batches = _random_batches(seed)
        for n, batch in enumerate(batches):
            # a blank line keeps each file's bytes distinct, also for two equal batches
            text = "".join(json.dumps(r) + "\n" for r in batch)
            (project.root / "in" / f"b{n}.jsonl").write_text(text + "\n" * n if batch else "[]")
        (project.root / "pipeline.yaml").write_text(
            f"version: 1\ndataset: {ds}\n"
            'source:\n  path: "in/*.jsonl"\n  chunk_rows: 5\n'
            + project.store_yaml
            + f"primary_key: order_id\nwrite_disposition: {disposition}\n"
        )
        rep = run_pipeline(project.cfg, fmt="json")
        assert rep["exit_code"] == 0, rep
        assert_conserved(rep)
        s = project.store()
        try:
            typed = (
                s._aux_query(f"SELECT order_id, amount FROM {s.qualify(ds)}")
                if s.has_table(ds)
                else []
            )
            n_raw = s.count(ds + "__raw") if s.has_table(ds + "__raw") else 0
            n_held = s.count(ds + "__quarantine") if s.has_table(ds + "__quarantine") else 0
        finally:
            s.close()
        t = rep["totals"]
        assert n_raw == t["rows_loaded"] and n_held == t["rows_quarantined"]
        assert t["rows_read"] == t["rows_loaded"] + t["rows_quarantined"]
        n_rows = sum(len(b) for b in batches)
        keyless = sum(1 for b in batches for r in b if r["order_id"] is None)
        assert t["rows_read"] == n_rows
        assert sum(b.get("keys", {}).get("null_key", 0) for b in rep["batches"]) == keyless
        if disposition == "append":
            assert len(typed) == t["rows_loaded"]
        else:
            got = {int(k): float(a) for k, a in typed}
            assert got == pytest.approx(_expected(batches, disposition))
        again = run_pipeline(project.cfg, fmt="json")
        assert {b["status"] for b in again["batches"]} <= {"skipped"}
