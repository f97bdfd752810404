"""Dependency sensors whose timeout is learned from the dependency's history in the store.

A sensor waits for one **condition**:

- :class:`TableHasNewBatch`: a dataset of a pipewarden store has a batch loaded after a time;
- :class:`FileAppeared`: a file matching a glob exists (and, optionally, kept its size between
  two pokes: not half-written);
- :class:`UpstreamSucceeded`: a pipeline's run log has a successful run after a time;
- :class:`HttpHealthy`: an HTTP endpoint answers with the expected status;
- :class:`PostgresQueryTrue`: a PostgreSQL query returns a true first value.

Its **timeout** comes from :class:`LearnedTimeout`: the ``quantile`` (p95) of the satisfied
waits in the dependency's history times ``factor``, within ``floor`` and ``ceiling``; with fewer
than ``min_history`` waits it is the configured ``default`` (Airflow 3.1's Deadline Alerts
learn from average run time the same way; Airflow's sensors and Mage's sensors do not: Mage's
poll every 60 s forever). The timeout counts from the first poke, as Airflow's does, also in
reschedule mode. Pokes back off exponentially up to ``max_interval`` (Airflow's
``exponential_backoff`` with ``max_wait``).

Each finished wait is appended to the history (``append_metrics(<dependency>, <run>,
"sensor_wait", ...)``); a wait that ages is escalated (see :mod:`pipewarden.conduct.escalation`)
and resolved when the dependency arrives. Time and sleep are injected.
"""

from __future__ import annotations

import glob as _glob
import math
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

WAIT = "sensor_wait"


class DependencyTimeout(TimeoutError):
    """A sensor's dependency did not arrive within its (learned) timeout."""

    def __init__(self, dependency: str, waited: float, timeout: float, why: str) -> None:
        super().__init__(
            f"Sensor has timed out: dependency {dependency!r} not ready after {waited:.0f} s "
            f"(timeout {timeout:.0f} s, {why})"
        )
        self.dependency, self.waited, self.timeout = dependency, waited, timeout


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- learned timeout


@dataclass(frozen=True)
class LearnedTimeout:
    default: float = 3600.0  # seconds, without enough history
    factor: float = 2.0
    quantile: float = 0.95
    floor: float = 60.0
    ceiling: float = 6 * 3600.0
    min_history: int = 5
    history: int = 100  # waits read back

    def __post_init__(self) -> None:
        if not (0 < self.quantile <= 1 and self.factor > 0 and 0 <= self.floor <= self.ceiling):
            raise ValueError("need 0 < quantile <= 1, factor > 0, 0 <= floor <= ceiling")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> LearnedTimeout:
        d = dict(d or {})
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def compute(self, waits: list[float]) -> tuple[float, str]:
        """(timeout seconds, how it was chosen) from past satisfied waits."""
        waits = sorted(w for w in waits if isinstance(w, int | float) and math.isfinite(w))
        if len(waits) < self.min_history:
            return float(self.default), (
                f"configured default: {len(waits)} past wait(s), fewer than {self.min_history}"
            )
        # nearest-rank quantile: no interpolation beyond what was seen
        k = max(0, min(len(waits) - 1, math.ceil(self.quantile * len(waits)) - 1))
        q = waits[k]
        raw = q * self.factor
        value = min(self.ceiling, max(self.floor, raw))
        bound = " (floor)" if value > raw else " (ceiling)" if value < raw else ""
        return value, (
            f"p{self.quantile * 100:g} of {len(waits)} past waits {q:.0f} s x {self.factor:g}"
            f" = {raw:.0f} s{bound}"
        )


def wait_history(store: Any, dependency: str, limit: int = 100) -> list[float]:
    """Seconds of the dependency's past satisfied waits, oldest first."""
    return [
        float(m["seconds"])
        for m in store.metrics_history(dependency, WAIT, limit)
        if m.get("outcome") == "satisfied" and m.get("seconds") is not None
    ]


# --------------------------------------------------------------------------- conditions


class Condition(Protocol):
    def describe(self) -> str: ...

    def check(self) -> tuple[bool, dict[str, Any]]: ...


@dataclass
class FileAppeared:
    pattern: str
    stable: bool = False  # the size must not change between two pokes
    _last: dict = field(default_factory=dict, repr=False)

    def describe(self) -> str:
        return f"file:{self.pattern}"

    def check(self) -> tuple[bool, dict[str, Any]]:
        found = sorted(f for f in _glob.glob(self.pattern, recursive=True) if os.path.isfile(f))
        if not found:
            return False, {"files": 0}
        sizes = {f: os.path.getsize(f) for f in found}
        if self.stable:
            ok = bool(self._last) and all(self._last.get(f) == s for f, s in sizes.items())
            self._last = sizes
            return ok, {"files": len(found), "stable": ok}
        return True, {"files": len(found), "first": found[0]}


@dataclass
class TableHasNewBatch:
    store: Any
    dataset: str
    since: str | None = None  # ISO time; None: any batch

    def describe(self) -> str:
        return f"table:{self.dataset}"

    def check(self) -> tuple[bool, dict[str, Any]]:
        last = self.store.latest_batch(self.dataset)
        if not last:
            return False, {"batches": 0}
        from ..rca.memory import instant

        at = instant(last["loaded_at"])
        since = instant(self.since)
        ok = since is None or (at is not None and at > since)
        shown = at.isoformat() if at else str(last["loaded_at"])
        return ok, {"last_batch": last["batch_id"][:12], "loaded_at": shown}


