"""Policy files: validation naming the key, most restrictive rule, exceptions, thresholds, masks."""

from __future__ import annotations

import datetime as dt

import pytest

from pipewarden.batch import Batch
from pipewarden.compliance.classify import name_hint
from pipewarden.compliance.guardian import Guardian, summarize
from pipewarden.compliance.policy import check_policy, load_policy, mask, policy_from_dict
from pipewarden.errors import InputError

TODAY = dt.date(2026, 6, 1)


def write(tmp_path, text: str, name: str = "policy.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "doc,key",
    [
        ({"version": 2}, "version"),
        ({"version": 1, "rules": [{"entity": "US_SSN", "action": "shred"}]}, "rules[0].action"),
        ({"version": 1, "rules": [{"entity": "SSN", "action": "mask"}]}, "rules[0].entity"),
        ({"version": 1, "rules": [{"entity": "US_SSN"}]}, "rules[0]"),
        ({"version": 1, "rules": [{"action": "mask", "colums": ["a"]}]}, "rules[0].colums"),
        ({"version": 1, "tresholds": {}}, "tresholds"),
        ({"version": 1, "thresholds": {"fail": 1.5}}, "thresholds.fail"),
        (
            {"version": 1, "exceptions": [{"column": "a", "expires": "soon", "reason": "x"}]},
            "exceptions[0].expires",
        ),
        ({"version": 1, "national_ids": ["xx.nothing"]}, "national_ids[0]"),
        ({"version": 1, "region": "usa"}, "region"),
    ],
)
def test_invalid_policy_names_the_key(doc, key):
    with pytest.raises(InputError) as info:
        policy_from_dict(doc, "p.yaml")
    assert info.value.key == key
    assert "p.yaml" in info.value.render()


def test_yaml_syntax_error_names_the_line(tmp_path):
    p = write(tmp_path, "version: 1\nrules:\n  - entity: US_SSN\n    action: [mask\n")
    with pytest.raises(InputError) as info:
        load_policy(p)
    assert info.value.line is not None and "YAML" in info.value.message


def test_missing_policy_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_policy(tmp_path / "nope.yaml")


def test_check_policy_lists_every_problem(tmp_path):
    p = write(
        tmp_path,
        "version: 1\nrules:\n  - {entity: US_SSN, action: shred}\n  - {entity: FOO, action: mask}\n",
    )
    result = check_policy(p)
    assert not result["valid"]
    assert [x["key"] for x in result["problems"]] == ["rules[0].action", "rules[1].entity"]


def test_yaml_dates_are_accepted_for_expiry(tmp_path):
    p = write(
        tmp_path,
        "version: 1\nexceptions:\n  - {column: notes, entity: PHONE_NUMBER, expires: 2026-12-31, reason: ticket 12}\n",
    )
    assert load_policy(p).exceptions[0].expires == dt.date(2026, 12, 31)


# ---------------------------------------------------------------- decisions

POLICY = {
    "version": 1,
    "rules": [
        {"entity": "*", "action": "mask", "method": "partial"},
        {"entity": "US_SSN", "action": "quarantine"},
        {"entity": "US_SSN", "columns": ["ssn"], "action": "mask", "method": "hash"},
        {"entity": "CREDIT_CARD", "action": "block", "datasets": ["payments*"]},
        {"entity": "EMAIL_ADDRESS", "columns": ["support.*"], "action": "allow"},
    ],
    "exceptions": [
        {"column": "notes", "entity": "PHONE_NUMBER", "expires": "2026-12-31", "reason": "r"},
        {"column": "legacy", "expires": "2026-01-01", "reason": "old"},
    ],
}


def test_most_restrictive_rule_wins():
    pol = policy_from_dict(POLICY)
    d = pol.decide("US_SSN", "crm", "ssn", TODAY)
    assert (d.action, d.rule) == ("quarantine", "rules[1]")  # quarantine beats mask-by-hash
    assert pol.decide("CREDIT_CARD", "payments_eu", "x", TODAY).action == "block"
    assert pol.decide("CREDIT_CARD", "crm", "x", TODAY).action == "mask"
    # allow is the least restrictive: the catch-all mask still wins over it
    assert pol.decide("EMAIL_ADDRESS", "crm", "support.email", TODAY).action == "mask"
    assert pol.decide("IBAN_CODE", "crm", "iban", TODAY).method == "partial"


