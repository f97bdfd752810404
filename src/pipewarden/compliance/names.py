"""Keys, column names and file names are data: PII in them is found with the same recognizers
as values, and never reaches a column name, a DDL statement, a report or a store table.

* :func:`find_in_name` runs the recognizers over a name (``_`` reads as a space, so
  ``card_5555555555554444`` and ``ssn_509888712`` are found as in free text).
* :func:`mask_name` replaces each PII span of a name with ``[ENTITY]``: what reports, errors,
  the run log and ``_pw_batches`` show of a file name (``batch_[US_SSN].jsonl``).
* :class:`KeyRenamer` renames object keys (top-level and nested) that hold PII to a stable
  keyed-hash name before the schema sentinel sees the batch: each PII span becomes
  ``pii_<kind>_<12 hex>``, the first 48 bits of HMAC-SHA256 of the normalised value under the
  policy's hash key. The same value under the same key always gives the same name (columns
  stay stable across batches and joinable across datasets); without the key the name cannot be
  traced back to the value, with it a candidate value can be checked. A renamer that has no key
  uses a random one of its own: names are then stable within one command only, which is why
  ``pipewarden run`` (which persists names) blocks such a batch instead.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from typing import Any

from ..errors import preview
from .policy import normalize
from .recognizers import (
    CARD,
    DEFAULT_REGIONS,
    EMAIL,
    ENTITIES,
    IBAN,
    IP,
    NATIONAL_ID,
    PHONE,
    SSN,
    Context,
    Match,
    detect,
)

KIND = {
    EMAIL: "email",
    SSN: "ssn",
    CARD: "card",
    PHONE: "phone",
    IBAN: "iban",
    IP: "ip",
    NATIONAL_ID: "natid",
}
NAME_ACTIONS = ("rename", "block", "allow")
_UNDERSCORE = str.maketrans("_", " ")


_DEFAULT = Context()


def find_in_name(name: str, ctx: Context | None = None) -> tuple[Match, ...]:
    """PII spans in a key, column or file name (offsets into ``name``)."""
    if not name or not any(ch.isdigit() or ch == "@" for ch in name):
        return ()  # every recognizer needs a digit, except email which needs "@"
    return tuple(detect(name.translate(_UNDERSCORE), ctx or _DEFAULT))


# file extensions kept apart when a file name is scanned ("jane@example.com.json" is an email
# and an extension, not an address at the TLD "json")
_EXTENSION = re.compile(
    r"(?:\.(?:jsonl|ndjson|json|csv|tsv|txt|parquet|pq|yaml|yml|xml|avro|orc|log|dat))?"
    r"(?:\.(?:gz|bz2|xz|zst|zip))?$",
    re.IGNORECASE,
)


def mask_name(name: str, ctx: Context | None = None) -> str:
    """``name`` with each PII span replaced by ``[ENTITY]``; unchanged when it holds none."""
    if not isinstance(name, str):
        return name
    ext = _EXTENSION.search(name)
    if ext and ext.start() < len(name):
        return mask_name(name[: ext.start()], ctx) + name[ext.start() :]
    found = find_in_name(name, ctx)
    for m in sorted(found, key=lambda m: m.start, reverse=True):
        name = f"{name[: m.start]}[{m.entity}]{name[m.end :]}"
    return name


@dataclass
class NameFinding:
    """A PII key: where it was (masked), what it held, what it became."""

    path: str  # the key's path with the key itself masked ([] for list items)
    entity: str
    preview: str
    renamed: str | None  # the new key, or None (blocked / allowed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "entity": self.entity,
            "preview": self.preview,
            "renamed": self.renamed,
        }


@dataclass
class KeyRenamer:
    """Renames PII keys of records in place (``apply``), remembering what it found.

    ``action``: ``rename`` (default), ``block`` (keys are left as they are and ``blocked`` is
    set: the caller must not write the batch) or ``allow`` (nothing is done).
    ``key``: the HMAC key (bytes); None draws a random one (names stable in this process only).
    """

    action: str = "rename"
    key: bytes | None = None
    ctx: Context = field(default_factory=Context)
    found: dict[tuple[str, str], NameFinding] = field(default_factory=dict)
    keyed: bool = field(init=False)
    _cache: dict[str, str | None] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.action not in NAME_ACTIONS:
            raise ValueError(f"unknown action for PII in names: {self.action!r}")
        self.keyed = self.key is not None
        if self.key is None:
            self.key = secrets.token_bytes(32)

    @property
    def blocked(self) -> bool:
        return self.action == "block" and bool(self.found)

    def new_name(self, name: str) -> str | None:
        """The key that replaces ``name`` (None: ``name`` holds no PII)."""
        try:
            return self._cache[name]
        except KeyError:
            pass
        found = find_in_name(name, self.ctx) if isinstance(name, str) else ()
        new = None
        if found:
            new = name
            for m in sorted(found, key=lambda m: m.start, reverse=True):
                digest = hmac.new(
                    self.key, normalize(m.entity, name[m.start : m.end]).encode(), hashlib.sha256
                ).hexdigest()
                new = f"{new[: m.start]}pii_{KIND[m.entity]}_{digest[:12]}{new[m.end :]}"
        self._cache[name] = new
        return new

    def _note(self, parent: str, name: str, new: str) -> None:
        shown = new if self.action == "rename" else mask_name(name, self.ctx)
        path = f"{parent}.{shown}" if parent else shown
        for m in find_in_name(name, self.ctx):
            key = (path, m.entity)
            if key not in self.found:
                self.found[key] = NameFinding(
                    path=path,
                    entity=m.entity,
                    preview=preview(name[m.start : m.end]),
                    renamed=new if self.action == "rename" else None,
                )

    def apply(
        self,
        records: list[dict],
        columns: Callable[[], dict] | None = None,
        types: Callable[[str], frozenset] | None = None,
    ) -> int:
        """Rename PII keys of every record (and of nested objects) in place; returns how many
        keys were renamed. With ``block``, only records what it found. ``columns``: where the
        caller has them, the records' columns (``Batch.columns``), read instead of going
        through every record's keys and values; ``types``: their types (``Batch.types``)."""
        if self.action == "allow":
            return 0
        if not self._any_pii_key(records, columns, types):
            return 0  # the walk would rename and note nothing
        n = 0
        for i, rec in enumerate(records):
            new = self._walk(rec, "")
            if new is not rec:
                records[i] = new
                n += 1
        return n

    def _any_pii_key(
        self,
        records: list,
        columns: Callable[[], dict] | None = None,
        types: Callable[[str], frozenset] | None = None,
    ) -> bool:
        """Whether any key of the records, at any depth, holds PII (True when the records
        are not all objects: the walk decides). Each distinct key of the batch is asked
        once; a level's keys and its nested objects and lists are gathered by C-level
        iteration (``dict.fromkeys`` over the objects, ``isinstance`` over the values), not
        record by record. A batch without PII keys (the usual case) is never walked."""
        if not all(map(isinstance, records, repeat(dict))):
            return True
        cache, new_name = self._cache, self.new_name
        is_pii = lambda k: (cache[k] if k in cache else new_name(k)) is not None  # noqa: E731
        if columns is not None:  # the keys are the columns', the nested values in them
            cols = columns()
            if any(map(is_pii, cols)):
                return True
            nested = _nested_in(cols, types)
        elif any(map(is_pii, dict.fromkeys(chain.from_iterable(records)))):
            return True
        else:
            nested = _top_nested(records)
        while nested:
            if all(issubclass(t, dict) for t in set(map(type, nested))):
                objects, lists = nested, []  # the usual level: objects alone
            else:
                is_object = list(map(isinstance, nested, repeat(dict)))
                objects = list(compress(nested, is_object))
                lists = [v for v, o in zip(nested, is_object, strict=True) if not o]
            if any(map(is_pii, dict.fromkeys(chain.from_iterable(objects)))):
                return True
            # the types one level down first, in one C-level pass: most levels hold no deeper
            # object, and their values are not gathered
            if not any(issubclass(t, dict | list) for t in set(map(type, _inner(objects, lists)))):
                return False
            values = list(_inner(objects, lists))
            nested = list(compress(values, map(isinstance, values, repeat(dict | list))))
        return False

    def _walk(self, obj: Any, parent: str) -> Any:
        rename = self.action == "rename"
        if isinstance(obj, dict):
            out = None
            cache = self._cache
            for k, v in obj.items():
                new = cache[k] if k in cache else self.new_name(k)
                if new is not None:
                    self._note(parent, k, new)
                child = v
                if isinstance(v, dict | list):
                    shown = k if new is None else (new if rename else mask_name(k, self.ctx))
                    child = self._walk(v, f"{parent}.{shown}" if parent else str(shown))
                if (new is not None and rename) or child is not v:
                    if out is None:
                        out = {}
                    out[k] = child
            if out is None:
                return obj
            # rebuilt in the original key order
            return {(cache.get(k) or k) if rename else k: out.get(k, v) for k, v in obj.items()}
        if isinstance(obj, list):
            out_list = None
            for j, v in enumerate(obj):
                if isinstance(v, dict | list):
                    child = self._walk(v, f"{parent}[]")
                    if child is not v:
                        if out_list is None:
                            out_list = list(obj)
                        out_list[j] = child
            return obj if out_list is None else out_list
        return obj

    def report(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.found.values()]


