"""Retry policies: exponential backoff with full or decorrelated jitter, caps, a retry budget,
and the transient-vs-permanent decision taken from the RCA signature library.

Everything is pure: the clock, the sleep and the random source are injected, so a test drives
a policy with a fake clock and a seeded ``random.Random``.

- :class:`FullJitter`: ``delay = uniform(0, min(cap, base * 2**attempt))`` (AWS's "full
  jitter": the least work for the server when many clients retry at once);
- :class:`DecorrelatedJitter`: ``delay = min(cap, uniform(base, 3 * previous))``;
- :class:`RetryBudget`: retries may add at most ``ratio`` of the calls made in the last
  ``window`` seconds (plus ``min_retries``), as Finagle's and gRPC's budgets do, so a failing
  dependency is not hammered by every caller's retries at once;
- :func:`is_transient`: the signature library's ``retryable`` flag for an exception;
- :func:`call_with_retry`: call a function under a policy.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Backoff(Protocol):
    def delay(self, attempt: int, previous: float) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        ...


@dataclass
class FullJitter:
    base: float = 1.0
    cap: float = 60.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, previous: float) -> float:
        return self.rng.uniform(0.0, min(self.cap, self.base * (2.0 ** min(attempt, 62))))


@dataclass
class DecorrelatedJitter:
    base: float = 1.0
    cap: float = 60.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, previous: float) -> float:
        prev = max(previous, self.base)
        return min(self.cap, self.rng.uniform(self.base, prev * 3.0))


@dataclass
class Exponential:
    """No jitter (for comparison and for a single caller): ``min(cap, base * factor**n)``."""

    base: float = 1.0
    cap: float = 60.0
    factor: float = 2.0

    def delay(self, attempt: int, previous: float) -> float:
        return min(self.cap, self.base * (self.factor ** min(attempt, 200)))


class RetryBudget:
    """At most ``ratio`` retries per call over the last ``window`` seconds, plus a floor of
    ``min_retries`` in that window (so a quiet caller may still retry)."""

    def __init__(
        self,
        ratio: float = 0.2,
        window: float = 10.0,
        min_retries: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ratio < 0 or window <= 0 or min_retries < 0:
            raise ValueError("ratio >= 0, window > 0 and min_retries >= 0")
        self.ratio, self.window, self.min_retries, self.clock = ratio, window, min_retries, clock
        self._calls: deque[float] = deque()
        self._retries: deque[float] = deque()

    def _trim(self, now: float) -> None:
        for q in (self._calls, self._retries):
            while q and q[0] <= now - self.window:
                q.popleft()

    def record_call(self) -> None:
        now = self.clock()
        self._trim(now)
        self._calls.append(now)

    def can_retry(self) -> bool:
        now = self.clock()
        self._trim(now)
        return len(self._retries) < self.min_retries + self.ratio * len(self._calls)

    def spend(self) -> bool:
        """Take one retry from the budget; False when it is spent."""
        if not self.can_retry():
            return False
        self._retries.append(self.clock())
        return True


def classify_exception(exc: BaseException) -> tuple[str, bool, float | None]:
    """(class, retryable, Retry-After seconds or None) of an exception and its causes, by the
    RCA signature library. Structured attributes count: ``sqlstate`` (psycopg), ``errno``,
    an HTTP response's ``status_code`` (httpx, requests) or ``code`` (urllib)."""
    from ..rca.classify import classify
    from ..rca.parse import parse

    lines: list[str] = []
    retry_after = None
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        t = type(e)
        lines.append(f"{t.__module__}.{t.__qualname__}: {e}")
        sqlstate = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if isinstance(sqlstate, str):
            lines.append(f"SQLSTATE {sqlstate}")
        num = getattr(e, "errno", None)
        if isinstance(num, int):
            lines.append(f"[Errno {num}]")
        resp = getattr(e, "response", None)
        status = getattr(resp, "status_code", None) or getattr(resp, "status", None)
        if status is None and isinstance(getattr(e, "code", None), int):
            status = e.code  # urllib's HTTPError
        if isinstance(status, int):
            lines.append(f"HTTP status {status}")
        headers = getattr(resp, "headers", None) or getattr(e, "headers", None)
        if headers is not None and retry_after is None and hasattr(headers, "get"):
            from ..ingest.headers import retry_after as parse_retry_after

            told = parse_retry_after(_Lower(headers), time.time())  # seconds or an HTTP date
            retry_after = told.delay if told is not None else None
        e = e.__cause__ or e.__context__
    causes = classify(parse("\n".join(lines)))
    if not causes:
        return "unknown", False, retry_after
    return causes[0].cls, causes[0].signature.retryable, retry_after


class _Lower:
    """Header lookup by a lower-case name on any mapping (urllib's message, httpx's and
    requests' headers are case-insensitive already; a plain dict may not be)."""

    def __init__(self, headers: Any) -> None:
        self.headers = headers

    def get(self, name: str, default: Any = None) -> Any:
        value = self.headers.get(name)
        if value is None and hasattr(self.headers, "items"):
            value = next((v for k, v in self.headers.items() if str(k).lower() == name), None)
        return default if value is None else value


def is_transient(exc: BaseException) -> bool:
    """Whether a retry can help, by the signature library (unknown failures are not retried)."""
    return classify_exception(exc)[1]


class RetryError(Exception):
    """The retries ended: ``attempts`` made, ``reason`` (permanent, attempts, budget,
    deadline); the last failure is the ``__cause__``."""

    def __init__(self, reason: str, attempts: int, cls: str) -> None:
        super().__init__(f"gave up after {attempts} attempt(s): {reason} ({cls})")
        self.reason, self.attempts, self.cls = reason, attempts, cls


@dataclass
class RetryPolicy:
    max_attempts: int = 5
    backoff: Backoff = field(default_factory=FullJitter)
    budget: RetryBudget | None = None
    deadline: float | None = None  # seconds from the first attempt
    classify: Callable[[BaseException], tuple[str, bool, float | None]] = classify_exception
    honour_retry_after: bool = True
    max_retry_after: float = 600.0


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] = time.sleep,
    on_retry: Callable[[int, BaseException, str, float], Any] | None = None,
) -> T:
    """Call ``fn``; on a transient failure wait and call again, within the policy's attempts,
    budget and deadline. A permanent failure is raised at once (as itself); when retries end,
    :class:`RetryError` is raised from the last failure."""
    policy = policy or RetryPolicy()
    start = clock()
    previous = 0.0
    attempt = 0
    while True:
        if policy.budget is not None:
            policy.budget.record_call()
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified below
            cls, retryable, retry_after = policy.classify(exc)
            attempt += 1
            if not retryable:
                raise
            if attempt >= policy.max_attempts:
                raise RetryError("attempts exhausted", attempt, cls) from exc
            wait = policy.backoff.delay(attempt - 1, previous)
            if policy.honour_retry_after and retry_after is not None:
                wait = max(wait, min(retry_after, policy.max_retry_after))
            if policy.deadline is not None and clock() - start + wait > policy.deadline:
                raise RetryError("deadline reached", attempt, cls) from exc
            if policy.budget is not None and not policy.budget.spend():
                raise RetryError("retry budget spent", attempt, cls) from exc
            if on_retry is not None:
                on_retry(attempt, exc, cls, wait)
            previous = wait
            sleep(wait)
