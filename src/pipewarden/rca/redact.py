"""Scrub a log before it is shown, stored or sent anywhere: no secret and no raw PII.

Secrets: what the project's one credential redactor (:mod:`pipewarden.redact`) finds
(passwords in DSNs and URLs of any scheme, secret ``key=value`` pairs, auth headers), plus AWS
access key ids, private key blocks and bare provider tokens. PII: the compliance guardian's
recognizers find e-mail addresses, card numbers, SSNs, phone numbers and IBANs in free text
(not IP addresses, which name servers in a log), and each value becomes its masked preview.
"""

from __future__ import annotations

import re

from ..errors import preview
from ..redact import MASK, redact

# what a log holds beside the DSNs, key=value secrets and auth headers the shared redactor
# knows: AWS access key ids, private key blocks, provider tokens written bare (sk-..., ghp_...)
_AWS = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S
)
_BARE_TOKEN = re.compile(r"\b(?:sk|pk|rk|ghp|gho|ghs|xox[abp]|glpat)[-_][A-Za-z0-9_-]{16,}\b")


def redact_secrets(text: str) -> str:
    """``text`` with every credential we recognise replaced by ``***``: the project's shared
    redactor (:func:`pipewarden.redact.redact`), then the bare tokens it does not look for."""
    text = redact(text)
    text = _PRIVATE_KEY.sub("-----PRIVATE KEY " + MASK + "-----", text)
    text = _AWS.sub(MASK, text)
    return _BARE_TOKEN.sub(MASK, text)


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