@dataclass
class UpstreamSucceeded:
    store: Any
    pipeline: str
    since: str | None = None

    def describe(self) -> str:
        return f"upstream:{self.pipeline}"

    def check(self) -> tuple[bool, dict[str, Any]]:
        from ..rca.memory import executions, instant

        since = instant(self.since)
        for e in reversed(executions(self.store, self.pipeline, 50)):
            if e.get("status") == "succeeded":
                at = instant(e.get("recorded_at"))
                if since is None or (at is not None and at > since):
                    return True, {"run_id": e.get("run_id"), "at": str(e.get("recorded_at"))}
                break
        return False, {}


@dataclass
class HttpHealthy:
    url: str
    status: int = 200
    timeout: float = 5.0

    def describe(self) -> str:
        from ..redact import redact

        return f"http:{redact(self.url)}"

    def check(self) -> tuple[bool, dict[str, Any]]:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as r:  # noqa: S310
                code = r.status
        except urllib.error.HTTPError as exc:
            code = exc.code
        except (urllib.error.URLError, OSError) as exc:
            return False, {"error": type(getattr(exc, "reason", exc)).__name__}
        return code == self.status, {"status": code}


@dataclass
class PostgresQueryTrue:
    dsn: str
    sql: str
    timeout: float = 10.0

    def describe(self) -> str:
        return "postgres-query"

    def check(self) -> tuple[bool, dict[str, Any]]:
        import psycopg

        try:
            with psycopg.connect(self.dsn, connect_timeout=int(self.timeout)) as conn:
                conn.execute(f"SET statement_timeout = {int(self.timeout * 1000)}")
                row = conn.execute(self.sql).fetchone()
        except psycopg.Error as exc:
            from ..errors import db_error_text

            return False, {"error": db_error_text(exc)}
        return bool(row and row[0]), {"value": bool(row and row[0])}


# --------------------------------------------------------------------------- the sensor


@dataclass
class PokeSchedule:
    """Seconds between pokes: ``interval``, times ``factor`` per poke up to ``max_interval``."""

    interval: float = 30.0
    factor: float = 2.0
    max_interval: float = 600.0

    def next(self, pokes: int) -> float:
        return min(self.max_interval, self.interval * (self.factor ** min(pokes, 60)))


class DependencySensor:
    """Wait for a condition with a learned timeout; record the wait; escalate as it ages."""

    def __init__(
        self,
        name: str,
        condition: Condition,
        store: Any,
        *,
        timeout: LearnedTimeout | None = None,
        schedule: PokeSchedule | None = None,
        escalator: Any = None,
        soft_fail: bool = False,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Any] = time.sleep,
        run_id: str | None = None,
    ) -> None:
        self.name, self.condition, self.store = name, condition, store
        self.timeout_policy = timeout or LearnedTimeout()
        self.schedule = schedule or PokeSchedule()
        self.escalator = escalator
        self.soft_fail = soft_fail
        self.clock, self.sleep = clock, sleep
        self.run_id = run_id or uuid.uuid4().hex[:16]

    def timeout(self) -> tuple[float, str]:
        hist = wait_history(self.store, self.name, self.timeout_policy.history)
        return self.timeout_policy.compute(hist)

    def record(self, outcome: str, seconds: float, pokes: int, timeout: float) -> None:
        self.store.append_metrics(
            self.name,
            self.run_id,
            WAIT,
            {
                "outcome": outcome,
                "seconds": round(seconds, 3),
                "pokes": pokes,
                "timeout": round(timeout, 3),
                "at": _iso(self.clock()),
            },  # fmt: skip
        )

    def poke_once(self, started: float, pokes: int, timeout: float, why: str) -> dict | None:
        """One poke of a wait that started at ``started`` (reschedule mode calls this once per
        slot). Returns the result when satisfied; raises DependencyTimeout when out of time;
        None to poke again later."""
        ok, detail = self.condition.check()
        now = self.clock()
        waited = max(0.0, now - started)
        if ok:
            self.record("satisfied", waited, pokes + 1, timeout)
            if self.escalator is not None:
                self.escalator.resolve(f"wait:{self.name}", f"{self.name} arrived")
            return {"dependency": self.name, "status": "satisfied", "waited_seconds": round(waited, 3),
                    "pokes": pokes + 1, "timeout_seconds": timeout, "timeout_from": why,
                    "detail": detail}  # fmt: skip
        if waited >= timeout:
            self.record("timed_out", waited, pokes + 1, timeout)
            if self.escalator is not None:
                self.escalator.update(
                    f"wait:{self.name}",
                    waited,
                    f"{self.name} did not arrive within {timeout:.0f} s",
                    {"condition": self.condition.describe(), "timeout_from": why},
                    failed=True,
                )
            raise DependencyTimeout(self.name, waited, timeout, why)
        if self.escalator is not None:
            self.escalator.update(
                f"wait:{self.name}",
                waited,
                f"waiting {waited:.0f} s for {self.name}",
                {"condition": self.condition.describe(), "timeout_seconds": timeout},
            )
        return None

    def wait(self) -> dict[str, Any]:
        """Poke until the condition holds or the timeout passes (then raise
        :class:`DependencyTimeout`, or with ``soft_fail`` return status ``skipped``)."""
        timeout, why = self.timeout()
        started = self.clock()
        pokes = 0
        while True:
            try:
                got = self.poke_once(started, pokes, timeout, why)
            except DependencyTimeout as exc:
                if self.soft_fail:
                    return {"dependency": self.name, "status": "skipped", "reason": str(exc),
                            "waited_seconds": round(exc.waited, 3), "pokes": pokes + 1,
                            "timeout_seconds": timeout, "timeout_from": why}  # fmt: skip
                raise
            if got is not None:
                return got
            remaining = timeout - (self.clock() - started)
            self.sleep(max(0.0, min(self.schedule.next(pokes), remaining)))
            pokes += 1
