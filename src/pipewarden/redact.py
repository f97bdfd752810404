"""The one credential redactor: passwords in DSNs and URLs, secrets in key=value text and in
HTTP headers, before anything is printed, logged, stored in a report or raised.

* :func:`redact` rewrites a text: the password of any ``scheme://user:password@host`` (any
  scheme, recognised or not: ``postgresql+psycopg://``, ``redis://:pw@``, ``foo://``), the value
  of secret keys written ``key=value`` or ``key: value`` (``password=``, ``sslpassword=``,
  ``api_key=``, ``token=``, ``client_secret=`` ..., in a libpq DSN, a query string or a log
  line) and the credentials of ``Authorization``/``Proxy-Authorization``, ``X-API-Key``-style
  and ``Cookie`` headers written as text become ``***``.
* :func:`redact_headers` returns a copy of a header mapping with secret header values replaced.
* :func:`redact_doc` applies both to every string (and every secret-named key's value) of a
  result document: what ``pipewarden.output.emit`` and the CLI's error path call.

The user name, host, port, database and other options stay: a redacted DSN still says where
the connection went. Over-redaction is preferred to a leak: a URL whose password holds a raw
``@`` or ``/`` is redacted up to the last ``@`` of the token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

# scheme://[user]:password@ ; the password runs to the last "@" of the token (a raw "@" or "/"
# in a password is common in hand-written DSNs); ":<digits>/" right after the host is a port
_URL_USERINFO = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@'\"<>]*:)"
    r"(?!\d+(?:[/?#\s'\"<>]|$))"
    r"(?P<secret>[^\s'\"<>]*)(?=@[^\s@'\"<>]+)"
)
# key=value and key: value for names that only ever mean a secret (with any prefix:
# DB_PASSWORD=, pg_api_key:); "token", "secret", "pass" and "pwd" alone only with "=" ("pass:"
# in a report is a decision, "unexpected token: }" a parse error)
_STRONG_KEYS = (
    r"password|passwd|passphrase|pgpassword|client[_-]?secret|secret[_-]?key|api[_-]?key|"
    r"apikey|api[_-]?token|access[_-]?token|refresh[_-]?token|auth[_-]?token|id[_-]?token|"
    r"session[_-]?token|bearer[_-]?token|private[_-]?key|secret[_-]?access[_-]?key|"
    r"x-api-key|x-auth-token|x-access-token"
)
_WEAK_KEYS = r"token|secret|pass|pwd|pw"
_KEY_VALUE = re.compile(
    rf"(?P<head>(?<![A-Za-z0-9_-])(?:[A-Za-z0-9]+[_-])*(?:{_STRONG_KEYS})[\"']?\s*"
    rf"(?:=|:(?!//))\s*|(?<![A-Za-z0-9_-])(?:[A-Za-z0-9]+[_-])*(?:{_WEAK_KEYS})\s*=\s*)"
    r"(?P<secret>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;,'\"<>)}\]]+)",
    re.IGNORECASE,
)
# Authorization: <scheme> <credentials> (or the bare credentials), Cookie: the whole value
_AUTH_HEADER = re.compile(
    r"(?P<head>(?<![A-Za-z0-9_-])(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?"
    r"(?:(?:bearer|basic|token|digest|negotiate|apikey|aws4-hmac-sha256)\s+)?)"
    r"(?P<secret>[^\s'\"]+)",
    re.IGNORECASE,
)
_COOKIE_HEADER = re.compile(
    r"(?P<head>(?<![A-Za-z0-9_-])(?:set-)?cookie[\"']?\s*:\s*[\"']?)(?P<secret>[^\r\n'\"]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<head>\bBearer\s+)(?P<secret>[A-Za-z0-9._~+/=-]{8,})")
_PATTERNS = (_URL_USERINFO, _AUTH_HEADER, _COOKIE_HEADER, _KEY_VALUE, _BEARER)

# header names whose value is a credential (lower case)
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "apikey",
        "x-auth-token",
        "x-access-token",
        "x-csrf-token",
        "x-amz-security-token",
        "private-token",
        "x-goog-api-key",
    }
)
_SECRET_NAME = re.compile(rf"^(?:[a-z0-9]+[_-])*(?:{_STRONG_KEYS}|{_WEAK_KEYS})$", re.IGNORECASE)
_QUICK = re.compile(r"://|[=:]|bearer", re.IGNORECASE)


def _sub(m: re.Match[str]) -> str:
    secret = m.group("secret")
    if not secret or secret == MASK or secret.strip("'\"") == MASK:
        return m.group(0)
    if secret[0] in "'\"" and len(secret) >= 2 and secret[-1] == secret[0]:
        return m.group("head") + secret[0] + MASK + secret[0]
    return m.group("head") + MASK


def redact(text: Any) -> Any:
    """``text`` with every credential it holds replaced by ``***``; not a string: unchanged.

    >>> redact("postgresql+psycopg://postgres:s3cret@db.internal:5432/app")
    'postgresql+psycopg://postgres:***@db.internal:5432/app'
    >>> redact("host=db user=app password='a b' sslmode=require")
    "host=db user=app password='***' sslmode=require"
    """
    if not isinstance(text, str) or not _QUICK.search(text):
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(_sub, text)
    return text


def is_secret_name(name: str) -> bool:
    """Whether a key or header name names a credential (``password``, ``api_key``,
    ``Authorization`` ...)."""
    low = str(name).strip().lower()
    return low in SECRET_HEADERS or bool(_SECRET_NAME.match(low))


def redact_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``headers`` with the value of every secret header replaced by ``***`` (and
    any credential inside the other values redacted)."""
    return {k: (MASK if is_secret_name(k) else redact(v)) for k, v in headers.items()}


def redact_doc(doc: Any) -> Any:
    """A copy of a result document with :func:`redact` applied to every string, and the value
    of every secret-named key (``password``, ``token``, ``Authorization`` ...) replaced."""
    if isinstance(doc, str):
        return redact(doc)
    if isinstance(doc, Mapping):
        out = {}
        for k, v in doc.items():
            if isinstance(v, str) and v and is_secret_name(k):
                out[k] = MASK
                continue
            out[redact(k) if isinstance(k, str) else k] = redact_doc(v)
        return out
    if isinstance(doc, list | tuple):
        return [redact_doc(v) for v in doc]
    return doc
