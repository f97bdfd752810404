"""Masks carried as columns: where the guardian's policy masks whole columns' values, its
verdict holds one masked column per key (each distinct value masked once) instead of a dict per
row, and the run applies it column by column: to the typed columns, the raw landing and the
payload of the rows another step holds, checked again once per distinct masked value."""

from __future__ import annotations

import json

import numpy as np
import pytest
from runkit import assert_conserved, jsonl

from pipewarden.batch import Batch
from pipewarden.steps import StepContext, build
from pipewarden.verdict import ColumnMask, ColumnMasks, RowIssue, Verdict, merge

POLICY = (
    "version: 1\nrules:\n"
    "  - {entity: EMAIL_ADDRESS, action: mask, method: partial}\n"
    "  - {entity: PHONE_NUMBER, action: mask, method: redact}\n"
)


def _rows(n: int) -> list[dict]:
    return [
        {
            "id": i,
            "email": f"user{i % 7}@example.com",
            "qty": i,
            "note": "call 212-555-0199" if i % 3 == 0 else "ok",
        }
        for i in range(n)
    ]


def test_the_guardian_masks_whole_columns_as_columns(tmp_path):
    from pipewarden.store.base import MemoryStateStore

    (tmp_path / "policy.yaml").write_text(POLICY)
    step = build({"type": "guardian", "policy": "policy.yaml"}, tmp_path)
    records = _rows(12)
    ctx = StepContext(dataset="crm", batch_id="b", store=MemoryStateStore(), base_dir=tmp_path)
    v = step.check(Batch([dict(r) for r in records], "t.jsonl"), ctx)
    assert isinstance(v.masks, ColumnMasks) and set(v.masks.columns) == {"email", "note"}
    email = v.masks.columns["email"]
    assert email.rows.tolist() == list(range(12))
    assert len(email.distinct) == 7  # each distinct address masked once
    rows = dict(v.masks)  # read row by row: the masks as the per-row path made them
    assert list(rows) == list(range(12))
    assert rows[0] == {"email": "u***@example.com", "note": "call [PHONE_NUMBER]"}
    assert rows[1] == {"email": "u***@example.com"}
    out = merge(12, [v])
    assert out.patches == {} and set(out.columns) == {"email", "note"}
    assert out.row_patches() == rows


def _masks(records: list[dict]) -> ColumnMasks:
    rows = np.array([0, 1, 3, 4], np.int64)
    return ColumnMasks(records, {"email": ColumnMask(rows, np.array([0, 1, 0, 1]), ["a*", "b*"])})


@pytest.mark.parametrize("order", ["sentinel_first", "guardian_first"])
def test_column_masks_merge_as_row_masks_do(order):
    """The same outcome as the masks given row by row: a later step's patch of the key wins,
    an earlier one loses on the rows the mask changes, held rows get the masks as payload."""
    records = [{"email": f"e{i}", "qty": i} for i in range(6)]
    sentinel = Verdict(
        "sentinel",
        issues=[RowIssue(3, "type_mismatch", "qty")],
        patches={0: {"email": None}, 2: {"qty": None}, 5: {"email": None}},
    )
    later = Verdict("later", patches={1: {"email": "later"}})

    def outcome(masks):
        guardian = Verdict("guardian", masks=masks)
        steps = [sentinel, guardian] if order == "sentinel_first" else [guardian, sentinel]
        return merge(6, [*steps, later])

    got, want = outcome(_masks(records)), outcome(dict(_masks(records)))
    assert got.loaded == want.loaded and got.quarantined == want.quarantined
    assert got.row_patches() == want.patches
    assert got.masks == want.masks == {3: {"email": "a*"}}
    assert want.patches[1] == {"email": "later"}


def _dump(project) -> str:
    if project.kind == "duckdb":
        from conftest import duckdb_dump

        return duckdb_dump(project.root / "wh.duckdb")
    from test_no_raw_values import _postgres_dump

    return _postgres_dump(project.url, project.ns)


