"""Recognizers: valid and invalid examples of every entity, context, overlaps, hard negatives."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipewarden.compliance import recognizers as R
from pipewarden.compliance.evalset import HARD_NEGATIVES, _group, _luhn_complete
from pipewarden.compliance.recognizers import Context, detect


def found(text: str, ctx: Context | None = None) -> list[tuple[str, str]]:
    return [(m.entity, text[m.start : m.end]) for m in detect(text, ctx or Context())]


def entities(text: str, ctx: Context | None = None) -> list[str]:
    return [e for e, _ in found(text, ctx)]


# ---------------------------------------------------------------- email


@pytest.mark.parametrize(
    "value",
    [
        "john.smith@example.com",
        "a+tag@sub.example.co.uk",
        "x_y-z@corp-mail.io",
        "J.Doe@EXAMPLE.ORG",
    ],
)
def test_email_valid(value):
    assert R.valid_email(value)
    assert found(f"write to {value}, thanks") == [(R.EMAIL, value)]


@pytest.mark.parametrize(
    "value",
    [
        "john..smith@example.com",
        "john.@example.com",
        "john@-example.com",
        "john@example",
        "@example.com",
        "john@example.c",
    ],
)
def test_email_invalid(value):
    assert not R.valid_email(value)


def test_email_swallows_what_is_inside():
    # an email is reported once, never as an email plus a URL/domain or digits inside it
    assert found("mail 2125550199@example.com now") == [(R.EMAIL, "2125550199@example.com")]


# ---------------------------------------------------------------- US SSN


@pytest.mark.parametrize("value", ["123-45-6788", "001-01-0001", "899-99-9999", "665 12 3456"])
def test_ssn_valid(value):
    assert found(f"id {value}.") == [(R.SSN, value)]


@pytest.mark.parametrize(
    "value",
    [
        "000-12-3456",  # area 000
        "666-12-3456",  # area 666
        "900-12-3456",  # area 9xx (ITIN range)
        "999-12-3456",
        "912-78-1234",  # an ITIN
        "123-00-4567",  # group 00
        "123-45-0000",  # serial 0000
        "123-456789",  # mixed separators
    ],
)
def test_ssn_invalid(value):
    assert R.SSN not in entities(f"ssn {value}")


@pytest.mark.parametrize("value", ["078-05-1120", "219-09-9999", "123-45-6789"])
def test_published_samples_are_ssns_only_where_the_text_or_column_says_so(value):
    # the Woolworth wallet sample, the SSA advertising sample, the canonical example: never
    # issued, but typed after "SSN" or into a column named ssn they are masked
    assert R.SSN in entities(f"ssn {value}")
    assert R.SSN in entities(value, Context(hints=frozenset({R.SSN})))
    assert R.SSN not in entities(f"ref {value}")
    assert R.SSN not in entities(f"see {value}")


def test_bare_nine_digits_need_context():
    assert found("my ssn is 123456788") == [(R.SSN, "123456788")]
    assert found("ref 123456788") == []
    assert found("123456788") == []
    assert found("123456788", Context(hints=frozenset([R.SSN]))) == [(R.SSN, "123456788")]


def test_negative_context_right_before_wins_over_keyword_further_back():
    assert found("SSN on file: 517-01-1489. order 254474023") == [(R.SSN, "517-01-1489")]


# ---------------------------------------------------------------- credit cards


@pytest.mark.parametrize(
    "value,issuer",
    [
        ("4111111111111111", "visa"),
        ("4111 1111 1111 1111", "visa"),
        ("4222222222222", "visa"),  # 13 digits
        ("5555 5555 5555 4444", "mastercard"),
        ("2221 0000 0000 0009", "mastercard"),  # 2-series
        ("3782-822463-10005", "amex"),
        ("6011.0009.9013.9424", "discover"),
        ("3530111333300000", "jcb"),
        ("36227206271667", "diners"),
    ],
)
def test_card_valid(value, issuer):
    assert R.valid_card(value) == issuer
    assert found(f"card {value} exp 12/27") == [(R.CARD, value)]


@pytest.mark.parametrize(
    "prefix,length",
    [("2720", 16), ("2221", 16), ("4", 19), ("6011", 19), ("6759", 12), ("2200", 16)],
)
def test_card_ranges_and_lengths(prefix, length):
    digits = _luhn_complete(prefix, length, random.Random(length))
    assert R.valid_card(digits)
    assert found(f"card {digits}") == [(R.CARD, digits)]


def test_nineteen_digit_card_with_spaces():
    digits = _luhn_complete("4", 19, random.Random(3))
    text = _group(digits, (4, 4, 4, 4, 3), " ")
    assert R.valid_card(text) == "visa"
    assert found(f"pay {text}") == [(R.CARD, text)]


@pytest.mark.parametrize(
    "value",
    [
        "4111111111111112",  # Luhn fails
        "1234567812345670",  # Luhn ok, no issuer starts with 1
        "4111 1111-1111 1111",  # mixed separators
        "4111111111111111111111",  # too long
        "0000000000000000",
        "5555 5555 5555 444",  # mastercard with 15 digits
    ],
)
def test_card_invalid(value):
    assert R.CARD not in entities(f"card {value}")


def test_card_wins_over_phone_and_ssn_inside_it():
    assert entities("paid 4111 1111 1111 1111 today") == [R.CARD]


# ---------------------------------------------------------------- phone numbers


@pytest.mark.parametrize(
    "value",
    [
        "(212) 555-0199",
        "212-555-0199",
        "212.555.0199",
        "+1 212 555 0199",
        "+44 20 7946 0958",
        "+49 30 901820",
    ],
)
def test_phone_valid(value):
    assert found(f"reach me on {value} today") == [(R.PHONE, value)]


@pytest.mark.parametrize("value", ["(012) 555-0199", "212-155-0199", "+44 20 7946", "555-0199"])
def test_phone_invalid(value):
    assert R.PHONE not in entities(f"reach me on {value} today", Context(regions=()))


@pytest.mark.parametrize("value", ["212-155-0199", "+44 20 7946", "555-0199", "912-78-1234"])
def test_phone_invalid_in_every_default_region(value):
    assert R.PHONE not in entities(f"reach me on {value} today")


def test_bare_phone_digits_need_context():
    assert found("call 2125550199 now") == [(R.PHONE, "2125550199")]
    assert found("order #2125550199") == []
    assert found("ticket 2125550199") == []


def test_phone_region_is_configurable():
    assert found("ring 020 7946 0958", Context(region="GB")) == [(R.PHONE, "020 7946 0958")]
    assert R.PHONE not in entities("ring 020 7946 0958", Context(region="US", regions=()))
    # the default list tries the other regions too: a London number in a US policy
    assert found("ring 020 7946 0958", Context(region="US")) == [(R.PHONE, "020 7946 0958")]


def test_ssn_wins_over_phone():
    # a formatted SSN never doubles as a phone number
    assert entities("phone or ssn: 234-56-7891", Context(region="GB")) == [R.SSN]


# ---------------------------------------------------------------- IBAN


@pytest.mark.parametrize(
    "value",
    [
        "DE89 3704 0044 0532 0130 00",
        "GB82WEST12345698765432",
        "NL91ABNA0417164300",
        "FR1420041010050500013M02606",
        "NO9386011117947",
    ],
)
def test_iban_valid(value):
    assert R.valid_iban(value)
    assert found(f"IBAN {value} BIC COBADEFF") == [(R.IBAN, value)]


@pytest.mark.parametrize(
    "value",
    [
        "DE89 3704 0044 0532 0130 01",  # mod-97 fails
        "DE89370400440532013",  # too short for DE
        "GB82WEST1234569876543200",  # too long for GB
        "XX82WEST12345698765432",  # no such country
    ],
)
def test_iban_invalid(value):
    assert not R.valid_iban(value)
    assert R.IBAN not in entities(f"IBAN {value}")


@pytest.mark.parametrize(
    "value", ["de89 3704 0044 0532 0130 00", "gb82west12345698765432", "Nl91abna0417164300"]
)
def test_iban_in_lower_or_mixed_case_is_found(value):
    assert found(f"pay to {value} today") == [(R.IBAN, value)]


@pytest.mark.parametrize(
    "text",
    [
        "ref de89 3704 0044 0532 0130 01",  # mod-97 fails
        "order no12345678901 shipped",  # 'no' + the Norwegian length, mod-97 fails
        "sku gb82west1234569876543200",  # too long for GB
        "code ab12cdef3456",  # no such country
    ],
)
def test_lower_case_lookalikes_are_not_ibans(text):
    assert R.IBAN not in entities(text)


# ---------------------------------------------------------------- IP


@pytest.mark.parametrize(
    "value",
    [
        "10.0.0.1",
        "192.168.1.254",
        "8.8.8.8",
        "2001:db8::1",
        "fe80::1ff:fe23:4567:890a",
        "::ffff:10.0.0.1",
    ],
)
def test_ip_valid(value):
    assert found(f"from {value} at noon") == [(R.IP, value)]


@pytest.mark.parametrize(
    "value", ["256.1.1.1", "10.0.0", "1.2.3.4.5", "01.2.3.4", "12:30:45", "00:1A:2B:3C:4D:5E"]
)
def test_ip_invalid(value):
    assert R.IP not in entities(f"from {value} at noon")


def test_version_strings_are_not_ips():
    assert found("upgraded to version 1.2.3.4") == []
    assert found("v1.2.3.4") == []
    assert found("build 4.12.0.1") == []


# ---------------------------------------------------------------- national ids


def test_national_ids_only_when_enabled_and_in_context():
    bsn = "111222333"  # a valid Dutch BSN (11-check)
    on = Context(national_ids=("nl.bsn",))
    assert found(f"BSN {bsn}", on) == [(R.NATIONAL_ID, bsn)]
    assert found(f"BSN {bsn}") == []  # not enabled
    assert found(f"order {bsn}", on) == []  # no context
    assert found("BSN 111222334", on) == []  # check digit wrong


def test_unknown_stdnum_module_is_refused():
    with pytest.raises(ValueError, match="no module"):
        R.load_stdnum("xx.nothing")


# ---------------------------------------------------------------- hard negatives


@pytest.mark.parametrize("text", [*HARD_NEGATIVES, "order id 234567891", "ticket 2125550199"])
def test_hard_negatives_are_not_flagged(text):
    assert found(text) == []


def test_overlap_resolution_prefers_stronger_type():
    ms = [
        R.Match(R.PHONE, 0, 12, 0.9),
        R.Match(R.SSN, 0, 11, 0.7),
        R.Match(R.CARD, 20, 39, 1.0),
        R.Match(R.SSN, 25, 34, 0.95),
    ]
    kept = R.resolve_overlaps(ms)
    assert [(m.entity, m.start) for m in kept] == [(R.SSN, 0), (R.CARD, 20)]


# ---------------------------------------------------------------- properties


@given(st.integers(1, 899), st.integers(1, 99), st.integers(1, 9999), st.sampled_from(["-", " "]))
def test_every_valid_ssn_is_found_with_its_span(area, group, serial, sep):
    value = f"{area:03d}{sep}{group:02d}{sep}{serial:04d}"
    digits = value.replace(sep, "")
    text = f"SSN: {value}."
    expected = [(R.SSN, value)] if area != 666 and digits not in R.SSN_SAMPLES else []
    assert found(text) == expected


@given(st.integers(900, 999), st.integers(0, 99), st.integers(0, 9999))
def test_no_ssn_in_the_9xx_area(area, group, serial):
    assert found(f"ssn {area}-{group:02d}-{serial:04d}") == []


@given(st.text(alphabet="0123456789", min_size=11, max_size=18), st.sampled_from(["", " ", "-"]))
def test_a_card_is_reported_only_when_luhn_and_issuer_agree(body, sep):
    digits = _luhn_complete(body[:1] or "4", len(body) + 1, random.Random(body))
    shown = _group(digits, (4, 4, 4, 4, 4), sep)
    ok = R.card_issuer(digits) is not None and len(set(digits)) > 1
    assert (found(f"card {shown} ok") == [(R.CARD, shown)]) == ok
    broken = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    assert R.valid_card(broken) is None
