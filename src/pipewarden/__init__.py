"""pipewarden: deterministic guardrails in front of the warehouse."""

__version__ = "0.1.0"
