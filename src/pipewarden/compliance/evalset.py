"""The labelled evaluation set: Faker with a fixed seed plus hand-written hard negatives.

Each record has five text fields (``email``, ``phone``, ``order_ref``, ``note``, ``comment``)
and the spans of every PII value in them::

    {"fields": {...}, "labels": [{"field": "note", "start": 12, "end": 23, "entity": "US_SSN"}]}

Hard negatives (ZIP+4 codes, 9- and 10-digit order ids, SKUs, ITINs, dates, times, version
strings, invoice and tracking numbers) are mixed into the same fields and carry no label.
The bundled set (``data/eval_set.jsonl``) was written by::

    python -m pipewarden.compliance.evalset --records 1500 --seed 7 \
        --out src/pipewarden/compliance/data/eval_set.jsonl

Faker is needed only to generate a set (``pip install faker``), not to evaluate one.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from typing import Any

import orjson
import phonenumbers

from .recognizers import CARD, EMAIL, IBAN, IP, PHONE, SSN, card_issuer, luhn_ok, valid_ssn

# hand-written hard negatives: none of these is PII, each looks like some
HARD_NEGATIVES = [
    "ZIP 10001-1234",
    "ship to 94105-2231",
    "order 123456789",
    "order #2125550199",
    "order id 987654321",
    "SKU 4821-77-A",
    "SKU AB-1234-567",
    "item 12-3456-789",
    "ITIN 912-78-1234",
    "ITIN 987-81-2345",
    "on 2023-01-15",
    "due 01/15/2023",
    "dated 15.01.2023",
    "at 12:30:45",
    "version 1.2.3.4",
    "v2.10.4",
    "release 10.0.1",
    "build 4.12.0.1",
    "invoice INV-2023-000123",
    "tracking 1Z999AA10123456784",
    "PO 4500012345",
    "total $1,234.56",
    "ref 078-05-1120",
    "sample 219-09-9999",
    "case 000-12-3456",
    "lot 666-12-3456",
]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + _digits(rng, length - len(prefix) - 1)
    for d in "0123456789":
        if luhn_ok(body + d):
            return body + d
    raise AssertionError("unreachable")


def _group(digits: str, sizes: tuple[int, ...], sep: str) -> str:
    out, i = [], 0
    for s in sizes:
        out.append(digits[i : i + s])
        i += s
    if i < len(digits):
        out.append(digits[i:])
    return sep.join(x for x in out if x)


class Generator:
    """Labelled PII values and hard negatives, deterministic for a seed."""

    def __init__(self, seed: int = 7) -> None:
        from faker import Faker

        self.rng = random.Random(seed)
        self.fake = Faker(["en_US", "en_GB", "de_DE", "fr_FR", "nl_NL", "es_ES", "it_IT"])
        self.fake.seed_instance(seed)
        self.us = self.fake["en_US"]

    # -- PII values -------------------------------------------------------------------------
    def ssn(self) -> str:
        r = self.rng
        while True:
            d = f"{r.randint(1, 899):03d}{r.randint(1, 99):02d}{r.randint(1, 9999):04d}"
            if valid_ssn(d):
                break
        sep = r.choice(["-", "-", "-", " "])
        return f"{d[:3]}{sep}{d[3:5]}{sep}{d[5:]}"

    def card(self) -> str:
        r = self.rng
        kind = r.choice(
            ["visa16", "visa19", "mc5", "mc2", "amex", "discover", "jcb", "diners", "maestro12"]
        )
        prefix, length, sizes = {
            "visa16": ("4", 16, (4, 4, 4, 4)),
            "visa19": ("4", 19, (4, 4, 4, 4, 3)),
            "mc5": (str(r.randint(51, 55)), 16, (4, 4, 4, 4)),
            "mc2": (str(r.randint(2221, 2720)), 16, (4, 4, 4, 4)),
            "amex": (r.choice(["34", "37"]), 15, (4, 6, 5)),
            "discover": ("6011", 16, (4, 4, 4, 4)),
            "jcb": (str(r.randint(3528, 3589)), 16, (4, 4, 4, 4)),
            "diners": (r.choice(["36", "38", "300"]), 14, (4, 6, 4)),
            "maestro12": ("6759", 12, (4, 4, 4)),
        }[kind]
        digits = _luhn_complete(prefix, length, r)
        assert card_issuer(digits), digits
        return _group(digits, sizes, r.choice(["", " ", "-", " ", "."]))

    def phone(self, bare_ok: bool = True) -> str:
        r = self.rng
        while True:
            area = f"{r.randint(2, 9)}{r.randint(0, 9)}{r.randint(0, 9)}"
            exch = f"{r.randint(2, 9)}{r.randint(0, 9)}{r.randint(0, 9)}"
            line = _digits(r, 4)
            if phonenumbers.is_valid_number(phonenumbers.parse(area + exch + line, "US")):
                break
        styles = ["({a}) {e}-{l}", "{a}-{e}-{l}", "{a}.{e}.{l}", "+1 {a} {e} {l}", "+1-{a}-{e}-{l}"]
        if bare_ok:
            styles.append("{a}{e}{l}")
        if r.random() < 0.15:
            return r.choice(["+44 20 7946 0958", "+49 30 901820", "+33 1 42 68 53 00",
                             "+31 20 794 0123", "+44 7911 123456"])  # fmt: skip
        return r.choice(styles).format(a=area, e=exch, l=line)

    def email(self) -> str:
        return self.rng.choice([self.fake.email, self.fake.free_email, self.fake.company_email])()

    def iban(self) -> str:
        loc = self.rng.choice(["de_DE", "fr_FR", "nl_NL", "en_GB", "es_ES", "it_IT"])
        value = self.fake[loc].iban()
        if self.rng.random() < 0.5:
            value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return value

    def ip(self) -> str:
        return self.rng.choice([self.us.ipv4, self.us.ipv4_private, self.us.ipv6])()

    # -- hard negatives -----------------------------------------------------------------------
    def negative(self) -> str:
        r = self.rng
        return r.choice(
            [
                lambda: f"ZIP {self.us.zipcode_plus4()}",
                lambda: f"order {r.randint(100_000_000, 999_999_999)}",
                lambda: f"order #{r.randint(2_000_000_000, 9_999_999_999)}",
                lambda: (
                    f"SKU {r.choice('ABCDEFGH')}{r.choice('XYZ')}-{_digits(r, 4)}-{_digits(r, 2)}"
                ),
                lambda: (
                    f"ITIN 9{_digits(r, 2)}-{r.choice(['70', '78', '81', '88'])}-{_digits(r, 4)}"
                ),
                lambda: f"on {self.us.date()}",
                lambda: f"due {self.us.date(pattern='%m/%d/%Y')}",
                lambda: f"at {self.us.time()}",
                lambda: (
                    f"version {r.randint(0, 9)}.{r.randint(0, 20)}.{r.randint(0, 20)}.{r.randint(0, 99)}"
                ),
                lambda: f"v{r.randint(0, 9)}.{r.randint(0, 20)}.{r.randint(0, 20)}",
                lambda: f"invoice INV-{r.randint(2019, 2026)}-{_digits(r, 6)}",
                lambda: f"tracking 1Z{_digits(r, 3)}AA{_digits(r, 10)}",
                lambda: r.choice(HARD_NEGATIVES),
            ]
        )()

    # -- records ------------------------------------------------------------------------------
    def _sentence(self, parts: list[tuple[str, str | None]]) -> tuple[str, list[dict]]:
        text, labels = "", []
        for piece, entity in parts:
            if entity:
                labels.append({"start": len(text), "end": len(text) + len(piece), "entity": entity})
            text += piece
        return text, labels

    def _note(self) -> tuple[str, list[dict]]:
        r, f = self.rng, self.us
        name = f.name()
        templates = [
            lambda: [(f"{name} asked to be reached at ", None), (self.phone(False), PHONE), (".", None)],
            lambda: [("Call ", None), (self.phone(), PHONE), (" re: ", None), (self.negative(), None)],
            lambda: [("Please email ", None), (self.email(), EMAIL), (" about ", None), (self.negative(), None)],
            lambda: [("SSN on file: ", None), (self.ssn(), SSN), (". ", None), (self.negative(), None)],
            lambda: [("My social security number is ", None), (self.ssn().replace("-", "").replace(" ", ""), SSN)],
            lambda: [("Paid with card ", None), (self.card(), CARD), (f" {self.negative()}", None)],
            lambda: [("Refund to IBAN ", None), (self.iban(), IBAN), (f", {self.negative()}", None)],
            lambda: [("Login from ", None), (self.ip(), IP), (f" using app {self.negative()}", None)],
            lambda: [(f"{name} (", None), (self.email(), EMAIL), (") updated the profile.", None)],
            lambda: [(f"{f.sentence()} {self.negative()}, {self.negative()}.", None)],
            lambda: [(f"{self.negative().capitalize()} for {name}; {self.negative()}.", None)],
        ]  # fmt: skip
        return self._sentence(r.choice(templates)())

    def record(self) -> dict[str, Any]:
        r = self.rng
        fields: dict[str, str] = {}
        labels: list[dict] = []

        def put(field: str, text: str, spans: list[dict]) -> None:
            fields[field] = text
            labels.extend({"field": field, **s} for s in spans)

        if r.random() < 0.85:
            e = self.email()
            put("email", e, [{"start": 0, "end": len(e), "entity": EMAIL}])
        else:
            put("email", r.choice(["", "n/a", "none", "unknown"]), [])
        if r.random() < 0.9:
            p = self.phone()
            put("phone", p, [{"start": 0, "end": len(p), "entity": PHONE}])
        else:
            put("phone", r.choice(["", "n/a"]), [])
        ref = r.choice(
            [
                lambda: str(r.randint(100_000_000, 999_999_999)),
                lambda: f"{r.choice('ABCDEFGH')}{r.choice('XYZ')}-{_digits(r, 4)}-{_digits(r, 2)}",
                lambda: str(r.randint(2_000_000_000, 9_999_999_999)),
            ]
        )()
        put("order_ref", ref, [])
        put("note", *self._note())
        text, spans = self._note()
        lead = self.us.sentence() + " "
        put("comment", lead + text, _shift(spans, len(lead)))
        return {"fields": fields, "labels": labels}

    def records(self, n: int) -> Iterator[dict[str, Any]]:
        for _ in range(n):
            yield self.record()


def _shift(spans: list[dict], by: int) -> list[dict]:
    return [{**s, "start": s["start"] + by, "end": s["end"] + by} for s in spans]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    gen = Generator(args.seed)
    with open(args.out, "wb") as fh:
        for rec in gen.records(args.records):
            fh.write(orjson.dumps(rec, option=orjson.OPT_SORT_KEYS) + b"\n")


if __name__ == "__main__":
    main()
