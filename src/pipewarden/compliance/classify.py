"""Column classification: the column name or JSON path, the share of values that validate as
one entity, and their distinctness decide whether a column holds PII as a whole.

Name hints also give *context* to the per-value recognizers: nine bare digits are an SSN in a
column named ``ssn`` and nothing in a column named ``order_id``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress
from operator import not_
from typing import Any

from .recognizers import CARD, EMAIL, IBAN, IP, NATIONAL_ID, PHONE, SSN, Context, detect

_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])")

# tokens of a column name or path -> the entity they point at
_NAME_HINTS: dict[str, str] = {
    "email": EMAIL, "mail": EMAIL, "emailaddress": EMAIL, "e": EMAIL,
    "ssn": SSN, "socialsecurity": SSN, "socialsecuritynumber": SSN, "social": SSN,
    "phone": PHONE, "telephone": PHONE, "tel": PHONE, "mobile": PHONE, "cell": PHONE,
    "fax": PHONE, "msisdn": PHONE, "phonenumber": PHONE, "cellphone": PHONE,
    "card": CARD, "cc": CARD, "ccnum": CARD, "pan": CARD, "creditcard": CARD,
    "cardnumber": CARD,
    "iban": IBAN,
    "ip": IP, "ipv4": IP, "ipv6": IP, "ipaddress": IP, "ipaddr": IP,
    "bsn": NATIONAL_ID, "nir": NATIONAL_ID, "idnr": NATIONAL_ID, "nationalid": NATIONAL_ID,
    "personalid": NATIONAL_ID, "pesel": NATIONAL_ID, "cpr": NATIONAL_ID, "dni": NATIONAL_ID,
    "nif": NATIONAL_ID, "nino": NATIONAL_ID, "personnummer": NATIONAL_ID,
}  # fmt: skip
_NEGATIVE = frozenset(
    [
        "order",
        "orders",
        "invoice",
        "sku",
        "item",
        "product",
        "part",
        "ref",
        "reference",
        "tracking",
        "ticket",
        "zip",
        "zipcode",
        "postal",
        "postcode",
        "version",
        "release",
        "build",
        "batch",
        "lot",
        "serial",
        "model",
        "case",
        "count",
        "qty",
        "quantity",
        "amount",
        "price",
        "total",
        "date",
        "time",
        "timestamp",
        "year",
        "txn",
        "transaction",
        "uuid",
        "hash",
        "checksum",
        "ean",
        "upc",
        "gtin",
        "isbn",
        "barcode",
        "imei",
        "iccid",
    ]
)
# tokens of a column name that say its values are product or device codes: a Luhn-valid
# 13-digit EAN there is not a card number
CODE_TOKENS = frozenset(["ean", "upc", "gtin", "isbn", "barcode", "imei", "iccid", "asin"])


def code_name(path: str) -> bool:
    """Whether the column name says product or device code (``ean``, ``isbn``, ``imei`` ...)."""
    return any(t in CODE_TOKENS for t in name_tokens(path))


def name_tokens(path: str) -> list[str]:
    return [t.lower() for t in _SPLIT.split(path) if t]


def name_hint(path: str) -> tuple[str | None, bool]:
    """(entity the name points at, whether the name points away from PII)."""
    tokens = name_tokens(path)
    joined = "".join(tokens)
    hint = None
    # the last segment speaks loudest: customer.email -> email
    for tok in reversed(tokens):
        if tok in _NAME_HINTS and tok != "e":
            hint = _NAME_HINTS[tok]
            break
    if hint is None:
        for size in (3, 2):  # social_security_number, e_mail, credit_card, ip_address
            for i in range(len(tokens) - size + 1):
                key = "".join(tokens[i : i + size])
                if key in _NAME_HINTS and key not in ("e",):
                    hint = _NAME_HINTS[key]
                    break
            if hint:
                break
    if hint is None and joined in _NAME_HINTS and joined != "e":
        hint = _NAME_HINTS[joined]
    if hint is None and "email" in joined:
        hint = EMAIL
    negative = hint is None and any(t in _NEGATIVE for t in tokens)
    return hint, negative


@dataclass
class ColumnStats:
    path: str  # JSON path with list indexes written []
    values: int = 0  # non-null scalar values
    free_text: int = 0  # values that read like prose (3+ words, not one entity)
    distinct: set | None = None
    n_distinct: int | None = None  # the distinct count, where no set of them is kept
    whole: dict[str, int] | None = None  # entity -> values that are exactly one such entity
    hint: str | None = None
    negative: bool = False

    def add(self, text: str, whole_entity: str | None) -> None:
        self.values += 1
        if whole_entity is None and text.count(" ") >= 2:
            self.free_text += 1  # prose, not a spaced-out "+1 212 555 0199"
        if self.distinct is None:
            self.distinct = set()
        if len(self.distinct) < 100_000:
            self.distinct.add(text)
        if whole_entity is not None:
            if self.whole is None:
                self.whole = {}
            self.whole[whole_entity] = self.whole.get(whole_entity, 0) + 1

    def distinct_count(self) -> int:
        """Distinct values seen (up to 100,000)."""
        return self.n_distinct if self.n_distinct is not None else len(self.distinct or ())

    def label(self) -> dict | None:
        """The column's label when it holds one entity as a whole, else None."""
        if not self.values or not self.whole:
            return None
        entity, count = max(sorted(self.whole.items()), key=lambda kv: kv[1])
        share = count / self.values
        distinct = self.distinct_count() / self.values
        name = self.hint == entity
        kind = "free_text" if self.free_text / self.values >= 0.5 else "structured"
        if kind == "free_text":
            return None
        if not ((name and share >= 0.2) or share >= 0.5):
            return None
        if not name and self.values >= 20 and distinct < 0.1:
            return None  # one value repeated (a shared help-desk number): not a PII column
        score = round(min(1.0, 0.5 * name + 0.4 * share + 0.1 * distinct + (0.1 * (not name))), 3)
        return {
            "column": self.path,
            "entity": entity,
            "score": score,
            "share": round(share, 4),
            "distinct": round(distinct, 4),
            "values": self.values,
            "by": "name+values" if name else "values",
        }


