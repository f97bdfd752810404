"""Robust per-feature statistics: the explanation of every engine, and parts of the default one.

``RobustScaler`` keeps, per feature, the median and a left and a right scale (from the lower
and upper quartiles, so a skewed column is not flagged on its long side for ordinary values).
``z`` is the signed robust z-score; a feature whose quartiles coincide (a constant or a mostly
constant column) falls back to its standard deviation, then to a tiny floor, so any departure
from a constant is loud.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

Q = 0.6744897501960817  # the 75th percentile of the standard normal
Z_CLIP = 1e6


@dataclass
class RobustScaler:
    median: np.ndarray
    left: np.ndarray
    right: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> RobustScaler:
        nan = bool(np.isnan(X).any())
        quantile, stdev = (np.nanquantile, np.nanstd) if nan else (np.quantile, np.std)
        q25, med, q75 = quantile(X, [0.25, 0.5, 0.75], axis=0)
        med = np.nan_to_num(med)
        std = np.nan_to_num(stdev(X, axis=0))
        floor = np.maximum(np.abs(med) * 1e-6, 1e-9)
        iqr_scale = (q75 - q25) / (2 * Q)
        left = np.nan_to_num((med - q25) / Q)
        right = np.nan_to_num((q75 - med) / Q)
        # a side without spread borrows the other side, then the IQR, then the std, then a floor
        for side, other in ((left, right), (right, left)):
            bad = side <= floor
            side[bad] = other[bad]
        for fallback in (np.nan_to_num(iqr_scale), std):
            for side in (left, right):
                bad = side <= floor
                side[bad] = fallback[bad]
        left = np.maximum(left, floor)
        right = np.maximum(right, floor)
        return cls(med, left, right)

    def z(self, X: np.ndarray) -> np.ndarray:
        d = np.subtract(X, self.median, dtype=float)
        np.divide(d, np.where(d >= 0, self.right, self.left), out=d)
        np.clip(d, -Z_CLIP, Z_CLIP, out=d)
        if np.isnan(d).any():
            np.nan_to_num(d, copy=False, nan=0.0)
        return d

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k).tolist() for k in ("median", "left", "right")}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RobustScaler:
        return cls(*(np.asarray(d[k], dtype=float) for k in ("median", "left", "right")))


@dataclass
class Mahalanobis:
    """Squared Mahalanobis distance on robust z-scores, from a trimmed, shrunk covariance:
    catches rows whose values are each ordinary but whose combination is not."""

    precision: np.ndarray

    @classmethod
    def fit(cls, Z: np.ndarray, trim: float = 0.05, shrink: float = 0.05) -> Mahalanobis:
        Zc = np.clip(Z, -10, 10)
        k = Zc.shape[1]
        prec = cls._precision(Zc, shrink)
        if Zc.shape[0] > 2 * k + 10:
            d = cls(prec).score(Zc)
            keep = d <= np.quantile(d, 1 - trim)
            if keep.sum() > k + 2:
                prec = cls._precision(Zc[keep], shrink)
        return cls(prec)

    @staticmethod
    def _precision(Zc: np.ndarray, shrink: float) -> np.ndarray:
        k = Zc.shape[1]
        if Zc.shape[0] < 2:
            return np.eye(k)
        cov = np.atleast_2d(np.cov(Zc, rowvar=False))
        diag = np.diag(cov).copy()
        diag[diag <= 1e-12] = 1.0
        target = np.diag(diag)
        cov = (1 - shrink) * cov + shrink * target + np.eye(k) * 1e-9
        return np.linalg.pinv(cov)

    def score(self, Z: np.ndarray) -> np.ndarray:
        Zc = np.clip(Z, -1e3, 1e3)
        return np.einsum("ij,ij->i", Zc @ self.precision, Zc)

    def to_dict(self) -> dict[str, Any]:
        return {"precision": self.precision.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Mahalanobis:
        return cls(np.asarray(d["precision"], dtype=float))
