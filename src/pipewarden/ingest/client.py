"""The asyncio/httpx layer that applies the controller's decisions.

:class:`AdaptiveClient` sends GET requests through one ``httpx.AsyncClient``: before each
request it asks the :class:`~.adaptive.Controller` for a permit (waiting while the host is
paused, the concurrency limit is reached, a quota paces requests or client-side throttling
holds one back), classifies what came back (a status, a timeout, a dropped connection, a body
that is not the JSON asked for) and lets the controller say whether and when to retry.

A 4xx of the request itself is never retried: :class:`ClientRefused` is raised at once. A
transient failure that outlives its attempts or the run's retry budget raises
:class:`GaveUp`. Neither message holds the URL's query or a header value (they can carry
credentials): the caller names the request by a label it chose.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from .adaptive import Controller, Outcome, Permit, Wait, classify_status


class FetchError(Exception):
    """A request that did not give a usable page; ``label`` names it without secrets."""

    def __init__(self, label: str, why: str, status: int | None = None) -> None:
        super().__init__(f"{label}: {why}")
        self.label = label
        self.why = why
        self.status = status


class ClientRefused(FetchError):
    """A 4xx of the request itself (401, 403, 404...): a configuration or credential problem,
    never retried."""


class GaveUp(FetchError):
    """A transient failure (429, 5xx, timeout, reset, bad body) past its attempts or the run's
    retry budget."""


class BadBody(Exception):
    """Raised by a ``parse`` callback: the 2xx body is not what was asked for (retried)."""


@dataclass
class Response:
    status: int
    headers: httpx.Headers
    url: httpx.URL
    value: Any  # what ``parse`` returned
    attempts: int


def _outcome_of(exc: BaseException) -> Outcome:
    if isinstance(exc, httpx.TimeoutException):
        return Outcome.TIMEOUT
    return Outcome.RESET  # connection refused, reset, closed mid-body, protocol errors


class AdaptiveClient:
    """GET requests to one host under one controller. ``clock`` must be the controller's."""

    def __init__(
        self,
        controller: Controller,
        http: httpx.AsyncClient,
        *,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.controller = controller
        self.http = http
        self.sleep = sleep
        self._freed = asyncio.Condition()
        self._key = 0

    async def _permit(self, attempt: int) -> Permit:
        while True:
            got = self.controller.acquire(attempt)
            if not isinstance(got, Wait):
                return got
            if math.isinf(got.seconds):  # the limit is reached: until a request finishes
                async with self._freed:
                    await self._freed.wait()
            else:
                await self.sleep(max(got.seconds, 0.001))

    async def _notify(self) -> None:
        async with self._freed:
            self._freed.notify_all()

    async def get(
        self,
        url: str,
        *,
        label: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        parse: Callable[[httpx.Response], Any] = lambda r: r.content,
    ) -> Response:
        """GET ``url`` until it gives a page ``parse`` accepts, or raise FetchError."""
        self._key += 1
        key = self._key
        attempt = 0
        while True:
            permit = await self._permit(attempt)
            status: int | None = None
            resp_headers: Mapping[str, str] = {}
            value = None
            why_bad = ""
            try:
                try:
                    r = await self.http.get(url, params=params, headers=headers)
                except httpx.HTTPError:
                    raise
                except BaseException:  # cancelled (a page past the end), or a bug
                    self.controller.cancel(permit)
                    raise
                status = r.status_code
                resp_headers = r.headers
                outcome = classify_status(status)
                if outcome is Outcome.OK:
                    try:
                        value = parse(r)
                    except BadBody as exc:
                        outcome, why_bad = Outcome.BAD_BODY, str(exc)
            except httpx.HTTPError as exc:  # never its text: it holds the URL
                outcome = _outcome_of(exc)
                why_bad = type(exc).__name__
            decision = self.controller.release(
                permit, outcome, status=status, headers=resp_headers, key=key
            )
            await self._notify()
            if outcome is Outcome.OK:
                return Response(status, r.headers, r.url, value, attempt + 1)
            if outcome is Outcome.CLIENT_ERROR:
                raise ClientRefused(label, decision.reason, status)
            if not decision.retry:
                detail = why_bad if outcome in (Outcome.BAD_BODY, Outcome.RESET,
                                                Outcome.TIMEOUT) else ""  # fmt: skip
                why = decision.reason + (f" ({detail})" if detail and detail not in
                                         decision.reason else "")  # fmt: skip
                raise GaveUp(label, why, status)
            attempt += 1
            if decision.delay > 0:
                await self.sleep(decision.delay)

    @staticmethod
    def clock() -> float:
        return time.monotonic()