def _run_guarded(project, capsys) -> tuple[int, dict]:
    """``pipewarden run`` of the project's files with the guardian (POLICY), chunks of 4
    rows, a type that does not fit held: the exit code and the JSON report."""
    from pipewarden.cli import main

    (project.root / "policy.yaml").write_text(POLICY)
    project.config(
        contract="contract:\n  columns: evolve\n  data_type: quarantine\n",
        chunk_rows=4,
        extra="steps:\n  - {type: guardian, policy: policy.yaml}\n",
    )
    code = main(["run", str(project.cfg), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_run_lands_column_masks_and_never_the_values(project, capsys):
    """On both stores: the typed table and the raw landing get the masked values, a row the
    sentinel holds keeps them masked in its payload, and no address is anywhere in the store."""

    rows = _rows(10)
    rows[7]["qty"] = "lots"  # the table's qty is bigint: held by the sentinel (quarantine)
    jsonl(project.root / "in" / "a_1.jsonl", rows[:5])
    jsonl(project.root / "in" / "a_2.jsonl", rows[5:])
    code, doc = _run_guarded(project, capsys)
    assert code == 0
    assert_conserved(doc)
    assert sum(b["rows_quarantined"] for b in doc["batches"]) == 1
    everything = _dump(project)
    for i in range(7):
        assert f"user{i}@example.com" not in everything
    assert "212-555-0199" not in everything
    store = project.store()
    try:
        (held,) = store.quarantine_rows("orders", with_payload=True)
        payload = held["payload"]
        payload = json.loads(payload) if isinstance(payload, str) else payload
        assert payload["email"] == "u***@example.com" and payload["qty"] == "lots"
    finally:
        store.close()
    assert everything.count("u***@example.com") >= 2 * 9 + 1  # typed, raw, quarantine


def test_many_distinct_masked_values_that_do_not_fit_hold_exactly_their_rows(tmp_path, capsys):
    """A CSV phone column typed bigint by an earlier batch: each of 300 distinct numbers is
    masked to text that no longer fits, so exactly those 300 rows are held (each with its own
    masked value and nothing raw), and the 300 plain numbers of the same column load."""
    import csv

    import duckdb

    from pipewarden.cli import main

    (tmp_path / "in").mkdir()
    for name, ids in (("a_1.csv", range(300)), ("a_2.csv", range(300, 900))):
        with open(tmp_path / "in" / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "phone"])
            for i in ids:
                w.writerow([i, f"212555{i:04d}" if name == "a_2.csv" and i % 2 else 1000 + i])
    (tmp_path / "policy.yaml").write_text(
        "version: 1\nrules:\n  - {entity: PHONE_NUMBER, action: mask, method: partial}\n"
    )
    (tmp_path / "pipeline.yaml").write_text(
        'version: 1\ndataset: orders\nsource:\n  path: "in/*.csv"\n  chunk_rows: 1000\n'
        "store:\n  kind: duckdb\n  path: wh.duckdb\n"
        "contract:\n  columns: evolve\n  data_type: quarantine\n"
        "steps:\n  - {type: guardian, policy: policy.yaml}\n"
    )
    assert main(["run", str(tmp_path / "pipeline.yaml"), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert_conserved(doc)
    assert [(b["rows_loaded"], b["rows_quarantined"]) for b in doc["batches"]] == [
        (300, 0),
        (300, 300),
    ]
    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    try:
        held = con.execute("select payload, message from orders__quarantine").fetchall()
        loaded = con.execute("select id, phone from orders where id >= 300").fetchall()
    finally:
        con.close()
    assert sorted(int(json.loads(p)["id"]) for p, _ in held) == list(range(301, 900, 2))
    for payload, message in held:  # each row held for its own masked value
        masked = f"******{int(json.loads(payload)['id']):04d}"
        assert json.loads(payload)["phone"] == masked and f"({masked})" in message
    assert sorted(loaded) == [(i, 1000 + i) for i in range(300, 900, 2)]
    from conftest import duckdb_dump

    assert "2125550" not in duckdb_dump(tmp_path / "wh.duckdb")


def test_the_raw_landing_keeps_the_source_line_of_each_row_no_step_changes(project, capsys):
    """With the guardian on, JSON Lines keep their lines: a row the guardian leaves alone lands
    in the raw landing as its line (as written: spaces, 1.50), a row it masks is written again
    with the masked value, a row another step holds keeps its masked payload; on both stores,
    and no address anywhere."""

    lines = []
    for i in range(10):
        email = f'"user{i}@example.com"' if i % 3 == 0 else "null"
        qty = '"lots"' if i == 6 else f"{i}.50"
        lines.append(f'{{"id": {i},  "email": {email}, "qty": {qty}, "note": "ok"}}')
    (project.root / "in" / "a_1.jsonl").write_text("\n".join(lines[:5]) + "\n")
    (project.root / "in" / "a_2.jsonl").write_text("\n".join(lines[5:]) + "\n")  # qty: text
    code, doc = _run_guarded(project, capsys)
    assert code == 0
    assert_conserved(doc)
    everything = _dump(project)
    assert "@example.com" in everything and not any(
        f"user{i}@example.com" in everything for i in range(10)
    )
    store = project.store()
    try:
        payloads = store._aux_query(f"SELECT payload FROM {store.qualify('orders__raw')}")
        held = store.quarantine_rows("orders", with_payload=True)
    finally:
        store.close()
    raw = {}
    for (payload,) in payloads:
        got = payload if isinstance(payload, dict) else json.loads(payload)
        raw[got["id"]] = (payload, got)
    assert sorted(raw) == [i for i in range(10) if i != 6]
    for i, (payload, got) in raw.items():
        want = json.loads(lines[i])
        if i % 3 == 0:
            assert got == {**want, "email": "u***@example.com"}
        else:
            assert got == want
            if project.kind == "duckdb":  # JSON text as read (PostgreSQL's jsonb rewrites it)
                assert payload == lines[i]
    (row,) = held
    payload = row["payload"]
    payload = json.loads(payload) if isinstance(payload, str) else payload
    assert payload == {**json.loads(lines[6]), "email": "u***@example.com"}


def test_a_chunk_whose_keys_are_renamed_lands_the_renamed_records(tmp_path, monkeypatch, capsys):
    """JSON Lines whose keys hold PII: the guardian renames the keys (keyed hash), so those
    chunks' lines are no longer the records: the raw landing gets the renamed records, the
    chunks without such a key keep their lines, and no raw key is anywhere in the store."""
    from conftest import duckdb_dump

    from pipewarden.cli import main

    monkeypatch.setenv("PIPEWARDEN_HASH_KEY", "test-key")
    ssn = "509-88-8712"
    lines = [f'{{"id": {i},  "v": {i}.50}}' for i in range(4)]  # chunk 1: no PII key
    lines += [f'{{"id": {i},  "v": {i}.50, "{ssn}": "x"}}' for i in range(4, 8)]  # chunk 2
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "policy.yaml").write_text("version: 1\n")
    (tmp_path / "pipeline.yaml").write_text(
        "version: 1\ndataset: crm\nsource: {path: 'in/*.jsonl', chunk_rows: 4}\n"
        "store: {kind: duckdb, path: wh.duckdb}\nsteps:\n  - {type: guardian, policy: policy.yaml}\n"
    )
    code = main(["run", str(tmp_path / "pipeline.yaml"), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["batches"][0]["rows_loaded"] == 8
    tables = duckdb_dump(tmp_path / "wh.duckdb")
    assert ssn not in tables and "509888712" not in tables
    import duckdb

    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        raw = dict(con.execute('select "offset", payload from crm__raw').fetchall())
    assert [raw[i] for i in range(4)] == lines[:4]  # as read
    for i in range(4, 8):
        got = json.loads(raw[i])
        (renamed,) = set(got) - {"id", "v"}
        assert got == {"id": i, "v": i + 0.5, renamed: "x"} and renamed != ssn
