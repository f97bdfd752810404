"""Policy as code: which action each finding gets, and the masks.

A policy is a YAML file validated against ``policy_schema.json`` (package data). Rules map
entity types, datasets and columns (glob patterns on the column name or JSON path) to an
action; of all rules that match a finding the most restrictive wins
(``allow < mask < quarantine < block``; among masks ``partial < hash < redact``). An exception
allows one column (and entity) until its expiry date. Thresholds warn or fail on the share of
rows with findings that no rule allows.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .. import yamlsafe
from ..errors import InputError
from .recognizers import (
    BUILTIN_ENTITIES,
    DEFAULT_REGIONS,
    EMAIL,
    ENTITIES,
    IBAN,
    NATIONAL_ID,
    load_stdnum,
)

ACTIONS = ("report", "allow", "mask", "quarantine", "block")
# "report": no rule matched; the finding is reported, and fails the gate under --strict
_RANK = {"allow": 0, "report": 0, "mask": 1, "quarantine": 2, "block": 3}
_METHOD_RANK = {"partial": 0, "hash": 1, "redact": 2}


@dataclass(frozen=True)
class Rule:
    index: int
    name: str
    entities: tuple[str, ...]
    datasets: tuple[str, ...]
    columns: tuple[str, ...]
    action: str
    method: str

    def matches(self, entity: str, dataset: str, column: str) -> bool:
        if "*" not in self.entities and entity not in self.entities:
            return False
        if self.datasets and not any(fnmatch.fnmatchcase(dataset, g) for g in self.datasets):
            return False
        return not self.columns or _column_match(column, self.columns)


@dataclass(frozen=True)
class Exception_:
    index: int
    column: str
    entity: str
    dataset: str | None
    expires: dt.date
    reason: str

    def matches(self, entity: str, dataset: str, column: str) -> bool:
        if self.entity not in ("*", entity):
            return False
        if self.dataset and not fnmatch.fnmatchcase(dataset, self.dataset):
            return False
        return _column_match(column, (self.column,))


def _column_match(column: str, globs: tuple[str, ...]) -> bool:
    """Globs match the JSON path with list indexes written ``[]`` or the last path segment."""
    leaf = column.rsplit(".", 1)[-1]
    return any(fnmatch.fnmatchcase(column, g) or fnmatch.fnmatchcase(leaf, g) for g in globs)


@dataclass(frozen=True)
class Decision:
    action: str  # report | allow | mask | quarantine | block
    method: str | None  # mask method
    rule: str | None  # "rules[2]" / "exceptions[0]" / None


@dataclass
class Policy:
    """A loaded, validated policy. ``Policy()`` is the empty policy: detect, report, no rules."""

    source: str = "<default>"
    region: str = "US"
    regions: tuple[str, ...] = DEFAULT_REGIONS  # tried after region for national numbers
    recall: frozenset[str] = frozenset()  # entities in recall mode (the rest: precision)
    entities: tuple[str, ...] = BUILTIN_ENTITIES
    national_ids: tuple[str, ...] = ()
    strict: bool = False
    hash_key_env: str = "PIPEWARDEN_HASH_KEY"
    names_action: str = "rename"  # PII in keys: rename | block | allow
    rules: list[Rule] = field(default_factory=list)
    exceptions: list[Exception_] = field(default_factory=list)
    thresholds: dict[str, Any] = field(default_factory=dict)

    def decide(self, entity: str, dataset: str, column: str, today: dt.date) -> Decision:
        for exc in self.exceptions:
            if exc.expires >= today and exc.matches(entity, dataset, column):
                return Decision("allow", None, f"exceptions[{exc.index}]")
        best: Rule | None = None
        for rule in self.rules:
            if not rule.matches(entity, dataset, column):
                continue
            if best is None or (_RANK[rule.action], _METHOD_RANK[rule.method]) > (
                _RANK[best.action],
                _METHOD_RANK[best.method],
            ):
                best = rule
        if best is None:
            return Decision("report", None, None)
        method = best.method if best.action == "mask" else None
        return Decision(best.action, method, f"rules[{best.index}]")

    def expired_exceptions(self, today: dt.date) -> list[dict[str, Any]]:
        return [
            {"exception": f"exceptions[{e.index}]", "column": e.column, "expired": str(e.expires)}
            for e in self.exceptions
            if e.expires < today
        ]

    def uses_hash(self) -> bool:
        return any(r.action == "mask" and r.method == "hash" for r in self.rules)

    def hash_key(self) -> bytes:
        value = os.environ.get(self.hash_key_env)
        if not value:
            raise InputError(
                f"the policy masks with method 'hash' but ${self.hash_key_env} is not set",
                file=self.source,
                key="hash_key_env",
                hint=f"export {self.hash_key_env}=<a secret key> (the same key keeps hashes joinable)",
            )
        return value.encode()


# --------------------------------------------------------------------------- loading


def _schema() -> dict:
    text = resources.files("pipewarden.compliance").joinpath("policy_schema.json").read_text()
    return json.loads(text)


def _dates_to_text(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _dates_to_text(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_dates_to_text(v) for v in node]
    if isinstance(node, dt.date):
        return node.isoformat()
    return node


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validate_policy(doc: Any, source: str = "<policy>") -> list[dict[str, str]]:
    """Every problem of a policy document as ``{"key": ..., "error": ...}``, sorted by key."""
    from jsonschema import Draft202012Validator, FormatChecker

    if not isinstance(doc, dict):
        return [{"key": "(top level)", "error": "a policy is a mapping with at least 'version: 1'"}]
    doc = _dates_to_text(doc)
    validator = Draft202012Validator(_schema(), format_checker=FormatChecker())
    problems = []
    for err in validator.iter_errors(doc):
        key = _key(err.absolute_path)
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            key = ".".join(filter(None, [key if err.absolute_path else "", extra[0]]))
            message = f"unknown key (allowed: {', '.join(sorted(err.schema['properties']))})"
        elif err.validator == "required":
            message = err.message
        else:
            message = err.message
        problems.append({"key": key, "error": message})
    for i, name in enumerate(doc.get("national_ids") or []):
        try:
            load_stdnum(name)
        except ValueError as exc:
            problems.append({"key": f"national_ids[{i}]", "error": str(exc)})
    return sorted(problems, key=lambda p: (p["key"], p["error"]))


def load_policy(path: str | os.PathLike | None) -> Policy:
    """Read and validate a policy file; ``None`` gives the empty policy. Raises InputError."""
    if path is None:
        return Policy()
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("policy file not found", file=source, hint="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read the policy file: {exc.__class__.__name__}", file=source
        ) from None
    try:
        doc = yamlsafe.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise InputError(
            f"not valid YAML: {problem}",
            file=source,
            line=mark.line + 1 if mark else None,
            hint="fix the YAML syntax",
        ) from None
    return policy_from_dict(doc, source)


def policy_from_dict(doc: Any, source: str = "<policy>") -> Policy:
    problems = validate_policy(doc, source)
    if problems:
        first = problems[0]
        more = f"; {len(problems) - 1} more problem(s)" if len(problems) > 1 else ""
        err = InputError(
            first["error"] + more,
            file=source,
            key=first["key"],
            hint="see docs/guardian.md for the policy format; `pipewarden guard policy-check` lists every problem",
        )
        err.problems = problems  # type: ignore[attr-defined]
        raise err
    doc = _dates_to_text(doc)

    def tup(v: Any) -> tuple[str, ...]:
        if v is None:
            return ()
        return (v,) if isinstance(v, str) else tuple(v)

    national = tup(doc.get("national_ids"))
    entities = tup(doc.get("entities")) or (BUILTIN_ENTITIES + ((NATIONAL_ID,) if national else ()))
    rules = [
        Rule(
            index=i,
            name=r.get("name", f"rules[{i}]"),
            entities=tup(r.get("entity", "*")),
            datasets=tup(r.get("datasets")),
            columns=tup(r.get("columns")),
            action=r["action"],
            method=r.get("method", "redact"),
        )
        for i, r in enumerate(doc.get("rules") or [])
    ]
    exceptions = [
        Exception_(
            index=i,
            column=e["column"],
            entity=e.get("entity", "*"),
            dataset=e.get("dataset"),
            expires=dt.date.fromisoformat(e["expires"]),
            reason=e["reason"],
        )
        for i, e in enumerate(doc.get("exceptions") or [])
    ]
    mode = doc.get("mode", "precision")
    if isinstance(mode, str):
        recall = frozenset(ENTITIES) if mode == "recall" else frozenset()
    else:
        recall = frozenset(e for e, m in mode.items() if m == "recall")
    return Policy(
        source=source,
        region=doc.get("region", "US"),
        regions=tuple(doc["regions"]) if "regions" in doc else DEFAULT_REGIONS,
        recall=recall,
        entities=entities,
        national_ids=national,
        strict=bool(doc.get("strict", False)),
        hash_key_env=doc.get("hash_key_env", "PIPEWARDEN_HASH_KEY"),
        names_action=(doc.get("names") or {}).get("action", "rename"),
        rules=rules,
        exceptions=exceptions,
        thresholds=doc.get("thresholds") or {},
    )


# --------------------------------------------------------------------------- masks


def normalize(entity: str, raw: str) -> str:
    """The canonical form hashed by the ``hash`` mask, so formats of one value still join."""
    if entity == EMAIL:
        return raw.strip().lower()
    if entity == IBAN:
        return raw.replace(" ", "").upper()
    if entity == NATIONAL_ID:
        return "".join(ch for ch in raw if ch.isalnum()).upper()
    digits = "".join(ch for ch in raw if ch.isdigit())
    return digits if entity != "IP_ADDRESS" else raw.strip().lower()


def mask(entity: str, raw: str, method: str, key: bytes | None = None) -> str:
    """The value that replaces ``raw`` when it is loaded."""
    if method == "redact":
        return f"[{entity}]"
    if method == "hash":
        if key is None:
            raise ValueError("the hash mask needs a key")
        digest = hmac.new(key, normalize(entity, raw).encode(), hashlib.sha256).hexdigest()
        return f"hmac:{digest[:32]}"
    # partial: keep the shape and little else
    if entity == EMAIL:
        local, _, domain = raw.rpartition("@")
        return (local[:1] + "***@" + domain) if local else "***"
    keep = 4 if entity != "IP_ADDRESS" else 0
    out, kept = [], 0
    for ch in reversed(raw):
        if ch.isalnum():
            if kept < keep:
                out.append(ch)
                kept += 1
            else:
                out.append("*")
        else:
            out.append(ch)
    return "".join(reversed(out))


def check_policy(path: str | os.PathLike) -> dict[str, Any]:
    """``guard policy-check``: every problem of a policy file, by key. An unreadable file or
    broken YAML raises InputError (exit 2); schema problems come back in ``problems``."""
    try:
        policy = load_policy(path)
    except InputError as exc:
        problems = getattr(exc, "problems", None)
        if problems is None:
            raise
        return {"policy": str(path), "valid": False, "problems": problems}
    return {
        "policy": str(path),
        "valid": True,
        "problems": [],
        "rules": len(policy.rules),
        "exceptions": len(policy.exceptions),
        "entities": list(policy.entities),
        "region": policy.region,
        "regions": list(policy.regions),
        "recall": sorted(policy.recall),
    }
