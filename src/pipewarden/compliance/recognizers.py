"""Recognizers: candidate regexes followed by real validation, and overlap resolution.

Every recognizer finds candidates with a compiled regex and keeps only those that validate
(checksums, issuer ranges, allocation rules, the ``phonenumbers`` metadata, ``ipaddress``).
Forms that are ambiguous on their own (nine bare digits, a bare run of phone digits, a national
identifier) need *context*: a hint from the column name or a keyword just before the value in
the text. Negative context (``order``, ``sku``, ``version`` ...) suppresses weak candidates.

:func:`detect` returns non-overlapping :class:`Match` objects; where matches of different types
overlap, the stronger type wins (email > IBAN = card > SSN > national id > IP > phone).
"""

from __future__ import annotations

import functools
import importlib
import ipaddress
import re
from dataclasses import dataclass, field

import phonenumbers

EMAIL = "EMAIL_ADDRESS"
SSN = "US_SSN"
CARD = "CREDIT_CARD"
PHONE = "PHONE_NUMBER"
IBAN = "IBAN_CODE"
IP = "IP_ADDRESS"
NATIONAL_ID = "NATIONAL_ID"

BUILTIN_ENTITIES = (EMAIL, SSN, CARD, PHONE, IBAN, IP)
ENTITIES = (*BUILTIN_ENTITIES, NATIONAL_ID)

# higher wins when spans of different types overlap
PRIORITY = {EMAIL: 60, IBAN: 50, CARD: 50, SSN: 40, NATIONAL_ID: 35, IP: 30, PHONE: 20}


@dataclass(frozen=True, slots=True)
class Match:
    entity: str
    start: int
    end: int
    score: float
    detail: str = ""  # issuer of a card, stdnum module of a national id, ...


# regions whose national numbers (written without +country code) are tried, after the
# policy's own region: North America, Western Europe, the Nordics, Poland, Oceania, India,
# Brazil, Mexico. Not Italy: its variable-length plan makes 4.4% of random grouped digit
# strings valid Italian numbers written the Italian way. Measured false-positive cost in
# bench/guardian: see docs/guardian.md
DEFAULT_REGIONS = (
    "US", "CA", "GB", "IE", "DE", "AT", "CH", "FR", "BE", "NL", "LU", "ES", "PT",
    "SE", "NO", "DK", "FI", "PL", "AU", "NZ", "IN", "BR", "MX",
)  # fmt: skip
MODES = ("precision", "recall")


@dataclass
class Context:
    """What the caller knows about where a value comes from."""

    hints: frozenset[str] = frozenset()  # entities the column name points at
    negative: bool = False  # the column name points away from PII (order id, sku, zip ...)
    region: str = "US"  # the first region of phone numbers without a country code
    national_ids: tuple[str, ...] = ()  # python-stdnum modules enabled, e.g. ("nl.bsn",)
    entities: frozenset[str] = frozenset(ENTITIES)  # which entity types to report
    regions: tuple[str, ...] = DEFAULT_REGIONS  # tried after ``region`` (national numbers)
    recall: frozenset[str] = frozenset()  # entities detected in recall mode
    code: bool = False  # the column name says product or device code (ean, isbn, imei ...)
    _modules: list = field(default_factory=list, repr=False)
    _regions: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        self._modules = [(name, load_stdnum(name)) for name in self.national_ids]
        self._regions = tuple(dict.fromkeys((self.region, *self.regions)))


# --------------------------------------------------------------------------- context words

_WINDOW = 32  # characters before a candidate searched for context words
# keywords in the window before a value that point at an entity (matched at a word start)
_POS = {
    SSN: ("ssn", "ss#", "ss no", "social security", "soc sec", "soc. sec", "social sec"),
    PHONE: ("phone", "tel", "tel.", "mobile", "mob", "cell", "call", "fax", "sms", "text me",
            "whatsapp", "contact", "reach", "voicemail", "voice mail", "desk", "direct line",
            "dial", "ring", "landline", "hotline", "helpline", "switchboard", "ph", "tlf", "gsm",
            "ext", "extension", "telephone", "telefon", "telefoon", "telefono", "teléfono",
            "telefone", "téléphone", "tél", "tel:", "portable", "handy", "móvil", "movil",
            "cellulare", "celular", "puhelin", "mobil", "numéro", "número", "rufnummer",
            "appeler", "appelez", "anrufen", "llamar", "chiamare", "signal", "telegram"),
    CARD: ("card", "credit", "debit", "visa", "mastercard", "amex", "cc", "pan", "carte",
           "karte", "tarjeta", "carta", "cartão", "kaart"),
    NATIONAL_ID: ("national id", "id number", "id no", "identity", "personal id",
                  "personal number", "personal code", "citizen", "bsn", "nir", "insee", "idnr",
                  "steuer", "dni", "nie", "nif", "pesel", "cpr", "personnummer", "hetu",
                  "codice fiscale", "rrn", "aadhaar", "sin", "nino", "tax id"),
}  # fmt: skip


