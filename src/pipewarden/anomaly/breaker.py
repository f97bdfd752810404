"""A circuit breaker per dataset, in the sense of resilience4j and pybreaker; a batch is a call.

States:

- ``closed``: batches pass through the detector. Each batch's outcome (failed or not) goes
  into a sliding window of the last ``window`` batches. Once at least ``min_batches`` are in
  the window and the failure rate reaches ``failure_rate``, the breaker opens. A severe breach
  (see :mod:`.monitors`, or an anomaly rate of ``severe_anomaly_rate``) opens it at once.
- ``open``: every batch is quarantined whole (the detector still evaluates it, for the report,
  without counting it anywhere). The cool-down is counted in **batches** (``unit: batches``,
  the default for file sources: ``cool_down_batches`` batches are held) or in **seconds**
  (``unit: seconds``, for streams: ``cool_down_seconds``). Once it is over, the next batch
  finds the breaker ``half_open``.
- ``half_open``: batches are scored as canaries. A failing canary opens the breaker again (a
  new cool-down); after ``half_open_batches`` good canaries in a row it closes, with an empty
  window.

Why batches by default: a backfill of 40 daily files runs in seconds, so a cool-down of an hour
holds every file after one bad day; counted in batches, one bad file holds the next
``cool_down_batches`` files, then canaries decide. A stream that delivers a batch every few
seconds would rush through a batch count, so there the cool-down is in seconds.

A batch fails when its share of rows scoring at least the row threshold reaches
``anomaly_rate`` (the batch threshold) or a health monitor raises an alarm. The state lives in
the store (``load_state``/``save_state``, key ``anomaly.breaker``), so every run, process and
machine sharing the store sees the same breaker. The batches it held are listed in the state
(``held``), with how to release them. ``reset`` closes it by hand; with ``rebaseline`` the
monitors also forget the history before the reset (use it after an intended change in the
data), and the dataset's model is trained anew.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

KEY = "anomaly.breaker"
STATES = ("closed", "open", "half_open")


@dataclass
class BreakerConfig:
    enabled: bool = True
    window: int = 10
    min_batches: int = 5
    failure_rate: float = 0.5
    anomaly_rate: float = 0.05
    severe_anomaly_rate: float = 0.5
    cool_down_seconds: float = 3600.0
    half_open_batches: int = 2
    unit: str = "auto"  # batches | seconds | auto (batches for file sources, seconds for streams)
    cool_down_batches: int = 2

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> BreakerConfig:
        return cls(**(d or {}))


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def initial_state() -> dict[str, Any]:
    return {
        "state": "closed",
        "window": [],
        "opened_at": None,
        "reason": None,
        "canaries_ok": 0,
        "batches": 0,
        "epoch": 0,
        "history": [],
        "held": [],  # batch ids held whole, the latest last (at most MAX_HELD)
        "held_in_cool_down": 0,
    }


MAX_HELD = 100
RELEASE = (
    "when the held batches are healthy, release their rows with "
    "`pipewarden quarantine replay <config> --reason batch_quarantined`"
)


class Breaker:
    def __init__(
        self,
        store: Any,
        dataset: str,
        config: BreakerConfig | None = None,
        clock: Callable[[], float] = time.time,
        stream: bool = False,
    ) -> None:
        self.store = store
        self.dataset = dataset
        self.config = config or BreakerConfig()
        self.clock = clock
        unit = self.config.unit
        self.unit = ("seconds" if stream else "batches") if unit == "auto" else unit

    # state -------------------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        state = self.store.load_state(self.dataset, KEY)
        base = initial_state()
        if state:
            base.update(state)
        return base

    def _save(self, state: dict[str, Any]) -> None:
        state["updated_at"] = self.clock()
        self.store.save_state(self.dataset, KEY, state)

    def _move(self, state: dict[str, Any], to: str, reason: str | None) -> None:
        now = self.clock()
        state["history"] = (
            state.get("history", [])
            + [{"from": state["state"], "to": to, "at": now, "reason": reason}]
        )[-20:]
        state["state"] = to
        if to == "open":
            state["opened_at"] = now
            state["reason"] = reason
            state["canaries_ok"] = 0
            state["held_in_cool_down"] = 0
        elif to == "half_open":
            state["canaries_ok"] = 0
        elif to == "closed":
            state["window"] = []
            state["opened_at"] = None
            state["reason"] = None
            state["canaries_ok"] = 0

    def retry_at(self, state: dict[str, Any]) -> float | None:
        if self.unit != "seconds" or state["state"] != "open" or state.get("opened_at") is None:
            return None
        return float(state["opened_at"]) + self.config.cool_down_seconds

    def batches_to_hold(self, state: dict[str, Any]) -> int | None:
        """Batches still to be held before canaries (``unit: batches``), or None."""
        if self.unit != "batches" or state["state"] != "open":
            return None
        return max(0, self.config.cool_down_batches - int(state.get("held_in_cool_down", 0)))

    # calls -------------------------------------------------------------------------------

    def allow(self, batch_id: str = "") -> tuple[bool, dict[str, Any]]:
        """May a batch go through? Moves open -> half_open once the cool-down is over; a
        batch that is not let through is counted as held (and listed, by ``batch_id``)."""
        state = self.load()
        if state["state"] != "open":
            return True, state
        if self.unit == "seconds":
            retry = self.retry_at(state)
            over = retry is not None and self.clock() >= retry
        else:
            over = int(state.get("held_in_cool_down", 0)) >= self.config.cool_down_batches
        if over:
            self._move(state, "half_open", "cool-down over: letting canary batches through")
            self._save(state)
            return True, state
        state["held_in_cool_down"] = int(state.get("held_in_cool_down", 0)) + 1
        if batch_id:
            state["held"] = ([h for h in state.get("held", []) if h != batch_id] + [batch_id])[
                -MAX_HELD:
            ]
        self._save(state)
        return False, state

    def record(self, failed: bool, severe: bool, reason: str | None) -> dict[str, Any]:
        """Record the outcome of one permitted batch and return the new state."""
        cfg = self.config
        state = self.load()
        state["batches"] = int(state.get("batches", 0)) + 1
        if state["state"] == "half_open":
            if failed:
                self._move(state, "open", f"canary batch failed: {reason}")
            else:
                state["canaries_ok"] = int(state.get("canaries_ok", 0)) + 1
                if state["canaries_ok"] >= cfg.half_open_batches:
                    self._move(state, "closed", f"{state['canaries_ok']} good canary batches")
        elif state["state"] == "closed":
            window = (list(state.get("window", [])) + [1 if failed else 0])[-cfg.window :]
            state["window"] = window
            rate = sum(window) / len(window)
            if failed and severe:
                self._move(state, "open", f"severe breach: {reason}")
            elif len(window) >= cfg.min_batches and rate >= cfg.failure_rate:
                self._move(
                    state,
                    "open",
                    f"{sum(window)} of the last {len(window)} batches failed "
                    f"({rate:.0%} >= {cfg.failure_rate:.0%}); last: {reason}",
                )
        self._save(state)
        return state

    def reset(self, rebaseline: bool = False) -> dict[str, Any]:
        state = self.load()
        self._move(state, "closed", "reset by hand")
        if rebaseline:
            state["epoch"] = int(state.get("epoch", 0)) + 1
        self._save(state)
        return state

    def describe(self, state: dict[str, Any] | None = None) -> dict[str, Any]:
        """A JSON-ready summary of the breaker."""
        state = state or self.load()
        window = state.get("window", [])
        return {
            "dataset": self.dataset,
            "state": state["state"],
            "reason": state.get("reason"),
            "opened_at": _iso(state.get("opened_at")),
            "unit": self.unit,
            "retry_at": _iso(self.retry_at(state)),
            "batches_to_hold": self.batches_to_hold(state),
            "window": window,
            "failure_rate": (sum(window) / len(window)) if window else 0.0,
            "batches": state.get("batches", 0),
            "canaries_ok": state.get("canaries_ok", 0),
            "epoch": state.get("epoch", 0),
            "held": list(state.get("held", [])),
            "release": RELEASE if state.get("held") else None,
            "config": asdict(self.config),
            "history": [{**h, "at": _iso(h.get("at"))} for h in state.get("history", [])[-5:]],
        }
