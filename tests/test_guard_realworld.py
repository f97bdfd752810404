"""Phone numbers as people write them (extensions, other regions, call prefixes, columns named
phone), the hard negatives that must stay silent, and recall mode."""

from __future__ import annotations

import json

import pytest

from pipewarden.batch import Batch
from pipewarden.cli import main
from pipewarden.compliance import recognizers as R
from pipewarden.compliance.guardian import Guardian
from pipewarden.compliance.policy import policy_from_dict
from pipewarden.compliance.recognizers import Context, detect


def found(text: str, ctx: Context | None = None) -> list[tuple[str, str]]:
    return [(m.entity, text[m.start : m.end]) for m in detect(text, ctx or Context())]


# ---------------------------------------------------------------- phones


@pytest.mark.parametrize(
    "value",
    [
        "513.293.0707x037",  # Faker en_US
        "(404) 555-0101 ext. 12",
        "212-555-0199 x1234",
        "+1-212-555-0199x55",
        "(212) 555-0199 extension 4",
        "212.555.0199 #12",
        "001-513-293-0707x037",  # Faker en_US: the 00 call prefix
        "011 44 20 7946 0958",  # NANP call prefix
    ],
)
def test_extensions_and_call_prefixes_are_part_of_the_number(value):
    assert found(f"reach me on {value} today") == [(R.PHONE, value)]


@pytest.mark.parametrize(
    ("value", "region"),
    [
        ("0490 75 40 81", "FR"),
        ("06 12 34 56 78", "FR"),
        ("020 7946 0958", "GB"),
        ("07911 123456", "GB"),
        ("030 12345678", "DE"),
        ("0612345678", None),  # bare: needs the context word, given below
        ("(02) 9876 5432", "AU"),
        ("0412 345 678", "AU"),
        ("612 34 56 78", "ES"),
    ],
)
def test_national_numbers_of_other_regions_are_found_under_a_us_policy(value, region):
    assert found(f"tel: {value}") == [(R.PHONE, value)]


@pytest.mark.parametrize(
    "word",
    ["tel", "Tel.", "mobile", "cell", "voicemail", "desk", "fax", "ph", "mob", "téléphone",
     "Telefon", "móvil", "handy", "portable", "cellulare", "ext"],
)  # fmt: skip
def test_context_words_in_more_languages_and_forms(word):
    assert found(f"{word} 2125550199") == [(R.PHONE, "2125550199")]


def test_short_context_words_must_be_whole_words():
    assert found("photo 2125550199") == []
    assert found("cctv 4111111111111111") == [(R.CARD, "4111111111111111")]  # a card anyway


def test_a_column_named_phone_lowers_the_bar_for_its_values():
    # Faker's US numbers often have an area code no plan allocates (0xx, 1xx): still phones
    # in a column named phone, and nothing outside one
    made_up = ["(012) 293-0707", "123-456-7890x123", "001-099-555-0100"]
    phone = Context(hints=frozenset({R.PHONE}), regions=())
    for value in made_up:
        assert found(value, phone) == [(R.PHONE, value)], value
        assert found(value, Context(regions=())) == [], value
    # but not a bare run of digits or a date, even there
    assert found("2025-12-07", phone) == []


def test_a_faker_phone_column_is_masked_whole():
    faker = pytest.importorskip("faker")
    fake = faker.Faker("en_US")
    fake.seed_instance(3)
    values = [fake.phone_number() for _ in range(400)]
    insp = Guardian().detect(Batch([{"phone": v} for v in values], "<t>"), "t")
    hit = {f.index for f in insp.findings if f.entity == R.PHONE}
    assert len(hit) / len(values) >= 0.95, [values[i] for i in range(50) if i not in hit]


# ---------------------------------------------------------------- hard negatives

HARD_NEGATIVES = [
    "2025-12-07 02:09:09",
    "2025-12-07T02:09:09Z",
    "2025-12-07T02:09:09.123456+01:00",
    "2025-12-07T02:09:09-05:00",
    "2025/12/07 02:09",
    "20251207T020909Z",
    "2025-12-07",
    "07.12.2025",
    "12/07/2025",
    "12/07/2025 10:15:00",
    "02:09:09",
    "10:15 PM",
    "v2.10.4",
    "version 1.2.3.4",
    "1.2.3.4-beta",
    "release 10.0.1.2",
    "Chrome/120.0.6099.109",
    "numpy==1.26.4.1",
    "firmware 4.12.0.1",
    "10001-1234",
    "94105-2231",
    "order 254474023",
    "order #2125550199",
    "order id 9876543210",
    "invoice INV-2023-000123",
    "PO 4500012345",
    "123e4567-e89b-12d3-a456-426614174000",
    "550e8400-e29b-41d4-a716-446655440000",
    "00000000-0000-0000-0000-000000000000",
    "$1,234.56",
    "1.234.567,89 EUR",
    "EUR 1 234 567",
    "total 12,345,678.90",
]


