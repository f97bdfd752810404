"""What a preview may show of a value: the value itself (cut short) when nothing says it is
personal data, a masked preview when the guardian's recognizers find PII in it or a rule
(the column's name) says so.

A quarantine preview or a sentinel message that masks every value (``quantity=*****``) tells
the person debugging nothing; one that shows every value leaks PII. :func:`show_value` asks
the guardian (``compliance.classify.holds_pii``: e-mails, SSNs, cards, phones, IBANs, IPs,
national ids, in the value or hinted by the column name) and a short list of column names
the recognizers cannot check by value (names, addresses, birth dates, passwords, tokens):
any of them masks the value with :func:`pipewarden.errors.preview`; otherwise the value is
shown, cut to :data:`MAX_SHOWN` characters. Values the guardian step masked are already masks.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import preview

MAX_SHOWN = 40  # characters of a value a preview shows
# column names whose values are personal even where no recognizer can tell by the value
_PERSONAL = re.compile(
    r"(?:^|[^a-z])(?:first|last|full|given|family|middle|sur|user|customer|person|contact|"
    r"maiden|nick)?_?(?:name|names|surname)(?:$|[^a-z])|address|street|birth|dob|passport|"
    r"password|passwd|secret|token|api_?key|licen[cs]e|salary|diagnos|medical|religio|"
    r"ethnic|gender|sex(?:$|[^a-z])",
    re.IGNORECASE,
)


def personal_name(column: str | None) -> bool:
    """True when a column's name says its values are personal data."""
    return bool(column) and _PERSONAL.search(str(column)) is not None


def show_value(value: Any, column: str | None = None, *, region: str = "US") -> str:
    """``value`` as a preview may show it (see the module docstring)."""
    from .batch import json_bytes
    from .compliance.classify import holds_pii

    text = value if isinstance(value, str) else json_bytes(value).decode()
    if personal_name(column) or holds_pii(text, column or "", region=region):
        return preview(text)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


class Shower:
    """:func:`show_value` for many values of one column, each distinct value judged once, and
    at most ``limit`` of them (beyond, values are masked: a preview is for a person reading a
    few rows, not a reason to scan a million)."""

    def __init__(self, column: str | None, region: str = "US", limit: int = 10_000) -> None:
        self.column, self.region, self.limit = column, region, limit
        self.cache: dict[Any, str] = {}

    def __call__(self, value: Any) -> str:
        key = value if isinstance(value, str | int | float | bool) else None
        if key is not None and key in self.cache:
            return self.cache[key]
        if len(self.cache) >= self.limit:
            return preview(value)
        out = show_value(value, self.column, region=self.region)
        if key is not None:
            self.cache[key] = out
        return out
