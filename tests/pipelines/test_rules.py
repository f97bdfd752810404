"""Every rule of docs/rules.md: its failing example reports it, its passing example is clean.

The examples live in the docs (files to write + the command to run in their folder), so the
documentation and the validators cannot drift apart.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from pipewarden.pipelines.findings import RULES

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
FENCE = re.compile(r"^```(\w+) file=(\S+)\n(.*?)^```", re.M | re.S)


def _examples() -> dict[str, dict]:
    text = DOC.read_text()
    out = {}
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        rule = re.match(r"`([^`]+)`", section).group(1)
        command = re.search(r"^Command: `([^`]+)`", section, re.M).group(1)
        fails, passes = section.split("**Fails**", 1)[1].split("**Passes**", 1)
        out[rule] = {
            "command": shlex.split(command)[1:],  # drop "pipewarden"
            "fails": {p: body for _lang, p, body in FENCE.findall(fails)},
            "passes": {p: body for _lang, p, body in FENCE.findall(passes)},
        }
    return out


EXAMPLES = _examples()


def test_every_rule_is_documented_with_both_examples():
    assert set(EXAMPLES) == set(RULES)
    for rule, ex in EXAMPLES.items():
        assert ex["fails"] and ex["passes"], rule


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_rule_fails_and_passes(rule, tmp_path, monkeypatch, run_cli, request):
    ex = EXAMPLES[rule]
    args = list(ex["command"])
    if "--mode" in args:  # import mode needs the real Airflow
        args += ["--airflow-python", request.getfixturevalue("airflow_python")]
    severity = RULES[rule].severity

    bad = tmp_path / "fails"
    _write(bad, ex["fails"])
    monkeypatch.chdir(bad)
    code, doc = run_cli(*args)
    hits = [f for f in doc["findings"] if f["rule"] == rule]
    assert hits, f"{rule}: the failing example did not report it: {doc['findings']}"
    assert all(f["severity"] == severity and f["file"] and f["message"] for f in hits)
    assert code == (1 if severity == "error" else 0)
    if rule not in ("mage-metadata-invalid", "mage-block-uuid-missing", "cycle"):  # JSON: no lines
        assert all(f["line"] for f in hits), hits

    good = tmp_path / "passes"
    _write(good, ex["passes"])
    monkeypatch.chdir(good)
    code, doc = run_cli(*args)
    assert doc["findings"] == [], f"{rule}: the passing example is not clean"
    assert code == 0 and doc["ok"] is True