@pytest.mark.parametrize("text", HARD_NEGATIVES)
@pytest.mark.parametrize("mode", ["precision", "recall"])
def test_hard_negatives_raise_no_phone_ip_card_or_ssn(text, mode):
    recall = frozenset(R.ENTITIES) if mode == "recall" else frozenset()
    assert found(text, Context(recall=recall)) == []
    assert found(f"created at {text} by the job", Context(recall=recall)) == []


@pytest.mark.parametrize("column", ["created_at", "updated", "ts", "date", "version", "zip", "id"])
def test_hard_negatives_in_columns_of_their_name(column):
    records = [{column: v} for v in HARD_NEGATIVES]
    insp = Guardian().detect(Batch(records, "<t>"), "t")
    assert insp.findings == []


def test_a_dashed_ssn_is_found_whatever_the_column_is_named():
    for column in ["amount", "total", "case", "model", "date", "batch", "order_notes"]:
        insp = Guardian().detect(Batch([{column: "509-88-8712"}], "<t>"), "t")
        assert [f.entity for f in insp.findings] == [R.SSN], column
    # nine bare digits still need an SSN context
    insp = Guardian().detect(Batch([{"amount": "509888712"}], "<t>"), "t")
    assert insp.findings == []


# ---------------------------------------------------------------- recall mode


def recall(*entities: str, hints=frozenset()) -> Context:
    return Context(recall=frozenset(entities or R.ENTITIES), hints=frozenset(hints))


# JCB's old 15-digit 1800 and 2131 ranges, a 0604 Maestro: Luhn-valid, outside today's table
@pytest.mark.parametrize("number", ["180029141777632", "213117066907432", "0604915000806363"])
def test_recall_accepts_luhn_valid_cards_outside_the_issuer_table_with_card_context(number):
    assert R.luhn_ok(number)
    assert found(f"card {number}") == []  # precision: no issuer range fits
    assert found(f"card {number}", recall(R.CARD)) == [(R.CARD, number)]
    assert found(f"ref {number}", recall(R.CARD)) == []  # no card context
    assert found(number, recall(R.CARD, hints={R.CARD})) == [(R.CARD, number)]
    # a column named like a card is context enough in precision mode too
    assert found(number, Context(hints=frozenset({R.CARD}))) == [(R.CARD, number)]
    assert found(number) == []


def test_recall_accepts_any_nine_digits_in_an_ssn_column():
    for value in ["912781234", "900-12-3456", "000123456"]:
        assert found(value, Context(hints=frozenset({R.SSN}))) == []
        assert found(value, recall(R.SSN, hints={R.SSN})) == [(R.SSN, value)]
    assert found("912781234", recall(R.SSN)) == []  # not in an SSN column


def test_recall_accepts_phone_shaped_numbers_after_a_phone_word():
    assert found("call 07700 900123", Context(regions=("US",))) == []
    assert found("call 07700 900123", recall(R.PHONE)) == [(R.PHONE, "07700 900123")]
    assert found("call (012) 555-0100", recall(R.PHONE)) == [(R.PHONE, "(012) 555-0100")]
    assert found("see 07700 900123", Context(regions=("US",), recall=frozenset({R.PHONE}))) == []


def test_policy_mode_and_regions():
    pol = policy_from_dict({"version": 1, "mode": {"CREDIT_CARD": "recall"}, "regions": []})
    assert pol.recall == {R.CARD} and pol.regions == ()
    g = Guardian(pol)
    insp = g.detect(Batch([{"n": "card 180029141777632", "t": "tel 0490 75 40 81"}], "<t>"), "t")
    assert [f.entity for f in insp.findings] == [R.CARD]  # FR not tried: regions is []
    pol = policy_from_dict({"version": 1, "mode": "recall"})
    assert R.PHONE in pol.recall and R.SSN in pol.recall
    assert Guardian(pol, mode="precision").recall == frozenset()


# ---------------------------------------------------------------- guard scan --output


