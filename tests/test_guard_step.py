"""The guardian as a run step: Verdict with masks, quarantine issues and block."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from pipewarden.batch import Batch
from pipewarden.errors import InputError
from pipewarden.steps import StepContext, build
from pipewarden.store.base import MemoryStateStore
from pipewarden.verdict import merge

ROOT = Path(__file__).resolve().parents[1]

ROWS = [
    {"id": 1, "email": "jane.roe@example.com", "note": "nothing to see"},
    {"id": 2, "email": "john.doe@example.com", "note": "my ssn is 123-45-6788"},
    {"id": 3, "email": "n/a", "note": "call (212) 555-0199 after 5"},
    {"id": 4, "email": "max@example.org", "note": "ok"},
]


@pytest.fixture
def base(tmp_path):
    (tmp_path / "policy.yaml").write_text(
        """version: 1
rules:
  - {entity: EMAIL_ADDRESS, action: mask, method: partial}
  - {entity: PHONE_NUMBER, action: mask, method: redact}
  - {entity: US_SSN, action: quarantine}
  - {entity: CREDIT_CARD, action: block}
"""
    )
    return tmp_path


def ctx(base, **kw):
    return StepContext(dataset="crm", batch_id="b1", store=MemoryStateStore(), base_dir=base, **kw)


def test_step_masks_quarantines_and_accounts_for_every_row(base):
    step = build({"type": "guardian", "policy": "policy.yaml"}, base)
    batch = Batch([dict(r) for r in ROWS], "crm.json")
    v = step.check(batch, ctx(base))
    assert v.step == "guardian" and v.decision == "pass"
    assert [(i.row, i.reason, i.column) for i in v.issues] == [(1, "pii", "note")]
    assert "123-45-6788" not in v.issues[0].message and "US_SSN" in v.issues[0].message
    assert v.masks == {
        0: {"email": "j***@example.com"},
        2: {"note": "call [PHONE_NUMBER] after 5"},
        3: {"email": "m***@example.org"},
    }
    out = merge(len(batch), [v])
    assert out.rows_loaded + out.rows_quarantined == len(batch)
    assert out.patches == v.masks  # the rows that load carry the masks
    # the row the guardian quarantines keeps its payload for review, unmasked
    assert 1 not in out.patches and 1 not in out.masks
    text = json.dumps(v.report)
    for raw in ("jane.roe@example.com", "123-45-6788", "555-0199", "max@example.org"):
        assert raw not in text


def test_block_rule_blocks_the_batch(base):
    step = build({"type": "guardian", "policy": "policy.yaml"}, base)
    batch = Batch([{"note": "card 4111 1111 1111 1111"}, {"note": "fine"}], "t")
    v = step.check(batch, ctx(base))
    assert v.decision == "block" and "CREDIT_CARD" in v.reason
    assert "4111" not in v.reason
    assert merge(2, [v]).loaded == []


def test_strict_step_blocks_unhandled_findings(base):
    step = build({"type": "guardian", "strict": True}, base)
    v = step.check(Batch([{"note": "ip 10.1.2.3"}], "t"), ctx(base))
    assert v.decision == "block" and "--strict" in v.reason
    lax = build({"type": "guardian"}, base)
    assert lax.check(Batch([{"note": "ip 10.1.2.3"}], "t"), ctx(base)).decision == "pass"


def test_rows_other_steps_quarantine_keep_the_masks_in_their_payload(base):
    """A row held for another reason (a type mismatch) must not carry masked PII in clear
    into the quarantine table: its payload gets the masks too."""
    from pipewarden.verdict import RowIssue, Verdict

    step = build({"type": "guardian", "policy": "policy.yaml"}, base)
    v = step.check(Batch([dict(r) for r in ROWS], "t"), ctx(base, quarantined={0}))
    sentinel = Verdict("sentinel", issues=[RowIssue(0, "type_mismatch", "id: not a number")])
    out = merge(len(ROWS), [sentinel, v])
    assert 0 not in out.loaded and out.masks == {0: {"email": "j***@example.com"}}
    assert 0 not in out.patches and out.patches[3] == {"email": "m***@example.org"}


def test_bad_step_options(base):
    with pytest.raises(InputError, match="unknown option"):
        build({"type": "guardian", "polcy": "x.yaml"}, base)
    with pytest.raises(InputError, match="not found"):
        build({"type": "guardian", "policy": "missing.yaml"}, base)


def test_pipeline_config_schema_describes_the_guardian_step():
    schema = json.loads((ROOT / "src/pipewarden/pipeline_config_schema.json").read_text())
    ok = {
        "version": 1,
        "dataset": "crm",
        "source": {"path": "x.json"},
        "steps": [{"type": "guardian", "policy": "p.yaml", "strict": True, "region": "GB"}],
    }
    jsonschema.validate(ok, schema)
    bad = {**ok, "steps": [{"type": "guardian", "polcy": "p.yaml"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
