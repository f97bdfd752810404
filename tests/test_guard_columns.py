"""The guardian at column speed gives the answer of scanning every leaf in turn.

The guardian scans each column's distinct values once, skips values without a digit or an
``@``, and runs only the recognizers a value's shape (ASCII digits written as 0) can feed.
These tests compare that with the plain definition: ``detect`` on every leaf of every record,
statistics added leaf by leaf (the reference below is the guardian's loop before columns).
"""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipewarden.batch import Batch
from pipewarden.compliance.classify import ColumnStats
from pipewarden.compliance.columns import distinct, kept, scan_distinct, shapes
from pipewarden.compliance.evalset import Generator
from pipewarden.compliance.guardian import Finding, Guardian, Inspection, _leaves, summarize
from pipewarden.compliance.policy import policy_from_dict
from pipewarden.compliance.recognizers import (
    CARD,
    EMAIL,
    ENTITIES,
    IBAN,
    IP,
    NATIONAL_ID,
    PHONE,
    SSN,
    Context,
    detect,
    email_only,
    plan,
    shape,
)
from pipewarden.errors import preview

CONTEXTS = [
    Context(),
    *(Context(hints=frozenset([e])) for e in (EMAIL, SSN, CARD, PHONE, IBAN, IP)),
    Context(negative=True),
    Context(code=True),
    Context(recall=frozenset(ENTITIES)),
    Context(hints=frozenset([PHONE]), recall=frozenset(ENTITIES)),
    Context(national_ids=("nl.bsn", "de.idnr"), hints=frozenset([NATIONAL_ID])),
    Context(national_ids=("nl.bsn",)),
    Context(region="GB", regions=()),
    Context(entities=frozenset([PHONE, SSN])),
]
# pieces that make candidates, near misses and context
PIECES = [
    *"0123456789", "12", "555", "0199", "2024", "-", " ", ".", ":", "/", "(", ")", "+", "@",
    "#", "x", "ext. ", "T", "Z", "a", "DE", "GB", "NL", "fax ", "phone ", "ssn ", "card ",
    "order ", "v", "é", "٣", "_", "\u00a0", "example.com", "jane.roe", "tel: ", "00", "011",
    "-05:00", " UTC", "$", "EUR ", ",", "bsn ", "4111", "1111", "078-05-1120",
]  # fmt: skip


def _values(seed: int, n: int) -> list[str]:
    rnd = random.Random(seed)
    gen = Generator(seed)
    out = []
    for _ in range(n):
        r = rnd.random()
        if r < 0.3:
            out.append("".join(rnd.choice(PIECES) for _ in range(rnd.randrange(1, 14))))
        elif r < 0.6:
            v = rnd.choice([gen.ssn, gen.card, gen.phone, gen.email, gen.iban, gen.ip])()
            pad = "".join(rnd.choice(PIECES) for _ in range(rnd.randrange(0, 3)))
            out.append(pad + v if rnd.random() < 0.5 else v)
        elif r < 0.8:  # another value of the same shape: other digits
            v = rnd.choice([gen.ssn, gen.card, gen.phone, gen.iban])()
            out.append("".join(rnd.choice("0123456789") if c.isdigit() else c for c in v))
        else:
            y = rnd.randrange(1600, 2100)
            out.append(
                rnd.choice(
                    [
                        f"{y}-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d}T"
                        f"{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:{rnd.randrange(60):02d}"
                        + rnd.choice(["Z", "+01:00", "-0500", "", ".123456789Z", ".5+05:00"]),
                        f"{y}-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d} "
                        f"{rnd.randrange(24):02d}:{rnd.randrange(60):02d}"
                        + rnd.choice(["", ":00", " UTC"]),
                        f"{rnd.randrange(1, 29):02d}/{rnd.randrange(1, 13):02d}/{y}",
                        str(rnd.randrange(10 ** rnd.randrange(1, 20))),
                    ]
                )
            )
    return out


# -- recognizers planned by shape ---------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_planned_detection_is_detection(seed):
    rnd = random.Random(seed)
    empty = 0
    for text in _values(seed, 3000):
        ctx = rnd.choice(CONTEXTS)
        full = detect(text, ctx)
        p = plan(shape(text), ctx)
        empty += not p
        assert detect(text, ctx, p) == full, (text, ctx, p)
        if email_only(p):  # e-mail matches do not read digits: the shape's are the value's
            assert detect(shape(text), ctx, p) == full, text
    assert empty > 300  # the plan does leave recognizers out


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(PIECES + list(string.ascii_letters)), max_size=16).map("".join),
    st.sampled_from(range(len(CONTEXTS))),
)
def test_planned_detection_is_detection_on_any_text(text, i):
    ctx = CONTEXTS[i]
    assert detect(text, ctx, plan(shape(text), ctx)) == detect(text, ctx)


