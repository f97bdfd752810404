"""The run parses a JSON Lines file once: pass 1 keeps each chunk's columns and lines in a
spool file (spool.py) and pass 2 reads them back. What it loads must be what reading the file
again loads: the typed table, the raw landing and the quarantine, row for row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipewarden import batch as batch_mod
from pipewarden import spool as spool_mod
from pipewarden.batch import iter_batches
from pipewarden.run import run_pipeline
from pipewarden.spool import ChunkSpool, ColumnRows

HOSTILE = 'Robert"); DROP TABLE x;--'


def _rows(lo: int, hi: int, late: bool) -> list[dict]:
    out = []
    for i in range(lo, hi):
        r = {
            "id": i,
            "n": i * 3,
            "big": 2**63 + i,  # beyond int64, within orjson's fast path
            "x": [0.1, -0.0, 1e308, 1.5e-30][i % 4],
            "ok": i % 3 == 0,
            "note": None if i % 2 else f"ü {i}",
            "meta": {"z": i, "a": [1, {"b": None, "c": "é"}], "": True},
            HOSTILE: f"v{i}",
            "when": f"2024-01-{1 + i % 28:02d}T10:00:00Z",
        }
        if late and i >= hi - 3:  # a type flip at the very end of the file
            r["n"] = f"text {i}"
            r["ok"] = "maybe"
        out.append(r)
    return out


def _write(path: Path, rows: list[dict], crlf: bool = False) -> None:
    end = "\r\n" if crlf else "\n"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + end for r in rows))


def _config(tmp: Path, data: Path, db: str, chunk: int = 7) -> Path:
    cfg = tmp / f"{db}.yaml"
    cfg.write_text(
        f"version: 1\ndataset: ev\nsource:\n  path: {data}\n  chunk_rows: {chunk}\n"
        f"store:\n  kind: duckdb\n  path: {tmp / db}.duckdb\n"
        "contract:\n  columns: evolve\n  data_type: quarantine\n"
    )
    return cfg


def _dump(path: Path) -> dict:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            "typed": con.execute("select * from ev order by id").fetchall(),
            "raw": con.execute(
                'select batch_id, "offset", payload from ev__raw order by 1, 2'
            ).fetchall(),
            "quarantine": con.execute(
                'select batch_id, "offset", payload, reason, message, column_path, issues,'
                " schema_version from ev__quarantine order by 1, 2"
            ).fetchall(),
            "schema": con.execute("select version, schema from _pw_schema_history").fetchall(),
        }
    finally:
        con.close()


def _count_reads(monkeypatch) -> list[str]:
    calls: list[str] = []

    def counting(path, *a, **k):
        calls.append(str(path))
        return iter_batches(path, *a, **k)

    monkeypatch.setattr(batch_mod, "iter_batches", counting)
    return calls


def _load_twice(tmp: Path, db: str, monkeypatch, files: list[Path]) -> dict:
    for f in files:
        rep = run_pipeline(_config(tmp, f, db), fmt="json")
        assert rep["exit_code"] == 0, rep
        assert all(b["status"] == "loaded" for b in rep["batches"]), rep
    return _dump(tmp / f"{db}.duckdb")


@pytest.mark.parametrize("blocks", ["one", "many"])
@pytest.mark.parametrize("crlf", [False, True])
def test_a_file_is_parsed_once_and_loads_what_reading_it_again_loads(
    tmp_path, monkeypatch, crlf, blocks
):
    if blocks == "many":  # each chunk's lines are slices of several blocks the reader read
        monkeypatch.setattr(batch_mod, "JSONL_BLOCK_BYTES", 700)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    _write(first, _rows(0, 20, late=False), crlf)  # the table: n bigint, ok boolean
    _write(second, _rows(20, 60, late=True), crlf)  # rows that do not fit, in the last chunk
    calls = _count_reads(monkeypatch)
    spooled = _load_twice(tmp_path, "spooled", monkeypatch, [first, second])
    assert calls == [str(first), str(second)]  # each file read once
    assert spooled["quarantine"] and all(q[3] == "type_mismatch" for q in spooled["quarantine"])

    monkeypatch.setattr(ChunkSpool, "add", lambda self, b: self.give_up())  # no spool
    calls.clear()
    reread = _load_twice(tmp_path, "reread", monkeypatch, [first, second])
    assert calls == [str(first), str(first), str(second), str(second)]
    assert spooled == reread
    assert len(spooled["typed"]) == 57 and len(spooled["raw"]) == 57
    assert len(spooled["quarantine"]) == 3


@pytest.mark.parametrize(
    "odd",
    [
        "many_shapes",  # more distinct key sequences than the spool keeps
        "big_int",  # beyond 64 bits: the careful parser, no lines kept
    ],
)
def test_a_chunk_the_spool_cannot_keep_exactly_is_read_again(tmp_path, monkeypatch, odd):
    rows = _rows(0, 30, late=False)
    if odd == "many_shapes":
        monkeypatch.setattr(spool_mod, "MAX_SHAPES", 1)
        rows[-1] = dict(reversed(list(rows[-1].items())))
        rows[-1]["n"] = "held"  # quarantined when the table has n bigint: its payload shows
    else:
        rows[-1]["big"] = 2**70
    data = tmp_path / "d.jsonl"
    seed = tmp_path / "s.jsonl"
    _write(seed, _rows(100, 110, late=False))
    _write(data, rows)
    given_up = []
    real = ChunkSpool.give_up
    monkeypatch.setattr(ChunkSpool, "give_up", lambda self: given_up.append(1) or real(self))
    calls = _count_reads(monkeypatch)
    got = _load_twice(tmp_path, "w", monkeypatch, [seed, data])
    assert calls.count(str(data)) == 2 and given_up
    if odd == "many_shapes":
        (q,) = got["quarantine"]
        assert list(json.loads(q[2])) == list(reversed(list(_rows(0, 1, False)[0])))
    else:
        payload = next(p for _, o, p in got["raw"] if o == 29)
        assert json.loads(payload)["big"] == 2**70


def _gappy(lo: int, hi: int) -> list[dict]:
    """Records that leave keys out, as APIs that omit null fields write them: many lack
    some keys, one record has a key no other has, one has its keys in another order and is
    held (``n`` text)."""
    rows = _rows(lo, hi, late=False)
    for i, r in enumerate(rows):
        if i % 3 == 0:
            del r["note"]
        if i % 5 == 1:
            del r["x"], r["meta"]
        if i % 7 == 2:
            del r[HOSTILE]
    rows[-1]["late_key"] = 1  # in the last row only
    rows[4] = dict(reversed(list(rows[4].items())))  # its keys in another order
    rows[4]["n"] = "held"  # quarantined where the table has n bigint: its payload shows
    return rows


def test_records_that_leave_keys_out_are_parsed_once_and_load_as_read(tmp_path, monkeypatch):
    """Uneven keys are spooled with which records have each: what loads is what reading
    the file again loads, a held record's payload has exactly its own keys in its order, and
    a key absent from a record is null in the typed table."""
    seed, data = tmp_path / "s.jsonl", tmp_path / "d.jsonl"
    _write(seed, _rows(100, 110, late=False))
    _write(data, _gappy(0, 30))
    calls = _count_reads(monkeypatch)
    spooled = _load_twice(tmp_path, "spooled", monkeypatch, [seed, data])
    assert calls.count(str(data)) == 1  # parsed once
    monkeypatch.setattr(ChunkSpool, "add", lambda self, b: self.give_up())  # no spool
    reread = _load_twice(tmp_path, "reread", monkeypatch, [seed, data])
    assert spooled == reread
    (q,) = spooled["quarantine"]
    assert list(json.loads(q[2])) == list(_gappy(0, 30)[4])
    by_id = {r[0]: r for r in spooled["typed"]}
    assert by_id[29][-1] == 1 and by_id[0][-1] is None and by_id[100][-1] is None
    assert len(spooled["typed"]) == 39 and len(spooled["raw"]) == 39


def test_the_spool_gives_back_records_with_their_own_keys(tmp_path):
    data = tmp_path / "d.jsonl"
    _write(data, _gappy(0, 40))
    spool = ChunkSpool()
    try:
        read = list(iter_batches(data, chunk_rows=16, identify=False, lines=True))
        for b in read:
            b.columns()
            assert spool.add(b)
        back = list(spool.batches("b"))
    finally:
        spool.close()
    assert [len(b) for b in back] == [16, 16, 8]
    for a, b in zip(read, back, strict=True):
        assert list(b.records) == a.records
        assert [list(r) for r in b.records] == [list(r) for r in a.records]  # key order
        assert b.records[-1] == a.records[-1] and b.records[3:7] == a.records[3:7]
        assert b.columns() == a.columns()


def test_column_rows_are_the_records():
    path = Path(__file__).parent / "_spool_rows.jsonl"
    try:
        _write(path, _rows(0, 9, late=False))
        (b,) = iter_batches(path, chunk_rows=100, identify=False)
        cols = b.columns()
        rows = ColumnRows(tuple(cols), tuple(cols.values()), len(b))
        assert list(rows) == b.records and len(rows) == 9
        assert rows[0] == b.records[0] and rows[-1] == b.records[-1]
        assert list(rows[-1]) == list(b.records[-1])  # the keys' order
        assert rows[2:5] == b.records[2:5]
        with pytest.raises(IndexError):
            rows[9]
    finally:
        path.unlink()


def test_a_failed_pass_one_leaves_no_spool_open(tmp_path, monkeypatch):
    data = tmp_path / "d.jsonl"
    data.write_text('{"a": 1}\n{"a": 2}\n{"a": \n')
    made: list[ChunkSpool] = []
    real = ChunkSpool.__init__

    def init(self):
        real(self)
        made.append(self)

    monkeypatch.setattr(ChunkSpool, "__init__", init)
    rep = run_pipeline(_config(tmp_path, data, "w", chunk=1), fmt="json")
    assert rep["exit_code"] == 2
    assert made and all(not s.usable for s in made)
    assert spool_mod.ChunkSpool is ChunkSpool


def test_a_primary_key_is_checked_on_the_spooled_columns(tmp_path, monkeypatch):
    """Duplicate and null keys are found as when the file is read again, and the key check
    makes no record from the spooled columns (only held rows are made, for their payloads)."""
    rows = _rows(0, 30, late=False)
    for r in rows:
        r["k"] = r["id"] % 11 if r["id"] != 17 else None  # repeats, and one null key
    data = tmp_path / "d.jsonl"
    _write(data, rows)
    made = []
    real_get = ColumnRows.__getitem__
    monkeypatch.setattr(ColumnRows, "__getitem__", lambda s, i: made.append(i) or real_get(s, i))
    monkeypatch.setattr(ColumnRows, "__iter__", lambda s: pytest.fail("records made"))

    def load(db: str) -> dict:
        cfg = _config(tmp_path, data, db)
        cfg.write_text(cfg.read_text() + "primary_key: [k]\n")
        rep = run_pipeline(cfg, fmt="json")
        assert rep["exit_code"] == 0, rep
        return {**_dump(tmp_path / f"{db}.duckdb"), "keys": rep["batches"][0]["keys"]}

    calls = _count_reads(monkeypatch)
    spooled = load("spooled")
    assert calls == [str(data)]
    assert spooled["keys"] == {"primary_key": ["k"], "duplicate_key": 18, "null_key": 1}
    assert len(made) <= 3 * len(spooled["quarantine"]) < 3 * len(rows)  # held rows only
    monkeypatch.setattr(ChunkSpool, "add", lambda self, b: self.give_up())
    assert load("reread") == spooled


@pytest.mark.parametrize("where", ["open", "write"])
def test_a_full_or_missing_temporary_directory_reads_the_file_again(tmp_path, monkeypatch, where):
    import errno
    import tempfile

    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    _write(first, _rows(0, 20, late=False))
    _write(second, _rows(20, 60, late=True))
    expected = _load_twice(tmp_path, "expected", monkeypatch, [first, second])

    class Full:
        def __init__(self, *a, **k):
            self.written = 0

        def write(self, data):
            self.written += 1
            if self.written > 5:  # the first chunk fits, the second does not
                raise OSError(errno.ENOSPC, "No space left on device")
            return len(data)

        def close(self):
            pass

    if where == "open":

        def no_dir(*a, **k):
            raise FileNotFoundError(errno.ENOENT, "No usable temporary directory")

        monkeypatch.setattr(tempfile, "TemporaryFile", no_dir)
    else:
        monkeypatch.setattr(tempfile, "TemporaryFile", Full)
    calls = _count_reads(monkeypatch)
    got = _load_twice(tmp_path, "full", monkeypatch, [first, second])
    assert calls == [str(first), str(first), str(second), str(second)]  # read again
    assert got == expected


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(["z", "a"]), st.integers(0, 3), max_size=2),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["id", "a", "b", "", "é", HOSTILE]), _VALUES, min_size=1, max_size=6
        ),  # fmt: skip
        min_size=1,
        max_size=40,
    ),
    st.integers(1, 17),
)
def test_any_records_the_spool_keeps_come_back_exactly(tmp_path, records, chunk):
    """Whatever keys, key orders and values the records have: a chunk the spool keeps comes
    back with the same records (their keys in their order, the same values of the same
    types) and the same columns; a chunk it cannot keep gives the spool up."""
    data = tmp_path / "h.jsonl"
    _write(data, records)
    read = list(iter_batches(data, chunk_rows=chunk, identify=False, lines=True))
    spool = ChunkSpool()
    try:
        kept = True
        for b in read:
            b.columns()
            kept = kept and spool.add(b)
        back = list(spool.batches("b")) if kept else None
    finally:
        spool.close()
    event("kept" if kept else "given up")
    event(f"{max(len(set(map(tuple, b.records))) for b in read)} key sequences")
    if not kept:  # numbers beyond 64 bits go through the careful parser: no lines kept
        assert any(b.lines is None for b in read)
        return
    for a, b in zip(read, back, strict=True):
        assert len(b) == len(a) and b.offset == a.offset
        got = list(b.records)
        assert got == a.records
        assert [list(r) for r in got] == [list(r) for r in a.records]
        assert [[type(v) for v in r.values()] for r in got] == [
            [type(v) for v in r.values()] for r in a.records
        ]
        assert {k: list(v) for k, v in b.columns().items()} == {
            k: list(v) for k, v in a.columns().items()
        }
        # each column's types come with it (found in pass 1), the types of its values
        assert set(b._cached()[3]) == set(a.columns())
        assert {k: b.types(k) for k in a.columns()} == {
            k: frozenset(map(type, v)) for k, v in a.columns().items()
        }
        assert b.lines.to_pylist() == a.lines.to_pylist()


def test_a_chunk_of_many_key_sequences_comes_back_exactly(tmp_path):
    """Nine optional fields give 512 key sequences in a chunk (two bytes a record name its
    own): every record comes back with its keys."""
    rows = [{"id": i, **{f"k{b}": b for b in range(9) if i >> b & 1}} for i in range(1024)]
    data = tmp_path / "many.jsonl"
    _write(data, rows)
    read = list(iter_batches(data, chunk_rows=600, identify=False, lines=True))
    spool = ChunkSpool()
    try:
        for b in read:
            b.columns()
            assert spool.add(b)
        back = list(spool.batches("b"))
    finally:
        spool.close()
    assert len({tuple(r) for r in read[0].records}) > 256
    assert [r for b in back for r in b.records] == rows
    assert [list(r) for b in back for r in b.records] == [list(r) for r in rows]
