"""The shared base of the DDL dialects (one small subclass per database, sqlglot style).

A dialect knows how to quote an identifier, how long one may be, which type names to use, which
type changes it can make *in place* (no table rewrite, no loss), and how to spell CREATE TABLE
and ALTER TABLE. Column names come from untrusted data: they only ever reach SQL through
:meth:`Dialect.quote`, after :meth:`Dialect.assign_idents` made them valid identifiers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from decimal import Decimal

from ..schema.types import Column, DataType

T = DataType

#: identifiers the stores add to a typed table; a source key never takes one of these
RESERVED_PREFIX = "_pw_"


class Dialect:
    name = "base"
    #: longest identifier in bytes (UTF-8); None for no limit
    max_ident_bytes: int | None = None
    #: whether "A" and "a" are the same column even when quoted
    case_insensitive = False
    #: characters an identifier cannot hold at all
    forbidden_chars = "\x00"
    #: type names
    types: dict[DataType, str] = {
        T.NULL: "TEXT",
        T.BOOLEAN: "BOOLEAN",
        T.BIGINT: "BIGINT",
        T.DOUBLE: "DOUBLE PRECISION",
        T.DECIMAL: "NUMERIC",
        T.TEXT: "TEXT",
        T.DATE: "DATE",
        T.TIMESTAMP: "TIMESTAMP",
        T.TIMESTAMPTZ: "TIMESTAMPTZ",
        T.JSON: "JSON",
    }
    #: type changes done in place: (from, to)
    in_place: frozenset[tuple[DataType, DataType]] = frozenset()
    #: statements that open every DDL script
    preamble: tuple[str, ...] = ()
    #: many actions in one ALTER TABLE (one lock) or one statement per action
    multi_action_alter = True
    #: strings with NUL characters cannot be stored
    rejects_nul = False
    #: columns a table can have (None: no limit a batch would reach)
    max_columns: int | None = None

    # -- identifiers ---------------------------------------------------------------------

    def quote(self, name: str) -> str:
        """A quoted identifier: any string becomes one name, never SQL."""
        for ch in self.forbidden_chars:
            if ch in name:
                raise ValueError(f"identifier holds a forbidden character {ch!r}")
        return '"' + name.replace('"', '""') + '"'

    def qualify(self, namespace: str | None, table: str) -> str:
        """``"namespace"."table"`` (or ``"table"``), each made a valid identifier."""
        if namespace:
            return f"{self.quote(self.clean(namespace))}.{self.quote(self.clean(table))}"
        return self.quote(self.clean(table))

    def type_name(self, t: DataType) -> str:
        return self.types[t]

    def _key(self, ident: str) -> str:
        return ident.casefold() if self.case_insensitive else ident

    def truncate(self, text: str, max_bytes: int | None = None) -> str:
        """Cut ``text`` to ``max_bytes`` of UTF-8 without splitting a character."""
        limit = max_bytes if max_bytes is not None else self.max_ident_bytes
        raw = text.encode("utf-8", "surrogatepass")
        if limit is None or len(raw) <= limit:
            return text
        return raw[:limit].decode("utf-8", "ignore")

    def clean(self, name: str) -> str:
        """A valid identifier for ``name``: forbidden characters dropped, lone surrogates
        replaced, an empty name named ``_``, cut to the length limit."""
        text = "".join(ch for ch in name if ch not in self.forbidden_chars)
        text = text.encode("utf-8", "replace").decode("utf-8")
        return self.truncate(text or "_")

    def ident(self, name: str) -> str:
        """The identifier of a column named ``name`` (before de-duplication): :meth:`clean`,
        and a name in the stores' reserved ``_pw_`` space gets one more ``_`` in front."""
        text = self.clean(name)
        if text.lower().startswith(RESERVED_PREFIX):
            text = self.truncate("_" + text)
        return text

    def assign_idents(self, columns: Iterable[Column], taken: Iterable[str] = ()) -> None:
        """Give every column without an ``ident`` a unique one, in order. A name whose
        identifier is taken (after truncation, or by case in a case-insensitive database)
        gets a suffix: ``_`` and 8 hex digits of the SHA-256 of the full name (the suffix
        depends on the name alone; the first name to claim an identifier keeps it plain, and
        columns already in the table always keep theirs)."""
        used = {self._key(i) for i in taken}
        for col in columns:
            if col.ident:
                used.add(self._key(col.ident))
                continue
            base = self.ident(col.name)
            ident = base
            n = 0
            while self._key(ident) in used:
                digest = hashlib.sha256(f"{col.name}\x00{n}".encode("utf-8", "surrogatepass"))
                suffix = "_" + digest.hexdigest()[:8]
                room = None if self.max_ident_bytes is None else self.max_ident_bytes - len(suffix)
                ident = self.truncate(base, room) + suffix
                n += 1
            col.ident = ident
            used.add(self._key(ident))

    # -- values ---------------------------------------------------------------------------

    def fits_decimal(self, value: Decimal) -> bool:
        return value.is_finite()

    def fits_text(self, value: str) -> bool:
        return not (self.rejects_nul and "\x00" in value)

    # -- statements -----------------------------------------------------------------------

    def can_alter(self, old: DataType, new: DataType) -> bool:
        return (old, new) in self.in_place

    def column_def(self, col: Column) -> str:
        null = "" if col.nullable else " NOT NULL"
        return f"{self.quote(col.ident or col.name)} {self.type_name(col.type)}{null}"

    def create_table(self, namespace: str | None, table: str, columns: list[Column]) -> list[str]:
        body = ", ".join(self.column_def(c) for c in columns)
        return [*self.preamble, f"CREATE TABLE {self.qualify(namespace, table)} ({body})"]

    def alter_type(self, col: Column, new: DataType) -> list[str]:
        """Statements to run before, and the ALTER action, for a type change in place."""
        return [f"ALTER COLUMN {self.quote(col.ident or col.name)} TYPE {self.type_name(new)}"]

    def alter_table(
        self,
        namespace: str | None,
        table: str,
        add: list[Column],
        retype: list[tuple[Column, DataType]],
        drop_not_null: list[Column],
    ) -> list[str]:
        actions: list[str] = [f"ADD COLUMN {self.column_def(c)}" for c in add]
        setup: list[str] = []
        for col, new in retype:
            *before, action = self.alter_type(col, new)
            setup += [s for s in before if s not in setup]
            actions.append(action)
        actions += [
            f"ALTER COLUMN {self.quote(c.ident or c.name)} DROP NOT NULL" for c in drop_not_null
        ]
        if not actions:
            return []
        target = f"ALTER TABLE {self.qualify(namespace, table)} "
        if self.multi_action_alter:
            body = [target + ", ".join(actions)]
        else:
            body = [target + a for a in actions]
        return [*self.preamble, *setup, *body]