PII_SAMPLE = 200  # distinct values pii_column checks (the most frequent)
PII_SCAN = 5_000  # non-null values pii_column reads at most (the first ones)
# digits a value may have to count as the entity its column's name points at, whatever its
# region or checksum say: "07911 123456" in a column named mobile is a phone number
_HINT_DIGITS = {PHONE: (7, 15), SSN: (9, 9), CARD: (12, 19)}
_PUNCT = str.maketrans("", "", "0123456789 -.()/+")


def _as_text(v) -> str | None:
    if v is None or isinstance(v, bool | dict | list):
        return None
    if isinstance(v, float):
        if not v.is_integer():
            return None  # a measurement, not an identifier
        v = int(v)
    text = str(v).strip()
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]  # an integer exported as a float ("4111111111111111.0")
    return text or None


_NO_TEXT = frozenset({type(None), bool, dict, list})  # types _as_text never reads as text


def _may_be_text(values: Iterable[Any]) -> Iterable[Any]:
    """``values`` without those :func:`_as_text` reads as no text, in order, dropped in C:
    nulls, booleans, objects and lists, and floats with a fraction (a column of
    measurements is not read value by value to the end for want of a text)."""
    if not isinstance(values, Sequence):
        return values
    types = set(map(type, values))
    if types <= _NO_TEXT:
        return ()
    if types <= {float, type(None)}:
        import numpy as np

        x = np.array(values, dtype=float)  # None: NaN
        whole = np.flatnonzero(np.isfinite(x) & (np.floor(x) == x))[:PII_SCAN]
        return [values[i] for i in whole.tolist()]
    return compress(values, map(not_, map(_NO_TEXT.__contains__, map(type, values))))


def _hinted_shape(text: str, hint: str | None) -> bool:
    if hint == EMAIL:
        return "@" in text and " " not in text
    bounds = _HINT_DIGITS.get(hint or "")
    if bounds is None:
        return False
    digits = sum(ch.isdigit() for ch in text)
    return bounds[0] <= digits <= bounds[1] and not text.translate(_PUNCT)


@lru_cache(maxsize=256)
def _context(hint: str | None, negative: bool, region: str) -> Context:
    return Context(
        hints=frozenset([hint]) if hint else frozenset(), negative=negative, region=region
    )


def _entity(text: str, ctx: Context, hint: str | None) -> str | None:
    matches = detect(text, ctx)
    if len(matches) == 1 and matches[0].end - matches[0].start == len(text):
        return matches[0].entity
    return hint if _hinted_shape(text, hint) else None


def pii_column(path: str, values, *, region: str = "US") -> str | None:
    """The entity a column holds as a whole (most of its rows are each exactly one email,
    SSN, card number, phone number ...), or None. Numbers count as their digits (a card number
    stored as an integer, or exported as 4111111111111111.0, is still one), and in a column
    whose name points at an entity, a value of that entity's shape counts whatever its region
    or checksum say.

    For callers that keep a column's values or statistics beyond the batch (a trained model,
    the batch history) and must not keep PII. Stricter than :meth:`ColumnStats.label`: a
    column of one repeated address, or of one SSN among placeholders ("unknown", "n/a"), is
    PII here. Reads the first ``PII_SCAN`` non-null values and checks the ``PII_SAMPLE`` most
    frequent of them; the share counts rows, not distinct values.
    """
    # a name pointing away from PII ("ref", "order") does not count here: when unsure, the
    # value is not kept
    hint, _ = name_hint(path)
    ctx = _context(hint, False, region)
    counts: dict[str, int] = {}
    n = 0
    for v in _may_be_text(values):
        text = _as_text(v)
        if text is None:
            continue
        counts[text] = counts.get(text, 0) + 1
        n += 1
        if n >= PII_SCAN:
            break
    if not counts:
        return None
    checked = sorted(counts.items(), key=lambda kv: -kv[1])[:PII_SAMPLE]
    rows: dict[str, int] = {}
    for text, c in checked:
        entity = _entity(text, ctx, hint)
        if entity is not None:
            rows[entity] = rows.get(entity, 0) + c
    if not rows:
        return None
    entity, c = max(sorted(rows.items()), key=lambda kv: kv[1])
    share = c / sum(c for _, c in checked)
    return entity if share >= 0.5 or (hint == entity and share >= 0.2) else None


def holds_pii(value, name: str = "", *, region: str = "US") -> bool:
    """Whether a value of column ``name`` holds an email, SSN, card number, ... anywhere in it
    (for a caller about to keep one value, e.g. a category among others)."""
    hint = name_hint(name)[0] if name else None
    text = str(value)
    return bool(detect(text, _context(hint, False, region))) or _hinted_shape(text.strip(), hint)