def test_timestamps_and_small_numbers_plan_no_recognizer():
    ctx = Context()
    for text in ("2024-01-01T00:00:00Z", "2031-12-31T23:59:59+05:30", "123456", "-42", "ab 12"):
        assert plan(shape(text), ctx) == frozenset(), text
    assert plan(shape("212-555-0199"), ctx) == frozenset([PHONE])
    assert plan(shape("jane.roe@example.com"), ctx) == frozenset([EMAIL])


def test_column_helpers_on_arrow():
    import pyarrow as pa

    arr = pa.array(["a1b", "x", "été٣", "e@x", "", "12-34", "ü9"])
    assert kept(arr).tolist() == [0, 3, 5, 6]
    assert shapes(arr).to_pylist() == ["a0b", "x", "été٣", "e@x", "", "00-00", "ü0"]
    assert shapes(arr.slice(2, 4)).to_pylist() == ["été٣", "e@x", "", "00-00"]
    texts, ids = distinct(["b", None, "a", "b", "", "a"], str)
    assert texts.to_pylist() == ["b", "a", ""] and ids.tolist() == [0, -1, 1, 0, -1, 1]
    texts, ids = distinct([7, None, -7, 7], int)
    assert texts.to_pylist() == ["7", "-7"] and ids.tolist() == [0, -1, 1, 0]
    assert distinct([1, 2**70], int) is None  # beyond 64 bits: value by value
    assert distinct(["x\ud800"], str) is None  # a lone surrogate: value by value


@pytest.mark.parametrize("ctx", CONTEXTS[:8])
def test_scan_distinct_is_detect_per_value(ctx):
    values = list(dict.fromkeys(_values(5, 2000)))
    assert scan_distinct(values, ctx) == [detect(v, ctx) for v in values]
    few = values[:20]  # below the Arrow threshold: the same, in Python
    assert scan_distinct(few, ctx) == [detect(v, ctx) for v in few]
    # a column of one shape repeated: planned once
    ts = [f"2024-03-{d:02d}T{h:02d}:00:00Z" for d in range(1, 29) for h in range(24)]
    assert scan_distinct(ts, ctx) == [[] for _ in ts]


# -- the guardian: columns against leaves -------------------------------------------------------


def reference(guardian: Guardian, batch: Batch) -> Inspection:
    """Every leaf of every record scanned in turn: the guardian's definition."""
    out = Inspection(rows=len(batch))
    for index, record in enumerate(batch.records):
        for key, value in record.items():
            if isinstance(value, str):
                leaves = (((key,), key, key, value),) if value else ()
            else:
                key = str(key)
                leaves = _leaves(value, (key,), key, key)
            for keys, concrete, generic, text in leaves:
                ctx, hint, negative = guardian._context(generic)
                matches = detect(text, ctx)
                stat = out.stats.get(generic)
                if stat is None:
                    stat = out.stats[generic] = ColumnStats(generic, hint=hint, negative=negative)
                whole = None
                if len(matches) == 1 and matches[0].end - matches[0].start == len(text.strip()):
                    whole = matches[0].entity
                stat.add(text, whole)
                for m in matches:
                    out.findings.append(
                        Finding(index, batch.row_number(index), concrete, generic, keys,
                                m.entity, m.start, m.end, m.score,
                                preview(text[m.start : m.end]), m.detail)
                    )  # fmt: skip
    labels = {}
    for path, stat in out.stats.items():
        label = stat.label()
        if label:
            labels[path] = label
            out.columns.append(label)
    for f in out.findings:
        label = labels.get(f.path)
        if label and label["entity"] == f.entity and label["score"] > f.score:
            f.score = label["score"]
    return out


