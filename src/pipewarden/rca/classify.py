"""Classify a parsed failure with the signature library: ranked causes with evidence.

Order of strength: evidence in the failure's own lines (the last exception chain, the last
error lines) beats evidence elsewhere in the log (warnings, earlier retries); within either,
a structured code beats an exception type, which beats a message pattern; ties go to the
signature listed first (the more specific class).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .parse import Evidence, Parsed
from .signatures import SIGNATURES, Signature

LEVELS = {3: "code", 2: "exception", 1: "pattern"}
# confidence of the best match of a class: (primary, level) -> confidence
CONFIDENCE = {
    (True, 3): 0.95,
    (True, 2): 0.85,
    (True, 1): 0.7,
    (False, 3): 0.5,
    (False, 2): 0.4,
    (False, 1): 0.3,
}
MAX_EVIDENCE = 6


@dataclass
class Match:
    level: int
    primary: bool
    kind: str  # sqlstate | errno | exit_code | http_status | outcome | exception | pattern
    value: Any
    line: int | None

    def to_dict(self) -> dict:
        return {
            "level": LEVELS[self.level],
            "kind": self.kind,
            "value": self.value,
            "line": None if self.line is None else self.line + 1,
            "in_failure": self.primary,
        }


@dataclass
class Cause:
    signature: Signature
    matches: list[Match] = field(default_factory=list)
    confidence: float = 0.0

    @property
    def cls(self) -> str:
        return self.signature.cls

    @property
    def best(self) -> Match:
        return max(self.matches, key=lambda m: (m.primary, m.level))

    def key(self, order: int) -> tuple:
        b = self.best
        return (b.primary, b.level, len([m for m in self.matches if m.primary]), -order)


def _code_match(sig: Signature, e: Evidence) -> bool:
    if e.kind == "sqlstate":
        return e.value in sig.sqlstates or any(
            len(s) == 2 and str(e.value).startswith(s) for s in sig.sqlstates
        )
    if e.kind == "errno":
        return e.value in sig.errnos
    if e.kind == "exit_code":
        return e.value in sig.exit_codes
    if e.kind == "http_status":
        return e.value in sig.http_statuses
    if e.kind == "outcome":
        return e.value in sig.outcomes
    return False


def _matches(sig: Signature, p: Parsed) -> list[Match]:
    out: list[Match] = []
    for e in p.evidence:
        if e.kind == "exception":
            if e.value in sig.exceptions or e.value.removesuffix("Error") in sig.exceptions:
                out.append(Match(2, e.primary, "exception", e.value, e.line))
        elif _code_match(sig, e):
            out.append(Match(3, e.primary, e.kind, e.value, e.line))
    prim = p.primary_lines
    for rx in sig.compiled():
        found_primary = found_other = False
        for i, _m in p.scan(rx):
            if i in prim and not found_primary:
                found_primary = True
                out.append(Match(1, True, "pattern", rx.pattern, i))
            elif i not in prim and not found_other:
                found_other = True
                out.append(Match(1, False, "pattern", rx.pattern, i))
            if found_primary and found_other:
                break
    return out


def classify(p: Parsed) -> list[Cause]:
    """Every class with some evidence, strongest first, with a confidence each."""
    causes = []
    for order, sig in enumerate(SIGNATURES):
        ms = _matches(sig, p)
        if ms:
            c = Cause(sig, ms)
            causes.append((c.key(order), c))
    causes.sort(key=lambda kc: kc[0], reverse=True)
    ranked = [c for _, c in causes]
    for i, c in enumerate(ranked):
        b = c.best
        conf = CONFIDENCE[(b.primary, b.level)]
        # as strong a rival lowers the confidence of both
        rivals = sum(
            1
            for o in ranked
            if o is not c and (o.best.primary, o.best.level) == (b.primary, b.level)
        )
        conf *= 1.0 - min(0.3, 0.12 * rivals)
        if i > 0:
            conf = min(conf, ranked[0].confidence - 0.01)
        c.confidence = round(max(conf, 0.05), 2)
        c.matches.sort(key=lambda m: (not m.primary, -m.level))
        del c.matches[MAX_EVIDENCE:]
    return ranked


def rank_fixes(cause: Cause, p: Parsed) -> list[dict[str, str]]:
    """The fixes of a cause, those whose ``when`` pattern is in the failure's lines first."""
    import re

    frame = re.compile(r'^\s*File "')  # paths of frames say nothing about the fix
    text = "\n".join(p.lines[i] for i in sorted(p.primary_lines) if not frame.match(p.lines[i]))
    whole = "\n".join(x for x in p.lines if not frame.match(x))
    scored = []
    for k, fix in enumerate(cause.signature.fixes):
        score = 0
        if fix.when:
            rx = re.compile(fix.when, re.I | re.M)
            if rx.search(text):
                score = 2
            elif rx.search(whole):
                score = 1
        scored.append((-score, k, fix))
    scored.sort(key=lambda t: (t[0], t[1]))
    return [{"id": f.id, "text": f.text, "class": cause.cls} for _, _, f in scored]
