"""Root-cause analysis of pipeline failures: a signature library (deterministic first),
context (git, data, process, container), fingerprints and an incident memory in the store,
and an optional LLM refinement. See docs/rca.md."""

from .report import diagnose, run_command
from .signatures import BY_CLASS, CLASSES, SIGNATURES

__all__ = ["BY_CLASS", "CLASSES", "SIGNATURES", "diagnose", "run_command"]
