"""The adaptive controller: how hard a client may push one host, learned as it goes.

Pure and clock-injectable: ``clock`` (monotonic seconds), ``wall`` (epoch seconds, for HTTP
dates and the memory's timestamps) and ``rng`` are given; nothing here sleeps or does I/O. The
I/O layer (:mod:`pipewarden.ingest.client`) asks :meth:`Controller.acquire` for a permit before
each request (or how long to wait) and reports each outcome to :meth:`Controller.release`,
which says whether and when to retry.

What it combines, in the order a request meets them:

1. **The server's own words first**: a quota stated in ``RateLimit-*``/``X-RateLimit-*``
   headers paces the requests when it is nearly used up and pauses the host when it is gone,
   until its reset; ``Retry-After`` (seconds or an HTTP date) delays the retry of the request
   that got it, and pauses the whole host on a 503 or when every request in flight was refused.
2. **A concurrency limit** (:mod:`pipewarden.ingest.limits`): loss-driven (429, 503, 504,
   timeouts, resets lower it), by default with TCP CUBIC's curve; optionally with Netflix's
   latency gradient. It never grows while the client uses less than half of it (app-limited).
3. **Client-side throttling** (Google SRE): when the server accepts few requests, new ones are
   held back locally with probability ``max(0, (requests - k * accepts) / (requests + 1))``
   over the last ``throttle_window`` seconds, instead of adding to the storm.
4. **Retries**: only transient outcomes (429, 408, 5xx, timeouts, resets, a truncated body),
   never a 4xx of the request itself (400, 401, 403, 404...); full or decorrelated jitter;
   at most ``max_attempts`` per request and a per-run budget of ``budget_min + budget_ratio *
   first attempts`` retries in all.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .headers import rate_limit, retry_after
from .limits import LAWS, GradientLimit, Limit, MinLimit, Sample


class Outcome(StrEnum):
    OK = "ok"
    THROTTLED = "throttled"  # 429, 503: the server refuses for load
    OVERLOADED = "overloaded"  # 504, 408
    TIMEOUT = "timeout"
    RESET = "reset"  # connection reset or refused, a truncated body
    SERVER_ERROR = "server_error"  # 500, 502, other 5xx: retried, not a sign of load
    BAD_BODY = "bad_body"  # a 2xx whose body is not what was asked for: retried
    CLIENT_ERROR = "client_error"  # 4xx of the request itself: never retried


DROPS = {Outcome.THROTTLED, Outcome.OVERLOADED, Outcome.TIMEOUT, Outcome.RESET}
RETRIED = DROPS | {Outcome.SERVER_ERROR, Outcome.BAD_BODY}


def classify_status(status: int) -> Outcome:
    if 200 <= status < 400:
        return Outcome.OK
    if status in (429, 503):
        return Outcome.THROTTLED
    if status in (408, 504):
        return Outcome.OVERLOADED
    if status >= 500:
        return Outcome.SERVER_ERROR
    return Outcome.CLIENT_ERROR


@dataclass
class ControllerConfig:
    law: str = "cubic"  # cubic | aimd | gradient
    latency_gradient: bool = False  # also the gradient law (the lower limit wins)
    initial_limit: float = 4  # cold start (slow start grows it quickly)
    min_limit: float = 1
    max_limit: float = 64
    jitter: str = "full"  # full | decorrelated
    base_delay: float = 0.05  # seconds
    max_delay: float = 30.0
    max_attempts: int = 8  # per request, the first included
    budget_ratio: float = 0.2  # retries allowed per first attempt, over the run
    budget_min: int = 50  # retries always allowed
    throttle_k: float = 2.0  # client-side throttling; 0 turns it off
    throttle_window: float = 120.0  # seconds
    pacing_margin: float = 1.0  # quota pacing starts when remaining <= margin * limit

    @classmethod
    def from_dict(cls, options: Mapping[str, Any] | None) -> ControllerConfig:
        cfg = cls(**dict(options or {}))
        if cfg.law not in LAWS:
            raise ValueError(f"unknown law {cfg.law!r}; known: {', '.join(sorted(LAWS))}")
        if cfg.jitter not in ("full", "decorrelated"):
            raise ValueError("jitter is full or decorrelated")
        return cfg


@dataclass(frozen=True)
class Permit:
    sent_at: float
    inflight: int  # in flight once this one is sent, itself included
    attempt: int  # 0 for the first attempt


@dataclass(frozen=True)
class Wait:
    seconds: float
    reason: str  # pause | limit | pacing | throttle


@dataclass(frozen=True)
class Decision:
    retry: bool
    delay: float = 0.0
    reason: str = ""  # why it is retried, or why not


@dataclass
class Stats:
    requests: int = 0  # sent, retries included
    first_attempts: int = 0
    retries: int = 0
    ok: int = 0
    throttled: int = 0  # 429 and 503 answers
    drops: int = 0  # throttled, overloaded, timeouts, resets
    server_errors: int = 0
    client_errors: int = 0
    local_rejects: int = 0  # held back by client-side throttling
    paused_seconds: float = 0.0
    gave_up: int = 0
    budget_exhausted: bool = False
    max_inflight: int = 0


class _Window:
    """Requests and accepts over the last ``span`` seconds, in one-second buckets."""

    def __init__(self, span: float) -> None:
        self.span = span
        self.buckets: deque[list[float]] = deque()  # [second, requests, accepts]

    def add(self, now: float, requests: int = 0, accepts: int = 0) -> None:
        sec = math.floor(now)
        if self.buckets and self.buckets[-1][0] == sec:
            self.buckets[-1][1] += requests
            self.buckets[-1][2] += accepts
        else:
            self.buckets.append([sec, requests, accepts])
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self.buckets and self.buckets[0][0] <= now - self.span:
            self.buckets.popleft()

    def totals(self, now: float) -> tuple[float, float]:
        self._trim(now)
        return sum(b[1] for b in self.buckets), sum(b[2] for b in self.buckets)


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else None


def build_law(cfg: ControllerConfig) -> Limit:
    kwargs = {"initial": cfg.initial_limit, "min_limit": cfg.min_limit, "max_limit": cfg.max_limit}
    law = LAWS[cfg.law](**kwargs)
    if cfg.latency_gradient and cfg.law != "gradient":
        return MinLimit(law, GradientLimit(**{**kwargs, "initial": cfg.max_limit}))  # type: ignore[return-value]
    return law


class Controller:
    """The controller of one (source, host). See the module's docstring."""

    def __init__(
        self,
        config: ControllerConfig | None = None,
        *,
        clock: Callable[[], float],
        wall: Callable[[], float] | None = None,
        rng: random.Random | None = None,
        memory: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config or ControllerConfig()
        self.clock = clock
        self.wall = wall or clock
        self.rng = rng or random.Random(0)
        self.law = build_law(self.config)
        self.inflight = 0
        self.paused_until = -math.inf
        self.pause_reason = ""
        self.pace_interval = 0.0  # seconds between sends while a quota is nearly used up
        self.next_send = -math.inf
        self.window = _Window(self.config.throttle_window)
        self.stats = Stats()
        self.consecutive_drops = 0
        self.last_throttle_wall: float | None = None
        self.latency: float | None = None  # exponential average of successful round trips
        self.conventions: dict[str, str] = {}
        self.started_limit = self.law.limit
        self.warm = False
        self._prev_delay: dict[int, float] = {}
        if memory:
            self.restore(memory)

    # ---- state
    @property
    def limit(self) -> float:
        return self.law.limit

    def restore(self, memory: Mapping[str, Any]) -> None:
        """Warm start from what an earlier run learned (see :meth:`memory`)."""
        learned = dict(memory)
        self.law.restore(learned, self.clock())
        if learned.get("latency_ms"):
            self.latency = float(learned["latency_ms"]) / 1000
        if learned.get("last_throttle_at"):
            with contextlib.suppress(TypeError, ValueError):
                self.last_throttle_wall = datetime.fromisoformat(
                    learned["last_throttle_at"]
                ).timestamp()
        self.conventions.update(learned.get("conventions") or {})
        self.started_limit = self.law.limit
        self.warm = True

    def memory(self) -> dict[str, Any]:
        """What the next run starts from: the learned limit (just under the ceiling where the
        server last refused, or the highest limit reached without a refusal), the ceiling, the
        latency baseline, the last throttle and the header conventions seen."""
        state = self.law.state()
        ceiling = state.get("ceiling")
        limit = self.law.limit
        if ceiling:
            limit = max(self.config.min_limit, min(self.config.max_limit, 0.95 * ceiling))
        return {
            "law": state.get("law"),
            "limit": round(limit, 3),
            "ceiling": ceiling,
            "latency_ms": round(self.latency * 1000, 3) if self.latency else None,
            "last_throttle_at": _iso(self.last_throttle_wall),
            "conventions": dict(self.conventions),
        }

    def report(self) -> dict[str, Any]:
        return {
            "warm_start": self.warm,
            "start_limit": round(self.started_limit, 3),
            "limit": round(self.law.limit, 3),
            "memory": self.memory(),
            **asdict(self.stats),
            "paused_seconds": round(self.stats.paused_seconds, 3),
        }

    # ---- before a request
    def acquire(self, attempt: int = 0) -> Permit | Wait:
        """A permit to send now, or how long to wait before asking again."""
        now = self.clock()
        if now < self.paused_until:
            return Wait(self.paused_until - now, "pause")
        if self.inflight >= max(1, math.floor(self.law.limit)):
            return Wait(math.inf, "limit")  # until a request in flight finishes
        if self.pace_interval and now < self.next_send:
            return Wait(self.next_send - now, "pacing")
        if self.config.throttle_k > 0:
            requests, accepts = self.window.totals(now)
            p = max(0.0, (requests - self.config.throttle_k * accepts) / (requests + 1))
            if p > 0 and self.rng.random() < p:
                self.window.add(now, requests=1)
                self.stats.local_rejects += 1
                return Wait(self._backoff(attempt, key=-1), "throttle")
        self.inflight += 1
        self.stats.requests += 1
        self.stats.max_inflight = max(self.stats.max_inflight, self.inflight)
        if attempt == 0:
            self.stats.first_attempts += 1
        else:
            self.stats.retries += 1
        if self.pace_interval:
            self.next_send = max(now, self.next_send) + self.pace_interval
        return Permit(now, self.inflight, attempt)

    def cancel(self, permit: Permit) -> None:
        """A request abandoned before it finished (its page was no longer needed): it frees
        its place and tells the law nothing."""
        self.inflight = max(0, self.inflight - 1)

    # ---- after a request
    def release(
        self,
        permit: Permit,
        outcome: Outcome,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        key: int = 0,
    ) -> Decision:
        """Record the outcome of a permit's request; say whether and when to retry it.
        ``key`` identifies the logical request (for decorrelated jitter)."""
        now = self.clock()
        wall = self.wall()
        headers = headers or {}
        self.inflight = max(0, self.inflight - 1)
        dropped = outcome in DROPS
        rtt = max(0.0, now - permit.sent_at)
        self.law.update(Sample(permit.sent_at, now, rtt, permit.inflight, dropped))
        self._read_quota(headers, now, wall)
        # counted when answered, not when sent: requests still in flight (a run's first
        # round trip, a slow server) are not yet refusals
        took = outcome in (Outcome.OK, Outcome.CLIENT_ERROR)  # the server took it
        self.window.add(now, requests=1, accepts=1 if took else 0)
        if outcome is Outcome.OK:
            self.stats.ok += 1
            self.consecutive_drops = 0
            self.latency = (
                rtt if self.latency is None else self.latency + 0.05 * (rtt - self.latency)
            )
            self._prev_delay.pop(key, None)
            return Decision(False, reason="ok")
        if outcome is Outcome.CLIENT_ERROR:
            self.stats.client_errors += 1
            self._prev_delay.pop(key, None)
            return Decision(
                False, reason=f"HTTP {status}: a client error is not retried (check the URL, "
                "parameters and credentials)"
            )  # fmt: skip
        if dropped:
            self.stats.drops += 1
            self.consecutive_drops += 1
        if outcome is Outcome.THROTTLED:
            self.stats.throttled += 1
            self.last_throttle_wall = wall
        elif outcome is Outcome.SERVER_ERROR:
            self.stats.server_errors += 1
        why = f"HTTP {status}" if status else outcome.value
        if permit.attempt + 1 >= self.config.max_attempts:
            self.stats.gave_up += 1
            return Decision(False, reason=f"{why} after {self.config.max_attempts} attempts")
        budget = self.config.budget_min + self.config.budget_ratio * self.stats.first_attempts
        if self.stats.retries >= budget:
            self.stats.gave_up += 1
            self.stats.budget_exhausted = True
            return Decision(
                False, reason=f"{why}: the run's retry budget ({int(budget)} retries) is spent"
            )
        delay = self._backoff(permit.attempt, key)
        told = retry_after(headers, wall)
        if told is not None:
            self.conventions["retry_after"] = told.form
            delay = told.delay + self.rng.uniform(0, min(1.0, 0.1 * told.delay))
            host_wide = status == 503 or self.consecutive_drops >= max(
                2, math.floor(self.law.limit)
            )
            if host_wide:
                self._pause(now + told.delay, "Retry-After")
        if now + delay < self.paused_until:
            delay = self.paused_until - now + self.rng.uniform(0, 0.05)
        return Decision(True, delay, reason=why)

    # ---- helpers
    def _pause(self, until: float, reason: str) -> None:
        if until > self.paused_until:
            start = max(self.clock(), self.paused_until)
            self.stats.paused_seconds += until - start
            self.paused_until = until
            self.pause_reason = reason

    def _read_quota(self, headers: Mapping[str, str], now: float, wall: float) -> None:
        quota = rate_limit(headers, wall)
        if quota is None:
            return
        self.conventions["rate_limit"] = quota.convention
        if quota.remaining is None or quota.reset is None:
            return
        if quota.remaining <= 0:
            self._pause(now + quota.reset, f"{quota.convention} quota used up")
            self.pace_interval = 0.0
        elif quota.remaining <= self.config.pacing_margin * max(self.law.limit, 1):
            self.pace_interval = quota.reset / quota.remaining
        else:
            self.pace_interval = 0.0

    def _backoff(self, attempt: int, key: int) -> float:
        cfg = self.config
        if cfg.jitter == "decorrelated":
            prev = self._prev_delay.get(key, cfg.base_delay)
            delay = min(cfg.max_delay, self.rng.uniform(cfg.base_delay, prev * 3))
            self._prev_delay[key] = delay
            return delay
        return self.rng.uniform(0, min(cfg.max_delay, cfg.base_delay * 2**attempt))
