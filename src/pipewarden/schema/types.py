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
