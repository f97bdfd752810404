"""The schema delta and the plan: what changed, what the contract allows, which DDL runs.

:func:`plan` compares the observed schema of a batch with the current schema of the table and
returns a :class:`Plan`: the :class:`Delta` (every change with an ``op``), the schema after the
allowed evolution (version bumped when it changed), the DDL for the dialect, and a decision:
``pass`` (the batch fits), ``evolve`` (DDL to run first) or ``reject`` (the contract refuses the
batch). Rows that do not fit the planned schema are sorted out by
:func:`pipewarden.schema.rows.check_rows`.

Ops: ``add`` (a key the table lacks), ``missing`` (a column the batch lacks), ``widen`` (a type
change that keeps every value's meaning), ``type_change`` (an incompatible one),
``nullability`` (nulls for a NOT NULL column), ``conflict`` (a key with values of incompatible
types in the batch itself). ``action`` tells what happens: ``create``/``alter`` (DDL),
``none``, ``defer`` (a column with nulls only is created when a value arrives), or the
contract's ``quarantine``/``discard_row``/``discard_value``/``reject``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .. import ddl as ddl_mod  # the module: pipewarden.ddl imports schema.types, a cycle
from . import lattice
from .contract import Contract
from .types import Column, DataType, Schema

T = DataType

_ACTION = {
    "freeze": "reject",
    "discard_row": "discard_row",
    "discard_value": "discard_value",
    "quarantine": "quarantine",
}


@dataclass
class Change:
    op: str
    column: str
    from_: str | None
    to: str | None
    compatible: bool
    action: str
    ident: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "column": self.column,
            "ident": self.ident,
            "from": self.from_,
            "to": self.to,
            "compatible": self.compatible,
            "breaking": not self.compatible,
            "action": self.action,
            "detail": self.detail,
        }


@dataclass
class Delta:
    changes: list[Change] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __iter__(self):
        return iter(self.changes)

    def by_op(self, op: str) -> list[Change]:
        return [c for c in self.changes if c.op == op]

    @property
    def breaking(self) -> bool:
        return any(not c.compatible for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [c.to_dict() for c in self.changes],
            "summary": dict(Counter(c.op for c in self.changes)),
            "breaking": self.breaking,
        }


@dataclass
class Plan:
    delta: Delta
    schema: Schema  # the table's schema after the allowed evolution
    ddl: list[str]
    decision: str  # pass | evolve | reject
    reason: str | None
    dialect: str
    table: str
    namespace: str | None
    contract: Contract
    current: Schema | None
    observed: Schema
    table_exists: bool = True  # False: the contract kept the table from being created

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reason": self.reason,
            "dialect": self.dialect,
            "table": self.table,
            "namespace": self.namespace,
            "delta": self.delta.to_dict(),
            "ddl": list(self.ddl),
            "schema": self.schema.to_dict(),
            "from_version": self.current.version if self.current else None,
            "contract": self.contract.to_dict(),
        }


def _type_action(mode: str, widen: bool, can_alter: bool) -> tuple[str, str]:
    if mode == "evolve":
        if widen and can_alter:
            return "alter", ""
        why = "needs a table rewrite" if widen else "is not a widening"
        return "quarantine", f"the change {why}; rows with such values are quarantined"
    return _ACTION[mode], ""


def plan(
    current: Schema | None,
    observed: Schema,
    contract: Contract | dict | str | None = None,
    dialect: str = "postgres",
    table: str = "data",
    namespace: str | None = None,
    *,
    conflicts: dict[str, list[str]] | None = None,
) -> Plan:
    """Compare ``observed`` with ``current`` (None: the table does not exist) under
    ``contract`` and plan the DDL for ``dialect``. Pure: reads nothing, writes nothing."""
    d = ddl_mod.get_dialect(dialect)
    if not isinstance(contract, Contract):
        contract = Contract.from_config(contract)
    changes: list[Change] = []
    conflicts = conflicts or {}

    def conflict_changes() -> None:
        for name, kinds in conflicts.items():
            changes.append(
                Change(
                    "conflict",
                    name,
                    None,
                    observed.columns[name].type.value if name in observed.columns else None,
                    False,
                    "none",
                    detail=f"values of types {', '.join(kinds)} in the batch; joined to "
                    "the widest type",
                )
            )

    if current is None or (current.version == 0 and not current.columns):
        # no table yet (a version-0 schema without columns is what a batch without any
        # typed value leaves behind: nothing was created)
        return _first_load(observed, contract, d, table, namespace, changes, conflict_changes)

    schema = current.copy()
    d.assign_idents(schema.columns.values())
    adds: list[Column] = []
    retype: list[tuple[Column, DataType]] = []
    drop_not_null: list[Column] = []

    for name, obs in observed.columns.items():
        cur = schema.columns.get(name)
        if cur is None:
            if obs.type == T.NULL:
                changes.append(
                    Change("add", name, None, T.NULL.value, True, "defer", detail="only nulls seen")
                )
                continue
            mode = contract.mode("columns", name)
            action = "alter" if mode == "evolve" else _ACTION[mode]
            col = Column(name, obs.type, True)
            if action == "alter":
                adds.append(col)
            changes.append(Change("add", name, None, obs.type.value, True, action))
            continue
        obs_type = obs.type
        if cur.type == T.DOUBLE and obs.text_number:
            # "1.75" in a CSV is number text, not a decimal: it fits a double column (the
            # rows check each value: text beyond a double's range or exactness is held)
            obs_type = T.DOUBLE
        if lattice.join(cur.type, obs_type) != cur.type:
            new = lattice.join(cur.type, obs_type)
            widen = lattice.is_widening(cur.type, new)
            action, detail = _type_action(
                contract.mode("data_type", name), widen, d.can_alter(cur.type, new)
            )
            if action == "alter":
                retype.append((cur, new))
            changes.append(
                Change(
                    "widen" if widen else "type_change",
                    name,
                    cur.type.value,
                    new.value,
                    widen,
                    action,
                    cur.ident,
                    detail,
                )
            )
        if obs.nullable and not cur.nullable:
            changes.append(_nullability(cur, contract))
            if changes[-1].action == "alter":
                drop_not_null.append(cur)

    for name, cur in schema.columns.items():
        if name in observed.columns:
            continue
        changes.append(
            Change(
                "missing",
                name,
                cur.type.value,
                None,
                cur.nullable,
                "none",
                cur.ident,
                "loaded as NULL" if cur.nullable else "the column is NOT NULL",
            )
        )
        if not cur.nullable:
            changes.append(_nullability(cur, contract))
            if changes[-1].action == "alter":
                drop_not_null.append(cur)
    conflict_changes()

    rejects = [c for c in changes if c.action == "reject"]
    too_wide = _too_wide(d, len(current.columns) + len(adds)) or _nul_names(d, observed)
    if rejects or too_wide:
        for c in changes:
            if c.action == "alter":
                c.action, c.detail = "none", "not applied: the batch is rejected"
        return Plan(
            Delta(changes),
            current.copy(),
            [],
            "reject",
            too_wide or _reject_reason(rejects),
            d.name,
            table,
            namespace,
            contract,
            current,
            observed,
        )
    for col in adds:
        schema.columns[col.name] = col
    d.assign_idents(schema.columns.values())
    for c in changes:
        if c.ident is None and c.column in schema.columns:
            c.ident = schema.columns[c.column].ident
    for col, new in retype:
        col.type = new
    for col in drop_not_null:
        col.nullable = True
    ddl = d.alter_table(namespace, table, adds, [(c, c.type) for c, _ in retype], drop_not_null)
    if ddl:
        schema.version = current.version + 1
    return Plan(
        Delta(changes),
        schema,
        ddl,
        "evolve" if ddl else "pass",
        None,
        d.name,
        table,
        namespace,
        contract,
        current,
        observed,
    )


def _nullability(cur: Column, contract: Contract) -> Change:
    mode = contract.mode("data_type", cur.name)
    action = "alter" if mode == "evolve" else _ACTION[mode]
    if action == "discard_value":
        action = "quarantine"  # a NOT NULL column cannot take the NULL
    return Change(
        "nullability",
        cur.name,
        "not null",
        "null",
        True,
        action,
        cur.ident,
        "nulls or missing keys",
    )


def _too_wide(d: Any, columns: int) -> str | None:
    """Why a table of `columns` columns cannot exist in the dialect, if it cannot."""
    if d.max_columns is not None and columns > d.max_columns:
        return (
            f"the table would have {columns:,} columns and {d.name} allows at most "
            f"{d.max_columns:,}: keep the rarer keys in one JSON column upstream, or split the "
            "dataset"
        )
    return None


def _nul_names(d: Any, observed: Schema) -> str | None:
    """Why the batch's keys cannot be recorded, if a key holds U+0000 and the dialect cannot
    store it (PostgreSQL: not in a name's record in the schema history's jsonb, nor in a raw
    row's jsonb)."""
    if not d.rejects_nul:
        return None
    bad = [name for name in observed.columns if "\x00" in name]
    if not bad:
        return None
    more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
    return (
        f"the key {bad[0]!r}{more} holds a NUL character (\\x00), which {d.name} cannot store: "
        "rename the key upstream"
    )


def _reject_reason(rejects: list[Change]) -> str:
    first = rejects[0]
    what = {
        "add": f"new column {first.column!r}",
        "widen": f"type change of {first.column!r} ({first.from_} -> {first.to})",
        "type_change": f"type change of {first.column!r} ({first.from_} -> {first.to})",
        "nullability": f"nulls in NOT NULL column {first.column!r}",
        "table": "the table does not exist",
    }.get(first.op, first.op)
    more = f" and {len(rejects) - 1} more change(s)" if len(rejects) > 1 else ""
    return f"the contract freezes this: {what}{more}"


def _first_load(observed, contract, d, table, namespace, changes, conflict_changes) -> Plan:
    mode = contract.tables
    cols = []
    for name, obs in observed.columns.items():
        if obs.type == T.NULL:
            changes.append(
                Change("add", name, None, T.NULL.value, True, "defer", detail="only nulls seen")
            )
            continue
        cols.append(Column(name, obs.type, True))
    d.assign_idents(cols)
    action = "create" if mode == "evolve" else _ACTION[mode]
    for col in cols:
        changes.append(Change("add", col.name, None, col.type.value, True, action, col.ident))
    conflict_changes()
    if mode != "evolve":
        table_change = Change(
            "table", table, None, None, True, action, detail="the table does not exist"
        )
        changes.insert(0, table_change)
        decision = "reject" if mode == "freeze" else "pass"
        reason = _reject_reason([table_change]) if mode == "freeze" else "the table does not exist"
        return Plan(
            Delta(changes), Schema({}, 0), [], decision, reason, d.name, table, namespace,
            contract, None, observed, table_exists=False,
        )  # fmt: skip
    if not cols:  # nothing typed yet: no table, no version; the rows wait in quarantine
        return Plan(
            Delta(changes), Schema({}, 0), [], "pass", "no key has a typed value yet", d.name,
            table, namespace, contract, None, observed, table_exists=False,
        )  # fmt: skip
    too_wide = _too_wide(d, len(cols)) or _nul_names(d, observed)
    if too_wide:
        for c in changes:
            if c.action == "create":
                c.action, c.detail = "none", "not applied: the batch is rejected"
        return Plan(
            Delta(changes), Schema({}, 0), [], "reject", too_wide, d.name, table, namespace,
            contract, None, observed, table_exists=False,
        )  # fmt: skip
    schema = Schema({c.name: c for c in cols}, 1)
    ddl = d.create_table(namespace, table, cols)
    return Plan(
        Delta(changes), schema, ddl, "evolve" if ddl else "pass", None, d.name, table, namespace,
        contract, None, observed,
    )  # fmt: skip