def _records(seed: int, n: int, *, clash: bool = False, odd_keys: bool = False) -> list[dict]:
    rnd = random.Random(seed)
    gen = Generator(seed)
    values = _values(seed, 400)
    out = []
    for i in range(n):
        contact = {
            "phone": gen.phone() if rnd.random() < 0.6 else None,
            "email": rnd.choice([gen.email(), "", "n/a"]),
            "n": rnd.randrange(10**6, 10**10),
            "ok": True,
        }
        r = {
            "id": i,
            "email": gen.email() if rnd.random() < 0.8 else rnd.choice([None, "", "x@y.com"]),
            "phone": rnd.choice([gen.phone(), "+1 212 555 0199", None]),
            "ssn": rnd.choice([gen.ssn(), rnd.randrange(10**8, 10**9)]),
            "note": rnd.choice(values + ["call me at " + gen.phone(), "", None]),
            "status": rnd.choice(["new", "paid", "4111 1111 1111 1111"]),
            "created_at": f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
            "amount": rnd.random() * 100,
            "active": rnd.random() < 0.5,
            "contact": contact if rnd.random() < 0.95 else None,
            "mixed": rnd.choice(
                [
                    gen.card(),
                    2**70 + i,
                    12,
                    1.5,
                    True,
                    "x\ud800y",
                    [gen.email(), {"s": gen.ssn()}],
                    {"tel": gen.phone()},
                    None,
                ]
            ),  # fmt: skip
        }
        if clash:
            r["a.b"] = gen.phone()
            r["a"] = {"b": gen.email()}
        if odd_keys and i % 7 == 0:
            r[5] = {"ssn": gen.ssn()} if i % 2 else int(gen.ssn().replace("-", "").replace(" ", ""))
        if i == 0:  # records need not share a key order (the first decides the columns')
            r = dict(reversed(r.items()))
        elif rnd.random() < 0.3:
            items = list(r.items())
            rnd.shuffle(items)
            r = dict(items)
        out.append(r)
    return out


def _canon(insp: Inspection) -> dict:
    return {
        "findings": [
            (
                f.index,
                f.row,
                f.column,
                f.path,
                f.keys,
                f.entity,
                f.start,
                f.end,
                f.score,
                f.preview,
                f.detail,
                f.action,
                f.method,
                f.rule,
            )
            for f in insp.findings
        ],  # fmt: skip
        "columns": insp.columns,
        "stats": [
            (k, s.values, s.free_text, s.distinct_count(), s.whole, s.hint, s.negative)
            for k, s in insp.stats.items()
        ],
    }


POLICY = policy_from_dict(
    {
        "version": 1,
        "rules": [
            {"entity": "EMAIL_ADDRESS", "action": "mask", "method": "partial"},
            {"entity": "PHONE_NUMBER", "action": "mask", "method": "redact"},
            {"entity": "US_SSN", "action": "quarantine"},
            {"entity": "CREDIT_CARD", "action": "mask", "method": "partial"},
        ],
    }
)


@pytest.mark.parametrize(
    "seed,n,kw",
    [
        (1, 400, {}),
        (2, 30, {}),  # small columns: the Python path
        (3, 300, {"clash": True}),  # "a.b" as a key and as a nested path
        (4, 200, {"odd_keys": True}),  # a key that is not text
        (5, 1, {}),
    ],
)
@pytest.mark.parametrize("mode", [None, "recall"])
def test_guardian_columns_equal_leaf_by_leaf(seed, n, kw, mode):
    records = _records(seed, n, **kw)
    guardian = Guardian(POLICY, mode=mode)
    batch = Batch([dict(r) for r in records], "x.jsonl", offset=11)
    got = guardian.detect(batch, "crm")
    want = reference(guardian, Batch([dict(r) for r in records], "x.jsonl", offset=11))
    assert _canon(got) == _canon(want)


def test_decisions_and_masks_equal_leaf_by_leaf():
    records = _records(6, 300)
    guardian = Guardian(POLICY)
    batch = Batch([dict(r) for r in records], "x.jsonl")
    insp = guardian.inspect(batch, "crm")
    # the same decisions, patches and quarantine from the reference findings
    ref = reference(guardian, batch)
    for f in ref.findings:
        d = guardian.policy.decide(f.entity, "crm", f.path, guardian.today)
        f.action, f.method, f.rule = d.action, d.method, d.rule
    assert _canon(insp) == _canon(ref)
    held = {f.index for f in ref.findings if f.action == "quarantine"}
    assert set(insp.quarantine) == held
    masks: dict[int, list] = {}
    for f in ref.findings:
        if f.action == "mask" and f.index not in held:
            masks.setdefault(f.index, []).append(f)
    assert insp.patches == {i: guardian._patch(records[i], fs) for i, fs in masks.items()}
    report = summarize(guardian, [insp])
    assert report["rows_masked"] == len(masks) and report["rows_quarantined"] == len(held)


def test_an_empty_batch_and_columns_without_text():
    guardian = Guardian()
    assert guardian.detect(Batch([], "x"), "d").findings == []
    batch = Batch([{"a": 1.5, "b": True, "c": None}, {"a": 2.0}], "x")
    insp = guardian.detect(batch, "d")
    assert insp.findings == [] and insp.stats == {}


