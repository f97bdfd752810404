"""Optional: refine the summary and fixes with a model behind an OpenAI-compatible endpoint.

Off unless ``--llm-url`` is given. The model sees only the redacted report (classes,
evidence, template, scrubbed excerpts, context), never the raw log. Its answer is advice
beside the deterministic verdict, which it cannot change; any failure (no server, a timeout,
a bad answer) is noted in the report and is never an error. The key comes from the
environment (``PIPEWARDEN_LLM_API_KEY``, else ``OPENAI_API_KEY``).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from .redact import scrub

TIMEOUT = 30.0
SYSTEM = (
    "You are a data platform engineer. Given a deterministic root-cause report of a failed "
    "pipeline (already classified), write a two-sentence summary for the on-call engineer and "
    "at most three concrete fixes, most likely first. Answer as JSON: "
    '{"summary": "...", "fixes": ["...", "..."]}. Do not contradict the classification.'
)


def _endpoint(url: str) -> str:
    url = url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    return url + ("/chat/completions" if url.endswith("/v1") else "/v1/chat/completions")


def prompt_context(report: dict[str, Any]) -> dict[str, Any]:
    """What the model is shown: the report's redacted parts only."""
    keep = ("verdict", "causes", "fixes", "retry", "exception", "template", "context", "similar")
    return {k: report[k] for k in keep if k in report}


def refine(
    report: dict[str, Any], url: str, model: str = "gpt-4o-mini", timeout: float = TIMEOUT
) -> dict[str, Any]:
    """``{"summary", "fixes", "model"}`` from the endpoint, or ``{"error": ...}``."""
    body = {
        "model": model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": scrub(json.dumps(prompt_context(report), default=str))},
        ],
    }
    headers = {"Content-Type": "application/json"}
    key = os.environ.get("PIPEWARDEN_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(
        _endpoint(url), data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the user's URL
            doc = json.loads(resp.read().decode("utf-8", "replace"))
        content = doc["choices"][0]["message"]["content"]
    except urllib.error.HTTPError as exc:
        return {"error": f"HTTP {exc.code} from the LLM endpoint", "model": model}
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return {"error": f"LLM endpoint unreachable: {type(reason).__name__}", "model": model}
    except (ValueError, KeyError, IndexError, TypeError):
        return {"error": "the LLM endpoint's answer is not a chat completion", "model": model}
    return {**_parse_answer(str(content)), "model": model}


def _parse_answer(content: str) -> dict[str, Any]:
    text = content.strip()
    if text.startswith("```"):
        text = text.strip("`").split("\n", 1)[-1]
    start, end = text.find("{"), text.rfind("}")
    if start >= 0 and end > start:
        try:
            doc = json.loads(text[start : end + 1])
            fixes = [scrub(str(f))[:500] for f in (doc.get("fixes") or [])][:3]
            return {"summary": scrub(str(doc.get("summary") or ""))[:1000], "fixes": fixes}
        except ValueError:
            pass
    return {"summary": scrub(text)[:1000], "fixes": []}