def _scan(tmp_path, capsys, *args):
    code = main(["guard", "scan", *args])
    out, err = capsys.readouterr()
    return code, out, err


ROWS = [
    {"id": 1, "email": "jane.roe@example.com", "note": "call 513.293.0707x037"},
    {"id": 2, "email": "max@example.org", "note": "ssn 509-88-8712", "ts": "2025-12-07 02:09:09"},
    {"id": 3, "email": "x@example.net", "note": "card 4111 1111 1111 1111"},
]
RAW = ("jane.roe@example.com", "max@example.org", "293.0707", "509-88-8712", "4111 1111")


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet"])
def test_guard_scan_output_writes_the_masked_batch(tmp_path, capsys, fmt):
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "version: 1\nrules:\n  - {entity: '*', action: mask, method: partial}\n"
        "  - {entity: CREDIT_CARD, action: quarantine}\n"
    )
    out_file = tmp_path / f"out.{fmt}"
    code, out, err = _scan(tmp_path, capsys, "--data", str(src), "--policy", str(policy),
                           "--output", str(out_file), "--format", "json")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["output"] == {"path": str(out_file), "format": fmt, "rows": 2, "written": True}
    if fmt == "parquet":
        rows = pq.read_table(out_file).to_pylist()
    elif fmt == "csv":
        rows = pcsv.read_csv(out_file, convert_options=pcsv.ConvertOptions(
            column_types={"id": pa.int64()})).to_pylist()  # fmt: skip
    elif fmt == "json":
        rows = json.loads(out_file.read_text())
    else:
        rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2]  # the quarantined row is left out
    assert rows[0]["email"] == "j***@example.com"
    assert rows[1]["note"] == "ssn ***-**-8712"
    assert str(rows[1]["ts"]) == "2025-12-07 02:09:09"
    text = out_file.read_bytes().decode("latin-1")
    assert not any(raw in text for raw in RAW)


def test_guard_scan_output_to_stdout_is_a_filter(tmp_path, capsys, monkeypatch):
    import io
    import sys

    src = "".join(json.dumps(r) + "\n" for r in ROWS[:2])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(src.encode())))
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nrules:\n  - {entity: '*', action: mask, method: redact}\n")
    code, out, err = _scan(tmp_path, capsys, "--data", "-", "--policy", str(policy), "--output", "-",
                           "--format", "json")  # fmt: skip
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]  # only data on stdout
    assert lines[0]["email"] == "[EMAIL_ADDRESS]" and lines[1]["note"] == "ssn [US_SSN]"
    assert json.loads(err)["output"]["rows"] == 2  # the report on stderr
    assert not any(raw in out + err for raw in RAW)


def test_a_failed_scan_writes_no_output(tmp_path, capsys):
    src = tmp_path / "in.json"
    src.write_text(json.dumps(ROWS))
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nrules:\n  - {entity: US_SSN, action: block}\n")
    out_file = tmp_path / "out.json"
    code, out, err = _scan(tmp_path, capsys, "--data", str(src), "--policy", str(policy),
                           "--output", str(out_file))  # fmt: skip
    assert code == 1 and not out_file.exists()
    assert "nothing written" in out
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".pipewarden")] == []


def test_guard_eval_on_the_outside_built_set(capsys):
    # the set the recognizers were not written against ships with the package
    code = main(["guard", "eval", "--outside", "--min-f2", "0.9", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["records"] == 3000
    assert set(doc["entities"]) == set(R.BUILTIN_ENTITIES)
    code = main(["guard", "eval", "--outside", "--mode", "recall", "--format", "json"])
    recall = json.loads(capsys.readouterr().out)["entities"]
    assert recall["PHONE_NUMBER"]["recall"] > doc["entities"]["PHONE_NUMBER"]["recall"]
    assert recall["CREDIT_CARD"]["recall"] == 1.0


def test_the_run_step_takes_a_mode(tmp_path):
    import jsonschema

    from pipewarden.compliance.step import build_step
    from pipewarden.run import _schema

    step = build_step({"type": "guardian", "mode": "recall"}, tmp_path)
    assert R.CARD in step.guardian.recall
    doc = {"version": 1, "dataset": "d", "source": {"path": "x.json"},
           "steps": [{"type": "guardian", "mode": "recall"}]}  # fmt: skip
    jsonschema.validate(doc, _schema())
    doc["steps"][0]["mode"] = "loose"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, _schema())
