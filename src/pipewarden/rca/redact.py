"""Scrub a log before it is shown, stored or sent anywhere: no secret and no raw PII.

Secrets: passwords in URLs and DSNs (``scheme://user:secret@host``, ``password=...``),
``Authorization`` headers, tokens and API keys in ``key=value`` / ``"key": "value"`` form, AWS
access keys, private key blocks. PII: the compliance guardian's recognizers (emails, card
numbers, SSNs, phone numbers, IBANs, IP addresses) find the values in free text and each is
replaced by its masked preview.
"""

from __future__ import annotations

import re

from ..errors import preview

MASK = "***"

_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-zA-Z][\w+.-]*://[^\s:/@'\"]*:)(?P<secret>[^\s@/'\"]+)(?=@)"
)
_SECRET_KEYS = (
    r"password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|"
    r"client[_-]?secret|auth|credentials?|session[_-]?key|routing[_-]?key|signature"
)
# key=value, key: value, "key": "value" (the value up to a delimiter)
_KEY_VALUE = re.compile(
    rf"(?P<head>(?:\b|_)(?:[\w.-]*(?:{_SECRET_KEYS})[\w.-]*)['\"]?\s*[=:]\s*['\"]?)"
    r"(?P<secret>[^\s'\",;&)}\]]{3,})",
    re.I,
)
_BEARER = re.compile(r"(?P<head>\b(?:Bearer|Basic|Token)\s+)(?P<secret>[A-Za-z0-9._~+/=-]{8,})")
_AWS = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S
)
_LONG_TOKEN = re.compile(r"\b(?:sk|pk|ghp|gho|xox[abp]|glpat)[-_][A-Za-z0-9_-]{16,}\b")


def redact_secrets(text: str) -> str:
    """``text`` with every credential we recognise replaced by ``***``."""
    try:  # the project's shared redactor, when this installation has it
        from ..errors import redact as shared  # type: ignore[attr-defined]
    except ImportError:
        shared = None
    if shared is not None:
        text = shared(text)
    text = _PRIVATE_KEY.sub("-----PRIVATE KEY " + MASK + "-----", text)
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    text = _BEARER.sub(lambda m: m.group("head") + MASK, text)
    text = _KEY_VALUE.sub(lambda m: m.group("head") + MASK, text)
    text = _AWS.sub(MASK, text)
    return _LONG_TOKEN.sub(MASK, text)


def redact_pii(text: str) -> str:
    """``text`` with every PII value the guardian's recognizers find replaced by its masked
    preview (``jo**************``)."""
    from ..compliance.recognizers import IP, Context, detect

    # IP addresses of servers are what a connection error is about; they are not a person's
    entities = frozenset(e for e in Context().entities if e != IP)
    out, last = [], 0
    for m in detect(text, Context(entities=entities)):
        out.append(text[last : m.start])
        out.append(preview(text[m.start : m.end]))
        last = m.end
    out.append(text[last:])
    return "".join(out)


def scrub(text: str) -> str:
    """No secret, no raw PII: what every log excerpt goes through before it leaves a function."""
    return redact_pii(redact_secrets(text))
