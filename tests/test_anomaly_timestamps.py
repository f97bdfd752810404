"""The anomaly encoder reads a column of timestamps at once: Arrow parses the texts in the
common ISO shapes, the rest are parsed one by one; the instants must be what parsing each
value alone gives (``datetime.fromisoformat``, naive read as UTC), to the microsecond, and a
text that is no timestamp stays missing."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from pipewarden.anomaly.encode import _all_timestamps, _looks_like_ts, _parse_ts, _parse_ts_many


def _two(lo: int, hi: int):
    return st.integers(lo, hi).map(lambda v: f"{v:02d}")


@st.composite
def iso_texts(draw) -> str:
    year = f"{draw(st.integers(0, 9999)):04d}"
    text = f"{year}-{draw(_two(0, 13))}-{draw(_two(0, 32))}"
    if draw(st.booleans()):
        text += draw(st.sampled_from(["T", " ", "t"]))
        text += f"{draw(_two(0, 25))}:{draw(_two(0, 61))}:{draw(_two(0, 61))}"
        digits = draw(st.integers(0, 8))
        if digits:
            text += "." + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=digits,
                                                max_size=digits)))  # fmt: skip
        zone = draw(st.sampled_from(["", "Z", "z", "+", "-", "+hhmm", "bad"]))
        if zone in "+-" and zone:
            zone += f"{draw(_two(0, 25))}:{draw(_two(0, 61))}"
        elif zone == "+hhmm":
            zone = f"+{draw(_two(0, 25))}{draw(_two(0, 61))}"
        elif zone == "bad":
            zone = "+5"
        text += zone
    return draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", " "]))


values = st.one_of(
    iso_texts(),
    st.none(),
    st.text(max_size=12),
    st.sampled_from(
        [
            "2024-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999-23:59",
            "0001-01-01T00:00:00",
            "9999-12-31T23:59:59.999999Z",
            "2024-02-30T00:00:00Z",
            "0000-01-01T00:00:00Z",
        ]
    ),  # fmt: skip
)


def _same(got, want) -> bool:
    return len(got) == len(want) and all(
        (math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(got, want, strict=True)
    )


@settings(max_examples=400, deadline=None)
@given(st.lists(values, max_size=40))
def test_a_column_of_texts_parses_to_the_instants_of_each_text_alone(texts):
    want = [_parse_ts(v) for v in texts]
    assert _same(_parse_ts_many(texts).tolist(), want)
    present = [v for v in texts if v is not None]
    assert _all_timestamps(present) == all(_looks_like_ts(v) for v in present)


def test_datetimes_and_numbers_among_the_values_are_read_one_by_one():
    mixed = [datetime(2024, 5, 1, 12, 30, tzinfo=UTC), date(2024, 5, 2), 17, None,
             "2024-05-03T00:00:00+02:00"]  # fmt: skip
    got = _parse_ts_many(mixed)
    assert _same(got.tolist(), [_parse_ts(v) for v in mixed])
    assert got[0] == datetime(2024, 5, 1, 12, 30, tzinfo=UTC).timestamp() and math.isnan(got[2])


def test_a_zoned_text_is_its_instant_in_utc():
    got = _parse_ts_many(["2024-01-01T02:00:00.5+02:00", "2024-01-01T00:00:00.5", "nope"])
    assert got[0] == got[1] == datetime(2024, 1, 1, tzinfo=UTC).timestamp() + 0.5
    assert math.isnan(got[2])
