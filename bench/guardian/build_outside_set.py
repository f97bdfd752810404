"""Build the outside-built labelled set: presidio-evaluator's sentence templates filled with
Faker's own providers, plus columns of Faker values and of look-alikes (timestamps, UUIDs,
versions, post codes, ISBNs, prices), in locales split into a dev and a held-out group.

See bench/guardian/outside/README.md for the sources and their licences.

    python bench/guardian/build_outside_set.py --per-locale 150 --seed 5 \\
        --out src/pipewarden/compliance/data/outside_set.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import random
import re
from pathlib import Path

from faker import Faker

HERE = Path(__file__).resolve().parent
DEV = ["en_US", "en_GB", "fr_FR", "de_DE"]
HELDOUT = ["en_CA", "en_AU", "en_IN", "en_IE", "en_NZ", "es_MX", "pt_BR", "pt_PT", "nl_BE",
           "sv_SE", "da_DK", "fi_FI", "pl_PL", "de_AT", "de_CH", "fr_CH"]  # fmt: skip

PHONE, CARD, IBAN, IP, EMAIL, SSN = (
    "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "EMAIL_ADDRESS", "US_SSN"
)  # fmt: skip
LABELLED = {
    "phone_number": PHONE,
    "credit_card_number": CARD,
    "iban": IBAN,
    "ip_address": IP,
    "email": EMAIL,
    "ssn": SSN,
}
_SLOT = re.compile(r"\{\{([a-z_]+)\}\}")


def _value(fake: Faker, rng: random.Random, name: str) -> str:
    """A value for a template slot, from the locale's own providers."""

    def first(*methods: str) -> str:
        for m in methods:
            try:
                return str(getattr(fake, m)())
            except AttributeError:
                continue
        return fake.word()

    simple = {
        "phone_number": lambda: fake.phone_number(),
        "credit_card_number": lambda: fake.credit_card_number(),
        "iban": lambda: _iban(fake),
        "ip_address": lambda: fake.ipv4() if rng.random() < 0.75 else fake.ipv6(),
        "email": lambda: fake.email(),
        "ssn": lambda: fake.ssn(),
        "organization": lambda: fake.company(),
        "person": lambda: fake.name(),
        "name": lambda: fake.name(),
        "address": lambda: fake.address().replace("\n", ", "),
        "secondary_address": lambda: first("secondary_address", "building_number"),
        "age": lambda: str(rng.randint(18, 95)),
        "year": lambda: str(fake.year()),
        "zipcode": lambda: first("zipcode", "postcode"),
        "postcode": lambda: fake.postcode(),
        "date_time": lambda: str(fake.date_time()),
        "date_of_birth": lambda: str(fake.date_of_birth()),
        "us_driver_license": lambda: fake.bothify("?#######").upper(),
        "state_abbr": lambda: first("state_abbr", "city"),
        "day_of_week": lambda: fake.day_of_week(),
        "nationality": lambda: fake.country(),
        "nation_woman": lambda: fake.country(),
        "nation_plural": lambda: fake.country(),
    }
    if name in simple:
        return simple[name]()
    return first(name, name.replace("_nonbinary", ""), name.split("_")[0])


def _iban(fake: Faker) -> str:
    """An IBAN from the locale's provider; the providers of some locales (en_IN, es_MX) emit
    numbers of a length no country has, which are not IBANs: those are drawn from en_GB's
    provider instead (python-stdnum's registry decides, not pipewarden's table)."""
    from stdnum import iban

    value = fake.iban()
    if not iban.is_valid(value):
        value = _GB.iban()
    return value


_GB = Faker("en_GB")
_GB.seed_instance(1)


def fill(template: str, fake: Faker, rng: random.Random) -> tuple[str, list[dict]]:
    text, labels, pos = "", [], 0
    for m in _SLOT.finditer(template):
        text += template[pos : m.start()]
        value = _value(fake, rng, m.group(1))
        entity = LABELLED.get(m.group(1))
        if entity:
            labels.append({"start": len(text), "end": len(text) + len(value), "entity": entity})
        text += value
        pos = m.end()
    return text + template[pos:], labels


def look_alikes(fake: Faker, rng: random.Random) -> dict[str, str]:
    """Columns that hold no PII and look like it: the hard negatives, from Faker."""
    ts = fake.date_time_between(start_date="-3y", end_date="now")
    cols = {
        "created_at": ts.strftime("%Y-%m-%d %H:%M:%S"),
        "updated_at": fake.iso8601(tzinfo=dt.UTC if rng.random() < 0.5 else None),
        "event_date": str(fake.date()),
        "event_time": str(fake.time()),
        "request_id": fake.uuid4(),
        "user_agent": fake.user_agent(),
        "isbn": fake.isbn13(),
        "ean": fake.ean13(),
        "price": fake.pricetag(),
        "postcode": fake.postcode(),
    }
    with contextlib.suppress(AttributeError):
        cols["zip4"] = fake.zipcode_plus4()
    return cols


def records(locale: str, group: str, n: int, seed: int, templates: list[str]):
    fake = Faker(locale)
    fake.seed_instance(seed)
    rng = random.Random(f"{seed}-{locale}")
    usable = [t for t in templates if "{{ssn}}" not in t or locale == "en_US"]
    for _ in range(n):
        fields: dict[str, str] = {}
        labels: list[dict] = []
        text, spans = fill(rng.choice(usable), fake, rng)
        fields["text"] = text
        labels += [{"field": "text", **s} for s in spans]
        # structured columns of Faker values, named as a table would name them
        values = {
            "phone": fake.phone_number(),
            "email": fake.email(),
            "card_number": fake.credit_card_number(),
            "iban": _iban(fake),
            "ip_address": fake.ipv4() if rng.random() < 0.75 else fake.ipv6(),
        }
        if locale == "en_US":
            values["ssn"] = fake.ssn()
        kinds = {"phone": PHONE, "email": EMAIL, "card_number": CARD, "iban": IBAN,
                 "ip_address": IP, "ssn": SSN}  # fmt: skip
        for field, value in values.items():
            fields[field] = value
            labels.append({"field": field, "start": 0, "end": len(value), "entity": kinds[field]})
        fields.update(look_alikes(fake, rng))
        yield {"group": group, "locale": locale, "fields": fields, "labels": labels}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-locale", type=int, default=150)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--out", default="src/pipewarden/compliance/data/outside_set.jsonl")
    args = ap.parse_args()
    # the templates write a line break as "\\n" and a comma as "\\," (as the generator reads them)
    templates = [
        line.replace("\\n", "\n").replace("\\,", ",")
        for line in (HERE / "outside" / "templates.txt").read_text().splitlines()
        if line
    ]
    out = []
    for group, locales in (("dev", DEV), ("heldout", HELDOUT)):
        for locale in locales:
            out.extend(records(locale, group, args.per_locale, args.seed, templates))
    Path(args.out).write_text(
        "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in out)
    )
    print(f"{len(out)} records ({len(DEV)} dev and {len(HELDOUT)} held-out locales) -> {args.out}")


if __name__ == "__main__":
    main()