def test_exceptions_allow_until_they_expire():
    pol = policy_from_dict(POLICY)
    d = pol.decide("PHONE_NUMBER", "crm", "notes", TODAY)
    assert (d.action, d.rule) == ("allow", "exceptions[0]")
    assert pol.decide("PHONE_NUMBER", "crm", "notes", dt.date(2027, 1, 1)).action == "mask"
    assert pol.decide("US_SSN", "crm", "legacy", TODAY).action == "quarantine"  # expired
    assert pol.expired_exceptions(TODAY)[0]["exception"] == "exceptions[1]"


def test_no_rule_means_report():
    pol = policy_from_dict({"version": 1})
    assert pol.decide("US_SSN", "crm", "ssn", TODAY).action == "report"


# ---------------------------------------------------------------- masks


def test_masks():
    assert mask("US_SSN", "123-45-6788", "partial") == "***-**-6788"
    assert mask("CREDIT_CARD", "4111 1111 1111 1111", "partial") == "**** **** **** 1111"
    assert mask("EMAIL_ADDRESS", "john@example.com", "partial") == "j***@example.com"
    assert mask("US_SSN", "123-45-6788", "redact") == "[US_SSN]"
    a = mask("US_SSN", "123-45-6788", "hash", b"k1")
    assert a == mask("US_SSN", "123 45 6788", "hash", b"k1")  # formats still join
    assert a != mask("US_SSN", "123-45-6788", "hash", b"k2")  # keyed
    assert a.startswith("hmac:") and "6788" not in a


def test_hash_needs_the_key_from_the_environment(monkeypatch):
    pol = policy_from_dict(
        {
            "version": 1,
            "hash_key_env": "PW_TEST_KEY",
            "rules": [{"action": "mask", "method": "hash"}],
        }
    )
    monkeypatch.delenv("PW_TEST_KEY", raising=False)
    with pytest.raises(InputError, match="PW_TEST_KEY"):
        Guardian(pol)
    monkeypatch.setenv("PW_TEST_KEY", "secret")
    g = Guardian(pol)
    insp = g.inspect(Batch([{"ssn": "123-45-6788"}], "t"), "crm")
    assert insp.patches[0]["ssn"].startswith("hmac:")


# ---------------------------------------------------------------- thresholds and strict


def _batch(n_pii: int, n: int = 100) -> Batch:
    rows = [
        {"note": f"call (212) 555-{i:04d} now" if i < n_pii else "nothing here"} for i in range(n)
    ]
    return Batch(rows, "t")


def test_thresholds_warn_and_fail():
    pol = policy_from_dict(
        {
            "version": 1,
            "thresholds": {"warn": 0.01, "fail": 0.05, "entities": {"PHONE_NUMBER": {"fail": 0.5}}},
        }
    )
    g = Guardian(pol, today=TODAY)
    r = summarize(g, [g.inspect(_batch(3), "crm")])
    assert r["passed"] and r["warnings"] and r["rows_with_findings"] == 3
    r = summarize(g, [g.inspect(_batch(10), "crm")])
    assert not r["passed"] and "fail threshold 0.05" in r["failures"][0]


def test_allowed_findings_do_not_count_towards_thresholds():
    pol = policy_from_dict(
        {
            "version": 1,
            "rules": [{"entity": "PHONE_NUMBER", "action": "allow"}],
            "thresholds": {"fail": 0},
        }
    )
    g = Guardian(pol, strict=True, today=TODAY)
    r = summarize(g, [g.inspect(_batch(10), "crm")])
    assert r["passed"] and r["actions"]["allow"] == 10


def test_strict_fails_on_unhandled_findings():
    g = Guardian(policy_from_dict({"version": 1}), strict=True)
    r = summarize(g, [g.inspect(_batch(1), "crm")])
    assert not r["passed"] and "--strict" in r["failures"][0]
    g = Guardian(policy_from_dict({"version": 1}), strict=False)
    assert summarize(g, [g.inspect(_batch(1), "crm")])["passed"]


# ---------------------------------------------------------------- classification


def test_name_hints():
    assert name_hint("customer.email") == ("EMAIL_ADDRESS", False)
    assert name_hint("socialSecurityNumber")[0] == "US_SSN"
    assert name_hint("ssn") == ("US_SSN", False)
    assert name_hint("order_id") == (None, True)
    assert name_hint("notes") == (None, False)


