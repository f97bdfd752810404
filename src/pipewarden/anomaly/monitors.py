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
=================  ======================================================================

A monitor is ``learning`` until ``min_history`` healthy batches are known; a breach is
``severe`` (the breaker opens at once) when |z| >= ``z_severe`` with a large absolute move
(row count halved or worse, nulls up by 50 points, PSI >= 1).
"""

from __future__ import annotations

import hashlib
import math
import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..compliance.classify import holds_pii, pii_column
from .encode import _looks_like_ts, _parse_float, _parse_ts

KIND = "anomaly.batch"
PII_SHARE = "pii"  # the share of values holding PII in a category mix
MAX_SHARES = 30
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


def batch_metrics(records: list[dict[str, Any]], now: float, region: str = "US") -> dict[str, Any]:
    """The statistics of one batch (no raw values: categories are hashed)."""
    n = len(records)
    names: dict[str, None] = {}
    for r in records:
        for k in r:
            names.setdefault(k, None)
    cols: dict[str, Any] = {}
    for name in names:
        values = [r.get(name) for r in records]
        present = [v for v in values if v is not None and v != ""]
        m: dict[str, Any] = {"null_rate": (n - len(present)) / n if n else 0.0}
        hashable = [v if not isinstance(v, dict | list) else repr(v) for v in present]
        m["distinct"] = len(set(map(str, hashable)))
        if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
            kind = "numeric"
        elif present and all(_looks_like_ts(v) for v in present[:50]):
            kind = "timestamp"
        elif present and all(isinstance(v, str) for v in present):
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
            x = np.array([_parse_float(v) for v in present], dtype=float)
            x = x[np.isfinite(x)]
            if x.size:
                # scaled by the largest magnitude: a sum or a square of values near 1e308
                # would overflow
                top = float(np.abs(x).max()) or 1.0
                y = x / top
                m["mean"] = float(y.mean()) * top
                m["std"] = float(y.std()) * top
                m["median"] = float(np.median(x))
        elif kind == "timestamp":
            ts = [t for t in map(_parse_ts, present) if not math.isnan(t)]
            if ts:
                m["max_ts"] = max(ts)
                m["lag"] = now - max(ts)
        elif kind == "category" and present and m["distinct"] <= max(50, 0.5 * len(present)):
            counts: dict[str, int] = {}
            for v in present:
                k = str(v)
                counts[k] = counts.get(k, 0) + 1
            shares: dict[str, float] = {}
            for k, c in sorted(counts.items(), key=lambda kv: -kv[1])[:MAX_SHARES]:
                # a value holding PII among ordinary ones ("536-22-8726" beside "pending")
                # is counted in one "pii" share, never digested
                key = PII_SHARE if holds_pii(k, name, region=region) else _h(k)
                shares[key] = shares.get(key, 0.0) + c / len(present)
            m["shares"] = shares
        cols[name] = m
    return {"rows": n, "at": now, "columns": cols}


def _robust(hist: list[float]) -> tuple[float, float]:
    med = statistics.median(hist)
    mad = statistics.median([abs(h - med) for h in hist])
    return med, 1.4826 * mad


def _psi(p: dict[str, float], q: dict[str, float]) -> float:
    keys = set(p) | set(q)
    total = 0.0
    for k in keys:
        a = max(p.get(k, 0.0), EPS)
        b = max(q.get(k, 0.0), EPS)
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
            if len(means) >= cfg.min_history:
                usual_sd = statistics.median(stds) if stds else 0.0
                floor = max(0.1 * usual_sd, 1e-9 * max(1.0, abs(statistics.median(means))))
                med_mean, zm = z_of(m["mean"], means, floor)
                med_sd, zsd = z_of(m["std"], stds, max(0.1 * usual_sd, 1e-9))
                worst = zm if abs(zm) >= abs(zsd) else zsd
                status = "ok"
                if abs(worst) >= za:
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
                hist_psi = [_psi(x, base) for x in mixes]
                psi = _psi(m["shares"], base)
                med, scale = _robust(hist_psi)
                limit = max(0.1, med + za * max(scale, 0.01))
                status = "ok"
                if psi >= limit:
                    status = "severe" if psi >= 1.0 else "alarm"
                out.append(
                    _result(
                        "category_mix",
                        col,
                        status,
                        round(psi, 4),
                        round(med, 4),
                        None,
                        f"PSI {psi:.3f} against the usual mix (alarm at {limit:.3f})",
                    )
                )
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
