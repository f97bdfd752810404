"""Shapes of real-world files: records inside an object (``records_path``), CSV rows that leave
trailing fields off (``short_rows``), numbers a double cannot hold, and where a malformed
JSON array is really broken."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from runkit import UBUNTU

from pipewarden import batch as batch_mod
from pipewarden.batch import Exact, iter_batches, json_bytes, json_loads, read_batch
from pipewarden.batch import parse_records_path as parse
from pipewarden.errors import InputError

RECORDS = [{"code": "en", "name": "English"}, {"code": "de", "name": "Deutsch", "n": 2}]


def write(tmp_path, name, data: bytes | str):
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


@pytest.fixture(params=["whole", "streamed"])
def streamed(request, monkeypatch):
    """Run a test on the whole-file parse and on the streaming parser (small reads, so values
    cross the read boundaries)."""
    if request.param == "streamed":
        monkeypatch.setattr(batch_mod, "WHOLE_JSON_BYTES", 0)
        monkeypatch.setattr(batch_mod, "_READ_CHARS", 7)
    return request.param


def test_paths_parse_as_pointer_or_dotted():
    assert parse(None) == parse("") == parse("/") == parse("$") == ()
    assert parse("data") == parse("/data") == parse("$.data") == ("data",)
    assert parse("results[0].items") == ("results", "0", "items")
    assert parse("/results/0/items") == ("results", "0", "items")
    assert parse("/a~1b/c~0d") == ("a/b", "c~d")
    with pytest.raises(InputError, match="not a path"):
        parse("data..items")


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"languages": RECORDS}, "languages"),
        ({"data": RECORDS, "next": "https://api.example.com/?page=2", "count": 12345}, "data"),
        (
            {"meta": {"n": 1.5e-3, "k": [1, {"x": "]"}]}, "result": {"items": RECORDS}},
            "result.items",
        ),
        ({"pages": [{"items": []}, {"items": RECORDS, "more": False}]}, "/pages/1/items"),
        ({"z": "}{][", "data": RECORDS, "after": {"deep": [[[]]]}}, "$.data"),
    ],
)
def test_records_path_finds_the_array_in_an_object(tmp_path, streamed, doc, path):
    p = write(tmp_path, "a.json", json.dumps(doc, indent=1))
    assert read_batch(p, records_path=path).records == RECORDS


def test_records_path_in_json_lines(tmp_path):
    lines = [{"data": RECORDS[:1], "page": 1}, {"data": [], "page": 2}, {"data": RECORDS[1:]}]
    p = write(tmp_path, "a.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    assert read_batch(p, records_path="data").records == RECORDS
    bad = write(tmp_path, "b.jsonl", json.dumps(lines[0]) + "\n" + json.dumps({"x": 1}) + "\n")
    with pytest.raises(InputError) as info:
        read_batch(bad, records_path="data")
    assert info.value.line == 2 and "no key 'data'" in info.value.message


@pytest.mark.parametrize(
    ("doc", "path", "needle"),
    [
        ({"languages": RECORDS}, "data", "the object at / has no key 'data'"),
        ({"data": {"items": 3}}, "data.items", "/data/items: the value there is a number"),
        ({"data": "x"}, "data.items", "the value at /data is a string, it has no 'items'"),
        ({"data": [1, 2]}, "data", "is a number, not an object"),
        ({"pages": [RECORDS]}, "/pages/3", "the array at /pages has no item 3"),
    ],
)
def test_records_path_errors_say_where_the_path_stops(tmp_path, streamed, doc, path, needle):
    p = write(tmp_path, "a.json", json.dumps(doc))
    with pytest.raises(InputError) as info:
        read_batch(p, records_path=path)
    assert needle in info.value.message
    assert info.value.exit_code == 2


def test_an_object_without_records_path_names_the_array_to_use(tmp_path, streamed):
    p = write(tmp_path, "a.json", json.dumps({"languages": RECORDS, "version": 3}, indent=2))
    with pytest.raises(InputError) as info:
        read_batch(p)
    assert "object, not an array of records" in info.value.message
    if streamed == "whole":
        assert "records_path to languages" in info.value.hint
    else:
        assert "records_path" in info.value.hint


def test_records_path_after_the_array_checks_the_rest(tmp_path, streamed):
    p = write(tmp_path, "a.json", '{"data": [{"a": 1}], "next": ')
    with pytest.raises(InputError, match="truncated|invalid"):
        read_batch(p, records_path="data")


def test_records_path_is_for_json_only(tmp_path):
    p = write(tmp_path, "a.csv", "a,b\n1,2\n")
    with pytest.raises(InputError, match="applies to JSON"):
        read_batch(p, records_path="data")


# ---- CSV rows that leave trailing fields off (Debian's distro-info-data ubuntu.csv shape)


def test_short_rows_are_padded_by_default(tmp_path):
    p = write(tmp_path, "ubuntu.csv", UBUNTU)
    b = read_batch(p)
    assert len(b) == 3 and b.meta["rows_padded"] == 2 and "short_rows" not in b.meta
    assert b.records[0]["eol"] == "2006-04-30" and b.records[0]["eol-server"] is None
    assert b.records[0]["eol-elts"] is None and b.records[2]["eol-elts"] == "2034-04-25"
    assert list(b.records[0]) == list(b.records[2])


def test_short_rows_quarantine_marks_them_per_chunk(tmp_path):
    p = write(tmp_path, "ubuntu.csv", UBUNTU)
    chunks = list(iter_batches(p, chunk_rows=2, short_rows="quarantine"))
    assert chunks[0].meta["short_rows"] == {0: 6, 1: 7}
    assert "short_rows" not in chunks[1].meta or chunks[1].meta["short_rows"] == {}
    assert chunks[0].meta["header_fields"] == 9


def test_short_rows_error_says_the_real_cause(tmp_path):
    p = write(tmp_path, "ubuntu.csv", UBUNTU)
    with pytest.raises(InputError) as info:
        read_batch(p, short_rows="error")
    err = info.value
    assert err.row == 1 and err.line == 2
    assert "last 3 are left off" in err.message and "short_rows" in err.hint
    assert "quote" not in err.hint


def test_a_long_row_points_at_an_unquoted_delimiter(tmp_path):
    p = write(tmp_path, "a.csv", "a;b\n1;2\n3;4;5\n")
    with pytest.raises(InputError) as info:
        read_batch(p)
    assert "3 fields, the header has 2" in info.value.message
    assert "';' unquoted" in info.value.hint


# ---- numbers a double cannot hold


@pytest.mark.parametrize(
    "text", ["1.0e-400", "-2.5E-999", "1e400", "-1E+400", "0." + "0" * 400 + "1"]
)
def test_numbers_beyond_a_double_are_kept_exact(tmp_path, streamed, text):
    for name, data in (("a.json", f'[{{"x": {text}}}]'), ("a.jsonl", f'{{"x": {text}}}\n')):
        v = read_batch(write(tmp_path, name, data)).records[0]["x"]
        assert type(v) is Exact and v == Decimal(text), (name, v)
        assert json_loads(json_bytes({"x": v}))["x"] == v  # written back as the number


def test_ordinary_and_zero_floats_stay_floats(tmp_path):
    rows = read_batch(write(tmp_path, "a.json", '[{"x": 0.0e-500, "y": 1.5e-120, "z": 1e-320}]'))
    r = rows.records[0]
    assert r == {"x": 0.0, "y": 1.5e-120, "z": 1e-320}
    assert all(type(v) is float for v in r.values())


# ---- a malformed array names the real problem and its place


def test_a_missing_comma_between_records_is_not_called_truncated(tmp_path, streamed):
    rows = [json.dumps({"a": i, "s": "x" * 30}) for i in range(400)]
    text = "[" + ",\n".join(rows[:200]) + "\n" + ",\n".join(rows[200:]) + "]"
    p = write(tmp_path, "a.json", text)
    with pytest.raises(InputError) as info:
        read_batch(p)
    err = info.value
    assert "truncated" not in err.message
    assert "after record 200" in err.message and "comma is missing" in err.hint
    assert err.line == 201 and err.row == 201


def test_a_missing_comma_inside_a_record_names_its_line(tmp_path, streamed):
    rows = [json.dumps({"a": i, "s": "x" * 30}) for i in range(400)]
    rows[350] = '{"a": 1, "s": "y" "t": 3}'
    p = write(tmp_path, "a.json", "[" + ",\n".join(rows) + "]")
    with pytest.raises(InputError) as info:
        read_batch(p)
    err = info.value
    assert "truncated" not in err.message and "delimiter" in err.message
    assert err.row == 351 and err.line == 351
