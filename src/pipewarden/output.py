"""The one output contract: a readable summary by default, exactly one JSON document with
``--format json``. Commands build a plain ``dict`` result and hand it to :func:`emit`."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import orjson

FORMATS = ("text", "json")

# set by :func:`capturing`: the documents :func:`emit` would print are kept here instead
_CAPTURED: ContextVar[list[dict] | None] = ContextVar("pipewarden_captured", default=None)

# C0 and C1 controls except tab and newline, DEL, and the bidirectional marks, embeddings,
# overrides and isolates: from a column name or a value they could restyle the terminal, move
# the cursor, or show text in another order than it has (U+202E)
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_UNSAFE_LINES = re.compile(f"[\t\n{_UNSAFE.pattern[1:-1]}]")


def printable(text: str, one_line: bool = False) -> str:
    """`text` with terminal control characters and bidirectional overrides written as escapes
    (``\\x1b``, ``\\u202e``), for the readable output: data cannot drive the terminal.
    ``one_line``: tabs and newlines too (``\\x0a``), for reports whose lines name columns,
    so that a name cannot forge a line of its own (a ``total:`` line)."""
    return (_UNSAFE_LINES if one_line else _UNSAFE).sub(_escape_char, text)


def printable_doc(doc: Any, one_line: bool = False) -> Any:
    """A copy of a result with every string (keys included) made :func:`printable`."""
    if isinstance(doc, str):
        return printable(doc, one_line)
    if isinstance(doc, dict):
        return {printable_doc(k, one_line): printable_doc(v, one_line) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [printable_doc(v, one_line) for v in doc]
    return doc


def dumps(doc: Any) -> str:
    """Deterministic JSON: sorted keys, dates and decimals as strings."""
    return orjson.dumps(
        doc,
        option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
        default=str,
    ).decode()


def emit(
    doc: dict,
    fmt: str,
    render_text: Callable[[dict, Any], None] | None = None,
    one_line: bool = False,
    *,
    to_stderr: bool = False,
) -> None:
    """Print ``doc`` as JSON (``fmt == "json"``) or through ``render_text(doc, console)``.
    Credentials in it (DSN passwords, tokens, secret headers) are redacted first. ``one_line``:
    every string of the text output keeps to one line (see :func:`printable`). ``to_stderr``:
    the command writes data on stdout (``guard scan --output -``)."""
    from .redact import redact_doc

    doc = redact_doc(doc)
    captured = _CAPTURED.get()
    if captured is not None:  # a face that takes the document itself (the MCP server)
        captured.append(doc)
        return
    stream = sys.stderr if to_stderr else sys.stdout
    if fmt == "json":
        stream.write(dumps(doc) + "\n")
        stream.flush()
        return
    from rich.console import Console

    # emoji=False: a ":name:" in a file name or a value is printed as is (and rich's emoji table,
    # a noticeable part of the start-up of short commands, is not loaded)
    console = Console(highlight=False, soft_wrap=True, emoji=False, stderr=to_stderr)
    doc = printable_doc(doc, one_line)  # JSON escapes control characters itself; text does not
    if render_text is None:
        console.print_json(dumps(doc))
    else:
        render_text(doc, console)


class capturing:
    """``with capturing() as docs:`` the documents :func:`emit` is given in this context
    (thread, task) are appended to ``docs``, exactly as ``--format json`` would print them
    (credentials redacted), and nothing is printed."""

    def __enter__(self) -> list[dict]:
        self._docs: list[dict] = []
        self._token = _CAPTURED.set(self._docs)
        return self._docs

    def __exit__(self, *exc: object) -> None:
        _CAPTURED.reset(self._token)


def err_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
