"""Concurrency limit laws, one small class each behind one interface (the shape of Netflix
concurrency-limits).

A law sees one sample per finished request: when it was sent, its round-trip time, how many
requests were in flight when it was sent, and whether it was dropped (throttled, timed out,
reset). It returns the new limit. Laws are pure: time comes in the sample, never from a clock.

- :class:`AimdLimit`: Netflix's AIMD: +1 per sample that used at least half the limit, times
  ``backoff`` on a drop. Quick to find a limit, but it probes again at once after a drop, so
  against a hard server threshold it is throttled every few requests.
- :class:`CubicLimit` (the default): loss-driven like AIMD, with the growth curve of TCP CUBIC
  (RFC 9438): after a drop at ``w_max`` the limit falls to ``beta * w_max``, climbs back fast,
  stays flat near ``w_max`` and only then probes above it. Cold, it grows +1 per sample (slow
  start) until the first drop. Against a hard threshold it is throttled once per cycle
  (seconds), not once per round trip.
- :class:`GradientLimit`: latency-driven (Netflix Gradient2): the ratio of a long-term to a
  short-term average round-trip time shrinks the limit when the server slows down, before it
  starts rejecting.
- :class:`MinLimit`: the lowest of several laws (loss-based with a latency gradient).

Every law applies one decrease per round trip: samples of requests sent before the last
decrease were decided under the old limit and do not lower it again (a burst of 429s from one
overshoot is one signal, not ten).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Sample:
    sent_at: float  # seconds, on the controller's clock
    now: float  # when the response (or the failure) arrived
    rtt: float  # seconds
    inflight: int  # requests in flight when this one was sent, itself included
    dropped: bool  # throttled (429/503), timed out or reset


class Limit(Protocol):
    """A limit law: the current limit, updated from one sample at a time."""

    name: str
    limit: float

    def update(self, sample: Sample) -> float: ...

    def state(self) -> dict: ...

    def restore(self, state: dict, now: float) -> None: ...


class _Bounded:
    name = "base"

    def __init__(self, initial: float, min_limit: float, max_limit: float) -> None:
        if not 1 <= min_limit <= max_limit:
            raise ValueError("need 1 <= min_limit <= max_limit")
        self.min_limit = float(min_limit)
        self.max_limit = float(max_limit)
        self.limit = self._clamp(initial)
        self.decreased_at = -math.inf  # when the last decrease was applied

    def _clamp(self, value: float) -> float:
        return min(self.max_limit, max(self.min_limit, float(value)))

    def _app_limited(self, s: Sample) -> bool:
        """The client did not use the limit: a success says nothing about a higher one."""
        return s.inflight * 2 < self.limit

    def _fresh_drop(self, s: Sample) -> bool:
        """A drop of a request sent after the last decrease (one decrease per round trip)."""
        return s.dropped and s.sent_at >= self.decreased_at

    def state(self) -> dict:
        return {"law": self.name, "limit": round(self.limit, 3)}

    def restore(self, state: dict, now: float) -> None:
        if state.get("limit"):
            self.limit = self._clamp(state["limit"])


class AimdLimit(_Bounded):
    """Additive increase (+``increase`` per sample using at least half the limit),
    multiplicative decrease (``backoff`` on a drop). Netflix's defaults: 0.9 and +1."""

    name = "aimd"

    def __init__(
        self,
        initial: float = 10,
        min_limit: float = 1,
        max_limit: float = 200,
        backoff: float = 0.9,
        increase: float = 1.0,
    ) -> None:
        super().__init__(initial, min_limit, max_limit)
        if not 0.5 <= backoff < 1:
            raise ValueError("backoff must be in [0.5, 1)")
        self.backoff = backoff
        self.increase = increase

    def update(self, s: Sample) -> float:
        if s.dropped:
            if self._fresh_drop(s):
                self.limit = self._clamp(self.limit * self.backoff)
                self.decreased_at = s.now
        elif not self._app_limited(s):
            self.limit = self._clamp(self.limit + self.increase)
        return self.limit


