"""Inference: the lattice, every row counts, strings sub-typed, order does not matter."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from pipewarden.batch import Batch
from pipewarden.schema import DataType as T
from pipewarden.schema import Inferrer, infer, lattice


def types(records, fmt="json"):
    return {k: c.type for k, c in infer(Batch(records, "t", fmt=fmt)).columns.items()}


def test_lattice_joins():
    assert lattice.join(T.BIGINT, T.DOUBLE) == T.DOUBLE
    assert lattice.join(T.DOUBLE, T.DECIMAL) == T.DECIMAL
    assert lattice.join(T.DATE, T.TIMESTAMP) == T.TIMESTAMP
    assert lattice.join(T.TIMESTAMP, T.TIMESTAMPTZ) == T.TIMESTAMPTZ
    assert lattice.join(T.DATE, T.TEXT) == T.TEXT
    assert lattice.join(T.BOOLEAN, T.BIGINT) == T.TEXT and lattice.conflicts(T.BOOLEAN, T.BIGINT)
    assert lattice.join(T.BIGINT, T.JSON) == T.JSON
    assert lattice.join(T.NULL, T.DATE) == T.DATE
    assert lattice.is_widening(T.BIGINT, T.DECIMAL)
    assert not lattice.is_widening(T.BIGINT, T.TEXT)


def test_value_types_of_json():
    got = types(
        [
            {
                "b": True, "i": 1, "f": 1.5, "big": 2**63, "s": "x", "d": "2024-02-29",
                "ts": "2024-01-01T10:00:00.123456789", "tz": "2024-01-01 10:00:00+02:00",
                "o": {"x": 1}, "a": [1], "n": None, "num_str": "12", "bad_date": "2024-02-30",
            }
        ]
    )  # fmt: skip
    assert got == {
        "b": T.BOOLEAN, "i": T.BIGINT, "f": T.DOUBLE, "big": T.DECIMAL, "s": T.TEXT,
        "d": T.DATE, "ts": T.TIMESTAMP, "tz": T.TIMESTAMPTZ, "o": T.JSON, "a": T.JSON,
        "n": T.NULL, "num_str": T.TEXT, "bad_date": T.TEXT,
    }  # fmt: skip


def test_csv_strings_are_sub_typed():
    rows = [
        {"i": "1", "d": "1.50", "e": "1e3", "b": "true", "z": "007", "m": "1", "dt": "2024-01-01"},
        {"i": "-2", "d": "2", "e": "2", "b": "FALSE", "z": "1", "m": "x", "dt": None},
    ]
    assert types(rows, "csv") == {
        "i": T.BIGINT, "d": T.DECIMAL, "e": T.DOUBLE, "b": T.BOOLEAN, "z": T.TEXT,
        "m": T.TEXT, "dt": T.DATE,
    }  # fmt: skip
    inf = Inferrer().update(Batch(rows, "t", fmt="csv"))
    assert inf.conflicts() == {}  # strings never conflict with strings


def test_conflicts_are_reported():
    inf = Inferrer().update(Batch([{"a": 1}, {"a": "x"}, {"a": True}], "t", fmt="json"))
    assert inf.schema().columns["a"].type == T.TEXT
    assert inf.conflicts() == {"a": ["boolean", "number", "string"]}


def test_big_ints_with_doubles_become_decimal():
    assert types([{"a": 2**60}, {"a": 0.5}]) == {"a": T.DECIMAL}
    assert types([{"a": 2**40}, {"a": 0.5}]) == {"a": T.DOUBLE}


def test_python_values_from_parquet():
    got = types(
        [{"d": dt.date(2024, 1, 1), "t": dt.datetime(2024, 1, 1),
          "z": dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "m": Decimal("1.5"), "b": b"x"}]
    )  # fmt: skip
    assert got == {"d": T.DATE, "t": T.TIMESTAMP, "z": T.TIMESTAMPTZ, "m": T.DECIMAL, "b": T.TEXT}


def test_a_key_in_the_last_of_100000_rows_is_seen():
    rows = [{"id": i, "v": "x"} for i in range(100_000)]
    rows[-1]["late"] = "2024-01-01"
    schema = infer(Batch(rows, "t", fmt="json"))
    assert schema.columns["late"].type == T.DATE
    assert schema.columns["late"].nullable


def test_a_type_change_in_the_last_row_is_seen():
    rows = [{"id": i} for i in range(100_000)] + [{"id": 0.5}]
    assert types(rows) == {"id": T.DOUBLE}


def test_nullability_across_batches():
    inf = Inferrer()
    inf.update(Batch([{"a": 1, "b": 1}], "t"))
    inf.update(Batch([{"a": 2}], "t"))
    inf.update(Batch([{"a": 3, "c": 1}], "t"))
    cols = inf.schema().columns
    assert not cols["a"].nullable and cols["b"].nullable and cols["c"].nullable
    assert inf.rows == 3


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5),
    st.sampled_from(["2024-01-01", "2024-01-01T00:00:00", "2024-01-01T00:00:00Z"]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)  # fmt: skip
records = st.lists(
    st.dictionaries(st.sampled_from("abcde"), scalars, max_size=5), min_size=1, max_size=30
)


@settings(max_examples=150, deadline=None)
@given(records, st.randoms(use_true_random=False), st.integers(min_value=1, max_value=10))
def test_inference_is_order_and_chunk_independent(rows, rnd: random.Random, chunk):
    whole = infer(Batch(rows, "t"))
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    inf = Inferrer()
    for i in range(0, len(shuffled), chunk):
        inf.update(Batch(shuffled[i : i + chunk], "t"))
    other = inf.schema()
    assert {k: (c.type, c.nullable) for k, c in whole.columns.items()} == {
        k: (c.type, c.nullable) for k, c in other.columns.items()
    }
