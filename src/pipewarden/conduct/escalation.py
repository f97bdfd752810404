"""Escalation by business criticality: as a wait or a failure ages, climb a ladder of
notifications (log, webhook, PagerDuty Events v2), once per step, and resolve when it heals.

Tiers (``criticality`` in the pipeline config) pick a default ladder; a config may give its
own. A step fires once per incident (the fired steps are kept in the store, so a sensor that
pokes every minute does not page every minute, and a second process sees what the first
sent). PagerDuty events carry a stable ``dedup_key`` (pipeline + subject), so every re-alert
updates the one incident and ``resolve`` closes it.

The :class:`Escalator` is pure but for its notifiers and its store; notifiers post JSON with
the standard library (a failed post is reported in the result, never raised: an alerting
outage must not fail the pipeline).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..redact import redact

log = logging.getLogger("pipewarden.escalation")
log.addHandler(logging.NullHandler())  # a library: the application's logging decides where

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
STATE_KEY = "escalation"
TIERS = ("critical", "high", "low")

# (after seconds, action, PagerDuty severity)
DEFAULT_LADDERS: dict[str, list[dict[str, Any]]] = {
    "critical": [
        {"after": 0, "action": "log"},
        {"after": 300, "action": "webhook"},
        {"after": 900, "action": "pagerduty", "severity": "critical"},
    ],
    "high": [
        {"after": 0, "action": "log"},
        {"after": 1800, "action": "webhook"},
        {"after": 7200, "action": "pagerduty", "severity": "error"},
    ],
    "low": [
        {"after": 0, "action": "log"},
        {"after": 14400, "action": "webhook"},
    ],
}


def dedup_key(pipeline: str, subject: str) -> str:
    """Stable across processes and runs: every re-alert of one incident updates it."""
    return "pipewarden-" + hashlib.sha256(f"{pipeline}\x00{subject}".encode()).hexdigest()[:32]


def post_json(url: str, doc: dict[str, Any], timeout: float = 10.0,
              headers: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """POST ``doc``; ``{"ok": bool, "status": int | None, "error": str | None}``."""
    req = urllib.request.Request(
        url,
        data=json.dumps(doc, default=str).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - configured URL
            resp.read()
            return {"ok": 200 <= resp.status < 300, "status": resp.status, "error": None}
    except urllib.error.HTTPError as exc:
        return {"ok": False, "status": exc.code, "error": f"HTTP {exc.code}"}
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return {"ok": False, "status": None, "error": type(reason).__name__}


@dataclass
class Notifiers:
    webhook_url: str | None = None
    webhook_headers: dict[str, str] | None = None
    pagerduty_routing_key: str | None = None
    pagerduty_url: str = PAGERDUTY_URL
    source: str = "pipewarden"
    post: Callable[..., dict[str, Any]] = post_json
    timeout: float = 10.0

    def send(self, action: str, event: dict[str, Any]) -> dict[str, Any]:
        if action == "log":
            level = (
                logging.ERROR if event.get("severity") in ("critical", "error") else logging.WARNING
            )
            log.log(level, "%s [%s] %s", event["pipeline"], event["tier"], event["summary"])
            return {"ok": True, "action": "log"}
        if action == "webhook":
            if not self.webhook_url:
                return {"ok": False, "action": action, "error": "no webhook url configured"}
            res = self.post(self.webhook_url, event, self.timeout, self.webhook_headers)
            return {**res, "action": action}
        if action == "pagerduty":
            if not self.pagerduty_routing_key:
                return {"ok": False, "action": action, "error": "no PagerDuty routing key"}
            res = self.post(self.pagerduty_url, self.pagerduty_event(event), self.timeout, None)
            return {**res, "action": action}
        return {"ok": False, "action": action, "error": f"unknown action {action!r}"}

    def pagerduty_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """A PagerDuty Events API v2 event (trigger or resolve)."""
        doc: dict[str, Any] = {
            "routing_key": self.pagerduty_routing_key,
            "event_action": "resolve" if event["status"] == "resolved" else "trigger",
            "dedup_key": event["dedup_key"],
        }
        if doc["event_action"] == "trigger":
            doc["payload"] = {
                "summary": event["summary"][:1024],
                "source": self.source,
                "severity": event.get("severity") or "error",
                "component": event["pipeline"],
                "group": event["tier"],
                "class": event.get("class") or event["subject"].split(":", 1)[0],
                "custom_details": event.get("details") or {},
            }
        return doc


@dataclass
class EscalationConfig:
    tier: str = "high"
    ladder: list[dict[str, Any]] | None = None
    webhook_url: str | None = None
    pagerduty_routing_key: str | None = None
    pagerduty_url: str = PAGERDUTY_URL

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> EscalationConfig:
        esc = cfg.get("escalation") or {}
        return cls(
            tier=cfg.get("criticality") or esc.get("tier") or "high",
            ladder=esc.get("ladder"),
            webhook_url=(esc.get("webhook") or {}).get("url"),
            pagerduty_routing_key=(esc.get("pagerduty") or {}).get("routing_key"),
            pagerduty_url=(esc.get("pagerduty") or {}).get("url") or PAGERDUTY_URL,
        )

    def steps(self) -> list[dict[str, Any]]:
        ladder = self.ladder if self.ladder is not None else DEFAULT_LADDERS[self.tier]
        return sorted(ladder, key=lambda s: float(s.get("after", 0)))


class Escalator:
    """Climb the ladder of one pipeline's incidents (``subject``: ``wait:<dependency>``,
    ``failure``)."""

    def __init__(
        self,
        pipeline: str,
        config: EscalationConfig,
        store: Any,
        notifiers: Notifiers | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pipeline, self.config, self.store, self.clock = pipeline, config, store, clock
        self.notifiers = notifiers or Notifiers(
            webhook_url=config.webhook_url,
            pagerduty_routing_key=config.pagerduty_routing_key,
            pagerduty_url=config.pagerduty_url,
        )

    def _state(self) -> dict[str, Any]:
        return self.store.load_state(self.pipeline, STATE_KEY) or {"open": {}}

    def _save(self, state: dict[str, Any]) -> None:
        self.store.save_state(self.pipeline, STATE_KEY, state)

    def _event(self, subject: str, status: str, summary: str, details: dict | None,
               severity: str | None, age: float) -> dict[str, Any]:  # fmt: skip
        return {
            "pipeline": self.pipeline,
            "tier": self.config.tier,
            "subject": subject,
            "status": status,
            "summary": redact(summary),
            "severity": severity,
            "age_seconds": round(age, 3),
            "dedup_key": dedup_key(self.pipeline, subject),
            "details": json.loads(redact(json.dumps(details or {}, default=str))),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock())),
        }

    def update(self, subject: str, age: float, summary: str, details: dict | None = None,
               *, failed: bool = False) -> list[dict[str, Any]]:  # fmt: skip
        """Fire every step whose ``after`` the incident's age has reached and that has not
        fired yet; ``failed`` (a wait that ran out) fires every step left at once. Returns
        what was sent."""
        state = self._state()
        inc = state["open"].setdefault(subject, {"since": self.clock() - age, "fired": []})
        sent = []
        steps = self.config.steps()
        for k, step in enumerate(steps):
            due = failed or age >= float(step.get("after", 0))
            if not due or k in inc["fired"]:
                continue
            event = self._event(subject, "triggered", summary, details,
                                step.get("severity"), age)  # fmt: skip
            res = self.notifiers.send(step["action"], event)
            inc["fired"].append(k)
            sent.append({"step": k, **res, "dedup_key": event["dedup_key"]})
        inc["last_summary"] = redact(summary)
        self._save(state)
        return sent

    def resolve(self, subject: str, summary: str) -> list[dict[str, Any]]:
        """Close an incident: PagerDuty gets ``resolve`` (same dedup_key) and the webhook a
        ``resolved`` event, each only when it was notified of the incident."""
        state = self._state()
        inc = state["open"].pop(subject, None)
        if inc is None:
            return []
        steps = self.config.steps()
        actions = {steps[k]["action"] for k in inc["fired"] if k < len(steps)}
        age = self.clock() - float(inc.get("since") or self.clock())
        event = self._event(subject, "resolved", summary, None, None, age)
        sent = [
            {**self.notifiers.send(a, event), "dedup_key": event["dedup_key"]}
            for a in ("webhook", "pagerduty")
            if a in actions
        ]
        self._save(state)
        return sent

    def open_incidents(self) -> dict[str, Any]:
        return self._state()["open"]