def _has_keyword(window: str, keywords: tuple[str, ...]) -> bool:
    """A keyword starting a word of ``window``; keywords of three letters or fewer ("tel",
    "ph", "cc") must also end it ("photo" is not "ph")."""
    return _keyword_re(keywords).search(window.lower()) is not None


@functools.lru_cache(maxsize=32)
def _keyword_re(keywords: tuple[str, ...]) -> re.Pattern:
    """One regex for a list of keywords (a scan per keyword cost more than the rest of the
    phone recognizer): each at a word start, the short ones also at a word end."""
    alts = [
        re.escape(k) + (r"(?![^\W\d_])" if len(k) <= 3 else "")
        for k in sorted(keywords, key=len, reverse=True)
    ]
    return re.compile(r"(?<![^\W_])(?:" + "|".join(alts) + ")")


# words that, right before a value, say it is not PII; optionally followed by a suffix word
_NEG_WORDS = frozenset(
    [
        "order",
        "invoice",
        "inv",
        "sku",
        "item",
        "part",
        "product",
        "ref",
        "reference",
        "tracking",
        "ticket",
        "po",
        "zip",
        "postal",
        "postcode",
        "version",
        "ver",
        "release",
        "build",
        "v",
        "batch",
        "lot",
        "serial",
        "model",
        "case",
        "acct",
        "account",
        "transaction",
        "txn",
    ]
)
# words right after a number that say it is a phone number (a label written after it)
_PHONE_AFTER = ("fax", "office", "mobile", "cell", "home", "work", "phone", "tel", "direct")
# id words after which even a dashed SSN-shaped number is an id
_ID_WORDS = frozenset(
    ["order", "invoice", "inv", "sku", "item", "part", "product", "ref", "reference",
     "tracking", "ticket", "po", "zip", "postal", "postcode"]
)  # fmt: skip
_NEG_SUFFIX = frozenset(["no", "num", "number", "id", "code"])
_VERSION_WORDS = frozenset(
    ["v", "version", "ver", "release", "build", "rev", "rv", "firmware", "fw", "patch", "update",
     "os", "android", "ios", "kernel", "sdk", "api", "app", "agent", "driver", "bios"]
)  # fmt: skip
_SEPARATORS = " \t:#=."


def _last_word(text: str) -> tuple[str, str]:
    """(the last word of ``text`` ignoring trailing separators, the text before it)."""
    text = text.rstrip(_SEPARATORS)
    i = len(text)
    while i and text[i - 1].isalpha():
        i -= 1
    return text[i:].lower(), text[:i]


def _words_before(text: str, start: int, words: frozenset[str]) -> bool:
    """Whether one of ``words`` (maybe followed by no/number/id/code, #, :) ends right at
    ``start``: "order 123", "order #123", "invoice no. 123", "order id: 123"."""
    word, rest = _last_word(text[max(0, start - _WINDOW) : start])
    if word in words:
        return True
    if word in _NEG_SUFFIX:
        return _last_word(rest)[0] in words
    return False


def _before(text: str, start: int) -> str:
    return text[max(0, start - _WINDOW) : start]


def _context(entity: str, text: str, start: int, end: int, ctx: Context) -> bool | None:
    """True: the column name or a keyword before the value points at ``entity``; False: the
    column name (for a value that is the whole cell) or the words right before the value point
    away (order id, sku, zip ...); None: no context either way. The column name speaks first,
    then the nearest words: free text in a column named ``order_notes`` is still read."""
    if entity in ctx.hints:
        return True
    if ctx.negative and start == 0 and end == len(text.rstrip()):
        return False
    if _words_before(text, start, _NEG_WORDS):
        return False
    if _has_keyword(_before(text, start), _POS[entity]):
        return True
    if entity == PHONE and _has_keyword(text[end : end + 12].lstrip(" -(,"), _PHONE_AFTER):
        return True  # "957-648-7128 fax", "06 36 57 82 77-Office", "(mobile)"
    return None


# --------------------------------------------------------------------------- hard negatives

