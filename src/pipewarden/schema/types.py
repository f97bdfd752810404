"""The schema model shared by the sentinel, the DDL dialects and the stores."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

import orjson


class DataType(StrEnum):
    NULL = "null"  # only nulls seen so far; becomes anything
    BOOLEAN = "boolean"
    BIGINT = "bigint"
    DOUBLE = "double"
    DECIMAL = "decimal"
    TEXT = "text"
    DATE = "date"
    TIMESTAMP = "timestamp"
    TIMESTAMPTZ = "timestamptz"
    JSON = "json"  # nested objects and arrays (JSONB in PostgreSQL)


@dataclass
class Column:
    name: str  # the key in the source records (untrusted, any string)
    type: DataType
    nullable: bool = True
    ident: str = ""  # the identifier in the database (truncated, de-duplicated); "" = name
    # observed only: every value was number text (CSV), which a double column holds too
    text_number: bool = field(default=False, compare=False, repr=False)

    def to_dict(self) -> dict:
        d = {"name": self.name, "type": self.type.value, "nullable": self.nullable}
        if self.ident and self.ident != self.name:
            d["ident"] = self.ident
        return d


@dataclass
class Schema:
    """An ordered set of columns with a version and a content hash."""

    columns: dict[str, Column] = field(default_factory=dict)
    version: int = 0

    def content_hash(self) -> str:
        body = orjson.dumps([c.to_dict() for c in self.columns.values()])
        return hashlib.sha256(body).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {
            "format": "pipewarden.schema",
            "format_version": 1,
            "version": self.version,
            "hash": self.content_hash(),
            "columns": [c.to_dict() for c in self.columns.values()],
        }

    @classmethod
    def from_dict(cls, doc: dict) -> Schema:
        """The inverse of :meth:`to_dict` (raises ``ValueError`` on a malformed document)."""
        if not isinstance(doc, dict) or not isinstance(doc.get("columns"), list):
            raise ValueError("a pipewarden schema has a 'columns' list")
        columns: dict[str, Column] = {}
        for i, c in enumerate(doc["columns"]):
            if not isinstance(c, dict) or not isinstance(c.get("name"), str):
                raise ValueError(f"columns[{i}] needs a 'name' string")
            try:
                dtype = DataType(c.get("type", "null"))
            except ValueError:
                raise ValueError(
                    f"columns[{i}]: unknown type {c.get('type')!r} "
                    f"(use one of {', '.join(t.value for t in DataType)})"
                ) from None
            if c["name"] in columns:
                raise ValueError(f"columns[{i}]: column {c['name']!r} appears twice")
            columns[c["name"]] = Column(
                c["name"], dtype, bool(c.get("nullable", True)), str(c.get("ident") or "")
            )
        version = doc.get("version", 0)
        if not isinstance(version, int) or version < 0:
            raise ValueError("'version' must be a non-negative integer")
        return cls(columns, version)

    def copy(self) -> Schema:
        return Schema(
            {k: Column(c.name, c.type, c.nullable, c.ident) for k, c in self.columns.items()},
            self.version,
        )
