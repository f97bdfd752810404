"""Primary keys within a batch: the last row of a key wins, the others are superseded; rows
without a key are held."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from pipewarden.batch import Batch
from pipewarden.keys import KeyIndex, key_verdict, normalise_key


def test_keys_compare_by_their_text():
    assert (
        normalise_key(1)
        == normalise_key(1.0)
        == normalise_key("1")
        == normalise_key(Decimal("1.00"))
    )
    assert normalise_key(1.5) != normalise_key(1)
    assert normalise_key(None) is None and normalise_key(True) == "true"
    assert normalise_key({"b": 1, "a": 2}) == normalise_key({"a": 2, "b": 1})


def test_the_last_row_of_a_key_wins_across_chunks():
    idx = KeyIndex(["id"])
    idx.update(Batch([{"id": 1}, {"id": 2}, {"id": 1}], "f", 0))
    idx.update(Batch([{"id": 3}, {"id": 1}, {"id": None}, {"id": 2}], "f", 3))
    assert idx.superseded() == {0: 4, 2: 4, 1: 6}
    assert idx.duplicates == 3 and idx.null_keys == 1 and idx.rows == 7


def test_composite_keys():
    idx = KeyIndex(["a", "b"])
    idx.update([{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "x"}, {"a": 1}])
    assert idx.superseded() == {0: 2} and idx.null_keys == 1


def test_key_verdict_holds_superseded_and_keyless_rows_by_row_number():
    chunk = Batch([{"id": 9, "v": 1}, {"id": None}, {"v": 3}, {"id": 9}], "f", offset=10)
    v = key_verdict(chunk, ["id"], {10: 13})
    got = {i.row: i.reason for i in v.issues}
    assert got == {0: "duplicate_key", 1: "null_key", 2: "null_key"}
    dup = next(i for i in v.issues if i.reason == "duplicate_key")
    assert "row 14 of the batch" in dup.message and "9" not in dup.message.replace("14", "")
    assert v.report["duplicate_key"] == 1 and v.report["null_key"] == 2


@given(st.lists(st.one_of(st.none(), st.integers(0, 6)), max_size=60), st.integers(1, 9))
def test_superseded_rows_are_exactly_the_earlier_occurrences(ids, chunk):
    records = [{"id": i} for i in ids]
    idx = KeyIndex(["id"])
    for start in range(0, len(records), chunk):
        idx.update(Batch(records[start : start + chunk], "f", start))
    last = {}
    for off, i in enumerate(ids):
        if i is not None:
            last[i] = off
    expected = {off: last[i] for off, i in enumerate(ids) if i is not None and last[i] != off}
    assert idx.superseded() == expected
    assert idx.null_keys == ids.count(None)