# text that looks like digits of an entity but is a date, a time, a timestamp, a UUID, a
# version, a ZIP+4 code or an amount: candidates overlapping it are dropped (phone, SSN,
# card, IPv4). Dates need a plausible year, month and day.
_NEUTRAL_RE = re.compile(
    r"(?<![\w.\-/])(?:"
    # ISO date, optionally with a time and zone: 2025-12-07, 2025-12-07 02:09:09,
    # 2025-12-07T02:09:09.123+01:00, 2025/12/07 02:09
    r"(?:1[6-9]|2\d)\d{2}(?P<s1>[-./])(?:0?[1-9]|1[0-2])(?P=s1)(?:0?[1-9]|[12]\d|3[01])"
    r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:\s?(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?))?)?"
    r"|(?:0?[1-9]|[12]\d|3[01])(?P<s2>[-./])(?:0?[1-9]|[12]\d|3[01])(?P=s2)(?:1[6-9]|2\d)?\d{2}"
    r"(?:[T ,]+\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)?"  # 15.01.2023, 01/15/2023 12:30
    r"|\d{8}T\d{4,6}(?:Z|[+-]\d{4})?"  # 20251207T020909Z
    r"|\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:\s?[AaPp][Mm])?"  # times
    r"|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"  # UUID
    r"|\d{5}-\d{4}|\d{4,5}-\d{3}"  # ZIP+4; Portuguese and Brazilian post codes
    r"|v\d+(?:\.\d+){1,4}"  # v2.10.4
    r"|\d+(?:\.\d+){1,4}(?=[-+~][A-Za-z])"  # 1.2.3.4-beta, 10.0.1+build
    r")(?![\w:]|[.\-/]\d)"
    # a version right after a name and a slash or an operator: Chrome/120.0.6099.109,
    # numpy==1.26.4.1, pkg-1.2.3.4
    r"|(?<=[A-Za-z][/=@-])\d+(?:\.\d+){2,4}(?![\w.])"
    r"|(?<=[=~<>]=)\d+(?:\.\d+){1,4}(?![\w.])"
    # amounts: a currency next to the number, or both thousands and decimal separators
    r"|(?:[$€£¥₹]|\b(?:USD|EUR|GBP|CHF|JPY|CAD|AUD|INR)\s?)\s?\d[\d,.' ]*\d"
    r"|(?<![\w.,])\d{1,3}(?:,\d{3})+\.\d{1,2}(?![\d,.])|(?<![\w.,])\d{1,3}(?:\.\d{3})+,\d{1,2}(?![\d,.])"
)