def test_order_id_column_is_not_ssn_but_ssn_column_is():
    import random

    rng = random.Random(5)
    rows = []
    for _ in range(200):
        area = rng.randint(1, 899)
        while area == 666:
            area = rng.randint(1, 899)
        ssn = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
        rows.append({"ssn": ssn, "order_id": rng.randint(100_000_000, 899_999_999)})
    insp = Guardian().detect(Batch(rows, "t"), "crm")
    labels = {c["column"]: c for c in insp.columns}
    assert labels["ssn"]["entity"] == "US_SSN" and labels["ssn"]["by"] == "name+values"
    assert "order_id" not in labels
    assert {f.column for f in insp.findings} == {"ssn"}


def test_email_column_is_labelled_from_values_alone_and_free_text_is_not_labelled():
    rows = [
        {
            "contact": f"user{i}@example.com",
            "remarks": f"please call user{i}@example.com later today",
        }
        for i in range(20)
    ]
    insp = Guardian().detect(Batch(rows, "t"), "crm")
    labels = {c["column"]: c for c in insp.columns}
    assert labels["contact"]["entity"] == "EMAIL_ADDRESS" and labels["contact"]["by"] == "values"
    assert "remarks" not in labels  # free text: per-value findings only
    assert sum(f.column == "remarks" for f in insp.findings) == 20


def test_nested_json_paths_and_patches():
    rows = [
        {
            "customer": {"email": "jane@example.com", "phones": ["(212) 555-0199"]},
            "note": "ssn 123-45-6788 on file",
        }
    ]
    pol = policy_from_dict({"version": 1, "rules": [{"action": "mask", "method": "redact"}]})
    insp = Guardian(pol).inspect(Batch(rows, "t"), "crm")
    assert [f.column for f in insp.findings] == ["customer.email", "customer.phones[0]", "note"]
    patch = insp.patches[0]
    assert patch["customer"] == {"email": "[EMAIL_ADDRESS]", "phones": ["[PHONE_NUMBER]"]}
    assert patch["note"] == "ssn [US_SSN] on file"
    assert rows[0]["customer"]["email"] == "jane@example.com"  # the batch itself is untouched


def test_national_ids_enabled_by_the_policy():
    pol = policy_from_dict(
        {
            "version": 1,
            "national_ids": ["nl.bsn"],
            "rules": [{"entity": "NATIONAL_ID", "action": "quarantine"}],
        }
    )
    rows = [
        {"bsn": "111222333", "note": "klant BSN 111222333"},
        {"bsn": "123456782", "note": "order 111222333"},
    ]
    insp = Guardian(pol).inspect(Batch(rows, "t"), "nl")
    assert [(f.index, f.column, f.entity, f.detail) for f in insp.findings] == [
        (0, "bsn", "NATIONAL_ID", "nl.bsn"),
        (0, "note", "NATIONAL_ID", "nl.bsn"),
        (1, "bsn", "NATIONAL_ID", "nl.bsn"),
    ]
    assert sorted(insp.quarantine) == [0, 1]
    assert Guardian().detect(Batch(rows, "t"), "nl").findings == []  # off without the policy


def test_a_repeated_value_does_not_make_a_pii_column():
    rows = [
        {"helpdesk": "(212) 555-0199", "contact": f"(212) 555-{i:04d}"} for i in range(100, 140)
    ]
    insp = Guardian().detect(Batch(rows, "t"), "crm")
    labels = {c["column"]: c for c in insp.columns}
    assert "helpdesk" not in labels and labels["contact"]["entity"] == "PHONE_NUMBER"
    assert sum(f.column == "helpdesk" for f in insp.findings) == 40  # values are still reported


def test_spaced_out_values_still_make_a_structured_column():
    rows = [
        {
            "tel": f"+1 212 555 {i:04d}",
            "iban": "DE89 3704 0044 0532 0130 00",
            "bio": "likes long walks",
        }
        for i in range(100, 130)
    ]
    labels = {c["column"]: c["entity"] for c in Guardian().detect(Batch(rows, "t"), "crm").columns}
    assert labels == {"tel": "PHONE_NUMBER", "iban": "IBAN_CODE"}


def test_a_negative_column_name_does_not_silence_its_free_text():
    rows = [
        {"order_notes": "customer asks: call (212) 555-0199, ssn 123-45-6788"},
        {"order_notes": "123456788"},
    ]
    insp = Guardian().detect(Batch(rows, "t"), "crm")
    assert [(f.index, f.entity) for f in insp.findings] == [(0, "PHONE_NUMBER"), (0, "US_SSN")]
