"""Descriptions written by people, kept across regenerations and written to the database.

A description comes from, in this order (the first that has one wins):

1. the descriptions file (``descriptions.yaml`` in the docs folder)::

       orders:
         description: One row per order, as the shop exported it.
         columns:
           email: The buyer's address; masked by the policy.

2. the page itself: the text between the description markers under the title, and the
   description column of the column table;
3. the database's comment on the table or column (``COMMENT ON``), which is how a
   description survives a docs folder that was deleted.

What wins is written back to the page and, with ``docs.comments`` (the default), to the
database as ``COMMENT ON TABLE`` / ``COMMENT ON COLUMN``. An empty string in the file clears a
description (and the comment).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .. import yamlsafe
from ..errors import InputError
from .catalog import Db
from .model import DatasetFacts
from .render import DESC_CLOSE, DESC_OPEN, code, uncell

_PIPE = re.compile(r"(?<!\\)\|")
PLACEHOLDER = "_No description yet: write one here._"


def read_file(path: Path) -> dict[str, dict[str, Any]]:
    """The descriptions file: dataset -> {"table": str|None, "columns": {name: str}}."""
    if not path.is_file():
        return {}
    try:
        doc = yamlsafe.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", file=str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(
            f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
            file=str(path),
            line=mark.line + 1 if mark else None,
        ) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InputError(
            "the descriptions file maps dataset names to {description, columns}", file=str(path)
        )
    out: dict[str, dict[str, Any]] = {}
    for name, entry in doc.items():
        key = f"{name}"
        if entry is None:
            continue
        if not isinstance(entry, dict) or set(entry) - {"description", "columns"}:
            raise InputError(
                "each dataset holds 'description' (text) and 'columns' (column: text)",
                file=str(path),
                key=key,
            )
        table = entry.get("description")
        cols = entry.get("columns") or {}
        if table is not None and not isinstance(table, str):
            raise InputError("description must be text", file=str(path), key=f"{key}.description")
        if not isinstance(cols, dict) or not all(
            isinstance(v, str) or v is None for v in cols.values()
        ):
            raise InputError(
                "columns maps column names to text", file=str(path), key=f"{key}.columns"
            )
        out[str(name)] = {
            "table": table,
            "columns": {str(k): v for k, v in cols.items() if v is not None},
        }
    return out


def read_page(text: str, facts: DatasetFacts) -> dict[str, Any]:
    """The descriptions a page holds (see module doc)."""
    out: dict[str, Any] = {"table": None, "columns": {}}
    start, end = text.find(DESC_OPEN), text.find(DESC_CLOSE)
    if 0 <= start < end:
        body = text[start + len(DESC_OPEN) : end].strip()
        if body and body != PLACEHOLDER:
            out["table"] = body
    cells_of = {}
    for c in facts.columns:
        name = code(c["name"], True)
        if c["ident"] != c["name"]:
            name += f" (stored as {code(c['ident'], True)})"
        cells_of[name] = c["name"]
    in_columns = False
    for line in text.splitlines():
        if line.startswith("## "):
            in_columns = line.strip() == "## Columns"
            continue
        if not in_columns or not line.startswith("|"):
            continue
        cells = _PIPE.split(line.strip())[1:-1]
        if len(cells) < 5:
            continue
        name = cells_of.get(cells[0].strip())
        if name is not None:
            d = uncell(cells[-1])
            if d:
                out["columns"][name] = d
    return out


def merge(
    facts: DatasetFacts, from_file: dict[str, Any] | None, from_page: dict[str, Any] | None
) -> tuple[dict[str, Any], list[str]]:
    """The descriptions that win, and notes on conflicts (the file over the page)."""
    notes: list[str] = []
    table_comment, col_comments = facts.comments
    f = from_file or {"table": None, "columns": {}}
    p = from_page or {"table": None, "columns": {}}
    table = f["table"] if f["table"] is not None else (p["table"] or table_comment)
    if f["table"] is not None and p["table"] and p["table"] != f["table"].strip():
        notes.append(
            f"{facts.dataset}: the page's description differs from the file's; the file wins"
        )
    cols: dict[str, str] = {}
    for c in facts.columns:
        n = c["name"]
        if n in f["columns"]:
            cols[n] = f["columns"][n]
            if p["columns"].get(n) and p["columns"][n] != f["columns"][n].strip():
                notes.append(
                    f"{facts.dataset}.{n}: the page's description differs from the file's; "
                    "the file wins"
                )
        elif p["columns"].get(n):
            cols[n] = p["columns"][n]
        elif col_comments.get(c["ident"]):
            cols[n] = col_comments[c["ident"]]
    return {"table": table, "columns": cols}, notes


def comment_statements(db: Db, facts: DatasetFacts, desc: dict[str, Any]) -> list[str]:
    """``COMMENT ON`` for every description that differs from the database's comment."""
    if not db.has_table(facts.dataset):
        return []
    table_comment, col_comments = facts.comments
    t = db.table(facts.dataset)
    out = []
    want = (desc.get("table") or "").strip() or None
    if want != (table_comment or None):
        out.append(f"COMMENT ON TABLE {t} IS {db.literal(want) if want else 'NULL'}")
    for c in facts.columns:
        want = (desc["columns"].get(c["name"]) or "").strip() or None
        if want != (col_comments.get(c["ident"]) or None):
            col = f"{t}.{_quote(c['ident'])}"
            out.append(f"COMMENT ON COLUMN {col} IS {db.literal(want) if want else 'NULL'}")
    return out


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
