"""The check that keeps PII out of trained models and the batch history (pii_column,
holds_pii): it errs on the side of not keeping a value."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipewarden.anomaly.model import Model
from pipewarden.anomaly.monitors import batch_metrics
from pipewarden.compliance.classify import holds_pii, pii_column
from pipewarden.errors import InputError


@pytest.mark.parametrize(
    "name, values, region, entity",
    [
        # national GB mobiles: the column's name points at phones, the shape is enough
        ("mobile", ["07911123456", "07700900123", "07911123457"], "US", "PHONE_NUMBER"),
        # no name hint: the region decides
        ("contact", ["07911 123456", "07700 900123", "07911 123457"], "GB", "PHONE_NUMBER"),
        # one person's SSN in half the rows, placeholders in the rest: rows count, not values
        ("ssn", ["536228726"] * 6 + ["unknown", "n/a", "refused", "pending", "on file"], "US",
         "US_SSN"),
        # a card number exported as a float, as a CSV string
        ("card_number", ["4111111111111111.0", "5555555555554444.0"], "US", "CREDIT_CARD"),
        # nulls first (a column added later) do not hide it
        ("cc", [None] * 6000 + [4111111111111111] * 20, "US", "CREDIT_CARD"),
    ],
)  # fmt: skip
def test_pii_columns_the_guardian_would_mask(name, values, region, entity):
    assert pii_column(name, values, region=region) == entity


def test_ordinary_columns_are_not_pii():
    assert pii_column("amount", [1.5, 2.25, 1000.0]) is None
    assert pii_column("qty", list(range(100))) is None
    assert pii_column("status", ["pending", "shipped", "n/a"]) is None
    assert not holds_pii("pending", "status")
    assert holds_pii("536-22-8726", "ref")  # a name pointing away from PII does not count here
    assert holds_pii("536228726", "ssn")


def test_a_gb_phone_column_keeps_no_median_in_a_model_or_the_history(tmp_path):
    rows = [{"amount": 10.5 + i * 1.3, "mobile": f"0791112{3400 + i % 9}"} for i in range(60)]
    model = Model.fit(rows, region="GB")
    assert model.encoder.excluded == {"mobile": "pii"}
    m = batch_metrics(rows, now=0.0, region="GB")
    assert m["columns"]["mobile"]["pii"] is True and "median" not in m["columns"]["mobile"]


def test_a_model_file_value_is_never_quoted_in_the_error(tmp_path):
    rows = [{"amount": 10.5 + i * 1.3, "qty": i % 7} for i in range(60)]
    path = Model.fit(rows).save(tmp_path / "m")
    doc = json.loads((path / "model.json").read_text())
    doc["scaler"]["median"][0] = "jane.roe@example.com"
    (path / "model.json").write_text(json.dumps(doc))
    with pytest.raises(InputError) as err:
        Model.load(path)
    assert "jane.roe" not in err.value.render() and "wrong type" in err.value.render()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.booleans(),
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(-(10**20), 10**20),
            st.text(max_size=8),
            st.sampled_from(["4111111111111111", "078-05-1120", " ", "12.0", {"a": 1}, [1]]),
        ),
        max_size=60,
    ),
    st.booleans(),
)
def test_the_values_skipped_before_reading_are_those_that_read_as_no_text(values, floats):
    """pii_column drops in C the values that read as no text (nulls, booleans, objects,
    lists, floats with a fraction): the texts it reads, in order, are the same."""
    from pipewarden.compliance.classify import PII_SCAN, _as_text, _may_be_text

    if floats:  # a column of measurements: the numpy path
        values = [v for v in values if v is None or isinstance(v, float)]

    def texts(vs):
        return [t for t in map(_as_text, vs) if t is not None][:PII_SCAN]

    assert texts(_may_be_text(values)) == texts(values)
    assert texts(_may_be_text(tuple(values))) == texts(values)
