"""Where a batch's time goes: seconds and rows per second of each phase of the run.

The run times five phases of every batch: ``read`` (parsing the source, both passes), ``infer``
(pass 1: the schema of every row), ``check`` (the sentinel's row checks against the plan),
``steps`` (the configured steps: guardian, anomaly, ...) and ``write`` (typed values, payloads
and the store's writes, the commit included). The report holds, per phase, its seconds, the
rows it handled and the rate, so a user sees which one to look at::

    "phases": {"read": {"seconds": 2.1, "rows": 2000000, "rows_per_s": 952381}, ...}

A phase's clock is the process's wall clock (``time.perf_counter``); on a loaded machine every
rate drops together, so compare phases of one run with each other.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

PHASES = ("read", "infer", "check", "steps", "write")
T = TypeVar("T")


class Phases:
    """Accumulates seconds and rows per phase."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.rows = dict.fromkeys(PHASES, 0)

    def add(self, phase: str, seconds: float, rows: int) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds
        self.rows[phase] = self.rows.get(phase, 0) + rows

    @contextmanager
    def timing(self, phase: str, rows: int) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - t, rows)

    def reading(self, chunks: Iterable[T]) -> Iterator[T]:
        """``chunks`` with the time spent producing each one counted as ``read``."""
        it = iter(chunks)
        while True:
            t = time.perf_counter()
            try:
                chunk = next(it)
            except StopIteration:
                self.add("read", time.perf_counter() - t, 0)
                return
            self.add("read", time.perf_counter() - t, len(chunk))  # type: ignore[arg-type]
            yield chunk
            del chunk  # not held while the next chunk is read

    def report(self) -> dict[str, dict[str, float | int]]:
        out = {}
        for phase in self.seconds:
            s, n = self.seconds[phase], self.rows[phase]
            out[phase] = {
                "seconds": round(s, 4),
                "rows": n,
                "rows_per_s": round(n / s) if s > 0 and n else None,
            }
        return out

    def line(self) -> str:
        """One line for a progress bar or a text report: ``read 950k/s (2.1 s), ...``."""
        parts = []
        for phase, s in self.seconds.items():
            if not self.rows[phase]:
                continue
            parts.append(f"{phase} {rate(self.rows[phase], s)} ({s:.1f} s)")
        return ", ".join(parts)


def rate(rows: int, seconds: float) -> str:
    """Rows per second in a few characters: ``950k/s``, ``1.2M/s``."""
    if seconds <= 0:
        return "-"
    r = rows / seconds
    if r >= 1e6:
        return f"{r / 1e6:.1f}M/s"
    if r >= 1e3:
        return f"{r / 1e3:.0f}k/s"
    return f"{r:.0f}/s"
