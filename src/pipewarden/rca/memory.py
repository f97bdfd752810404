"""Fingerprints, the run log of executions, and the incident memory, all in the store.

A **fingerprint** names one kind of failure, stable across runs: the class, the exception
type, the top in-app frame (file and function, not its line, which moves with every edit) and
the *template* of the failure's message, its variable parts (numbers, ids, paths, quoted
names, addresses) masked the way a log template miner (Drain) masks them. The template is
computed from the message alone, so a fingerprint never changes because other logs were seen
(an online miner's clusters do), and the same failure tomorrow has the same fingerprint.

State goes through the store's StateStore interface (DuckDB and PostgreSQL alike):

- executions: ``append_metrics(<pipeline>, <run id>, "execution", {...})``: one per run of a
  pipeline, a wrapped command or a sensor (status, exit code, error class, timings, git commit);
- incidents: ``append_metrics("_pw_rca", <fingerprint>, "incident", {...})``;
- resolutions: ``append_metrics("_pw_rca", <fingerprint>, "resolution", {...})``: given by
  ``pipewarden incidents resolve``, or recorded when the pipeline next succeeds (the commits
  between the failure and that success are what healed it).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from .redact import scrub

RCA = "_pw_rca"  # the store-wide "dataset" of incidents and resolutions
EXECUTION, INCIDENT, RESOLUTION = "execution", "incident", "resolution"
HISTORY = 2000  # incidents read back for similarity

_MASKS: tuple[tuple[re.Pattern, str], ...] = tuple(
    (re.compile(p, f), r)
    for p, r, f in (
        (r"\b[a-z][\w+.-]*://\S+", "<URL>", 0),
        (r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<UUID>", re.I),
        (r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?(?:Z|[+-]\d\d:?\d\d)?", "<TS>", 0),
        (r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b", "<IP>", 0),
        (r"(?:(?<=\s)|^|(?<=[('\"=]))(?:/[\w.@+-]+){2,}/?", "<PATH>", 0),
        (r"\b0x[0-9a-f]+\b|\b[0-9a-f]{12,}\b", "<HEX>", re.I),
        (r'"[^"\n]{1,200}"', '"<*>"', 0),
        (r"'[^'\n]{1,200}'", "'<*>'", 0),
        (r"(?<![\w<])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w>])", "<NUM>", 0),
        (r"\*{3,}", "<*>", 0),
        (r"\s+", " ", 0),
    )
)


def template(message: str) -> str:
    """The message with its variable parts masked (a Drain-style log template)."""
    text = scrub(message)[:2000]
    for rx, repl in _MASKS:
        text = rx.sub(repl, text)
    return text.strip()


def fingerprint(cls: str, exc_type: str | None, frame: str | None, tmpl: str) -> str:
    key = "|".join([cls, (exc_type or "").rsplit(".", 1)[-1], frame or "", tmpl])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def instant(value: Any) -> datetime | None:
    """An ISO time (or a datetime) as an aware datetime, UTC when it has no offset; None when
    unreadable. Times are compared as instants, never as strings of different precision."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        t = value
    else:
        try:
            t = datetime.fromisoformat(str(value).replace(" ", "T"))
        except ValueError:
            return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


# --------------------------------------------------------------------------- executions


