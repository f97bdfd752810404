"""Adaptive ingestion: the controller (concurrency limit, retries, Retry-After and quota
headers, client-side throttling) and its long-term memory in the store.

- :mod:`.limits`: the limit laws (AIMD, CUBIC, Gradient2), one class each;
- :mod:`.headers`: ``Retry-After`` and ``RateLimit-*``/``X-RateLimit-*`` parsing;
- :mod:`.adaptive`: the :class:`~.adaptive.Controller`, pure and clock-injectable;
- :mod:`.client`: the asyncio/httpx layer that applies the controller's decisions;
- :mod:`.memory`: what was learned, per source and host, in the store;
- :mod:`.status`: ``pipewarden ingest status|reset``.
"""

from .adaptive import Controller, ControllerConfig, Decision, Outcome, Permit, Wait

__all__ = ["Controller", "ControllerConfig", "Decision", "Outcome", "Permit", "Wait"]
