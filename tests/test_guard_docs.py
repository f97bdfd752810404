"""docs/guardian.md states each rule as the code applies it: its lists are the code's lists,
and its examples behave as it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipewarden.compliance import classify
from pipewarden.compliance import recognizers as R
from pipewarden.compliance.names import KeyRenamer, mask_name
from pipewarden.compliance.policy import mask
from pipewarden.compliance.recognizers import Context, detect

DOC = (Path(__file__).resolve().parents[1] / "docs" / "guardian.md").read_text()


def section(start: str, end: str) -> str:
    return DOC.split(start, 1)[1].split(end, 1)[0]


def ticks(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


def bullet(text: str, label: str) -> list[str]:
    """The backticked items of the bullet starting with ``* `label```."""
    part = text.split(f"* `{label}`", 1)[1]
    part = re.split(r"\n\* |\n\n", part, maxsplit=1)[0]
    return ticks(part.split(":", 1)[1])


def test_context_keywords_are_the_codes():
    ctx = section("**Context.**", "**Words that point away.**")
    assert bullet(ctx, "US_SSN") == list(R._POS[R.SSN])
    assert bullet(ctx, "PHONE_NUMBER") == list(R._POS[R.PHONE])
    assert bullet(ctx, "CREDIT_CARD") == list(R._POS[R.CARD])


def test_words_and_column_names_that_point_away_are_the_codes():
    text = section("**Words that point away.**", "**Overlaps.**")
    first, rest = text.split("A dashed or spaced SSN", 1)
    words = ticks(first.split("suppresses the weak forms", 1)[1])
    assert set(words) == set(R._NEG_WORDS) and len(words) == len(R._NEG_WORDS)
    ids, columns = rest.split("A column whose name points away", 1)
    assert set(ticks(ids)) == set(R._ID_WORDS)
    names = ticks(columns.split("has one of the tokens", 1)[1].split(")", 1)[0])
    assert set(names) == set(classify._NEGATIVE) and len(names) == len(classify._NEGATIVE)


def test_version_words_are_the_codes():
    row = next(line for line in DOC.splitlines() if line.startswith("| `IP_ADDRESS`"))
    words = ticks(row.split("right after a version word", 1)[1].split(")", 1)[0])
    assert set(words) == set(R._VERSION_WORDS)


def test_default_regions_are_the_codes():
    text = section("Default `regions`:", "In a region without")
    assert tuple(ticks(text)) == R.DEFAULT_REGIONS


def test_hard_negative_examples_are_silent():
    text = section("**Hard negatives**", "### Phone numbers and regions")
    examples = ticks(text)
    assert len(examples) >= 20
    for example in examples:
        for mode in (frozenset(), frozenset(R.ENTITIES)):
            assert detect(example, Context(recall=mode)) == [], example


def test_entity_examples_are_found():
    rows = {
        line.split("|")[1].strip(" `"): line
        for line in DOC.splitlines()
        if line.startswith("| `") and "_" in line.split("|")[1]
    }
    assert [m.entity for m in detect("509-88-8712", Context())] == [R.SSN]
    assert [m.entity for m in detect("509 88 8712", Context())] == [R.SSN]
    for sample in ticks(rows["US_SSN"].split("published samples", 1)[1].split(")", 1)[0]):
        assert detect(sample, Context()) == [], sample
        assert [m.entity for m in detect(f"SSN {sample}", Context())] == [R.SSN]
    phone = rows["PHONE_NUMBER"]
    for example in ["001-513-293-0707", "513.293.0707x037", "(404) 555-0101 ext. 12"]:
        assert f"`{example}`" in phone
        got = [(m.entity, example[m.start : m.end]) for m in detect(example, Context())]
        assert got == [(R.PHONE, example)]


def test_phone_region_and_recall_examples():
    text = section("### Phone numbers and regions", "### Precision and recall modes")
    assert "`0490 75 40 81` joins `04 90 75 40 81`" in text
    got = detect("tel 0490 75 40 81", Context())
    assert [m.entity for m in got] == [R.PHONE]
    phone = Context(hints=frozenset({R.PHONE}))
    for example in ["(012) 293-0707", "123-456-7890x123"]:
        assert f"`{example}`" in text
        assert [m.entity for m in detect(example, phone)] == [R.PHONE], example
    modes = section("### Precision and recall modes", "## Column classification")
    recall = Context(recall=frozenset(R.ENTITIES))
    assert [m.entity for m in detect("call 07700 900123", recall)] == [R.PHONE]
    assert "`07700 900123`" in modes
    ssn_col = Context(recall=frozenset(R.ENTITIES), hints=frozenset({R.SSN}))
    for example in ["912781234", "900-12-3456"]:
        assert f"`{example}`" in modes
        assert [m.entity for m in detect(example, ssn_col)] == [R.SSN]


@pytest.mark.parametrize("method", ["partial", "redact"])
def test_masks_table(method):
    header = next(line for line in DOC.splitlines() if line.startswith("| method |"))
    row = next(line for line in DOC.splitlines() if line.startswith(f"| `{method}` |"))
    ssn, email = ticks(header)[:2]
    want_ssn, want_email = ticks(row)[1:3]
    assert mask(R.SSN, ssn, method) == want_ssn
    assert mask(R.EMAIL, email, method) == want_email


def test_key_and_file_name_examples():
    text = section("## Keys, column names and file names", "## What is never printed")
    r = KeyRenamer(key=b"k")
    assert re.fullmatch(r"pii_email_[0-9a-f]{12}", r.new_name("jane.roe@example.com"))
    assert re.fullmatch(r"card_pii_card_[0-9a-f]{12}", r.new_name("card_5555555555554444"))
    assert r.new_name("ssn_509888712").startswith("ssn_pii_ssn_")
    assert "`batch_509-88-8712.jsonl` is shown as `batch_[US_SSN].jsonl`" in text
    assert mask_name("batch_509-88-8712.jsonl") == "batch_[US_SSN].jsonl"
