"""The target schema: our own schema file, or a JSON Schema document.

Our format (``Schema.to_dict()``)::

    {"format": "pipewarden.schema", "format_version": 1, "version": 3, "hash": "9f2c...",
     "columns": [{"name": "id", "type": "bigint", "nullable": false},
                 {"name": "a very long name ...", "type": "text", "nullable": true,
                  "ident": "a very long name ..._1a2b3c4d"}]}

``hash`` is the first 16 hex digits of the SHA-256 of the columns (name, type, nullable,
ident): two files with the same hash describe the same table. ``version`` counts the changes.

A JSON Schema document (``{"type": "object", "properties": {...}}``) maps as: integer ->
bigint, number -> double (``format: decimal`` -> decimal), boolean -> boolean, string ->
text (``format: date`` -> date, ``date-time`` -> timestamptz, ``x-timestamp-naive`` or
``format: timestamp`` -> timestamp), object / array -> json, ``"null"`` in the type list
-> nullable; a property in ``required`` without ``"null"`` -> NOT NULL.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import orjson

from ..errors import InputError
from . import lattice
from .types import Column, DataType, Schema

T = DataType

_JSON_TYPES = {
    "integer": T.BIGINT,
    "number": T.DOUBLE,
    "boolean": T.BOOLEAN,
    "string": T.TEXT,
    "object": T.JSON,
    "array": T.JSON,
    "null": T.NULL,
}
_STRING_FORMATS = {
    "date": T.DATE,
    "date-time": T.TIMESTAMPTZ,
    "timestamp": T.TIMESTAMP,
}


def is_json_schema(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and doc.get("format") != "pipewarden.schema"
        and ("properties" in doc or "$schema" in doc or doc.get("type") == "object")
    )


def _prop_type(prop: Any) -> tuple[DataType, bool]:
    """(type, nullable) of one JSON Schema property."""
    if prop is True or prop == {}:
        return T.JSON, True
    if not isinstance(prop, dict):
        raise ValueError("a property must be an object")
    for key in ("anyOf", "oneOf"):
        if key in prop:
            parts = [_prop_type(p) for p in prop[key]]
            t, _ = lattice.join_all(p[0] for p in parts)
            return t, any(p[1] for p in parts) or any(p[0] == T.NULL for p in parts)
    kinds = prop.get("type")
    if kinds is None:
        return T.JSON, True
    kinds = kinds if isinstance(kinds, list) else [kinds]
    out, nullable = T.NULL, False
    for k in kinds:
        if k not in _JSON_TYPES:
            raise ValueError(f"unknown JSON Schema type {k!r}")
        t = _JSON_TYPES[k]
        if k == "null":
            nullable = True
            continue
        if k == "string":
            t = _STRING_FORMATS.get(prop.get("format", ""), T.TEXT)
        if k == "number" and prop.get("format") == "decimal":
            t = T.DECIMAL
        out = lattice.join(out, t)
    return out, nullable


def from_json_schema(doc: dict) -> Schema:
    props = doc.get("properties") or {}
    if not isinstance(props, dict):
        raise ValueError("'properties' must be an object")
    required = set(doc.get("required") or [])
    cols = {}
    for name, prop in props.items():
        t, nullable = _prop_type(prop)
        ident = prop.get("x-pipewarden-ident", "") if isinstance(prop, dict) else ""
        cols[name] = Column(name, t, nullable or name not in required, str(ident or ""))
    return Schema(cols, int(doc.get("x-pipewarden-version", 0) or 0))


_TO_JSON = {
    T.NULL: {},
    T.BOOLEAN: {"type": "boolean"},
    T.BIGINT: {"type": "integer"},
    T.DOUBLE: {"type": "number"},
    T.DECIMAL: {"type": "number", "format": "decimal"},
    T.TEXT: {"type": "string"},
    T.DATE: {"type": "string", "format": "date"},
    T.TIMESTAMP: {"type": "string", "format": "timestamp"},
    T.TIMESTAMPTZ: {"type": "string", "format": "date-time"},
    T.JSON: {"type": ["object", "array"]},
}


def to_json_schema(schema: Schema) -> dict:
    props = {}
    for c in schema.columns.values():
        p = dict(_TO_JSON[c.type])
        if c.nullable and "type" in p:
            kinds = p["type"] if isinstance(p["type"], list) else [p["type"]]
            p["type"] = [*kinds, "null"]
        if c.ident and c.ident != c.name:
            p["x-pipewarden-ident"] = c.ident
        props[c.name] = p
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": props,
        "required": [c.name for c in schema.columns.values() if not c.nullable],
        "x-pipewarden-version": schema.version,
        "x-pipewarden-hash": schema.content_hash(),
    }


class Target:
    """A loaded target file: the schema, its kind (``pipewarden`` or ``jsonschema``), and
    whether its recorded hash still matches its columns (False after a hand edit)."""

    def __init__(
        self,
        path: str,
        schema: Schema | None,
        kind: str,
        hash_ok: bool = True,
        closed: bool = False,
        title: str | None = None,
    ):
        self.path, self.schema, self.kind, self.hash_ok = path, schema, kind, hash_ok
        self.title = title  # the document's "title", which names the table by default
        # a JSON Schema with "additionalProperties": false: no column beyond its properties
        self.closed = closed

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "kind": self.kind,
            "exists": self.schema is not None,
            "version": self.schema.version if self.schema else None,
            "hash": self.schema.content_hash() if self.schema else None,
            "hash_ok": self.hash_ok,
            "closed": self.closed,
        }


def load_target(path: str | os.PathLike) -> Target:
    """Load a target schema file; a missing file is a first load (``schema`` is None)."""
    p = Path(path)
    name = str(path)
    if not p.exists():
        kind = "jsonschema" if name.endswith((".schema.json", ".jsonschema")) else "pipewarden"
        return Target(name, None, kind)
    try:
        raw = p.read_bytes()
        doc = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError as exc:
        raise InputError(
            f"the target schema is not valid JSON ({exc.msg})",
            file=name,
            line=getattr(exc, "lineno", None),
            hint="fix it, or delete it to start from a first load",
        ) from None
    if doc is None:
        raise InputError(
            "the target schema file is empty", file=name, hint="delete it for a first load"
        )
    title = (
        doc.get("title") if isinstance(doc, dict) and isinstance(doc.get("title"), str) else None
    )
    try:
        if is_json_schema(doc):
            closed = doc.get("additionalProperties") is False
            return Target(name, from_json_schema(doc), "jsonschema", closed=closed, title=title)
        schema = Schema.from_dict(doc)
    except ValueError as exc:
        raise InputError(
            f"not a pipewarden schema or JSON Schema ({exc})",
            file=name,
            hint="see docs/sentinel.md for the schema file format",
        ) from None
    if doc.get("format") not in (None, "pipewarden.schema"):
        raise InputError(f"unknown schema format {doc.get('format')!r}", file=name, key="format")
    hash_ok = doc.get("hash") in (None, schema.content_hash())
    return Target(name, schema, "pipewarden", hash_ok, title=title)


def write_target(target: Target, schema: Schema) -> None:
    """Write ``schema`` to the target file, in the target's own kind, atomically."""
    doc = to_json_schema(schema) if target.kind == "jsonschema" else schema.to_dict()
    if target.kind == "jsonschema" and target.closed:
        doc["additionalProperties"] = False  # the file keeps saying so
    p = Path(target.path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".pw-schema-", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