def record_execution(store: Any, pipeline: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Append one execution to the pipeline's run log. On success, incidents of the pipeline
    that are still open are resolved as healed (with the commits since they were seen)."""
    entry = {"recorded_at": now_iso(), **entry}
    store.append_metrics(pipeline, str(entry.get("run_id") or ""), EXECUTION, entry)
    if entry.get("status") == "succeeded":
        for inc in open_incidents(store, pipeline):
            store.append_metrics(
                RCA,
                inc["fingerprint"],
                RESOLUTION,
                {
                    "fingerprint": inc["fingerprint"],
                    "pipeline": pipeline,
                    "how": "healed",
                    "run_id": entry.get("run_id"),
                    "commit_failed": inc.get("git_commit"),
                    "commit_healed": entry.get("git_commit"),
                    "fix": None,
                    "note": "the next run succeeded",
                    "at": entry["recorded_at"],
                },
            )
    return entry


def executions(store: Any, pipeline: str, limit: int = 500) -> list[dict[str, Any]]:
    """The pipeline's executions, oldest first."""
    return store.metrics_history(pipeline, EXECUTION, limit)


def last_success(store: Any, pipeline: str, before: str | None = None) -> dict[str, Any] | None:
    limit = instant(before)
    for e in reversed(executions(store, pipeline)):
        at = instant(e.get("recorded_at"))
        if e.get("status") == "succeeded" and (limit is None or (at is not None and at < limit)):
            return e
    return None


def find_execution(store: Any, pipeline: str, run_id: str | None) -> dict[str, Any] | None:
    """The execution of ``run_id`` (a prefix is enough), or the last failed one."""
    runs = executions(store, pipeline)
    for e in reversed(runs):
        if run_id is None and e.get("status") == "failed":
            return e
        if run_id and str(e.get("run_id", "")).startswith(run_id):
            return e
    return None


# --------------------------------------------------------------------------- incidents


def record_incident(store: Any, incident: dict[str, Any]) -> None:
    store.append_metrics(RCA, incident["fingerprint"], INCIDENT, {"at": now_iso(), **incident})


def resolve(
    store: Any, fingerprint_: str, *, fix: str | None, note: str | None, by: str | None = None
) -> dict[str, Any]:
    known = {i["fingerprint"] for i in store.metrics_history(RCA, INCIDENT, HISTORY)}
    matches = sorted(f for f in known if f.startswith(fingerprint_))
    if len(matches) != 1:
        from ..errors import InputError

        raise InputError(
            f"no incident with fingerprint {fingerprint_!r}"
            if not matches
            else f"{len(matches)} incidents start with {fingerprint_!r}",
            hint="pipewarden incidents list shows them",
        )
    res = {
        "fingerprint": matches[0],
        "how": "resolved",
        "fix": fix,
        "note": scrub(note) if note else None,
        "by": by,
        "at": now_iso(),
    }
    store.append_metrics(RCA, matches[0], RESOLUTION, res)
    return res


def incidents(store: Any, limit: int = HISTORY) -> list[dict[str, Any]]:
    """Incidents, newest first, one entry per fingerprint: its count, first and last time,
    and its last resolution (None while open)."""
    seen: dict[str, dict[str, Any]] = {}
    for inc in store.metrics_history(RCA, INCIDENT, limit):
        fp = inc["fingerprint"]
        cur = seen.get(fp)
        if cur is None:
            seen[fp] = {**inc, "count": 1, "first_at": inc.get("at"), "last_at": inc.get("at"),
                        "resolution": None}  # fmt: skip
        else:
            cur.update({k: v for k, v in inc.items() if k != "at"})
            cur["count"] += 1
            cur["last_at"] = inc.get("at")
            cur["resolution"] = None  # it failed again after any earlier resolution
    for res in store.metrics_history(RCA, RESOLUTION, limit):
        cur = seen.get(res.get("fingerprint"))
        if cur is None:
            continue
        res_at, last_at = instant(res.get("at")), instant(cur.get("last_at"))
        if res_at is not None and (last_at is None or res_at >= last_at):
            cur["resolution"] = res
    return sorted(seen.values(), key=lambda i: str(i.get("last_at")), reverse=True)


def open_incidents(store: Any, pipeline: str) -> list[dict[str, Any]]:
    return [i for i in incidents(store) if i.get("pipeline") == pipeline and not i["resolution"]]


def similar(store: Any, incident: dict[str, Any], k: int = 3) -> list[dict[str, Any]]:
    """Past incidents like this one, most similar first, with what resolved them: the same
    fingerprint first, then the same class by the similarity of their templates (TF-IDF over
    the templates' words, cosine)."""
    past = [i for i in incidents(store) if i.get("template")]
    if not past:
        return []
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    docs = [f"{i.get('exception_type') or ''} {i['template']}" for i in past]
    query = f"{incident.get('exception_type') or ''} {incident.get('template') or ''}"
    vec = TfidfVectorizer(token_pattern=r"[A-Za-z_<>*][\w<>*]+", sublinear_tf=True)
    try:
        m = vec.fit_transform([*docs, query])
    except ValueError:  # no word in any template
        return []
    sims = cosine_similarity(m[-1], m[:-1])[0]
    scored = []
    for inc, sim in zip(past, sims, strict=True):
        same_fp = inc["fingerprint"] == incident.get("fingerprint")
        same_cls = inc.get("class") == incident.get("class")
        score = 1.0 if same_fp else (0.5 if same_cls else 0.0) + 0.5 * float(sim)
        if score >= 0.55:
            scored.append((score, inc))
    scored.sort(key=lambda t: (-t[0], str(t[1].get("last_at"))))
    out = []
    for score, inc in scored[:k]:
        out.append(
            {
                "fingerprint": inc["fingerprint"],
                "similarity": round(score, 3),
                "same_fingerprint": inc["fingerprint"] == incident.get("fingerprint"),
                "class": inc.get("class"),
                "pipeline": inc.get("pipeline"),
                "template": inc.get("template"),
                "count": inc.get("count"),
                "last_at": inc.get("last_at"),
                "resolution": inc.get("resolution"),
            }
        )
    return out
