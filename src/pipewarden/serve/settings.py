"""The ``serve`` section of a pipeline config, API keys and their scopes, the rate limiter.

Keys are given in the config (through ``${ENV}``, never in clear in a committed file) and kept
in memory as SHA-256 digests only; a request's key is compared with every digest in constant
time. Nothing here logs or returns a key. Scopes:

- ``read``: datasets, rows (PII columns masked), batches, the quarantine summary;
- ``pii``: PII columns in clear, and filters on them;
- ``quarantine``: the payloads of quarantined rows (their PII columns masked without ``pii``).

The limiter is a token bucket per caller (key name, or client address when anonymous), pure:
the clock is injected.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError

SCOPES = ("read", "pii", "quarantine")
MIN_KEY_CHARS = 16


@dataclass(frozen=True)
class ApiKey:
    name: str
    digest: bytes
    scopes: frozenset[str]
    rate: float | None = None  # requests per second (None: the server's)
    burst: int | None = None


@dataclass
class Limits:
    page_size: int = 1000  # most rows one page returns
    default_page_size: int = 100
    lookup_keys: int = 1000  # most keys one batch lookup takes
    requests_per_second: float = 1000.0  # per caller
    burst: int = 2000
    statement_timeout_ms: int = 5000


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    dsn: str | None = None  # PostgreSQL: a read-only role's DSN (default: the store's)
    keys: list[ApiKey] = field(default_factory=list)
    anonymous: bool = True  # requests without a key get `read` (default: only without keys)
    limits: Limits = field(default_factory=Limits)
    primary_keys: dict[str, list[str]] = field(default_factory=dict)
    refresh_seconds: float = 2.0  # how often the schemas are looked at
    pool_size: int = 10

    def authenticate(self, presented: str | None) -> ApiKey | None:
        """The key matching ``presented`` (constant time over all keys), or None."""
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found = None
        for k in self.keys:
            if hmac.compare_digest(k.digest, digest):
                found = k
        return found


def settings_from_config(cfg: dict[str, Any]) -> ServeSettings:
    """The ``serve`` section of a loaded pipeline config (defaults without one)."""
    from ..run import expand_env

    doc = cfg.get("serve") or {}
    file = cfg.get("_file")
    s = ServeSettings()
    s.host = doc.get("host", s.host)
    s.port = int(doc.get("port", s.port))
    if doc.get("dsn"):
        s.dsn = expand_env(doc["dsn"], "serve.dsn", file)
    seen: set[str] = set()
    for i, k in enumerate(doc.get("keys") or []):
        where = f"serve.keys[{i}]"
        value = expand_env(k["key"], f"{where}.key", file)
        if len(value) < MIN_KEY_CHARS:
            raise InputError(
                f"the key of {k['name']!r} is shorter than {MIN_KEY_CHARS} characters",
                file=file,
                key=f"{where}.key",
                hint="use a random key, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            )
        if k["name"] in seen:
            raise InputError(f"two keys are named {k['name']!r}", file=file, key=f"{where}.name")
        seen.add(k["name"])
        s.keys.append(
            ApiKey(
                k["name"],
                hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest(),
                frozenset(k.get("scopes") or ["read"]),
                k.get("requests_per_second"),
                k.get("burst"),
            )
        )
    s.anonymous = bool(doc.get("anonymous", not s.keys))
    lim = doc.get("limits") or {}
    s.limits = Limits(**{k: lim[k] for k in lim})
    if s.limits.default_page_size > s.limits.page_size:
        s.limits.default_page_size = s.limits.page_size
    for name, key in (doc.get("primary_keys") or {}).items():
        s.primary_keys[name] = [key] if isinstance(key, str) else list(key)
    top = cfg.get("primary_key")  # the dataset's own key, when the config names one
    if top and cfg.get("dataset") not in s.primary_keys:
        s.primary_keys[cfg["dataset"]] = [top] if isinstance(top, str) else list(top)
    s.refresh_seconds = float(doc.get("refresh_seconds", s.refresh_seconds))
    s.pool_size = int(doc.get("pool_size", s.pool_size))
    return s


class RateLimiter:
    """Token buckets per caller; ``allow(who, rate, burst)`` -> seconds to wait (0: allowed)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_callers: int = 10_000):
        self.clock = clock
        self.max_callers = max_callers
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, who: str, rate: float, burst: int) -> float:
        now = self.clock()
        tokens, last = self._buckets.pop(who, (float(burst), now))
        tokens = min(float(burst), tokens + (now - last) * rate)
        if tokens >= 1.0:
            self._buckets[who] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[who] = (tokens, now)
            wait = (1.0 - tokens) / rate if rate > 0 else 3600.0
        while len(self._buckets) > self.max_callers:  # forget the longest idle caller
            self._buckets.popitem(last=False)
        return wait
