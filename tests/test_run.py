"""The main job on both stores: conservation (loaded + quarantined == read, or nothing written),
idempotent re-runs, failures half way (raise inside the transaction, the PostgreSQL connection
killed), blocked batches, quarantine list and replay."""

from __future__ import annotations

import json

import psycopg
import pytest
from runkit import NOTHING, _pg_project, assert_conserved, jsonl, orders

from pipewarden.cli import main
from pipewarden.run import list_quarantine, replay_quarantine, run_pipeline
from pipewarden.store import open_store


def test_run_loads_evolves_and_quarantines(project):
    jsonl(project.root / "in" / "a_1.jsonl", orders(0, 10))
    jsonl(project.root / "in" / "a_2.jsonl", orders(10, 20, channel="web"))
    bad = orders(20, 30, channel="app")
    bad[3]["quantity"] = "three"
    bad[7]["quantity"] = "n/a"
    jsonl(project.root / "in" / "a_3.jsonl", bad)
    rep = run_pipeline(project.cfg, fmt="json")
    assert rep["exit_code"] == 0
    assert [b["status"] for b in rep["batches"]] == ["loaded"] * 3
    assert [b["rows_quarantined"] for b in rep["batches"]] == [0, 0, 2]
    assert rep["batches"][1]["ddl"], "the second batch adds a column"
    assert rep["totals"] == {
        "rows_read": 30,
        "rows_loaded": 28,
        "rows_quarantined": 2,
        "rows_not_written": 0,
        "batches": 3,
        "batches_loaded": 3,
    }
    assert_conserved(rep)
    c = project.counts()
    assert c["orders"] == 28 and c["orders__raw"] == 28 and c["orders__quarantine"] == 2
    assert c["_pw_batches"] == 3
    q = list_quarantine(project.cfg)
    assert sorted(r["row"] for r in q["rows"]) == [4, 8]
    assert {r["column"] for r in q["rows"]} == {"quantity"}
    text = json.dumps(q, default=str)
    # e-mails are masked; a value that is not PII is shown (docs/run.md, quarantine)
    assert "user23@example.com" not in text and "quantity=three" not in text
    assert {r["preview"]["quantity"] for r in q["rows"]} == {"three", "n/a"}


def test_huge_integers_and_deep_nesting_are_loaded_or_quarantined(project):
    """Values orjson cannot write (integers beyond 64 bits, 300 levels of nesting) reach the
    raw table and the quarantine through the standard library instead of failing the batch."""
    deep: object = 1
    for _ in range(300):
        deep = {"a": deep}
    jsonl(project.root / "in" / "a_1.jsonl", orders(0, 5))  # quantity: bigint
    rows = orders(5, 11)
    rows[1]["quantity"] = 10**40  # does not fit a bigint: quarantined
    rows[2]["detail"] = deep  # a new JSON column
    rows[3]["quantity"] = "three"  # quarantined, with a payload holding a huge number
    rows[3]["ref"] = 10**30
    jsonl(project.root / "in" / "a_2.jsonl", rows)
    rep = run_pipeline(project.cfg, fmt="json")
    assert rep["exit_code"] == 0, rep
    assert [b["status"] for b in rep["batches"]] == ["loaded", "loaded"]
    assert rep["totals"]["rows_read"] == 11 and rep["totals"]["rows_quarantined"] == 2
    assert_conserved(rep)
    c = project.counts()
    assert c["orders"] == 9 and c["orders__raw"] == 9 and c["orders__quarantine"] == 2
    q = list_quarantine(project.cfg)
    assert sorted(r["row"] for r in q["rows"]) == [2, 4]


def _typed(project, sql_cols: str, table: str = "orders") -> list[tuple]:
    s = project.store()
    try:
        return s._aux_query(f"SELECT {sql_cols} FROM {s.qualify(table)} ORDER BY order_id")
    finally:
        s.close()


