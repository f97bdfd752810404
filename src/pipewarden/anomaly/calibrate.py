"""Score normalisation: raw engine scores -> [0, 1] with the same meaning on every engine.

Raw anomaly scores differ from engine to engine (path lengths, distances, tail sums) and rarely
reach a fixed cut-off: a raw Isolation Forest score seldom exceeds 0.66, so a raw threshold of
0.7 flags almost nothing. We calibrate instead against reference data (the training data, or
the batch itself when no model is given):

1. ``p(x)``: the share of reference rows whose raw score is at least ``x`` (the empirical
   tail, smoothed so it is never 0). Above the reference's 99th percentile the tail is an
   exponential fitted to the top 1% of reference scores, so rows beyond anything seen in the
   reference keep being ranked (an injected anomaly ten times further out scores higher).
2. ``score = 1 - p ** GAMMA`` with ``GAMMA = ln(0.3) / ln(0.01)``, chosen so that a score of
   **0.7 means p = 1%**: on clean data like the reference, 1% of rows score 0.7 or more.

The share of reference rows at or above a threshold ``t`` is ``(1 - t) ** (1 / GAMMA)``:
0.5 -> 7.1%, 0.6 -> 3.0%, 0.7 -> 1.0%, 0.8 -> 0.21%, 0.9 -> 0.015%. The mapping is monotone,
so the ranking (and ROC AUC) of the raw scores is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .robust import sorted_quantiles

GAMMA = math.log(0.3) / math.log(0.01)
TAIL_SHARE = 0.01
MAX_POINTS = 4000


def share_above(threshold: float) -> float:
    """The share of reference rows whose normalised score is at least ``threshold``."""
    if threshold <= 0:
        return 1.0
    if threshold >= 1:
        return 0.0
    return (1.0 - threshold) ** (1.0 / GAMMA)


@dataclass
class Calibrator:
    ref: np.ndarray  # sorted reference raw scores (at most MAX_POINTS quantiles)
    tail_start: float  # raw score at the (1 - TAIL_SHARE) quantile
    tail_scale: float  # mean excess above tail_start (exponential tail)
    tail_share: float  # share of the reference above tail_start

    @classmethod
    def fit(cls, raw: np.ndarray) -> Calibrator:
        raw = np.asarray(raw, dtype=float)
        raw = raw[np.isfinite(raw)]
        if raw.size == 0:
            raw = np.zeros(1)
        raw = np.sort(raw)
        if raw.size > MAX_POINTS:
            levels = (np.arange(MAX_POINTS) + 0.5) / MAX_POINTS
            ref = sorted_quantiles(raw, levels)
        else:
            ref = raw
        t = float(sorted_quantiles(raw, 1.0 - TAIL_SHARE))
        above = raw[raw > t]
        share = max(above.size / raw.size, 1.0 / (raw.size + 1))
        spread = float(raw[-1] - raw[0])
        floor = max(abs(t) * 1e-6, spread * 1e-3, 1e-12)
        scale = float(np.mean(above - t)) if above.size else 0.0
        return cls(ref, t, max(scale, floor), share)

    def tail_p(self, raw: np.ndarray) -> np.ndarray:
        """Share of the reference at least as anomalous as each raw score (never 0)."""
        raw = np.asarray(raw, dtype=float)
        m = self.ref.size
        count_ge = m - np.searchsorted(self.ref, raw, side="left")
        p = (count_ge + 1.0) / (m + 1.0)
        over = raw > self.tail_start
        if np.any(over):
            excess = (raw[over] - self.tail_start) / self.tail_scale
            p[over] = np.minimum(p[over], self.tail_share * np.exp(-excess))
        p = np.where(np.isnan(raw), 1.0, p)
        return np.clip(p, 1e-300, 1.0)

    def normalise(self, raw: np.ndarray) -> np.ndarray:
        return 1.0 - np.power(self.tail_p(raw), GAMMA)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref.tolist(),
            "tail_start": self.tail_start,
            "tail_scale": self.tail_scale,
            "tail_share": self.tail_share,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibrator:
        return cls(
            np.asarray(d["ref"], dtype=float),
            float(d["tail_start"]),
            float(d["tail_scale"]),
            float(d["tail_share"]),
        )
