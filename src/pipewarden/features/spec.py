"""A feature: a named, deterministic transformation of a row's columns, and its reference
implementation. The same definitions are emitted as SQL (dbt) and as pandas (a Mage block);
tests check that both compute the values :func:`compute` gives.

Kinds (all target-free: none reads the target, so none leaks it):

- ``product``: ``a * b`` (an interaction of two numbers);
- ``ratio``: ``a / b``, null when ``b`` is 0 or null;
- ``date_part``: ``month`` (1-12), ``isodow`` (1 = Monday .. 7) or ``dayofyear`` of a date;
- ``frequency``: the share of a category in the history the feature was discovered on (a
  value not seen there: 0).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

KINDS = ("product", "ratio", "date_part", "frequency")
DATE_PARTS = ("month", "isodow", "dayofyear")
NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass
class Feature:
    name: str
    kind: str
    inputs: list[str]
    part: str | None = None  # date_part
    shares: dict[str, float] = field(default_factory=dict)  # frequency
    lift: float | None = None  # measured on the held-out split when it was chosen
    h: float | None = None  # Friedman's H of the pair, for product and ratio

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {}, [])}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Feature:
        f = cls(
            str(d["name"]), str(d["kind"]), [str(x) for x in d["inputs"]], d.get("part"),
            {str(k): float(v) for k, v in (d.get("shares") or {}).items()},
            d.get("lift"), d.get("h"),
        )  # fmt: skip
        f.validate()
        return f

    def validate(self) -> None:
        if not NAME_RE.fullmatch(self.name):
            raise ValueError(f"feature name {self.name!r} is not a plain lower-case identifier")
        if self.kind not in KINDS:
            raise ValueError(f"unknown feature kind {self.kind!r}")
        want = 2 if self.kind in ("product", "ratio") else 1
        if len(self.inputs) != want:
            raise ValueError(f"a {self.kind} feature takes {want} input(s)")
        if self.kind == "date_part" and self.part not in DATE_PARTS:
            raise ValueError(f"unknown date part {self.part!r}")


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return None if isinstance(v, float) and math.isnan(v) else float(v)
    try:
        return float(str(v))
    except ValueError:
        return None


def _date(v: Any) -> date | None:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    if isinstance(v, str):
        try:
            return datetime.fromisoformat(v.strip()).date()
        except ValueError:
            return None
    return None


def value(f: Feature, row: dict[str, Any]) -> float | None:
    """The feature's value for one row (None: null)."""
    if f.kind in ("product", "ratio"):
        a, b = _num(row.get(f.inputs[0])), _num(row.get(f.inputs[1]))
        if a is None or b is None:
            return None
        if f.kind == "product":
            return a * b
        return None if b == 0 else a / b
    if f.kind == "date_part":
        d = _date(row.get(f.inputs[0]))
        if d is None:
            return None
        if f.part == "month":
            return float(d.month)
        if f.part == "isodow":
            return float(d.isoweekday())
        return float(d.timetuple().tm_yday)
    v = row.get(f.inputs[0])
    return None if v is None else f.shares.get(str(v), 0.0)


def compute(features: list[Feature], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The features of every record, as dicts ``{name: value}``."""
    return [{f.name: value(f, r) for f in features} for r in records]


def load_spec(spec: dict[str, Any] | str | Path) -> tuple[dict[str, Any], list[Feature]]:
    """A spec of ``features discover`` (a dict or its JSON file) and its chosen features;
    :class:`~pipewarden.errors.InputError` when it is missing, not a spec, or chose nothing."""
    from ..errors import InputError

    where = None
    if not isinstance(spec, dict):
        where = str(spec)
        try:
            spec = json.loads(Path(spec).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(
                "no such feature spec", file=where, hint="run features discover --out"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"not a feature spec ({type(exc).__name__})", file=where) from None
    if not isinstance(spec, dict) or spec.get("format") != "pipewarden.features":
        raise InputError("not a feature spec of `pipewarden features discover`", file=where)
    try:
        features = [Feature.from_dict(f) for f in spec.get("features") or []]
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"a feature of the spec is not valid: {exc}", file=where) from None
    if not features:
        raise InputError(
            "the spec chose no feature: nothing to emit",
            file=where,
            hint="no candidate lifted the held-out score; see its 'candidates'",
        )
    return spec, features
