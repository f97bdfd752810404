"""Readers: every format, stdin, chunking, stable batch ids, and bad input named by row."""

from __future__ import annotations

import io
import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipewarden import batch as batch_mod
from pipewarden.batch import iter_batches, read_batch
from pipewarden.errors import InputError

ROWS = [{"id": i, "name": f"n{i}", "tags": [i]} for i in range(7)]


def write(tmp_path, name, data: bytes | str):
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


@pytest.mark.parametrize("name", ["a.json", "a.txt"])
def test_json_array(tmp_path, name):
    p = write(tmp_path, name, json.dumps(ROWS, indent=2))
    b = read_batch(p)
    assert b.records == ROWS and b.fmt == "json" and b.source == str(p)


@pytest.mark.parametrize("name", ["a.jsonl", "a.ndjson", "a.json", "a"])
def test_json_lines(tmp_path, name):
    p = write(tmp_path, name, "\n".join(json.dumps(r) for r in ROWS) + "\n\n")
    b = read_batch(p)
    assert b.records == ROWS and b.fmt == "jsonl"


def test_csv_and_tsv(tmp_path):
    p = write(tmp_path, "a.csv", '\ufeffid,name,note\n1,"x, y",\n2,z,"multi\nline"\n')
    b = read_batch(p)
    assert b.fmt == "csv"
    assert b.records == [
        {"id": "1", "name": "x, y", "note": None},
        {"id": "2", "name": "z", "note": "multi\nline"},
    ]
    t = write(tmp_path, "a.tsv", "a\tb\n1\t2\n")
    assert read_batch(t).records == [{"a": "1", "b": "2"}]
    s = write(tmp_path, "semi.csv", "a;b\n1;2\n")
    assert read_batch(s).records == [{"a": "1", "b": "2"}]


def test_parquet(tmp_path):
    p = tmp_path / "a.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), p)
    assert read_batch(p).records == ROWS
    assert [len(b) for b in iter_batches(p, chunk_rows=3)] == [3, 3, 1]