class CubicLimit(_Bounded):
    """Loss-based with TCP CUBIC's window curve, in seconds:
    ``W(t) = c * (t - K)**3 + w_max`` with ``K = cbrt(w_max * (1 - beta) / c)``.

    ``w_max`` (the limit at the last drop) is the ceiling the law remembers: it climbs back
    to it quickly, lingers there, then probes. Before any drop (no ceiling known) it grows by
    one per sample that used at least half the limit, doubling per round trip (slow start)."""

    name = "cubic"

    def __init__(
        self,
        initial: float = 4,
        min_limit: float = 1,
        max_limit: float = 256,
        beta: float = 0.7,
        c: float = 0.4,
    ) -> None:
        super().__init__(initial, min_limit, max_limit)
        if not 0.5 <= beta < 1 or c <= 0:
            raise ValueError("need 0.5 <= beta < 1 and c > 0")
        self.beta = beta
        self.c = c
        self.w_max: float | None = None  # None: no drop seen yet (slow start)
        self.epoch = 0.0  # when the current cubic epoch started (the last drop)
        self.k = 0.0

    def _target(self, now: float) -> float:
        assert self.w_max is not None
        return self.c * (now - self.epoch - self.k) ** 3 + self.w_max

    def update(self, s: Sample) -> float:
        if s.dropped:
            if self._fresh_drop(s):
                self.w_max = max(self.limit, self.min_limit)
                self.limit = self._clamp(self.limit * self.beta)
                self.k = math.cbrt(self.w_max * (1 - self.beta) / self.c)
                self.epoch = s.now
                self.decreased_at = s.now
            return self.limit
        if self._app_limited(s):
            return self.limit
        if self.w_max is None:
            self.limit = self._clamp(self.limit + 1)  # slow start
        else:
            # never more than doubling what was in flight, never below the current limit
            self.limit = self._clamp(max(self.limit, min(self._target(s.now), 2.0 * s.inflight)))
        return self.limit

    def state(self) -> dict:
        return {**super().state(), "ceiling": round(self.w_max, 3) if self.w_max else None}

    def restore(self, state: dict, now: float) -> None:
        """Warm start: at the learned limit, below the remembered ceiling, on the flat part
        of the curve (so it does not probe above the ceiling at once)."""
        super().restore(state, now)
        ceiling = state.get("ceiling")
        if ceiling:
            self.w_max = max(float(ceiling), self.limit)
            self.k = math.cbrt(self.w_max * (1 - self.beta) / self.c)
            # place the epoch so that W(now) == limit on the concave part of the curve
            gap = max(self.w_max - self.limit, 0.0)
            self.epoch = now - (self.k - math.cbrt(gap / self.c))


class GradientLimit(_Bounded):
    """Latency-based (Netflix Gradient2): ``gradient = clamp(tolerance * long / short, 0.5,
    1)`` of a long-term and a short-term exponential average of the round-trip time; the new
    limit is ``limit * gradient + queue`` (``queue`` grows as the square root of the limit),
    smoothed. A slow-down lowers the limit before the server starts rejecting."""

    name = "gradient"

    def __init__(
        self,
        initial: float = 10,
        min_limit: float = 1,
        max_limit: float = 200,
        tolerance: float = 1.5,
        smoothing: float = 0.2,
        long_window: int = 600,
        short_window: int = 10,
    ) -> None:
        super().__init__(initial, min_limit, max_limit)
        self.tolerance = tolerance
        self.smoothing = smoothing
        self.long_alpha = 2 / (long_window + 1)
        self.short_alpha = 2 / (short_window + 1)
        self.long_rtt: float | None = None
        self.short_rtt: float | None = None

    def update(self, s: Sample) -> float:
        if s.dropped:  # a drop carries no latency; the loss law (if any) handles it
            if self._fresh_drop(s):
                self.limit = self._clamp(self.limit * 0.9)
                self.decreased_at = s.now
            return self.limit
        rtt = max(s.rtt, 1e-6)
        self.short_rtt = (
            rtt
            if self.short_rtt is None
            else self.short_rtt + self.short_alpha * (rtt - self.short_rtt)
        )
        self.long_rtt = (
            rtt
            if self.long_rtt is None
            else self.long_rtt + self.long_alpha * (rtt - self.long_rtt)
        )
        if self.long_rtt / self.short_rtt > 2:  # recovering from a slow period: forget it
            self.long_rtt *= 0.95
        if self._app_limited(s):
            return self.limit
        gradient = max(0.5, min(1.0, self.tolerance * self.long_rtt / self.short_rtt))
        queue = math.sqrt(self.limit)
        target = self.limit * gradient + queue
        self.limit = self._clamp(self.limit * (1 - self.smoothing) + target * self.smoothing)
        return self.limit

    def state(self) -> dict:
        return {
            **super().state(),
            "latency_ms": round(self.long_rtt * 1000, 3) if self.long_rtt else None,
        }

    def restore(self, state: dict, now: float) -> None:
        super().restore(state, now)
        if state.get("latency_ms"):
            self.long_rtt = self.short_rtt = float(state["latency_ms"]) / 1000


class MinLimit:
    """The lowest limit of several laws (e.g. cubic on loss with a latency gradient)."""

    def __init__(self, *laws: Limit) -> None:
        self.laws = laws
        self.name = "+".join(law.name for law in laws)

    @property
    def limit(self) -> float:
        return min(law.limit for law in self.laws)

    def update(self, sample: Sample) -> float:
        for law in self.laws:
            law.update(sample)
        return self.limit

    def state(self) -> dict:
        out: dict = {}
        for law in reversed(self.laws):
            out.update(law.state())
        out["law"] = self.name
        out["limit"] = round(self.limit, 3)
        return out

    def restore(self, state: dict, now: float) -> None:
        for law in self.laws:
            law.restore(state, now)


LAWS = {"aimd": AimdLimit, "cubic": CubicLimit, "gradient": GradientLimit}