def test_integers_just_beyond_64_bits_stay_exact_through_load_and_replay(project):
    """-2**63 - 1 has 19 digits (orjson reads it as a float); a replayed payload is parsed as
    exactly as the batch was."""
    from decimal import Decimal

    project.config(contract="contract:\n  columns: quarantine\n")
    low = -9223372036854775809
    jsonl(project.root / "in" / "a_1.jsonl", orders(0, 2, n=low))
    jsonl(project.root / "in" / "a_2.jsonl", orders(2, 3, n=-1, big=12345678901234567890123))
    rep = run_pipeline(project.cfg, fmt="json")
    assert [b["rows_quarantined"] for b in rep["batches"]] == [0, 1]
    assert [Decimal(r[0]) for r in _typed(project, "n")] == [Decimal(low)] * 2
    project.config(contract="contract:\n  columns: evolve\n")
    assert replay_quarantine(project.cfg)["rows_replayed"] == 1
    assert [Decimal(r[0]) for r in _typed(project, "n")] == [Decimal(low)] * 2 + [Decimal(-1)]
    assert [Decimal(r[0]) for r in _typed(project, "big") if r[0] is not None] == [
        Decimal(12345678901234567890123)
    ]


def test_rerun_is_idempotent(project):
    jsonl(project.root / "in" / "a.jsonl", orders(0, 9))
    first = run_pipeline(project.cfg, fmt="json")
    before = project.counts()
    # the same bytes under another name are the same batch
    (project.root / "in" / "b.jsonl").write_bytes((project.root / "in" / "a.jsonl").read_bytes())
    second = run_pipeline(project.cfg, fmt="json")
    assert first["batches"][0]["status"] == "loaded"
    assert [b["status"] for b in second["batches"]] == ["skipped", "skipped"]
    assert second["exit_code"] == 0 and project.counts() == before
    s = project.store()
    try:
        statuses = [r["status"] for r in s.runs("orders")]
    finally:
        s.close()
    assert statuses == ["loaded", "skipped", "skipped"]


def _writer_class(kind: str):
    if kind == "duckdb":
        from pipewarden.store.duckdb import DuckDBWriter

        return DuckDBWriter
    from pipewarden.store.postgres import PostgresWriter

    return PostgresWriter


