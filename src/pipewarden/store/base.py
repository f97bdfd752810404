"""The interface a store offers to the run and to the steps.

Besides the tables of a dataset (raw landing as JSON, typed table, quarantine, schema history,
run log), a store keeps small pieces of state for the steps: ``StateStore``.
"""

from __future__ import annotations

from typing import Any, Protocol


class StateStore(Protocol):
    """Per-dataset key/value state and a metrics history, kept in the store."""

    def load_state(self, dataset: str, key: str) -> dict[str, Any] | None: ...

    def save_state(self, dataset: str, key: str, value: dict[str, Any]) -> None: ...

    def append_metrics(
        self, dataset: str, batch_id: str, kind: str, metrics: dict[str, Any]
    ) -> None: ...

    def metrics_history(self, dataset: str, kind: str, limit: int = 100) -> list[dict[str, Any]]:
        """The ``metrics`` dicts of the last ``limit`` batches of that kind, oldest first."""
        ...


class MemoryStateStore:
    """A StateStore in memory: for the library API and for tests of steps."""

    def __init__(self) -> None:
        self._state: dict[tuple[str, str], dict[str, Any]] = {}
        self._metrics: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def load_state(self, dataset: str, key: str) -> dict[str, Any] | None:
        value = self._state.get((dataset, key))
        return dict(value) if value is not None else None

    def save_state(self, dataset: str, key: str, value: dict[str, Any]) -> None:
        self._state[(dataset, key)] = dict(value)

    def append_metrics(
        self, dataset: str, batch_id: str, kind: str, metrics: dict[str, Any]
    ) -> None:
        self._metrics.setdefault((dataset, kind), []).append(dict(metrics))

    def metrics_history(self, dataset: str, kind: str, limit: int = 100) -> list[dict[str, Any]]:
        return [dict(m) for m in self._metrics.get((dataset, kind), [])[-limit:]]
