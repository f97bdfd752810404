"""A column's values scanned at column speed: each distinct value once, recognizers planned
per shape, vectorised prefilters on the whole column.

The guardian's findings are those of :func:`~pipewarden.compliance.recognizers.detect` on each
value, and ``detect`` is a pure function of the text and the column's context. So:

- a column is **dictionary-encoded** (Arrow) and each distinct value is scanned once; the rows
  share its matches (most real columns repeat: codes, statuses, countries, ids of a few
  thousand customers);
- a **vectorised prefilter** drops the values that hold no ASCII digit and no ``@`` (every
  recognizer needs one: e-mail the ``@``, the others a digit), a byte test on the column's
  buffer;
- the others are grouped by **shape** (ASCII digits written as ``0``, a byte map on the
  buffer): every candidate regex treats the ten digits alike, so
  :func:`~pipewarden.compliance.recognizers.plan` of a shape says which recognizers can find
  anything in any value of that shape. A column of ISO timestamps has one shape and no
  recognizer to run; ids and amounts a few shapes; only values whose shape leaves a validator
  something to check (a phone-, card- or SSN-shaped run of digits) are scanned, by the
  recognizers their shape needs. E-mail matches read no digit, so they are found once per
  shape. Free text, where shapes do not repeat, is scanned value by value.

The answer is the same as scanning every value with ``detect`` (tests/test_guard_columns.py
compares the two on generated and real columns).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .recognizers import Context, Match, detect, email_only, plan, shape

_NONE: list[Match] = []
# ASCII digits -> "0" on the bytes of a column: ASCII bytes never occur inside a multi-byte
# UTF-8 sequence, so the map on bytes is the map on characters
_TO_SHAPE = np.arange(256, dtype=np.uint8)
_TO_SHAPE[ord("1") : ord("9") + 1] = ord("0")
SMALL = 64  # fewer distinct values than this: plain Python (Arrow's calls cost more)


def _data(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The value offsets and the UTF-8 bytes of a string array (no copy)."""
    offsets_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    _, offsets, data = arr.buffers()
    offs = np.frombuffer(offsets, dtype=offsets_type)[arr.offset : arr.offset + len(arr) + 1]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    return offs.astype(np.int64), raw


def kept(arr: pa.Array) -> np.ndarray:
    """Positions of the values of a string array (no nulls) that hold an ASCII digit or an
    ``@``: the only ones any recognizer can find something in."""
    return np.flatnonzero(pc.match_substring_regex(arr, "[0-9@]").to_numpy(zero_copy_only=False))


def shapes(arr: pa.Array) -> pa.Array:
    """The shape of each value of a string array (its ASCII digits written as ``0``), by a
    byte map over the array's buffer."""
    offs, raw = _data(arr)
    start, end = int(offs[0]), int(offs[-1])
    mapped = _TO_SHAPE[raw[start:end]]
    rebased = (offs - start).astype(np.int64 if pa.types.is_large_string(arr.type) else np.int32)
    return pa.Array.from_buffers(
        arr.type, len(arr), [None, pa.py_buffer(rebased), pa.py_buffer(mapped)]
    )


def scan_distinct(values: pa.Array | list[str], ctx: Context) -> list[list[Match]]:
    """``detect(value, ctx)`` for each of a column's distinct values (a string array without
    nulls, or a list of str), computed as the module docstring says."""
    if isinstance(values, list):
        if len(values) < SMALL:
            return _scan_small(values, ctx)
        try:
            values = pa.array(values, type=pa.string())
        except (UnicodeEncodeError, pa.ArrowException):  # lone surrogates: value by value
            return _scan_small(values, ctx)
    elif len(values) < SMALL:
        return _scan_small(values.to_pylist(), ctx)
    out: list[list[Match]] = [_NONE] * len(values)
    idx = kept(values)
    if not len(idx):
        return out
    some = values.take(pa.array(idx)) if len(idx) < len(values) else values
    encoded = shapes(some).dictionary_encode()
    forms = encoded.dictionary
    if 2 * len(forms) > len(some):  # shapes do not repeat (free text): value by value
        for i, text in zip(idx.tolist(), some.to_pylist(), strict=True):
            out[i] = detect(text, ctx)
        return out
    forms = forms.to_pylist()
    plans = [plan(f, ctx) for f in forms]
    by_shape: dict[int, list[Match]] = {}
    ids = encoded.indices.to_numpy(zero_copy_only=False)
    # values whose shape plans nothing keep no match: only the rest are visited, and only
    # they are made Python strings (a column of numbers plans nothing for most shapes)
    live = np.fromiter((bool(p) for p in plans), dtype=bool, count=len(plans))
    visit = np.flatnonzero(live[ids])
    if not len(visit):
        return out
    rows = idx[visit].tolist()
    shaped = ids[visit].tolist()
    texts = (some if len(visit) == len(some) else some.take(pa.array(visit))).to_pylist()
    for sid, i, text in zip(shaped, rows, texts, strict=True):
        p = plans[sid]
        if email_only(p):
            found = by_shape.get(sid)
            if found is None:
                found = by_shape[sid] = detect(forms[sid], ctx, p)
            out[i] = found
        else:
            out[i] = detect(text, ctx, p)
    return out


def _scan_small(texts: list[str], ctx: Context) -> list[list[Match]]:
    plans: dict[str, frozenset[str]] = {}
    out: list[list[Match]] = []
    for text in texts:
        if not any(ch == "@" or "0" <= ch <= "9" for ch in text):
            out.append(_NONE)
            continue
        form = shape(text)
        p = plans.get(form)
        if p is None:
            p = plans[form] = plan(form, ctx)
        out.append(detect(text, ctx, p) if p else _NONE)
    return out


def distinct(column: list, kind: type) -> tuple[pa.Array, np.ndarray] | None:
    """A column of ``str`` (or ``int``) values and ``None`` as its distinct texts (a string
    array, in order of first appearance) and, per row, the index of its text (-1: none).
    None when Arrow cannot hold it (an int beyond 64 bits, a lone surrogate): the caller goes
    value by value. An empty string is not a value (the guardian scans no empty text)."""
    try:
        arr = pa.array(column, type=pa.string() if kind is str else pa.int64())
    except (OverflowError, UnicodeEncodeError, pa.ArrowException):
        return None
    encoded = arr.dictionary_encode()
    ids = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    texts = encoded.dictionary
    if kind is str:
        empty = pc.index(texts, "").as_py()
        if empty >= 0:
            ids[ids == empty] = -1
    else:
        texts = pc.cast(texts, pa.string())
    return texts, ids