def test_parquet_nanosecond_timestamps_are_read_as_iso_strings(tmp_path):
    """pandas writes nanoseconds by default; Python's datetime has microseconds only, and
    pyarrow refuses to drop the rest: they are read as ISO strings, nested ones too, and load
    like nanosecond timestamps in JSON."""
    ns = 1704067200123456789
    t = pa.table(
        {
            "t": pa.array([ns, None], type=pa.timestamp("ns")),
            "tz": pa.array([ns, ns], type=pa.timestamp("ns", tz="America/New_York")),
            "s": pa.array([{"u": ns}, None], type=pa.struct([("u", pa.timestamp("ns"))])),
            "us": pa.array([ns // 1000, None], type=pa.timestamp("us")),
        }
    )
    pq.write_table(t, tmp_path / "ns.parquet")
    r = read_batch(tmp_path / "ns.parquet").records
    assert r[0]["t"] == "2024-01-01 00:00:00.123456789" and r[1]["t"] is None
    assert r[0]["tz"] == "2023-12-31 19:00:00.123456789-0500"
    assert r[0]["s"] == {"u": "2024-01-01 00:00:00.123456789"}
    assert r[0]["us"].microsecond == 123456  # microseconds stay datetimes


def test_parquet_duplicate_column_names_are_refused(tmp_path):
    p = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"]), p)
    with pytest.raises(InputError, match="duplicate column name.*'a'"):
        read_batch(p)


def test_stdin(tmp_path, monkeypatch):
    data = "\n".join(json.dumps(r) for r in ROWS).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    b = read_batch("-")
    assert b.records == ROWS and b.source == "<stdin>"


def test_chunks_offsets_and_stable_ids(tmp_path):
    p = write(tmp_path, "a.jsonl", "\n".join(json.dumps(r) for r in ROWS))
    first = list(iter_batches(p, chunk_rows=3))
    assert [b.offset for b in first] == [0, 3, 6]
    assert first[1].row_number(0) == 4
    again = list(iter_batches(p, chunk_rows=3))
    assert [b.batch_id for b in first] == [b.batch_id for b in again]
    assert len({b.batch_id for b in first}) == 3
    p.write_text("\n".join(json.dumps(r) for r in ROWS[::-1]))
    assert [b.batch_id for b in iter_batches(p, chunk_rows=3)][0] != first[0].batch_id


def test_streamed_json_array_matches_whole_parse(tmp_path, monkeypatch):
    rows = [{"i": i, "s": "é" * (i % 5), "big": 2**70 + i} for i in range(3000)]
    p = write(tmp_path, "a.json", json.dumps(rows))
    whole = read_batch(p).records
    monkeypatch.setattr(batch_mod, "WHOLE_JSON_BYTES", 0)
    monkeypatch.setattr(batch_mod, "_READ_CHARS", 1000)
    streamed = [r for b in iter_batches(p, chunk_rows=500) for r in b.records]
    assert whole == streamed == rows
    assert type(streamed[0]["big"]) is int  # not a float


def test_huge_integers_stay_exact_in_jsonl(tmp_path):
    p = write(tmp_path, "a.jsonl", '{"n": 123456789012345678901234567890}\n')
    assert read_batch(p).records[0]["n"] == 123456789012345678901234567890


BAD = [
    ("empty.json", b"", "empty", None),
    ("blank.jsonl", b"  \n\n", "empty", None),
    ("trunc.json", b'[{"a": 1},\n {"a": 2},\n {"a": ', "truncated", 3),
    ("unclosed.json", b'[{"a": 1},\n {"a": 2}\n', "not closed", 2),
    ("object.json", b'{"a": 1,\n "b": 2}', "top-level JSON value is an object", None),
    ("scalar.json", b'[{"a": 1}, 5]', "not an object", 2),
    ("mixed.json", b'[{"a": 1}]\n{"a": 2}\n', "after the end", None),
    ("bad.jsonl", b'{"a": 1}\n{"a": }\n', "invalid JSON", 2),
    ("array.jsonl", b'{"a": 1}\n[1, 2]\n', "array, not an object", 2),
    ("trunc.jsonl", b'{"a": 1}\n{"a": 2', "invalid JSON", 2),
    ("long.csv", b"a,b\n1,2\n3,4,5\n", "3 fields, the header has 2", 2),
    ("dupe.csv", b"a,b,a\n1,2,3\n", "duplicate column", None),
    ("header.csv", b"\n", "empty", None),
    # nesting beyond what the parsers take: a clear error, not a RecursionError
    ("deep.json", b'[{"a": 1}, ' + b'{"a": ' * 1100 + b"1" + b"}" * 1100 + b"]", "too deeply", 2),
    ("deep.jsonl", b'{"a": 1}\n' + b'{"a": ' * 1100 + b"1" + b"}" * 1100 + b"\n", "too deeply", 2),
    (
        "deeplong.json",
        b'[{"a": 12345678901234567890123}, ' + b'{"a": ' * 1100 + b"1" + b"}" * 1100 + b"]",
        "too deeply",
        2,
    ),
    # NaN is not JSON, also where a long integer sends the line to the exact parser
    ("nan.jsonl", b'{"a": 1}\n{"a": 12345678901234567890123, "b": NaN}\n', "NaN", 2),
]


@pytest.mark.parametrize(("name", "data", "needle", "row"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_file_and_row(tmp_path, name, data, needle, row):
    p = write(tmp_path, name, data)
    with pytest.raises(InputError) as info:
        list(iter_batches(p))
    err = info.value
    assert err.file == str(p)
    assert needle in err.message
    assert err.row == row
    assert err.exit_code == 2
    assert str(p) in err.render()


@pytest.mark.parametrize("name", ["u.jsonl", "u.json", "u.csv"])
def test_invalid_utf8_gives_byte_offset_and_line(tmp_path, name):
    body = {
        "u.jsonl": b'{"a": "ok"}\n{"a": "\xff"}\n',
        "u.json": b'[{"a": "ok"},\n {"a": "\xff"}]',
        "u.csv": b"a\nok\n\xff\n",
    }[name]
    p = write(tmp_path, name, body)
    with pytest.raises(InputError) as info:
        list(iter_batches(p))
    assert info.value.line == (3 if name == "u.csv" else 2)
    offset = body.index(b"\xff")
    assert f"byte offset {offset}" in info.value.message


def test_latin1_with_encoding(tmp_path):
    p = write(tmp_path, "l.csv", "name\nJos\xe9\n".encode("latin-1"))
    assert read_batch(p, encoding="latin-1").records == [{"name": "José"}]


def test_no_such_file():
    with pytest.raises(InputError, match="no such file"):
        read_batch("/nonexistent/x.json")


def test_damaged_parquet(tmp_path):
    p = write(tmp_path, "x.parquet", b"PAR1 this is not parquet")
    with pytest.raises(InputError, match="Parquet"):
        read_batch(p)


def test_empty_array_and_bare_header_are_zero_rows(tmp_path):
    assert len(read_batch(write(tmp_path, "e.json", "[ ]"))) == 0
    assert len(read_batch(write(tmp_path, "h.csv", "a,b\n"))) == 0


def test_one_object_on_one_line_is_one_record_of_json_lines(tmp_path):
    assert read_batch(write(tmp_path, "one.json", '{"a": 1}')).records == [{"a": 1}]


def test_a_json_array_named_jsonl(tmp_path):
    p = write(tmp_path, "a.jsonl", json.dumps(ROWS))
    assert read_batch(p).records == ROWS


@pytest.mark.parametrize(("name", "streamed_json"), [("m.jsonl", False), ("m.json", True)])
def test_memory_stays_bounded_by_the_chunk(tmp_path, monkeypatch, name, streamed_json):
    import tracemalloc

    rows = [{"i": i, "s": f"value {i}", "n": {"k": [i, i]}} for i in range(8_000)]
    body = json.dumps(rows) if name.endswith(".json") else "\n".join(map(json.dumps, rows))
    p = write(tmp_path, name, body)
    if streamed_json:
        monkeypatch.setattr(batch_mod, "WHOLE_JSON_BYTES", 0)
        monkeypatch.setattr(batch_mod, "_READ_CHARS", 4096)
    monkeypatch.setattr(batch_mod, "JSONL_BLOCK_BYTES", 1 << 14)

    def peak(fn):
        tracemalloc.start()
        fn()
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return top

    def stream():
        n = 0
        for b in iter_batches(p, chunk_rows=200):
            n += len(b)
            del b
        assert n == len(rows)

    whole = peak(lambda: read_batch(p))
    streaming = peak(stream)
    assert streaming * 5 < whole, (streaming, whole)


@pytest.mark.parametrize("name", ["a.jsonl.gz", "a.csv.gz", "a.json.gz", "a.gz"])
def test_gzip_is_read_through(tmp_path, name):
    import gzip

    if ".csv" in name:
        body, want = "id,name\n1,x\n", [{"id": "1", "name": "x"}]
    elif name == "a.json.gz":
        body, want = json.dumps(ROWS), ROWS
    else:
        body, want = "\n".join(map(json.dumps, ROWS)), ROWS
    p = tmp_path / name
    p.write_bytes(gzip.compress(body.encode()))
    assert read_batch(p).records == want


def test_gzip_with_bad_utf8_names_the_offset(tmp_path):
    import gzip

    p = tmp_path / "u.jsonl.gz"
    p.write_bytes(gzip.compress(b'{"a": 1}\n{"a": "\xff"}\n'))
    with pytest.raises(InputError) as info:
        read_batch(p)
    assert "byte offset 16 (uncompressed)" in info.value.message and info.value.line == 2


def test_csv_fields_longer_than_pythons_default_limit_are_read(tmp_path):
    """Python's csv module refuses fields over 131,072 characters by default ('field larger
    than field limit'), which valid exports with long notes exceed."""
    long = "x" * 300_000
    r = read_batch(write(tmp_path, "l.csv", f'id,note\n1,"{long}"\n')).records
    assert r == [{"id": "1", "note": long}]


def test_json_of_a_record_writes_bytes_as_base64_as_the_typed_column_does():
    """Parquet binary values: the raw table and the quarantine payload hold the same base64
    text as the typed column, not Python's repr (b'\\x00\\xff')."""
    from pipewarden.batch import json_bytes

    assert json.loads(json_bytes({"b": b"\x00\xff"})) == {"b": "AP8="}
    assert json.loads(json_bytes({"b": b"\x00\xff", "big": 10**30})) == {
        "b": "AP8=",
        "big": 10**30,
    }


def test_chunks_read_are_frozen_while_read_and_nothing_stays_frozen(tmp_path):
    """The records of a chunk are kept out of the collector's scans while the file is read;
    a cycle made meanwhile is still collected, and nothing is frozen once reading ends."""
    import gc
    import weakref

    p = tmp_path / "rows.jsonl"
    p.write_text("".join(f'{{"a": {i}}}\n' for i in range(7)))

    class Node:
        pass

    refs = []
    frozen = []
    for _chunk in iter_batches(p, chunk_rows=3):
        frozen.append(gc.get_freeze_count())
        node = Node()
        node.me = node  # a cycle: only the collector frees it
        refs.append(weakref.ref(node))
        del node
    assert len(frozen) == 3 and all(n > 0 for n in frozen)
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert all(r() is None for r in refs)


def test_a_chunks_columns_are_frozen_with_it_while_the_file_is_read(tmp_path):
    """Columns made while a file is read are kept out of the collector's scans like the
    chunk's records (each collection that found them young visited every value they hold);
    columns made outside a reading stay with the collector."""
    import gc

    p = tmp_path / "rows.jsonl"
    p.write_text("".join(f'{{"a": {i}, "m": {{"v": {i}}}}}\n' for i in range(7)))

    def collected(obj) -> bool:  # in one of the collector's generations (not frozen)
        return any(o is obj for o in gc.get_objects())

    seen = 0
    for chunk in iter_batches(p, chunk_rows=3):
        col = chunk.columns()["m"]
        assert gc.is_tracked(col) and not collected(col)
        seen += 1
    assert seen == 3 and gc.get_freeze_count() == 0
    col = batch_mod.Batch([{"a": 1, "m": {"v": 1}}], "x").columns()["m"]
    assert gc.is_tracked(col) and collected(col)


def test_json_array_is_json_bytes_of_each_value_in_one_arrow_array():
    """``json_array`` writes each value as ``json_bytes`` does, orjson's refusals included
    (an integer beyond 64 bits, nesting past orjson's limit, an exact number), with the
    values ``nulls`` marks left null."""
    import datetime as dt

    import numpy as np

    from pipewarden.batch import Exact, json_array, json_bytes

    deep: object = 1
    for _ in range(300):
        deep = [deep]
    values = [
        {"a": 1, "b": "é\u0000"},
        {"big": 10**30},
        deep,
        {"x": Exact("1e400"), "d": dt.date(2024, 1, 2), "raw": b"\x00\xff"},
        None,
        "text",
    ]
    arr = json_array(values)
    assert arr.type == pa.string()
    assert arr.to_pylist() == [json_bytes(v).decode() for v in values]
    assert json.loads(arr[1].as_py()) == {"big": 10**30}
    nulls = np.array([False, False, False, False, True, False])
    masked = json_array(values, nulls)
    assert masked.null_count == 1
    assert masked.to_pylist() == [json_bytes(v).decode() if v is not None else None for v in values]
    assert json_array([]).to_pylist() == []


def test_a_chunks_column_types_and_parsed_texts_are_found_once_per_records(monkeypatch):
    """``Batch.types`` and ``Batch.temporal`` are found once per chunk and shared by their
    readers; a new records list, or ``changed()``, makes them be found again."""
    from pipewarden import columnar

    calls = []
    parse = columnar.parse_temporal
    monkeypatch.setattr(columnar, "parse_temporal", lambda v: calls.append(1) or parse(v))
    none = type(None)
    b = batch_mod.Batch(
        [{"t": "2024-01-02T03:04:05Z", "n": 1}, {"t": None, "n": "x"}, {"t": 5}], "x"
    )
    assert b.types("t") == {str, none, int} and b.types("n") == {int, str, none}
    assert b.types("absent") == frozenset()
    kinds, micros = b.temporal("t")
    assert kinds.tolist() == [columnar.TIMESTAMPTZ, columnar.NONE, columnar.NONE]
    assert micros[0] == 1704164645 * 10**6
    assert b.temporal("t") is b.temporal("t") and len(calls) == 1
    b.records = [{"t": "2024-01-02"}]
    assert b.types("t") == {str}
    assert b.temporal("t")[0].tolist() == [columnar.DATE] and len(calls) == 2
    b.records[0]["t"] = 3
    b.changed()
    assert b.types("t") == {int} and b.temporal("t")[0].tolist() == [columnar.NONE]
