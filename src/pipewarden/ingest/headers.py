"""What a server says about its limits, read from response headers.

- ``Retry-After`` (RFC 9110): delay seconds (``120``) or an HTTP date
  (``Wed, 21 Oct 2015 07:28:00 GMT``), relative to the wall clock given.
- ``RateLimit-Limit`` / ``RateLimit-Remaining`` / ``RateLimit-Reset`` (IETF draft, reset in
  seconds), the combined ``RateLimit: limit=100, remaining=50, reset=5`` form of the later
  drafts, and the de-facto ``X-RateLimit-*`` headers, whose reset is an epoch time on some
  APIs (GitHub) and a delay on others: a value above 10**9 is read as an epoch time.

Pure functions: headers come in as a mapping with lowercase names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

MAX_DELAY = 24 * 3600.0  # a header asking for more than a day is read as a day
_EPOCH_CUTOFF = 1e9  # a reset value above this is an epoch time, not a delay


@dataclass(frozen=True)
class RetryAfter:
    delay: float  # seconds from now, >= 0
    form: str  # "seconds" | "date"


def retry_after(headers: Mapping[str, str], wall_now: float) -> RetryAfter | None:
    """The delay a ``Retry-After`` header asks for, or None when absent or unreadable."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return RetryAfter(min(float(value), MAX_DELAY), "seconds")
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return RetryAfter(min(max(when.timestamp() - wall_now, 0.0), MAX_DELAY), "date")


@dataclass(frozen=True)
class RateLimit:
    limit: float | None
    remaining: float | None
    reset: float | None  # seconds from now until the window resets
    convention: str  # "ratelimit" (IETF) | "x-ratelimit"


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    m = re.match(r"\s*(\d+(?:\.\d+)?)", text)  # "100, 100;w=60" -> 100
    return float(m.group(1)) if m else None


def _reset(value: float | None, wall_now: float) -> float | None:
    if value is None:
        return None
    if value > _EPOCH_CUTOFF:
        value = value - wall_now
    return min(max(value, 0.0), MAX_DELAY)


def rate_limit(headers: Mapping[str, str], wall_now: float) -> RateLimit | None:
    """The server's quota as it states it, or None when it states none."""
    combined = headers.get("ratelimit")
    if combined and "=" in combined:
        parts = dict(
            (k.strip().lower(), v.strip())
            for k, _, v in (p.partition("=") for p in re.split(r"[,;]", combined))
            if k.strip()
        )
        return RateLimit(
            _number(parts.get("limit")),
            _number(parts.get("remaining") or parts.get("r")),
            _reset(_number(parts.get("reset") or parts.get("t")), wall_now),
            "ratelimit",
        )
    for prefix, convention in (("ratelimit-", "ratelimit"), ("x-ratelimit-", "x-ratelimit")):
        remaining = _number(headers.get(prefix + "remaining"))
        limit = _number(headers.get(prefix + "limit"))
        if remaining is None and limit is None:
            continue
        return RateLimit(
            limit, remaining, _reset(_number(headers.get(prefix + "reset")), wall_now), convention
        )
    return None
