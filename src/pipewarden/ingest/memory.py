"""Long-term memory of the adaptive controller, in the store.

What a run learned about a host (the limit, the ceiling where it was refused, the latency
baseline, the last throttle, the header conventions) is kept per source and host in the
store's state table (``_pw_state``, dataset = the source's name, key ``ingest:<host>``), on
DuckDB and PostgreSQL alike, and warm-starts the next run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

PREFIX = "ingest:"


def key(host: str) -> str:
    return PREFIX + host.lower()


def load(store: Any, source: str, host: str) -> dict[str, Any] | None:
    return store.load_state(source, key(host))


def save(store: Any, source: str, host: str, memory: dict[str, Any], stats: dict) -> None:
    """Store what the run learned; counts add up over runs."""
    old = store.load_state(source, key(host)) or {}
    value = {
        **memory,
        "host": host.lower(),
        "runs": int(old.get("runs", 0)) + 1,
        "requests": int(old.get("requests", 0)) + int(stats.get("requests", 0)),
        "throttled": int(old.get("throttled", 0)) + int(stats.get("throttled", 0)),
        "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if not value.get("last_throttle_at"):
        value["last_throttle_at"] = old.get("last_throttle_at")
    store.save_state(source, key(host), value)


def entries(store: Any, source: str | None = None) -> list[dict[str, Any]]:
    """Every host memory in the store (of one source when given), sorted."""
    out = []
    for dataset, k, value in store.state_items(PREFIX):
        if source is None or dataset == source:
            out.append({"source": dataset, "host": k[len(PREFIX) :], **value})
    return sorted(out, key=lambda e: (e["source"], e["host"]))


def forget(store: Any, source: str, host: str | None = None) -> int:
    """Delete the memory of a source (one host, or all); returns how many were deleted."""
    n = 0
    for e in entries(store, source):
        if host is None or e["host"] == host.lower():
            n += store.delete_state(source, key(e["host"]))
    return n
