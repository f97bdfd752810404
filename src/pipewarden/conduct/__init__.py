"""Self-healing dependencies: retry policies that retry only what the RCA signatures call
transient, dependency sensors with timeouts learned from history, escalation by criticality.
See docs/rca.md."""

from .escalation import EscalationConfig, Escalator, Notifiers, dedup_key
from .retry import (
    DecorrelatedJitter,
    FullJitter,
    RetryBudget,
    RetryError,
    RetryPolicy,
    call_with_retry,
    classify_exception,
    is_transient,
)
from .sensors import (
    DependencySensor,
    DependencyTimeout,
    FileAppeared,
    HttpHealthy,
    LearnedTimeout,
    PokeSchedule,
    PostgresQueryTrue,
    TableHasNewBatch,
    UpstreamSucceeded,
)

__all__ = [
    "DecorrelatedJitter",
    "DependencySensor",
    "DependencyTimeout",
    "EscalationConfig",
    "Escalator",
    "FileAppeared",
    "FullJitter",
    "HttpHealthy",
    "LearnedTimeout",
    "Notifiers",
    "PokeSchedule",
    "PostgresQueryTrue",
    "RetryBudget",
    "RetryError",
    "RetryPolicy",
    "TableHasNewBatch",
    "UpstreamSucceeded",
    "call_with_retry",
    "classify_exception",
    "dedup_key",
    "is_transient",
]
