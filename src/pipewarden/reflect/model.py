"""The facts a dataset's docs are made of, read from the store: :func:`dataset_facts`.

- **versions**: every schema version from ``_pw_schema_history`` with the changes against the
  one before (computed from the two schemas), its DDL, what applied it and, for a batch, the
  rows it read, loaded and quarantined;
- **docs versions** by OpenMetadata's rule: the first version is 0.1, a compatible change adds
  0.1, a breaking one 1.0 (the minor part is kept: 0.2 -> 1.2). Major and minor are kept as
  two integers, so the tenth compatible change is 0.10, not 1.0 (which would read as breaking);
- **PII**: the guardian's classification, folded over the reports of every loaded batch;
- **quality**: batches and rows so far, the latest verdict, the quarantine.

Breaking (a consumer of the table or the API has to change): a column removed, a column's
type changed (even a widening: a client typed on ``integer`` gets ``number``), a nullable
column made NOT NULL. Compatible: a column added, a NOT NULL column made nullable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..compliance.classify import name_hint
from .catalog import Db


@dataclass
class Version:
    version: int  # schema version
    docs: tuple[int, int]  # (major, minor)
    breaking: bool
    changes: list[dict[str, Any]]
    ddl: list[str]
    applied_at: Any
    cause: dict[str, Any] | None
    batch: dict[str, Any] | None  # the batch's counts when a run's batch applied it
    schema: dict[str, Any]

    @property
    def docs_version(self) -> str:
        return f"{self.docs[0]}.{self.docs[1]}"


@dataclass
class DatasetFacts:
    dataset: str
    dialect: str
    namespace: str
    versions: list[Version]
    columns: list[dict[str, Any]]  # name, type, nullable, ident of the newest schema
    pii: dict[str, dict[str, Any]]  # column name -> classification
    key: list[str] | None  # column names of the primary key / unique index
    quality: dict[str, Any] = field(default_factory=dict)
    comments: tuple[str | None, dict[str, str]] = (None, {})  # table, ident -> comment

    @property
    def current(self) -> Version | None:
        return self.versions[-1] if self.versions else None


def diff_schemas(old: dict | None, new: dict) -> list[dict[str, Any]]:
    """The changes from schema document ``old`` (None: no table) to ``new``."""
    new_cols = {c["name"]: c for c in new.get("columns", [])}
    if old is None:
        return [{"op": "create", "column": None, "breaking": False,
                 "detail": f"{len(new_cols)} columns"}]  # fmt: skip
    old_cols = {c["name"]: c for c in old.get("columns", [])}
    out: list[dict[str, Any]] = []
    for name, c in new_cols.items():
        was = old_cols.get(name)
        if was is None:
            out.append({"op": "add", "column": name, "to": c["type"], "breaking": False,
                        "nullable": c.get("nullable", True)})  # fmt: skip
            continue
        if was["type"] != c["type"]:
            out.append({"op": "type", "column": name, "from": was["type"], "to": c["type"],
                        "breaking": True})  # fmt: skip
        if was.get("nullable", True) != c.get("nullable", True):
            made_null = c.get("nullable", True)
            out.append({"op": "nullable" if made_null else "not_null", "column": name,
                        "breaking": not made_null})  # fmt: skip
    for name, was in old_cols.items():
        if name not in new_cols:
            out.append({"op": "drop", "column": name, "from": was["type"], "breaking": True})
    return out


def bump(docs: tuple[int, int] | None, breaking: bool) -> tuple[int, int]:
    """The next docs version (OpenMetadata: 0.1 first, +0.1 compatible, +1.0 breaking)."""
    if docs is None:
        return (0, 1)
    return (docs[0] + 1, docs[1]) if breaking else (docs[0], docs[1] + 1)


def versions_of(db: Db, dataset: str) -> list[Version]:
    out: list[Version] = []
    prev_schema = None
    docs = None
    for h in db.history(dataset):
        changes = diff_schemas(prev_schema, h["schema"])
        breaking = any(c["breaking"] for c in changes)
        docs = bump(docs, breaking)
        cause = h.get("cause") if isinstance(h.get("cause"), dict) else None
        batch = None
        if cause and cause.get("batch_id") and cause.get("by") == "run":
            batch = db.batch(dataset, str(cause["batch_id"]))
        out.append(Version(h["version"], docs, breaking, changes, list(h["ddl"]),
                           h["applied_at"], cause, batch, h["schema"]))  # fmt: skip
        prev_schema = h["schema"]
    return out


# ---------------------------------------------------------------- PII


def column_of(path: str, names: list[str]) -> str | None:
    """The top-level column a guardian path (``customer.email``, ``tags[]``) belongs to."""
    if path in names:
        return path
    best = None
    for n in names:
        if (
            path.startswith(n)
            and path[len(n) : len(n) + 1] in (".", "[")
            and (best is None or len(n) > len(best))
        ):
            best = n
    return best


def fold_pii(acc: dict[str, dict[str, Any]], report: dict[str, Any], names: list[str]) -> None:
    """Add one guardian report's classification to ``acc`` (column -> {entities, how,
    actions, paths}). A union: the order of the reports does not matter."""
    for label in report.get("columns") or []:
        col = column_of(str(label.get("column", "")), names)
        if col is None:
            continue
        c = acc.setdefault(col, {"entities": set(), "how": set(), "actions": set(), "paths": set()})
        c["entities"].add(str(label.get("entity")))
        c["how"].add("column")
        if label.get("column") != col:
            c["paths"].add(str(label["column"]))
    for f in report.get("findings") or []:
        col = column_of(_generic(str(f.get("column", ""))), names)
        if col is None:
            continue
        c = acc.setdefault(col, {"entities": set(), "how": set(), "actions": set(), "paths": set()})
        c["entities"].add(str(f.get("entity")))
        c["how"].add("values")
        if f.get("action"):
            c["actions"].add(str(f["action"]))
        if _generic(str(f.get("column"))) != col:
            c["paths"].add(_generic(str(f["column"])))


def _generic(path: str) -> str:
    """``tags[3].email`` -> ``tags[].email`` (the guardian's generic path)."""
    import re

    return re.sub(r"\[\d+\]", "[]", path)


def pii_of(db: Db, dataset: str, columns: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Column name -> {entities, how, actions, paths} (sorted lists): the guardian's findings
    over every loaded batch, and column names that point at an entity (``how: name``)."""
    names = [c["name"] for c in columns]
    acc: dict[str, dict[str, Any]] = {}
    for report in db.guardian_reports(dataset):
        fold_pii(acc, report, names)
    for n in names:
        hint, _ = name_hint(n)
        if hint and n not in acc:
            acc[n] = {"entities": {hint}, "how": {"name"}, "actions": set(), "paths": set()}
    return {k: {kk: sorted(vv) for kk, vv in v.items()} for k, v in sorted(acc.items())}


# ---------------------------------------------------------------- the whole


def dataset_facts(db: Db, dataset: str, *, key: list[str] | None = None) -> DatasetFacts:
    """Everything the docs (and the API) say about ``dataset``. ``key``: its primary key
    (column names) when the config gives one; else the table's primary key or unique index."""
    versions = versions_of(db, dataset)
    schema = versions[-1].schema if versions else {"columns": []}
    columns = [
        {"name": c["name"], "type": c["type"], "nullable": c.get("nullable", True),
         "ident": c.get("ident") or c["name"]}
        for c in schema.get("columns", [])
    ]  # fmt: skip
    if key is None and db.has_table(dataset):
        idents = db.unique_key(dataset)
        if idents:
            by_ident = {c["ident"]: c["name"] for c in columns}
            if all(i in by_ident for i in idents):
                key = [by_ident[i] for i in idents]
    facts = DatasetFacts(
        dataset, db.dialect, db.namespace, versions, columns, pii_of(db, dataset, columns), key
    )
    facts.quality = quality_of(db, dataset)
    if db.has_table(dataset):
        facts.comments = db.comments(dataset)
    return facts


def quality_of(db: Db, dataset: str) -> dict[str, Any]:
    out: dict[str, Any] = {"totals": db.batch_totals(dataset)}
    recent = db.batches(dataset, limit=1)
    out["last_batch"] = recent[0] if recent else None
    out["last_verdict"] = db.last_run(dataset)
    out["quarantine"] = db.quarantine_summary(dataset)
    breaker = db.state(dataset, "anomaly.breaker")
    out["breaker"] = breaker.get("state") if isinstance(breaker, dict) else None
    return out
