"""The one output contract: a readable summary by default, exactly one JSON document with
``--format json``. Commands build a plain ``dict`` result and hand it to :func:`emit`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import orjson

FORMATS = ("text", "json")


def dumps(doc: Any) -> str:
    """Deterministic JSON: sorted keys, dates and decimals as strings."""
    return orjson.dumps(
        doc,
        option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
        default=str,
    ).decode()


def emit(doc: dict, fmt: str, render_text: Callable[[dict, Any], None] | None = None) -> None:
    """Print ``doc`` as JSON (``fmt == "json"``) or through ``render_text(doc, console)``."""
    if fmt == "json":
        sys.stdout.write(dumps(doc) + "\n")
        sys.stdout.flush()
        return
    from rich.console import Console

    # emoji=False: a ":name:" in a file name or a value is printed as is (and rich's emoji table,
    # a noticeable part of the start-up of short commands, is not loaded)
    console = Console(highlight=False, soft_wrap=True, emoji=False)
    if render_text is None:
        console.print_json(dumps(doc))
    else:
        render_text(doc, console)


def err_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