def test_order_follows_each_record_not_the_first():
    # the columns first hold a value in the second record, whose keys run the other way
    records = [
        {"email": None, "phone": None, "id": 1},
        {"id": 2, "phone": "phone (212) 555-0199", "email": "jane.roe@example.com"},
        {"email": "john@example.org", "id": 3, "phone": "+1 212 555 0199"},
    ]
    guardian = Guardian()
    for rows in (records, records * 40):  # Python and Arrow paths
        got = guardian.detect(Batch([dict(r) for r in rows], "x"), "d")
        want = reference(guardian, Batch([dict(r) for r in rows], "x"))
        assert list(got.stats) == list(want.stats) == ["id", "phone", "email"]
        assert _canon(got) == _canon(want)
        assert [f.column for f in got.findings[:4]] == ["phone", "email", "email", "phone"]


MASKING = policy_from_dict(
    {
        "version": 1,
        "rules": [
            {"entity": "EMAIL_ADDRESS", "action": "mask", "method": "partial"},
            {"entity": "PHONE_NUMBER", "action": "mask", "method": "redact"},
            {"entity": "CREDIT_CARD", "action": "mask", "method": "partial"},
            {"entity": "US_SSN", "action": "allow"},
        ],
    }
)


@pytest.mark.parametrize("n", [300, 40])
def test_a_policy_that_only_masks_equals_leaf_by_leaf(n):
    # flat text and integer columns: the findings stay per distinct text and the policy is
    # applied per distinct text; the findings, patches and report equal the leaf-by-leaf ones
    rnd = random.Random(n)
    gen = Generator(n)
    values = _values(n, 200)
    records = []
    for i in range(n):
        r = {
            "id": i,
            "email": gen.email() if rnd.random() < 0.7 else rnd.choice([None, "", "x@y.com"]),
            "backup": rnd.choice([gen.email(), "jane.roe@example.com", None]),
            "phone": rnd.choice([gen.phone(), "+1 212 555 0199", None]),
            "ssn": rnd.choice([gen.ssn(), str(rnd.randrange(10**8, 10**9))]),
            "note": rnd.choice(values + ["mail " + gen.email() + " or " + gen.phone(), None]),
            "card": rnd.choice([int("".join(filter(str.isdigit, gen.card()))), 7, None]),
        }
        if rnd.random() < 0.3:  # the record's own key order decides a row's order
            items = list(r.items())
            rnd.shuffle(items)
            r = dict(items)
        records.append(r)
    guardian = Guardian(MASKING)
    insp = guardian.inspect(Batch([dict(r) for r in records], "x.jsonl", offset=7), "crm")
    got_report = summarize(guardian, [insp], max_findings=50)
    assert insp._list is None  # the per-distinct-text path
    ref = reference(guardian, Batch([dict(r) for r in records], "x.jsonl", offset=7))
    masks: dict[int, list] = {}
    for f in ref.findings:
        d = guardian.policy.decide(f.entity, "crm", f.path, guardian.today)
        f.action, f.method, f.rule = d.action, d.method, d.rule
        if f.action == "mask":
            masks.setdefault(f.index, []).append(f)
    assert masks and any(len({f.column for f in fs}) > 1 for fs in masks.values())
    want = {i: guardian._patch(records[i], fs) for i, fs in masks.items()}
    ref.patches = want
    assert summarize(guardian, [ref], max_findings=50) == got_report
    assert insp.first(3) == insp.findings[:3]
    assert _canon(insp) == _canon(ref)
    assert insp.patches == want and list(insp.patches) == sorted(want)
    assert all(list(insp.patches[i]) == list(want[i]) for i in want)
    assert insp.quarantine == {} and insp.blocked_by == []


@pytest.mark.parametrize("change", ["none", "order", "missing", "extra"])
def test_nested_objects_of_one_form_are_read_by_column_and_others_walked(change):
    # objects under a key are read path by path only when all have the first one's keys in
    # its order; one object in another order, short of a key or with one more is walked,
    # and either way the inspection is the leaf-by-leaf one
    from pipewarden.compliance.guardian import _one_form

    records = [r for r in _records(11, 300) if r["contact"] is not None]
    contact = records[150]["contact"]
    if change == "order":
        records[150]["contact"] = dict(reversed(contact.items()))
    elif change == "missing":
        del contact["n"]
    elif change == "extra":
        contact["fax"] = "+1 212 555 0199"
    objects = [r["contact"] for r in records]
    assert (_one_form(objects) == ("phone", "email", "n", "ok")) == (change == "none")
    guardian = Guardian()
    got = guardian.detect(Batch([dict(r) for r in records], "x"), "d")
    want = reference(guardian, Batch([dict(r) for r in records], "x"))
    assert _canon(got) == _canon(want)
    assert any(f.path.startswith("contact.") for f in got.findings)