def neutral_spans(text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` that are dates, times, timestamps, UUIDs, versions, ZIP+4 codes or
    amounts: never a phone number, an SSN, a card or an IPv4 address."""
    return [m.span() for m in _NEUTRAL_RE.finditer(text)]


_NEUTRAL_LEAD = 5  # characters a neutral span may start before a candidate ("EUR 1 234")


class _Neutral:
    """Asks whether a candidate starts inside a neutral span of a text. A candidate mostly
    starts where its neutral span starts, or just after a currency, a ``v`` or a ``name/``:
    anchored matches at the few positions before it answer (scanning the whole value for
    every candidate cost a tenth of the detection). Only a candidate right after a ``:`` can
    start deep inside a span (the seconds of a timestamp): the value is then scanned once."""

    __slots__ = ("text", "spans")

    def __init__(self, text: str) -> None:
        self.text = text
        self.spans: list[tuple[int, int]] | None = None

    def covers(self, start: int) -> bool:
        """Whether a candidate starting at ``start`` starts inside a neutral span (a
        timestamp's digits are not a phone number; "+49 30 12345-6789" is not a ZIP+4)."""
        text = self.text
        if start and text[start - 1] == ":":
            if self.spans is None:
                self.spans = neutral_spans(text)
            return any(s <= start < e for s, e in self.spans)
        match = _NEUTRAL_RE.match
        for pos in range(start, max(-1, start - _NEUTRAL_LEAD - 1), -1):
            m = match(text, pos)
            if m is not None and m.end() > start:
                return True
        return False


# --------------------------------------------------------------------------- email

_EMAIL_RE = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-]|\.[A-Za-z0-9])"
)


def valid_email(value: str) -> bool:
    """Syntax of a mailbox: a dot-atom local part and a domain of valid labels with a TLD."""
    m = _EMAIL_RE.fullmatch(value)
    if not m:
        return False
    local, _, domain = value.rpartition("@")
    if local.endswith(".") or ".." in local or len(value) > 254:
        return False
    return all(label and len(label) <= 63 for label in domain.split("."))


def _emails(text: str, ctx: Context, out: list[Match]) -> None:
    for m in _EMAIL_RE.finditer(text):
        if valid_email(m.group()):
            out.append(Match(EMAIL, m.start(), m.end(), 1.0))


# --------------------------------------------------------------------------- US SSN

# "\d(?<![\w-]\d)" is "(?<![\w-])\d" written digit-first, so the regex engine can skip
# ahead to the next digit instead of trying the lookbehind at every position
_SSN_RE = re.compile(r"(\d(?<![\w-]\d)\d{2})([- ]?)(\d{2})\2(\d{4})(?![\w]|-\d)")
# published or advertised numbers that were never valid (SSA, wallet card samples)
SSN_SAMPLES = frozenset({"078051120", "219099999", "123456789", "111111111", "333333333"})


def valid_ssn(digits: str, samples: bool = False) -> bool:
    """US SSN allocation rules on 9 digits: no area 000, 666 or 900-999, no group 00, no
    serial 0000; not one of the published sample numbers unless ``samples``."""
    if len(digits) != 9 or not digits.isdigit():
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return samples or digits not in SSN_SAMPLES


def _ssns(text: str, ctx: Context, out: list[Match], neutral: _Neutral | None) -> None:
    recall = SSN in ctx.recall
    for m in _SSN_RE.finditer(text):
        area, sep, group, serial = m.groups()
        start, end = m.start(), m.end()
        if neutral is not None and neutral.covers(start):
            continue
        digits = area + group + serial
        if SSN in ctx.hints and end - start == len(text.strip()):
            # a whole value in a column named ssn: the allocation rules decide (a published
            # sample is still masked there); in recall mode any nine digits of SSN shape
            if recall or valid_ssn(digits, samples=True):
                out.append(Match(SSN, start, end, 0.95))
            continue
        if _words_before(text, start, _ID_WORDS):
            continue  # right after an id word (order, invoice, ref ...): an id
        said = _has_keyword(_before(text, start), _POS[SSN])
        if not valid_ssn(digits) and not (said and valid_ssn(digits, samples=True)):
            continue  # a published sample is an SSN only when the text says so
        if sep:
            # a dashed or spaced SSN is a strong form: the column's name ("batch", "case",
            # "amount") does not speak against it
            context = SSN in ctx.hints or said
        else:
            context = _context(SSN, text, start, end, ctx)
            if not context:
                continue  # nine bare digits are an SSN only with context
        out.append(Match(SSN, start, end, 0.95 if context else 0.7))


# --------------------------------------------------------------------------- credit cards

_CARD_RE = re.compile(r"\d(?<![\w.+-]\d)(?:[ .-]?\d){11,18}(?![\w]|[.-]\d)")
_SEPS = re.compile(r"[ .-]")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_issuer(digits: str) -> str | None:
    """The card scheme whose issuer range and length fit ``digits``, or None."""
    n = len(digits)
    if not 12 <= n <= 19:
        return None
    p2, p3, p4, p6 = int(digits[:2]), int(digits[:3]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= p2 <= 55 or 2221 <= p4 <= 2720) and n == 16:
        return "mastercard"
    if p2 in (34, 37) and n == 15:
        return "amex"
    if 2200 <= p4 <= 2204 and 16 <= n <= 19:
        return "mir"
    if (p4 == 6011 or 644 <= p3 <= 649 or p2 == 65 or 622126 <= p6 <= 622925) and 16 <= n <= 19:
        return "discover"
    if 3528 <= p4 <= 3589 and 16 <= n <= 19:
        return "jcb"
    if (300 <= p3 <= 305 or p4 == 3095 or p2 in (36, 38, 39)) and 14 <= n <= 19:
        return "diners"
    if p2 == 62 and 16 <= n <= 19:
        return "unionpay"
    if (p2 == 50 or 56 <= p2 <= 69) and 12 <= n <= 19:
        return "maestro"
    return None


def _card_digits(value: str) -> str | None:
    """The digits of a card-shaped value (one kind of separator, groups of 3+), or None."""
    seps = set(_SEPS.findall(value))
    if len(seps) > 1:
        return None
    if seps:
        groups = _SEPS.split(value)
        if any(len(g) < 3 for g in groups[:-1]) or not groups[-1]:
            return None
        digits = "".join(groups)
    else:
        digits = value
    if not digits.isdigit() or len(set(digits)) == 1 or not 12 <= len(digits) <= 19:
        return None
    return digits


def valid_card(value: str, any_issuer: bool = False) -> str | None:
    """The issuer when ``value`` (digits with one kind of separator) is a valid card number;
    ``any_issuer``: a Luhn-valid number outside the issuer table is ``"unknown"``."""
    digits = _card_digits(value)
    if digits is None or not luhn_ok(digits):
        return None
    return card_issuer(digits) or ("unknown" if any_issuer else None)


# product and device codes that are 12-19 digits and can pass Luhn by chance (an EAN-13 does
# one time in ten): a number right after one of these words, or filling a column named so
_CODE_WORDS = frozenset(["ean", "upc", "gtin", "isbn", "barcode", "imei", "iccid", "asin"])


def _cards(text: str, ctx: Context, out: list[Match], neutral: _Neutral | None) -> None:
    recall = CARD in ctx.recall
    for m in _CARD_RE.finditer(text):
        if neutral is not None and neutral.covers(m.start()):
            continue
        if (ctx.code and m.start() == 0 and m.end() == len(text.rstrip())) or _words_before(
            text, m.start(), _CODE_WORDS
        ):
            continue  # an EAN, UPC, ISBN, IMEI ...
        whole = m.start() == 0 and m.end() == len(text.rstrip())
        named = CARD in ctx.hints and whole  # the whole value of a column named like a card
        issuer = valid_card(m.group(), any_issuer=recall or named)
        if issuer == "unknown" and not (
            named or _has_keyword(_before(text, m.start()), _POS[CARD])
        ):
            continue  # outside the issuer table: a card only in a card column, or (recall
            # mode) after a card word
        if issuer:
            score = 1.0 if issuer != "unknown" else 0.8
            out.append(Match(CARD, m.start(), m.end(), score, issuer))


# --------------------------------------------------------------------------- phone numbers

_PHONE_RE = re.compile(
    r"(?<![\w.+/-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,5}"
    # an area code may end in a slash (0463/29701008, as written in Austria and Germany)
    r"(?:[ ./-]?\d{1,5})(?:[ .-]?\d{1,5}){0,4}"
    # an extension is part of the number: x037, ext. 12, extension 4, #12
    r"(?P<ext>[ ]?(?:[xX]|[eE]xt?n?\.?|[eE]xtension|#)[ .:]?\d{1,6})?"
    r"(?![\w]|[.-]\d|/\d)"
)
_NOT_DIGIT = re.compile(r"\D").findall
_NOT_DIGIT_SUB = re.compile(r"\D").sub
_DATE_RE = re.compile(r"\d{4}[-.]\d{1,2}[-.]\d{1,2}|\d{1,2}[-.]\d{1,2}[-.]\d{2,4}")
# international call prefixes written instead of "+": 00 (most of the world), 011 (NANP)
_IDD = (("011", 3), ("00", 2))


def _as_international(value: str) -> str | None:
    """ "001-513-293-0707" -> "+1513..."; None when ``value`` has no call prefix."""
    if value[0] != "0" or "(" in value:
        return None
    digits = _NOT_DIGIT_SUB("", value)
    for prefix, n in _IDD:
        if digits.startswith(prefix) and len(digits) - n >= 8 and digits[n] != "0":
            return "+" + digits[n:]
    return None


def valid_phone(value: str, region: str | tuple[str, ...] = "US") -> bool:
    """A number ``phonenumbers`` considers valid (its metadata: lengths and number ranges),
    read as a national number of each of ``region`` in turn (a tuple: the first that fits),
    or as ``+``/``00``/``011`` followed by a country code.

    Plain numbers skip the text parser: a national number whose length fits the region, or
    ``+`` followed by a country code and a national number, is built from its digits and
    validated against the same metadata (anything else goes through ``parse``).
    """
    regions = (region,) if isinstance(region, str) else region
    if value[0] != "+":
        intl = _as_international(value)
        if intl is not None and _valid_international(intl):
            return True
        if _valid_national(value, regions[0]):
            return True
        # the other regions: only a number written as people there write it (the trunk
        # prefix where the region has one, digits grouped as its national format groups them),
        # and never in the SSN shape 3-2-4: a Spanish landline is not written 912-78-1234
        if len(regions) == 1 or _SSN_SHAPE.fullmatch(value):
            return False
        return any(_valid_national(value, r, strict=True) for r in regions[1:])
    return _valid_international(value)


_SSN_SHAPE = re.compile(r"\d{3}([- ])\d{2}\1\d{4}")
_GROUPS = re.compile(r"\d+")


_TRUNK_IN_BRACKETS = re.compile(r"(?<=\d)[ ]?\(0\)[ ]?")


def _valid_international(value: str) -> bool:
    if "(0)" in value:  # +44 (0)20 7946 0958: the trunk prefix shown in brackets is not dialled
        value = _TRUNK_IN_BRACKETS.sub(" ", value)
    if "(" not in value:
        # +<country code><national number>: country codes are prefix-free. A "no" here
        # still goes to the parser, which knows national prefixes written after the code.
        digits = _NOT_DIGIT_SUB("", value)
        for size in (1, 2, 3):
            if not digits or digits[0] == "0":
                break
            cc = int(digits[:size])
            home = _CC_REGIONS.get(cc)
            if home is None:
                continue
            nsn = digits[size:]
            if 2 <= len(nsn) <= 17 and nsn[0] != "0":
                num = phonenumbers.PhoneNumber(country_code=cc, national_number=int(nsn))
                if phonenumbers.is_valid_number_for_region(num, home[0]):
                    return True
            break
    try:
        num = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(num)


def _valid_national(value: str, region: str, strict: bool = False) -> bool:
    """Valid as a national number of ``region``; ``strict``: also written with the region's
    trunk prefix (when it has one) and grouped as its national format groups it."""
    plan = _national_plan(region)
    if plan is None:
        return False
    cc, prefix, lengths = plan
    digits = _NOT_DIGIT_SUB("", value)
    if strict and len(digits) < 8:
        return False  # short numbers of other regions look like post codes and house numbers
    has_prefix = bool(prefix) and digits.startswith(prefix)
    if has_prefix and len(digits) - len(prefix) in lengths:
        digits = digits[len(prefix) :]
    if len(digits) in lengths and digits[0] != "0":
        num = phonenumbers.PhoneNumber(country_code=cc, national_number=int(digits))
        # valid for the region itself is the cheap, common answer; other regions
        # sharing the calling code (NANP: CA, PR ...; +44: GG, JE, IM) need the full lookup
        ok = phonenumbers.is_valid_number_for_region(num, region) or phonenumbers.is_valid_number(
            num
        )
        if ok:
            return not strict or _grouped_as(value, num, exact=not prefix)
        if strict or not digits.startswith(str(cc)):  # else the parser may read a country code
            return False
    try:
        num = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(num)


def _grouped_as(value: str, num: phonenumbers.PhoneNumber, exact: bool = False) -> bool:
    """Whether ``value`` is written as the number's national format writes it: the same
    digits (the trunk prefix where the format has one: "0490 75 40 81" in France, none in
    Brazil's "(69) 3557-3796"), in groups that join the format's groups ("0490 75 40 81" joins
    "04 90 75 40 81"; a value without separators always does); ``exact``: the very groups
    (for regions without a trunk prefix, where most digit strings of the right length are
    numbers: Denmark's "12 34 56 78", not "1234 5678")."""
    formatted = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.NATIONAL)
    if _NOT_DIGIT_SUB("", formatted) != _NOT_DIGIT_SUB("", value):
        return False
    mine = [len(g) for g in _GROUPS.findall(value)]
    if len(mine) == 1:
        return True
    theirs = [len(g) for g in _GROUPS.findall(formatted)]
    if exact:
        return mine == theirs
    i = 0
    for size in mine:
        total = 0
        while i < len(theirs) and total < size:
            total += theirs[i]
            i += 1
        if total != size:
            return False
    return i == len(theirs)


def possible_phone(value: str, regions: tuple[str, ...]) -> bool:
    """Phone-shaped: a length some region (or the country code after ``+``) allows, whatever
    its number ranges say (a made-up area code, a fictional 555 or 07700 900 number)."""
    intl = value if value[0] == "+" else _as_international(value)
    try:
        if intl is not None and phonenumbers.is_possible_number(phonenumbers.parse(intl, None)):
            return True
    except phonenumbers.NumberParseException:
        pass
    if value[0] == "+":
        return False
    try:
        for r in regions:
            if phonenumbers.is_possible_number(phonenumbers.parse(value, r)):
                return True
    except phonenumbers.NumberParseException:
        return False
    return False


_CC_REGIONS = phonenumbers.COUNTRY_CODE_TO_REGION_CODE


@functools.lru_cache(maxsize=256)
def _national_plan(region: str) -> tuple[int, str, frozenset[int]] | None:
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.general_desc is None or not meta.general_desc.possible_length:
        return None
    return (
        meta.country_code,
        meta.national_prefix or "",
        frozenset(meta.general_desc.possible_length),
    )


@functools.lru_cache(maxsize=256)
def national_lengths(region: str | tuple[str, ...]) -> frozenset[int]:
    """Digit counts a number written without ``+`` can have in ``region`` (or any of several;
    with or without the national prefix), from the phonenumbers metadata: a cheap filter
    before parsing."""
    if not isinstance(region, str):
        out: frozenset[int] = frozenset()
        for r in region:
            out |= national_lengths(r)
        return out
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.general_desc is None:
        return frozenset(range(7, 16))
    lengths = set(meta.general_desc.possible_length or range(7, 16))
    prefix = meta.national_prefix or ""
    if prefix:
        lengths |= {n + len(prefix) for n in lengths}
    return frozenset(n for n in lengths if n >= 7)


_PHONE_SHAPE = re.compile(r"[+(]?\d[\d .()-]*\d")


def _phones(text: str, ctx: Context, out: list[Match], neutral: _Neutral | None) -> None:
    taken = [(m.start, m.end) for m in out]  # stronger types found first
    regions = ctx._regions
    allowed = national_lengths(regions)
    recall = PHONE in ctx.recall
    for m in _PHONE_RE.finditer(text):
        cand = m.group()
        start, end = m.start(), m.end()
        if taken and any(s < end and start < e for s, e in taken):
            continue  # inside a card, SSN, IBAN, IP or email: that match wins anyway
        ext = m.group("ext")
        number = cand[: m.start("ext") - start] if ext else cand
        digits = len(number) - len(_NOT_DIGIT(number))
        intl = number[0] == "+" or (number[0] == "0" and _as_international(number) is not None)
        if not 7 <= digits <= 15 or (not intl and digits not in allowed):
            continue
        if _DATE_RE.fullmatch(number) or _SSN_SHAPE.fullmatch(number):
            continue  # a date, or the SSN/ITIN shape 3-2-4: never a phone number
        context = _context(PHONE, text, start, end, ctx)
        if context is False or (context is None and number.isdigit()):
            continue  # a bare run of digits is a phone number only with context
        if neutral is not None and neutral.covers(start):
            continue  # a date, time, timestamp, version, ZIP+4 or amount
        if valid_phone(number, regions):
            score = 0.9 if context else (0.75 if number[0] in "+(" or ext else 0.6)
            out.append(Match(PHONE, start, end, score))
        elif (
            context
            and (recall or (PHONE in ctx.hints and end - start == len(text.strip())))
            and (recall or not number.isdigit())
            and (possible_phone(number, regions) or (PHONE in ctx.hints and not recall))
        ):
            # phone-shaped with phone context: in a column named phone (a whole value, with
            # separators, of 7-15 digits: a number of a region not configured, a made-up area
            # code) or, in recall mode, after a phone word, a number of a possible length that
            # no region allocates (a fictional 555-01xx) is still somebody's number to mask
            out.append(Match(PHONE, start, end, 0.65))


# --------------------------------------------------------------------------- IBAN

IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip
# upper or lower case: an IBAN typed in lower case is the same account (checked upper-cased)
_IBAN_RE = re.compile(r"([A-Za-z](?<![\w][A-Za-z])[A-Za-z])(\d{2})(?=[ ]?[A-Za-z0-9])")


def iban_mod97_ok(compact: str) -> bool:
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def valid_iban(value: str) -> bool:
    """Per-country length and the ISO 7064 mod-97 check digits."""
    compact = value.replace(" ", "").upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    return compact[2:4].isdigit() and iban_mod97_ok(compact)


def _ibans(text: str, ctx: Context, out: list[Match]) -> None:
    for m in _IBAN_RE.finditer(text):
        length = IBAN_LENGTHS.get(m.group(1).upper())
        if length is None:
            continue
        # take exactly the country's length of characters, single spaces between groups
        i, n, got = m.start(), len(text), 0
        chars = []
        while i < n and got < length:
            ch = text[i]
            if ch.isalnum() and ch.isascii():
                chars.append(ch)
                got += 1
            elif not (ch == " " and chars and i + 1 < n and text[i + 1].isalnum()):
                break
            i += 1
        if got != length or (i < n and text[i].isalnum()):
            continue
        if valid_iban("".join(chars)):
            out.append(Match(IBAN, m.start(), i, 1.0))


# --------------------------------------------------------------------------- IP addresses

_OCTET_OK = re.compile(r"25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d").fullmatch
_IPV4_RE = re.compile(r"\d(?<![\w.]\d)\d{0,2}(?:\.\d{1,3}){3}(?![\w]|\.\d)")
_IPV6_RE = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?![\w:]|\.\d)"
)


def valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _ips(text: str, ctx: Context, out: list[Match], neutral: _Neutral | None) -> None:
    if "." in text:
        for m in _IPV4_RE.finditer(text):
            if not all(_OCTET_OK(o) for o in m.group().split(".")):
                continue
            if _words_before(text, m.start(), _VERSION_WORDS):
                continue
            if neutral is not None and neutral.covers(m.start()):
                continue  # Chrome/120.0.6099.109, pkg==1.2.3.4, 1.2.3.4-beta
            out.append(Match(IP, m.start(), m.end(), 0.85 if IP in ctx.hints else 0.8))
    if ":" in text:
        for m in _IPV6_RE.finditer(text):
            cand = m.group()
            if sum(c not in ":." for c in cand) < 3 or cand.count(":") < 2:
                continue
            try:
                ipaddress.IPv6Address(cand)
            except ValueError:
                continue
            out.append(Match(IP, m.start(), m.end(), 0.85))


# --------------------------------------------------------------------------- national ids

_NID_RE = re.compile(
    r"(?<![\w-])[A-Za-z0-9]*\d[A-Za-z0-9]*(?:[ .\-/][A-Za-z0-9]*\d[A-Za-z0-9]*){0,4}(?![\w])"
)


@functools.lru_cache(maxsize=64)
def load_stdnum(name: str):
    """Import the python-stdnum module ``name`` (``"nl.bsn"``); ValueError when unknown."""
    if not re.fullmatch(r"[a-z]{2,3}\.[a-z_0-9]+|[a-z_0-9]+", name or ""):
        raise ValueError(f"not a python-stdnum module name: {name!r}")
    try:
        module = importlib.import_module(f"stdnum.{name}")
    except ImportError:
        raise ValueError(f"python-stdnum has no module {name!r}") from None
    if not hasattr(module, "is_valid"):
        raise ValueError(f"python-stdnum module {name!r} has no is_valid()")
    return module


def _national_ids(text: str, ctx: Context, out: list[Match]) -> None:
    for m in _NID_RE.finditer(text):
        cand = m.group()
        if sum(ch.isalnum() for ch in cand) < 6 or len(cand) > 40:
            continue
        if not _context(NATIONAL_ID, text, m.start(), m.end(), ctx):
            continue
        for name, module in ctx._modules:
            try:
                ok = module.is_valid(cand)
            except Exception:  # a validator that trips on odd input is a "no"
                ok = False
            if ok:
                out.append(Match(NATIONAL_ID, m.start(), m.end(), 0.85, name))
                break


# --------------------------------------------------------------------------- detection

_DROP_DIGITS = str.maketrans("", "", "0123456789")


def detect(text: str, ctx: Context, only: frozenset[str] | None = None) -> list[Match]:
    """Every validated entity in ``text``, overlaps resolved, ordered by start. ``only``: the
    recognizers to run (:func:`plan` of the text's shape: the others cannot find anything in
    it), by default every entity of ``ctx``."""
    found: list[Match] = []
    wanted = ctx.entities if only is None else only
    if "@" in text and EMAIL in wanted:
        _emails(text, ctx, found)
    # the number of digits is a cheap prefilter: each numeric entity needs a minimum
    digits = len(text) - len(text.translate(_DROP_DIGITS))
    if digits:
        # dates, times, versions, UUIDs, ZIP+4 and amounts: never a phone, SSN, card or IPv4
        neutral = _Neutral(text) if digits >= 4 and not text.isdigit() else None
        if digits >= 9 and SSN in wanted:
            _ssns(text, ctx, found, neutral)
        if digits >= 12 and CARD in wanted:
            _cards(text, ctx, found, neutral)
        if digits >= 2 and IBAN in wanted:
            _ibans(text, ctx, found)
        if IP in wanted and (digits >= 4 or ":" in text):
            _ips(text, ctx, found, neutral)
        if digits >= 7 and PHONE in wanted:
            _phones(text, ctx, found, neutral)
        if ctx._modules and NATIONAL_ID in wanted:
            _national_ids(text, ctx, found)
    if len(found) < 2:
        return found
    return resolve_overlaps(found)


# ASCII digits -> "0": the *shape* of a text. Every candidate regex above treats the ten ASCII
# digits alike (no literal digit outside a class holding all ten), so a text and its shape have
# the same candidates at the same places; only the validators (checksums, allocation rules,
# number ranges, the neutral dates and amounts) read the digits themselves
SHAPE = str.maketrans("123456789", "000000000")


def shape(text: str) -> str:
    """``text`` with every ASCII digit written as ``0``."""
    return text.translate(SHAPE)


def plan(shape: str, ctx: Context) -> frozenset[str]:
    """The entities whose recognizers can find something in a text of this shape (its ASCII
    digits written as ``0``, :func:`shape`): ``detect(text, ctx, only=plan(shape(text), ctx))``
    is ``detect(text, ctx)``. A recognizer is left out when :func:`detect`'s own gate (digits,
    ``@``, ``.``, ``:``) or its candidate regex finds nothing in the shape; phone candidates
    also need 7-15 digits and not to be a date or the SSN shape, as :func:`_phones` asks. One
    call serves every value of the shape: a column of ISO timestamps has one shape, and no
    recognizer to run."""
    out: list[str] = []
    wanted = ctx.entities
    if "@" in shape and EMAIL in wanted and _EMAIL_RE.search(shape):
        out.append(EMAIL)
    digits = len(shape) - len(shape.translate(_DROP_DIGITS))
    if digits:
        if digits >= 9 and SSN in wanted and _SSN_RE.search(shape):
            out.append(SSN)
        if digits >= 12 and CARD in wanted and _CARD_RE.search(shape):
            out.append(CARD)
        if digits >= 2 and IBAN in wanted and _iban_shaped(shape):
            out.append(IBAN)
        if IP in wanted and (digits >= 4 or ":" in shape) and _ip_shaped(shape):
            out.append(IP)
        if digits >= 7 and PHONE in wanted and _phone_shaped(shape):
            out.append(PHONE)
        if ctx._modules and NATIONAL_ID in wanted and _NID_RE.search(shape):
            out.append(NATIONAL_ID)
    return frozenset(out)


def _iban_shaped(shape: str) -> bool:
    return any(IBAN_LENGTHS.get(m.group(1).upper()) for m in _IBAN_RE.finditer(shape))


def _ip_shaped(shape: str) -> bool:
    return bool(
        ("." in shape and _IPV4_RE.search(shape)) or (":" in shape and _IPV6_RE.search(shape))
    )


def _phone_shaped(shape: str) -> bool:
    """A phone candidate of the shape passes :func:`_phones`'s tests that do not read the
    digits: 7-15 digits before an extension, not a date, not the SSN shape 3-2-4."""
    for m in _PHONE_RE.finditer(shape):
        number = m.group()
        if m.group("ext"):
            number = number[: m.start("ext") - m.start()]
        if not 7 <= len(number) - len(_NOT_DIGIT(number)) <= 15:
            continue
        if _DATE_RE.fullmatch(number) or _SSN_SHAPE.fullmatch(number):
            continue
        return True
    return False


def email_only(plan: frozenset[str]) -> bool:
    """Whether a plan's matches are the same for every text of the shape: the e-mail
    recognizer reads no digit (its regex and its checks of the local part and the labels
    treat them alike), so its matches in the shape are its matches in each text."""
    return plan == _EMAIL_ONLY


_EMAIL_ONLY = frozenset([EMAIL])


def resolve_overlaps(matches: list[Match]) -> list[Match]:
    """Keep the strongest of overlapping matches: type priority, then score, then length."""
    ranked = sorted(
        matches, key=lambda m: (-PRIORITY[m.entity], -m.score, m.start - m.end, m.start)
    )
    kept: list[Match] = []
    for m in ranked:
        if all(m.end <= k.start or m.start >= k.end for k in kept):
            kept.append(m)
    kept.sort(key=lambda m: (m.start, m.end))
    return kept
