"""pipewarden's checks as Mage blocks: thin functions a Mage block calls (docs/agent.md).

``pipewarden scaffold mage NAME --blocks`` writes a pipeline whose blocks call these::

    config -> breaker -> sentinel -> guardian -> anomaly -> load (the gate) -> docs -> report
"""

from .blocks import (
    CHECKS,
    PipelineStopped,
    anomaly_check,
    breaker_check,
    config_path,
    docs,
    guardian_check,
    load,
    report,
    sentinel_check,
)

__all__ = ["CHECKS", "PipelineStopped", "anomaly_check", "breaker_check", "config_path", "docs",
           "guardian_check", "load", "report", "sentinel_check"]  # fmt: skip