def test_raise_half_way_writes_nothing_then_rerun_loads_once(project, monkeypatch, capsys):
    jsonl(project.root / "in" / "a.jsonl", orders(0, 4))
    assert run_pipeline(project.cfg, fmt="json")["exit_code"] == 0
    before = project.counts()
    rows = orders(4, 24, channel="web")  # a new column: DDL inside the failing transaction
    rows[5]["quantity"] = "five"  # one quarantined row in the first chunk
    jsonl(project.root / "in" / "b.jsonl", rows)
    cls = _writer_class(project.kind)
    original = cls.write_typed
    calls = {"n": 0}

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # two chunks already copied
            raise RuntimeError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "write_typed", flaky)
    assert main(["run", str(project.cfg), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    b = doc["batches"][1]
    assert b["status"] == "failed" and b["error"] == "RuntimeError"
    assert b["rows_loaded"] == 0 and b["rows_quarantined"] == 0
    assert project.counts() == before  # neither rows nor the ALTER nor a schema version
    monkeypatch.setattr(cls, "write_typed", original)
    again = run_pipeline(project.cfg, fmt="json")
    assert [x["status"] for x in again["batches"]] == ["skipped", "loaded"]
    assert again["batches"][1]["rows_loaded"] == 19
    assert again["batches"][1]["rows_quarantined"] == 1
    assert [x["status"] for x in run_pipeline(project.cfg, fmt="json")["batches"]] == [
        "skipped",
        "skipped",
    ]
    c = project.counts()
    assert c["orders"] == 23 and c["orders__quarantine"] == 1 and c["_pw_batches"] == 2
    assert c["history"] == before["history"] + 1


@pytest.mark.postgres
@pytest.mark.parametrize("where", ["between_copies", "inside_copy"])
def test_postgres_connection_killed_mid_load(pg_schema, tmp_path, monkeypatch, where):
    from pipewarden.store import postgres as pgmod

    dsn, schema = pg_schema
    proj = _pg_project(pg_schema, tmp_path)
    jsonl(tmp_path / "in" / "a.jsonl", orders(0, 40))
    jsonl(tmp_path / "in" / "b.jsonl", orders(40, 50))
    original = pgmod.PostgresWriter.copy_rows
    original_arrow = pgmod.PostgresWriter.copy_arrow
    original_encode = pgmod.columnar.copy_binary
    state = {"n": 0}

    def kill(pid: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (pid,))

    def copy_then_die(self, table, names, rows, into=None):
        state["n"] += 1
        if state["n"] == 5 and where == "between_copies":
            kill(self.conn.info.backend_pid)
        if state["n"] == 5 and where == "inside_copy":
            pid = self.conn.info.backend_pid

            class KilledHalfWay(list):
                def __iter__(self):
                    for i, r in enumerate(list.__iter__(self)):
                        if i == len(self) // 2:
                            kill(pid)
                        yield r

            return original(self, table, names, KilledHalfWay(rows), into)
        return original(self, table, names, rows, into)

    def arrow_then_die(self, table, names, t, into=None):
        state["n"] += 1
        if state["n"] == 5 and where == "between_copies":
            kill(self.conn.info.backend_pid)
        if state["n"] == 5 and where == "inside_copy":
            pid = self.conn.info.backend_pid

            def killed_half_way(t, oids, dump=None):  # half the rows sent, then the kill
                half = t.num_rows // 2
                yield from original_encode(t.slice(0, half), oids, dump)
                kill(pid)
                yield from original_encode(t.slice(half), oids, dump)

            monkeypatch.setattr(pgmod.columnar, "copy_binary", killed_half_way)
            try:
                return original_arrow(self, table, names, t, into)
            finally:
                monkeypatch.setattr(pgmod.columnar, "copy_binary", original_encode)
        return original_arrow(self, table, names, t, into)

    monkeypatch.setattr(pgmod.PostgresWriter, "copy_rows", copy_then_die)
    monkeypatch.setattr(pgmod.PostgresWriter, "copy_arrow", arrow_then_die)
    assert main(["run", str(proj.cfg), "--format", "json"]) == 1
    assert proj.counts() == NOTHING
    monkeypatch.setattr(pgmod.PostgresWriter, "copy_rows", original)
    monkeypatch.setattr(pgmod.PostgresWriter, "copy_arrow", original_arrow)
    rep = run_pipeline(proj.cfg, fmt="json")
    assert [b["status"] for b in rep["batches"]] == ["loaded", "loaded"]
    rep2 = run_pipeline(proj.cfg, fmt="json")
    assert [b["status"] for b in rep2["batches"]] == ["skipped", "skipped"]
    assert proj.counts()["orders"] == 50
    s = open_store(dsn, namespace=schema)
    try:
        runs = s.runs("orders")
    finally:
        s.close()
    assert [r["status"] for r in runs][0] == "failed"


def test_blocked_batch_writes_only_its_run_log(project):
    project.config(contract="contract:\n  columns: freeze\n")
    jsonl(project.root / "in" / "a_1.jsonl", orders(0, 5))
    jsonl(project.root / "in" / "a_2.jsonl", orders(5, 10, coupon="X1"))
    rep = run_pipeline(project.cfg, fmt="json")
    assert [b["status"] for b in rep["batches"]] == ["loaded", "blocked"]
    assert rep["exit_code"] == 1 and rep["totals"]["rows_not_written"] == 5
    assert_conserved(rep)
    c = project.counts()
    assert c["orders"] == 5 and c["_pw_batches"] == 1 and c["orders__quarantine"] == 0
    s = project.store()
    try:
        assert [r["status"] for r in s.runs("orders")] == ["loaded", "blocked"]
    finally:
        s.close()


def test_replay_after_the_contract_was_relaxed(project):
    project.config(contract="contract:\n  columns: quarantine\n")
    jsonl(project.root / "in" / "a_1.jsonl", orders(0, 5))
    jsonl(project.root / "in" / "a_2.jsonl", orders(5, 8) + orders(8, 10, coupon="X1"))
    rep = run_pipeline(project.cfg, fmt="json")
    assert [b["rows_quarantined"] for b in rep["batches"]] == [0, 2]
    assert list_quarantine(project.cfg, status="pending")["counts"]["orders"]["pending"] == 2
    # still the same contract: nothing changes, the reason is kept up to date
    same = replay_quarantine(project.cfg)
    assert same["rows_replayed"] == 0 and same["rows_still_quarantined"] == 2
    project.config(contract="contract:\n  columns: evolve\n")
    fixed = replay_quarantine(project.cfg)
    assert fixed["rows_replayed"] == 2 and fixed["rows_still_quarantined"] == 0
    assert fixed["ddl"]
    c = project.counts()
    assert c["orders"] == 10 and c["orders__raw"] == 10
    q = list_quarantine(project.cfg)
    assert {r["status"] for r in q["rows"]} == {"replayed"}
    assert replay_quarantine(project.cfg)["rows_considered"] == 0


def test_replay_pages_past_rows_that_keep_failing(project, monkeypatch):
    """A replay reads the quarantine in pages (one transaction each): rows that still fail at
    the head of the quarantine do not stop it from reaching the rows behind them."""
    import pipewarden.run as run_mod

    project.config(contract="contract:\n  columns: quarantine\n  data_type: quarantine\n")
    jsonl(project.root / "in" / "a_1.jsonl", orders(0, 5))
    stuck = orders(5, 8)
    for r in stuck:
        r["quantity"] = "many"  # stays a type mismatch under every contract below
    jsonl(project.root / "in" / "a_2.jsonl", stuck + orders(8, 12, coupon="X1"))
    rep = run_pipeline(project.cfg, fmt="json")
    assert [b["rows_quarantined"] for b in rep["batches"]] == [0, 7]
    project.config(contract="contract:\n  columns: evolve\n  data_type: quarantine\n")
    monkeypatch.setattr(run_mod, "REPLAY_PAGE", 2)
    first = replay_quarantine(project.cfg, limit=3)  # a limit spans pages
    assert (first["rows_considered"], first["pages"]) == (3, 2)
    assert first["rows_replayed"] == 0 and first["rows_still_quarantined"] == 3
    rep = replay_quarantine(project.cfg)
    assert (rep["rows_considered"], rep["pages"]) == (7, 4)
    assert rep["rows_replayed"] == 4 and rep["rows_still_quarantined"] == 3
    assert rep["reasons"] == {"type_mismatch": 3}
    assert rep["ddl"] and any(c["op"] == "add" for c in rep["delta"]["changes"])
    c = project.counts()
    assert c["orders"] == 9 and c["orders__raw"] == 9 and c["orders__quarantine"] == 7
    q = list_quarantine(project.cfg, status="pending")
    assert sorted(r["row"] for r in q["rows"]) == [1, 2, 3]


def test_replay_failing_half_way_keeps_earlier_pages_and_carries_on(project, monkeypatch):
    """A page that fails rolls back alone: its rows stay pending, the pages before it stay
    replayed (in the typed table exactly once), and the next replay finishes the rest."""
    import pipewarden.run as run_mod

    project.config(contract="contract:\n  columns: quarantine\n")
    jsonl(project.root / "in" / "a_1.jsonl", orders(0, 3))
    jsonl(project.root / "in" / "a_2.jsonl", orders(3, 9, coupon="X1"))
    assert run_pipeline(project.cfg, fmt="json")["totals"]["rows_quarantined"] == 6
    project.config(contract="contract:\n  columns: evolve\n")
    monkeypatch.setattr(run_mod, "REPLAY_PAGE", 2)
    cls = _writer_class(project.kind)
    original = cls.write_typed
    calls = {"n": 0}

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second page
            raise RuntimeError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "write_typed", flaky)
    with pytest.raises(RuntimeError):
        replay_quarantine(project.cfg)
    counts = list_quarantine(project.cfg)["counts"]["orders"]
    assert counts == {"pending": 4, "replayed": 2}
    c = project.counts()
    assert c["orders"] == 3 + 2 and c["orders__raw"] == 3 + 2
    monkeypatch.setattr(cls, "write_typed", original)
    rep = replay_quarantine(project.cfg)
    assert (rep["rows_considered"], rep["rows_replayed"], rep["pages"]) == (4, 4, 2)
    c = project.counts()
    assert c["orders"] == 9 and c["orders__raw"] == 9 and c["orders__quarantine"] == 6
    assert list_quarantine(project.cfg)["counts"]["orders"] == {"pending": 0, "replayed": 6}


def test_bad_input_exits_2_and_writes_nothing(project, capsys):
    jsonl(project.root / "in" / "a.jsonl", orders(0, 5))
    with (project.root / "in" / "a.jsonl").open("a") as f:
        f.write('{"order_id": 6, "email": "trunc\n')
    assert main(["run", str(project.cfg)]) == 2
    err = capsys.readouterr().err
    assert "a.jsonl" in err and "Traceback" not in err
    assert project.counts()["_pw_batches"] == 0


def test_json_output_is_one_document_without_progress(project, capsys):
    jsonl(project.root / "in" / "a.jsonl", orders(0, 5))
    assert main(["run", str(project.cfg), "--format", "json"]) == 0
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert doc["batches"][0]["rows_loaded"] == 5


def test_quarantine_cli_list_masks_and_filters(project, capsys):
    jsonl(project.root / "in" / "a.jsonl", orders(0, 3))
    rows = orders(3, 6)
    rows[2]["quantity"] = "secret-value-123"
    jsonl(project.root / "in" / "b.jsonl", rows)
    assert main(["run", str(project.cfg), "--format", "json"]) == 0
    capsys.readouterr()
    assert main(["quarantine", "list", str(project.cfg)]) == 0
    out = capsys.readouterr().out
    # the e-mail is masked, the value that did not fit is shown: it is not PII
    assert "user5@example.com" not in out and "quantity=secret-value-123" in out
    assert "type_mismatch" in out or "quantity" in out
    args = ["quarantine", "list", "--store", project.url, "--format", "json"]
    if project.ns:
        args += ["--schema", project.ns]
    assert main(args + ["--status", "replayed"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == []
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["row"] for r in doc["rows"]] == [3]
    assert "payload" not in doc["rows"][0]
    assert "user5@example.com" not in json.dumps(doc)
    assert main(["quarantine", "list"]) == 2  # neither a config nor --store


def test_quarantine_list_or_replay_before_any_run_creates_no_store(project, capsys):
    missing = f"{project.ns}_none" if project.ns else None
    if missing:
        project.store_yaml = project.store_yaml.replace(project.ns, missing)
        project.config()
    for cmd in ("list", "replay"):
        assert main(["quarantine", cmd, str(project.cfg)]) == 2
        assert "nothing has run against it" in capsys.readouterr().err
    assert not (project.root / "wh.duckdb").exists()
    if missing:
        with psycopg.connect(project.url) as conn:
            row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (missing,))
            assert row.fetchone() is None


def test_replay_cli(project, capsys):
    jsonl(project.root / "in" / "a.jsonl", orders(0, 3))
    assert main(["run", str(project.cfg), "--format", "json"]) == 0
    capsys.readouterr()
    assert main(["quarantine", "replay", str(project.cfg), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows_considered"] == 0


def test_raw_landing_can_be_turned_off(project):
    project.config(
        contract="contract:\n  columns: evolve\n  data_type: quarantine\n",
    )
    text = project.cfg.read_text().replace("store:\n", "store:\n  raw_landing: false\n")
    project.cfg.write_text(text)
    jsonl(project.root / "in" / "a.jsonl", orders(0, 3))
    rows = orders(3, 8)
    rows[1]["quantity"] = "x"
    jsonl(project.root / "in" / "b.jsonl", rows)
    rep = run_pipeline(project.cfg, fmt="json")
    assert_conserved(rep)
    c = project.counts()
    assert c["orders"] == 7 and c["orders__raw"] == 0 and c["orders__quarantine"] == 1


def test_a_nul_character_is_kept_in_the_quarantine(project):
    """PostgreSQL's text and jsonb cannot hold U+0000: the row goes to the quarantine, whose
    payload column keeps the original JSON text exactly."""
    jsonl(project.root / "in" / "a.jsonl", orders(0, 2))
    jsonl(project.root / "in" / "b.jsonl", orders(2, 4, note="a\x00b"))
    rep = run_pipeline(project.cfg, fmt="json")
    assert [b["status"] for b in rep["batches"]] == ["loaded", "loaded"]
    assert_conserved(rep)
    s = project.store()
    try:
        held = s.quarantine_rows("orders", with_payload=True)
    finally:
        s.close()
    if project.kind == "postgres":
        assert [h["payload"]["note"] for h in held] == ["a\x00b", "a\x00b"]


def test_a_batch_a_concurrent_run_loaded_first_is_reported_skipped(project, monkeypatch):
    jsonl(project.root / "in" / "a.jsonl", orders(0, 3))
    cls = _writer_class(project.kind)

    def raced(self, dataset, batch_id, info):
        # another run commits the same batch's mark first; ours then hits the key
        self.store._aux_execute(
            *self.store.sql_mark_done(dataset, batch_id, {**info, "run_id": "other"})
        )
        raise RuntimeError("duplicate key value violates unique constraint")

    monkeypatch.setattr(cls, "mark_done", raced)
    rep = run_pipeline(project.cfg, fmt="json")
    b = rep["batches"][0]
    assert b["status"] == "skipped" and "concurrent run other" in b["reason"]
    assert rep["exit_code"] == 0 and project.counts()["orders"] == 0


def test_a_bad_file_after_good_ones_stops_the_run_with_a_report(project, capsys):
    """Earlier batches stay committed and the report says so; the bad file writes nothing;
    exit 2 with the file and line on stderr, and still exactly one JSON document on stdout."""
    jsonl(project.root / "in" / "a.jsonl", orders(0, 5))
    (project.root / "in" / "b.jsonl").write_text('{"order_id": 6, "email": "x@y.z", "qty"\n')
    jsonl(project.root / "in" / "c.jsonl", orders(10, 5))
    assert main(["run", str(project.cfg), "--format", "json"]) == 2
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert [b["status"] for b in doc["batches"]] == ["loaded", "invalid"]
    assert doc["not_run"] and doc["not_run"][0].endswith("c.jsonl")
    assert "b.jsonl" in doc["batches"][1]["error"] and "line 1" in doc["batches"][1]["error"]
    assert "b.jsonl" in out.err and "Traceback" not in out.err
    assert project.counts()["_pw_batches"] == 1 and project.counts()["orders"] == 5


@pytest.mark.postgres
def test_a_row_too_big_for_a_postgres_page_fails_the_batch_with_what_to_do(pg_schema, tmp_path):
    """1,100 non-null bigints make a 8.8 kB row, more than a PostgreSQL page holds: the batch
    fails, nothing is written, and the error says what the limit is and what to do; the
    message carries no value."""
    proj = _pg_project(pg_schema, tmp_path)
    secret = 987_654_321_012
    jsonl(tmp_path / "in" / "a.jsonl", [{f"c{j}": secret + j for j in range(1100)}] * 3)
    rep = run_pipeline(proj.cfg, fmt="json")
    (b,) = rep["batches"]
    assert b["status"] == "failed" and rep["exit_code"] == 1
    assert "row is too big" in b["error"] and "split the dataset" in b["error"]
    assert str(secret) not in b["error"]
    assert proj.counts() == NOTHING


def test_text_output_caps_long_schema_changes(project, capsys):
    jsonl(project.root / "in" / "a.jsonl", [{f"col_{j}": "x" for j in range(60)}])
    assert main(["run", str(project.cfg)]) == 0
    out = capsys.readouterr().out
    assert "col_0 " in out and "col_24 " in out and "col_25 " not in out.split("...")[0]
    assert "... and 35 more changes (--format json lists everything)" in out
    assert "characters (--format json lists everything)" in out


def test_empty_stdin_is_named_stdin_not_a_temporary_file(tmp_path, capsys, monkeypatch):
    import io
    import sys

    (tmp_path / "p.yaml").write_text('version: 1\ndataset: t\nsource:\n  path: "-"\n')
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert main(["run", str(tmp_path / "p.yaml")]) == 2
    err = capsys.readouterr().err
    assert "<stdin>: the file is empty" in err and "pipewarden-stdin" not in err


def test_a_dataset_differing_only_by_case_is_refused_on_duckdb(tmp_path, capsys):
    (tmp_path / "a.json").write_text('[{"a": 1}]')
    for name, code in (("orders", 0), ("Orders", 2)):
        (tmp_path / "p.yaml").write_text(f"version: 1\ndataset: {name}\nsource: {{path: a.json}}\n")
        assert main(["run", str(tmp_path / "p.yaml")]) == code
    assert "differs from the existing 'orders' only by case" in capsys.readouterr().err


def test_a_batch_of_no_rows_is_loaded_as_zero_and_recorded(project):
    """'[]' or a bare CSV header is a day without new rows, not bad input: loaded with 0 rows,
    marked done (a re-run skips it), and the steps still see it once."""
    jsonl(project.root / "in" / "a_1.jsonl", orders(0, 3))
    (project.root / "in" / "a_2.jsonl").write_text("")  # an empty file stays an error
    rep = run_pipeline(project.cfg, fmt="json")
    assert [b["status"] for b in rep["batches"]] == ["loaded", "invalid"]
    (project.root / "in" / "a_2.jsonl").unlink()
    (project.root / "in" / "a_2.json").write_text("[]")
    project.config(
        contract="contract:\n  columns: evolve\n",
        extra="steps:\n  - type: anomaly\n    breaker: {enabled: false}\n",
    )
    project.root.joinpath("pipeline.yaml").write_text(
        project.cfg.read_text().replace('"in/*.jsonl"', '"in/*.json*"')
    )
    rep = run_pipeline(project.cfg, fmt="json")
    assert [b["status"] for b in rep["batches"]] == ["skipped", "loaded"]
    empty = rep["batches"][1]
    assert empty["rows_read"] == empty["rows_loaded"] == empty["rows_quarantined"] == 0
    assert empty["steps"]["anomaly"]["scored"]["status"] == "empty"
    assert rep["exit_code"] == 0 and project.counts()["_pw_batches"] == 2
    again = run_pipeline(project.cfg, fmt="json")
    assert [b["status"] for b in again["batches"]] == ["skipped", "skipped"]


def test_replayed_csv_rows_are_typed_as_a_csv_load_types_them(project):
    """A CSV payload holds strings; a replay reads them as the load did ("3" into a bigint
    column, "2.25" a decimal, "false" a boolean) and keeps the strings in the raw table."""
    project.config(contract="contract:\n  columns: quarantine\n")
    project.root.joinpath("pipeline.yaml").write_text(
        project.cfg.read_text().replace('"in/*.jsonl"', '"in/*.csv"')
    )
    (project.root / "in" / "1.csv").write_text("order_id,v,price,flag\n1,2,1.50,true\n")
    (project.root / "in" / "2.csv").write_text("order_id,v,price,flag,new\n2,3,2.25,false,x\n")
    rep = run_pipeline(project.cfg, fmt="json")
    assert [b["rows_quarantined"] for b in rep["batches"]] == [0, 1]
    project.root.joinpath("pipeline.yaml").write_text(
        project.cfg.read_text().replace("columns: quarantine", "columns: evolve")
    )
    again = replay_quarantine(project.cfg)
    assert again["rows_replayed"] == 1 and again["rows_still_quarantined"] == 0
    rows = _typed(project, "order_id, v, price, flag, new")
    assert [(r[0], r[1], float(r[2]), r[3], r[4]) for r in rows] == [
        (1, 2, 1.5, True, None),
        (2, 3, 2.25, False, "x"),
    ]
    s = project.store()
    try:
        raw = [r[0] for r in s._aux_query(f"SELECT payload FROM {s.qualify('orders__raw')}")]
    finally:
        s.close()
    assert any('"v":"3"' in str(p).replace(" ", "") or "'v': '3'" in str(p) for p in raw)


@pytest.mark.parametrize("block_bytes", [64, 1 << 20])
def test_raw_landing_of_json_lines_is_each_line_as_read(project, monkeypatch, block_bytes):
    """JSON Lines read without a step that changes rows land in the raw table as the lines
    were read (their text, not the records written again), each with its own offset, over
    chunks that span blocks of lines (64 bytes) or share one; lines ending in a carriage
    return or spaces lose them."""
    from pipewarden import batch as batch_mod

    monkeypatch.setattr(batch_mod, "JSONL_BLOCK_BYTES", block_bytes)
    lines = [f'{{"order_id": {i},  "amount": {i}.50 ,"quantity": {i % 5}}}' for i in range(20)]
    lines[6] = '{"quantity":6,"order_id":6,"amount":6.50}'  # keys in another order
    (project.root / "in" / "a.jsonl").write_text("\n".join(lines[:10]))  # no last newline
    (project.root / "in" / "b.jsonl").write_text("\r\n".join(lines[10:]) + "  \r\n")
    rep = run_pipeline(project.cfg, fmt="json")
    assert_conserved(rep)
    assert [b["rows_loaded"] for b in rep["batches"]] == [10, 10]
    s = project.store()
    try:
        got = s._aux_query(f'SELECT batch_id, "offset", payload FROM {s.qualify("orders__raw")}')
    finally:
        s.close()
    first = rep["batches"][0]["batch_id"]
    payloads = {(0 if b == first else 10) + offset: p for b, offset, p in got}
    assert sorted(payloads) == list(range(20))
    for i, payload in payloads.items():
        if project.kind == "duckdb":
            assert payload == lines[i]  # the line's text: its spaces and 0.50 kept
        else:  # jsonb keeps the value, not the text
            doc = payload if isinstance(payload, dict) else json.loads(payload)
            assert doc == json.loads(lines[i])


@pytest.mark.parametrize("block_bytes", [64, 1 << 20])
def test_raw_landing_holds_the_lines_of_the_loaded_rows_only(project, monkeypatch, block_bytes):
    """Rows held in the quarantine leave their lines out of the raw landing: each loaded row
    lands with its own line, whatever rows around it are held, in a chunk of one block of
    lines or of several; a chunk of which no row loads lands nothing."""
    from pipewarden import batch as batch_mod

    monkeypatch.setattr(batch_mod, "JSONL_BLOCK_BYTES", block_bytes)
    project.config(contract="contract:\n  columns: quarantine\n")
    jsonl(project.root / "in" / "a_1.jsonl", orders(0, 3))
    lines = [f'{{"order_id": {i},  "amount": {i}.5, "quantity": 1}}' for i in range(12)]
    for i in (2, 5, 8, 9, 10, 11):  # a key the table does not have: held
        lines[i] = lines[i][:-1] + ', "coupon": "X1"}'
    (project.root / "in" / "a_2.jsonl").write_text("\n".join(lines) + "\n")
    rep = run_pipeline(project.cfg, fmt="json")
    assert_conserved(rep)
    assert rep["batches"][1]["rows_quarantined"] == 6
    s = project.store()
    try:
        raw = s.qualify("orders__raw")
        got = s._aux_query(
            s.sql(f'SELECT "offset", payload FROM {raw} WHERE batch_id = ?'),
            (rep["batches"][1]["batch_id"],),
        )
    finally:
        s.close()
    payloads = dict(got)
    assert sorted(payloads) == [0, 1, 3, 4, 6, 7]
    for i, payload in payloads.items():
        if project.kind == "duckdb":
            assert payload == lines[i]
        else:
            doc = payload if isinstance(payload, dict) else json.loads(payload)
            assert doc == json.loads(lines[i])


def test_raw_landing_writes_rows_again_where_a_step_may_change_them(project, monkeypatch):
    """A step that prepares chunks (it may rename or mask keys before inference) makes the
    raw landing write each loaded record again, so what the step changed is what lands."""
    from pipewarden.verdict import Verdict

    class Upper:
        name = "upper"

        def prepare(self, chunk):
            chunk.records = [{k.upper(): v for k, v in r.items()} for r in chunk.records]

        def check(self, batch, ctx):
            return Verdict("upper", "pass")

        def close(self):
            pass

    monkeypatch.setattr("pipewarden.run.build_steps", lambda cfg: [Upper()])
    (project.root / "in" / "a.jsonl").write_text('{"order_id": 1,  "amount": 1.50}\n')
    rep = run_pipeline(project.cfg, fmt="json")
    assert_conserved(rep)
    s = project.store()
    try:
        (payload,) = s._aux_query(f"SELECT payload FROM {s.qualify('orders__raw')}")[0]
    finally:
        s.close()
    doc = payload if isinstance(payload, dict) else json.loads(payload)
    assert doc == {"ORDER_ID": 1, "AMOUNT": 1.5}
