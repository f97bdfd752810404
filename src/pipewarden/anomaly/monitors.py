"""Batch health monitors: this batch's statistics against the dataset's history.

Row scores catch a strange record; they miss a batch with a third of the usual rows, a column
whose nulls jump from 0% to 40%, a mean that moves, or a category mix that changes, because
every row of such a batch can look ordinary. Each batch's statistics are kept in the store
(``append_metrics(dataset, batch_id, "anomaly.batch", ...)``) and the next batch is compared
with the median and MAD of the last ``window`` healthy batches:

=================  ======================================================================
monitor            alarm when (z is the robust z-score against the history)
=================  ======================================================================
``row_count``      |z| >= ``z_alarm`` and the count moved by >= 20% of the median
``null_rate``      z >= ``z_alarm`` and the rate rose by >= 5 percentage points
``distinct``       |z| >= ``z_alarm`` and the count moved by >= 50% of the median
``numeric_shift``  |z| of the mean (or of the standard deviation) >= ``z_alarm``; the scale is
                   at least 10% of the column's usual standard deviation
``category_mix``   PSI against the average historical mix >= max(0.1, the usual PSI + a
                   robust margin); category values are hashed, never stored in clear, and
                   a column whose values are PII (emails, SSNs, ...) keeps no mix at all
``freshness``      the lag (now - newest timestamp) rose by ``z_alarm`` robust SDs and by >= 1
                   hour, or exceeds ``max_age_seconds`` when set
``duplicate_rows`` the share of rows that repeat an earlier row of the batch exactly rose by
                   ``z_alarm`` robust SDs and by >= 5 points (every row twice: 50 points)
``duplicate_keys`` with a ``primary_key``: the share of rows whose key repeats an earlier
                   row's rose by ``z_alarm`` robust SDs and by >= 1 point
``category_values`` a column whose set of values was closed in the history (no new value in
                   any of its last ``min_history`` batches) shows a value none of the window's
                   batches had, or lacks a value that every one of them had and that should
                   fill >= 10 rows here; both at once reads as a rename. Catches a rare
                   value (0.6% of rows) renamed, which moves PSI by too little to see
=================  ======================================================================

A monitor is ``learning`` until ``min_history`` healthy batches are known; a breach is
``severe`` (the breaker opens at once) when |z| >= ``z_severe`` with a large absolute move
(row count halved or worse, nulls up by 50 points, PSI >= 1).
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from ..batch import no_gc
from ..compliance.classify import holds_pii, pii_column
from ..schema.infer import _transpose
from .encode import _looks_like_ts, _parse_float, _parse_ts_many

KIND = "anomaly.batch"
PII_SHARE = "pii"  # the share of values holding PII in a category mix
MAX_SHARES = 200  # values kept in a column's mix (the most common ones)
CODES = 50  # integer-valued numeric columns with at most this many values also keep a mix
EPS = 1e-4


@dataclass
class MonitorConfig:
    enabled: bool = True
    min_history: int = 5
    window: int = 30
    z_alarm: float = 4.0
    z_severe: float = 10.0
    max_age_seconds: float | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> MonitorConfig:
        return cls(**(d or {}))


def _h(value: Any) -> str:
    return hashlib.sha1(str(value).encode()).hexdigest()[:12]


def _duplicates(keys: list[Any]) -> float:
    """The share of ``keys`` that repeat an earlier one."""
    return (len(keys) - len(set(keys))) / len(keys) if keys else 0.0


def _row_duplicates(records: list[dict[str, Any]]) -> float:
    """The share of records that repeat an earlier one exactly (as JSON with sorted keys):
    the texts are compared by a 64-bit hash of each, in one loop of orjson (a 128-bit
    BLAKE2 digest of each cost twice the time; two rows of a batch collide with a chance of
    about rows^2 / 2^65)."""
    from ..batch import json_bytes

    option = orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS
    try:
        dumps = orjson.dumps
        keys = [hash(dumps(r, option=option)) for r in records]
    except TypeError:  # dates, decimals, integers beyond 64 bits: as json_bytes writes them
        keys = [hash(json_bytes(r, sort_keys=True)) for r in records]
    return _duplicates(keys)


def _shares(present: Sequence[Any], name: str, region: str) -> dict[str, float]:
    counts = Counter(map(str, present))  # in order of first appearance
    shares: dict[str, float] = {}
    for k, c in sorted(counts.items(), key=lambda kv: -kv[1])[:MAX_SHARES]:
        # a value holding PII among ordinary ones ("536-22-8726" beside "pending") is
        # counted in one "pii" share, never digested
        key = PII_SHARE if holds_pii(k, name, region=region) else _h(k)
        shares[key] = shares.get(key, 0.0) + c / len(present)
    return shares


def batch_metrics(
    records: list[dict[str, Any]],
    now: float,
    region: str = "US",
    primary_key: tuple[str, ...] | list[str] = (),
) -> dict[str, Any]:
    """The statistics of one batch (no raw values: categories are hashed)."""
    n = len(records)
    dup = {"rows": _row_duplicates(records)}
    if primary_key:
        keys = [tuple(str(r.get(k)) for k in primary_key) for r in records]
        keys = [
            k
            for k, r in zip(keys, records, strict=True)
            if all(r.get(c) is not None for c in primary_key)
        ]
        dup["keys"] = _duplicates(keys)
    cols: dict[str, Any] = {}
    columns = getattr(records, "columns", None)  # encode.Columns: made once per chunk
    types_of = getattr(records, "types", None)
    if columns is None:
        with no_gc():
            columns = _transpose(records) if records else {}
    for name, values in columns.items():
        if str in (types_of(name) if types_of is not None else set(map(type, values))):
            present = [v for v in values if v is not None and v != ""]
        else:
            present = [v for v in values if v is not None]
        types = set(map(type, present))
        m: dict[str, Any] = {"null_rate": (n - len(present)) / n if n else 0.0}
        if types == {str} or types == {int}:  # str(v) tells values apart as v does
            m["distinct"] = len(set(present))
        elif any(issubclass(t, dict | list) for t in types):
            hashable = [v if not isinstance(v, dict | list) else repr(v) for v in present]
            m["distinct"] = len(set(map(str, hashable)))
        else:
            m["distinct"] = len(set(map(str, present)))
        numbers = all(issubclass(t, int | float) and not issubclass(t, bool) for t in types)
        if present and numbers:
            kind = "numeric"
        elif present and all(_looks_like_ts(v) for v in present[:50]):
            kind = "timestamp"
        elif present and all(issubclass(t, str) for t in types):
            x = [_parse_float(v) for v in present[:50]]
            kind = "numeric" if not any(math.isnan(v) for v in x) else "category"
        else:
            kind = "other"
        m["kind"] = kind
        if kind in ("numeric", "category") and pii_column(name, present, region=region):
            # card or phone numbers, SSNs, emails: a mean or median of them is one of them, and
            # a digest of one is found again by hashing every possible value. Only the null
            # rate and the distinct count are kept.
            m["pii"] = True
        elif kind == "numeric":
            x = _floats(present, numbers)
            x = x[np.isfinite(x)]
            if x.size:
                # scaled by the largest magnitude: a sum or a square of values near 1e308
                # would overflow
                top = float(np.abs(x).max()) or 1.0
                y = x / top
                m["mean"] = float(y.mean()) * top
                m["std"] = float(y.std()) * top
                m["median"] = float(np.median(x))
                lo, hi = np.quantile(y, [0.02, 0.98])
                m["tstd"] = float(y[(y >= lo) & (y <= hi)].std()) * top
                if m["distinct"] <= CODES and bool(np.all(x == np.round(x))):
                    code = {v: _code(v) for v in set(present)}  # at most CODES texts
                    m["shares"] = _shares([code[v] for v in present], name, region)
        elif kind == "timestamp":
            ts = _parse_ts_many(present)
            if not np.isnan(ts).all():
                m["max_ts"] = float(np.nanmax(ts))
                m["lag"] = now - m["max_ts"]
        elif kind == "category" and present and m["distinct"] <= max(50, 0.5 * len(present)):
            m["shares"] = _shares(present, name, region)
        cols[name] = m
    return {"rows": n, "at": now, "columns": cols, "duplicates": dup}


def _floats(present: list[Any], numbers: bool) -> np.ndarray:
    """:func:`_parse_float` of each value; ``numbers``: every value is an int or a float."""
    if numbers:
        try:
            return np.array(present, dtype=float)
        except (OverflowError, ValueError, TypeError):
            pass
    return np.array([_parse_float(v) for v in present], dtype=float)


def _code(v: Any) -> str:
    """An integer-valued number as one text whatever its type (3, 3.0, "3")."""
    x = _parse_float(v)
    return str(int(x)) if math.isfinite(x) else str(v)


def _robust(hist: list[float]) -> tuple[float, float]:
    med = statistics.median(hist)
    mad = statistics.median([abs(h - med) for h in hist])
    return med, 1.4826 * mad


P_ALARM = 1e-6
EFFECT = 0.25  # numeric_shift: the smallest move of a mean or spread, in usual SDs


def _chance(shares: dict[str, float], base: dict[str, float], n: float) -> float:
    """The chance that a batch of ``n`` values drawn from the ``base`` mix is at least as far
    from it as ``shares`` (Pearson's chi-square; values expected in under five rows pooled)."""
    from scipy.stats import chi2

    kept = {k: b for k, b in base.items() if b * n >= 5}  # the test's usual validity rule
    stat = n * sum((shares.get(k, 0.0) - b) ** 2 / b for k, b in kept.items())
    rest_b, rest_a = 1 - sum(kept.values()), 1 - sum(shares.get(k, 0.0) for k in kept)
    df = len(kept) - 1
    if rest_b * n >= 5:
        stat += n * (rest_a - rest_b) ** 2 / rest_b
        df += 1
    elif rest_a * n >= 5:  # values the history hardly had: a large move
        stat += n * rest_a**2 / max(rest_b, 0.5 / n)
        df += 1
    return float(chi2.sf(stat, max(df, 1)))


def _psi(p: dict[str, float], q: dict[str, float], eps: float = EPS) -> float:
    """Population stability index; a share under ``eps`` counts as ``eps``. With ``eps``
    half a row of the batch, a rare value that a small batch happens not to have does not
    read as a shift (with 1e-4, one absent 0.5% value of a 150-row batch added 0.02)."""
    keys = set(p) | set(q)
    total = 0.0
    for k in keys:
        a = max(p.get(k, 0.0), eps)
        b = max(q.get(k, 0.0), eps)
        total += (a - b) * math.log(a / b)
    return total


def _result(monitor, column, status, value, baseline, z, message) -> dict[str, Any]:
    return {
        "monitor": monitor,
        "column": column,
        "status": status,
        "value": value,
        "baseline": baseline,
        "z": None if z is None or not math.isfinite(z) else round(z, 2),
        "message": message,
    }


def evaluate(
    current: dict[str, Any], history: list[dict[str, Any]], cfg: MonitorConfig
) -> list[dict[str, Any]]:
    """Compare ``current`` (from :func:`batch_metrics`) with the healthy ``history``."""
    out: list[dict[str, Any]] = []
    learning = len(history) < cfg.min_history
    za, zs = cfg.z_alarm, cfg.z_severe

    def z_of(value: float, hist: list[float], floor: float) -> tuple[float, float]:
        med, scale = _robust(hist)
        return med, (value - med) / max(scale, floor)

    # row count
    n = current["rows"]
    if learning:
        out.append(
            _result(
                "row_count",
                None,
                "learning",
                n,
                None,
                None,
                f"{len(history)} of {cfg.min_history} batches of history",
            )
        )
    else:
        hist = [h["rows"] for h in history]
        med, z = z_of(n, hist, max(1.0, 0.02 * statistics.median(hist)))
        rel = abs(n - med) / max(med, 1)
        status = "ok"
        if abs(z) >= za and rel >= 0.2:
            status = "severe" if abs(z) >= zs and rel >= 0.5 else "alarm"
        out.append(
            _result("row_count", None, status, n, med, z, f"{n} rows against a usual {med:g} rows")
        )

    if not learning:
        out.extend(_duplicate_monitors(current, history, cfg))

    if not learning:  # a column every batch of the history had, that no row has now
        usual = set.intersection(*(set(h.get("columns", {})) for h in history))
        for col in sorted(usual - set(current["columns"])):
            med = statistics.median(h["columns"][col]["null_rate"] for h in history)
            out.append(
                _result(
                    "null_rate",
                    col,
                    "severe" if med <= 0.5 else "alarm",
                    1.0,
                    round(med, 4),
                    None,
                    f"no row has the column (dropped or renamed upstream?), usually "
                    f"{med:.1%} nulls",
                )
            )

    for col, m in current["columns"].items():
        past = [h["columns"][col] for h in history if col in h.get("columns", {})]
        if len(past) < cfg.min_history:
            continue
        # null rate
        hist = [p["null_rate"] for p in past]
        med, z = z_of(m["null_rate"], hist, 0.01)
        delta = m["null_rate"] - med
        status = "ok"
        if z >= za and delta >= 0.05:
            status = "severe" if delta >= 0.5 else "alarm"
        if status != "ok" or m["null_rate"] > 0:
            out.append(
                _result(
                    "null_rate",
                    col,
                    status,
                    round(m["null_rate"], 4),
                    round(med, 4),
                    z,
                    f"{m['null_rate']:.1%} nulls against a usual {med:.1%}",
                )
            )
        # distinct count
        hist = [p["distinct"] for p in past]
        med, z = z_of(m["distinct"], hist, max(1.0, 0.1 * statistics.median(hist)))
        rel = abs(m["distinct"] - med) / max(med, 1)
        if abs(z) >= za and rel >= 0.5:
            out.append(
                _result(
                    "distinct",
                    col,
                    "alarm",
                    m["distinct"],
                    med,
                    z,
                    f"{m['distinct']} distinct values against a usual {med:g}",
                )
            )
        # numeric distribution shift
        if m.get("kind") == "numeric" and "mean" in m:
            means = [p["mean"] for p in past if "mean" in p]
            stds = [p["std"] for p in past if "std" in p]
            # the spread without the batch's 2% most extreme values at either end: one extreme
            # of a heavy-tailed column (visits, amounts) moves a batch's standard deviation
            # by many robust SDs of the history's
            spread = "tstd" if "tstd" in m and all("tstd" in p for p in past) else "std"
            spreads = [p[spread] for p in past if spread in p]
            if len(means) >= cfg.min_history:
                usual_sd = statistics.median(stds) if stds else 0.0
                floor = max(0.1 * usual_sd, 1e-9 * max(1.0, abs(statistics.median(means))))
                med_mean, zm = z_of(m["mean"], means, floor)
                med_sd, zsd = z_of(m[spread], spreads, max(0.1 * usual_sd, 1e-9))
                worst = zm if abs(zm) >= abs(zsd) else zsd
                # and a move a person would call one: a quarter of the usual spread
                moved = max(abs(m["mean"] - med_mean), abs(m[spread] - med_sd))
                status = "ok"
                if abs(worst) >= za and moved >= EFFECT * usual_sd:
                    status = "severe" if abs(worst) >= zs else "alarm"
                what = "mean" if worst is zm else "spread"
                out.append(
                    _result(
                        "numeric_shift",
                        col,
                        status,
                        round(m["mean"], 6),
                        round(med_mean, 6),
                        worst,
                        f"{what} moved {worst:+.1f} robust SDs from its history",
                    )
                )
        # category mix
        if "shares" in m:
            mixes = [p["shares"] for p in past if "shares" in p]
            if len(mixes) >= cfg.min_history:
                keys = set().union(*mixes)
                base = {k: sum(x.get(k, 0.0) for x in mixes) / len(mixes) for k in keys}
                n_values = max(1.0, current["rows"] * (1 - m["null_rate"]))
                eps = max(EPS, 0.5 / n_values)
                hist_psi = [_psi(x, base, eps) for x in mixes]
                psi = _psi(m["shares"], base, eps)
                med, scale = _robust(hist_psi)
                limit = max(0.1, med + za * max(scale, 0.01))
                # and not a sampling accident: a small batch's mix moves by chance (a 150-row
                # batch: a 6.5% value seen twice, p = 0.004), so the move must also be one
                # that chance makes once in P_ALARM batches (chi-square against the mix)
                p = _chance(m["shares"], base, n_values)
                status = "ok"
                if psi >= limit and p < P_ALARM:
                    status = "severe" if psi >= 1.0 else "alarm"
                out.append(
                    _result(
                        "category_mix",
                        col,
                        status,
                        round(psi, 4),
                        round(med, 4),
                        None,
                        f"PSI {psi:.3f} against the usual mix (alarm at {limit:.3f}, "
                        f"chance p {p:.1e})",
                    )
                )
        if "shares" in m:
            got = _category_values(col, m, past, current["rows"], cfg)
            if got is not None:
                out.append(got)
        # freshness
        if "lag" in m:
            lags = [p["lag"] for p in past if "lag" in p]
            status = "ok"
            msg = f"newest value is {m['lag'] / 3600:.1f} h old"
            z = None
            med = None
            if len(lags) >= cfg.min_history:
                med, z = z_of(m["lag"], lags, 60.0)
                if z >= za and m["lag"] - med >= 3600:
                    status = "alarm"
                    msg += f", usually {med / 3600:.1f} h"
            if cfg.max_age_seconds is not None and m["lag"] > cfg.max_age_seconds:
                status = "alarm"
                msg += f", older than max_age_seconds={cfg.max_age_seconds:g}"
            out.append(_result("freshness", col, status, round(m["lag"], 1), med, z, msg))
    return out


def _duplicate_monitors(
    current: dict[str, Any], history: list[dict[str, Any]], cfg: MonitorConfig
) -> list[dict[str, Any]]:
    out = []
    for kind, name, rise in (("rows", "duplicate_rows", 0.05), ("keys", "duplicate_keys", 0.01)):
        value = (current.get("duplicates") or {}).get(kind)
        hist = [h["duplicates"][kind] for h in history if kind in (h.get("duplicates") or {})]
        if value is None or len(hist) < cfg.min_history:
            continue
        med, scale = _robust(hist)
        z = (value - med) / max(scale, 0.005)
        status = "ok"
        if z >= cfg.z_alarm and value - med >= rise:
            status = "severe" if z >= cfg.z_severe and value - med >= 0.4 else "alarm"
        what = "rows repeat an earlier row" if kind == "rows" else "rows repeat an earlier key"
        out.append(
            _result(
                name,
                None,
                status,
                round(value, 4),
                round(med, 4),
                z,
                f"{value:.1%} of {what} of the batch, against a usual {med:.1%}",
            )
        )
    return out


def _category_values(
    col: str, m: dict[str, Any], past: list[dict[str, Any]], rows: int, cfg: MonitorConfig
) -> dict[str, Any] | None:
    """New or vanished values of a column whose set of values has been closed."""
    mixes = [p["shares"] for p in past if "shares" in p]
    if len(mixes) < cfg.min_history + 1:
        return None
    # closed: none of the later half of the window's batches (at least min_history) brought
    # a value the batches before it lacked; a column whose rare values keep arriving (visit
    # counts with a long tail) is not closed
    span = max(cfg.min_history, len(mixes) // 2)
    for i in range(len(mixes) - span, len(mixes)):
        before = set().union(*mixes[:i]) if i else set()
        if set(mixes[i]) - before - {PII_SHARE}:
            return None
    if any(len(x) >= MAX_SHARES for x in mixes) or len(m["shares"]) >= MAX_SHARES:
        return None  # the mix was cut: its rarest values are not known
    known = set().union(*mixes)
    always = set.intersection(*(set(x) for x in mixes))
    new = {k: v for k, v in m["shares"].items() if k not in known and k != PII_SHARE}
    gone = {}
    for k in always - set(m["shares"]) - {PII_SHARE}:
        expected = rows * sum(x[k] for x in mixes) / len(mixes)
        if expected >= 10:  # absent by chance: e^-10, one batch in 22,000
            gone[k] = expected
    if not new and not gone:
        return _result("category_values", col, "ok", 0, None, None, "no new or missing value")
    parts = []
    if new:
        n_rows = round(sum(new.values()) * (rows - 0))
        parts.append(
            f"{len(new)} value(s) none of the last {len(mixes)} batches had ({n_rows} row(s))"
        )
    if gone:
        parts.append(
            f"{len(gone)} usual value(s) missing (expected {sum(gone.values()):.0f} row(s))"
        )
    msg = "; ".join(parts) + ("; a renamed value?" if new and gone else "")
    return _result("category_values", col, "alarm", len(new) + len(gone), 0, None, msg)