def _inner(objects: list[dict], lists: list[list]) -> Iterator:
    """The values of ``objects`` and the items of ``lists``."""
    return chain(chain.from_iterable(map(dict.values, objects)), chain.from_iterable(lists))


def _nested_in(columns: dict, types: Callable[[str], frozenset] | None = None) -> list:
    """The objects and lists among the values of ``columns`` (a column's types, ``types(key)``
    where given, are read in C first: most columns hold none)."""
    found: list = []
    for key, column in columns.items():
        kinds = types(key) if types is not None else set(map(type, column))
        if any(issubclass(t, dict | list) for t in kinds):
            found.extend(compress(column, map(isinstance, column, repeat(dict | list))))
    return found


def _top_nested(records: list[dict]) -> list:
    """The objects and lists that are values of the records' keys. Counted by type over
    every value first (C-level); the keys that hold one in the first record are then read
    as columns, and when they hold them all (the usual case: a nested object has its key)
    no other value is looked at."""
    counts = Counter(map(type, chain.from_iterable(map(dict.values, records))))
    total = sum(c for t, c in counts.items() if issubclass(t, dict | list))
    if not total:
        return []
    found: list = []
    for key, value in records[0].items():
        if isinstance(value, dict | list):
            column = list(map(dict.get, records, repeat(key)))
            found.extend(compress(column, map(isinstance, column, repeat(dict | list))))
    if len(found) == total:
        return found
    values = list(chain.from_iterable(map(dict.values, records)))
    return list(compress(values, map(isinstance, values, repeat(dict | list))))


def renamer_for(policy, region: str | None = None) -> KeyRenamer:
    """The :class:`KeyRenamer` a policy asks for (``names: {action: ...}``), keyed with the
    policy's hash key when that variable is set."""
    action = getattr(policy, "names_action", "rename")
    env = getattr(policy, "hash_key_env", "PIPEWARDEN_HASH_KEY")
    value = os.environ.get(env)
    ctx = Context(
        region=region or getattr(policy, "region", "US"),
        regions=getattr(policy, "regions", DEFAULT_REGIONS),
        entities=frozenset(getattr(policy, "entities", ENTITIES)),
        national_ids=getattr(policy, "national_ids", ()),
    )
    return KeyRenamer(action=action, key=value.encode() if value else None, ctx=ctx)
