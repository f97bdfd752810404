"""Robust per-feature statistics: the explanation of every engine, and parts of the default one.

``RobustScaler`` keeps, per feature, the median and a left and a right scale (from the lower
and upper quartiles, so a skewed column is not flagged on its long side for ordinary values).
``z`` is the signed robust z-score; a feature whose quartiles coincide (a constant or a mostly
constant column) falls back to its standard deviation, then to a tiny floor, so any departure
from a constant is loud.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Q = 0.6744897501960817  # the 75th percentile of the standard normal
Z_CLIP = 1e6


@dataclass
class RobustScaler:
    median: np.ndarray
    left: np.ndarray
    right: np.ndarray
    # the rows it was fitted on: each column's two least and two greatest values (missing
    # values read as the median); not saved
    ends: np.ndarray | None = field(default=None, repr=False, compare=False)

    @classmethod
    def fit(cls, X: np.ndarray) -> RobustScaler:
        nan = bool(np.isnan(X).any())
        ends = None
        if nan:
            with warnings.catch_warnings():  # a column without values: NaN, then 0 below
                warnings.simplefilter("ignore", RuntimeWarning)
                q25, med, q75 = np.nanquantile(X, [0.25, 0.5, 0.75], axis=0)
            stdev = np.nanstd
        else:  # one sort: 2.5x quicker than np.quantile's partitions, the same values
            S = np.sort(X, axis=0)
            q25, med, q75 = sorted_quantiles(S, [0.25, 0.5, 0.75])
            stdev = np.std
            n = len(S)
            ends = S[[0, min(1, n - 1), max(n - 2, 0), n - 1]] if n else None
        med = np.nan_to_num(med)
        if nan and len(X):
            n = len(X)
            at = [0, min(1, n - 1), max(n - 2, 0), n - 1]
            ends = np.partition(np.where(np.isnan(X), med, X), sorted(set(at)), axis=0)[at]
        with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # values near 1e308: std is inf
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
        return cls(med, left, right, ends)

    def z(self, X: np.ndarray, keep_nan: bool = False) -> np.ndarray:
        """Robust z-scores; a missing value (NaN) becomes 0, the median, unless `keep_nan`."""
        d = np.subtract(X, self.median, dtype=float)
        low = d < 0  # one mask instead of an array of scales as large as X
        np.divide(d, self.right, out=d)
        np.multiply(d, self.right / self.left, out=d, where=low)
        np.clip(d, -Z_CLIP, Z_CLIP, out=d)
        if not keep_nan and np.isnan(d).any():
            np.nan_to_num(d, copy=False, nan=0.0)
        return d

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k).tolist() for k in ("median", "left", "right")}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RobustScaler:
        return cls(*(np.asarray(d[k], dtype=float) for k in ("median", "left", "right")))


def sorted_quantiles(S: np.ndarray, q: Any) -> np.ndarray:
    """``np.quantile(S, q, axis=0)`` of an array already sorted along axis 0 and without NaN:
    numpy's default (linear) method, the same arithmetic, so the same values, without the
    partitions numpy does for every call (4,000 levels of 8,000 scores: 32 ms against 0.1)."""
    scalar = np.ndim(q) == 0
    q = np.atleast_1d(np.asarray(q, dtype=float))
    n = S.shape[0]
    h = q * (n - 1)
    lo = np.floor(h).astype(np.intp)
    hi = np.minimum(lo + 1, n - 1)
    t = (h - lo).reshape(q.shape + (1,) * (S.ndim - 1))
    a, b = S[lo], S[hi]
    diff = b - a
    out = a + diff * t
    np.subtract(b, diff * (1 - t), out=out, where=np.broadcast_to(t >= 0.5, out.shape))
    return out[0] if scalar else out


def logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """``log(sum(exp(a)))`` along `axis`, without overflow."""
    top = a.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis=axis) + np.log(np.exp(a - top).sum(axis=axis))


@dataclass
class MixtureDistance:
    """Distance to the data's nearest mode, from a Gaussian mixture fitted to the robust
    z-scores, the number of components chosen by BIC (1 to ``MAX_COMPONENTS``).

    The score is twice the negative log density above its lowest possible value: with one
    component, the squared Mahalanobis distance to the mean. With several, a row is measured
    against the mode it belongs to, in that mode's own covariance: data made of segments
    (orders from different channels, digits of different shapes) is not one cloud, and a row
    between two clouds is ordinary for a single Gaussian but not here.

    The mixture is scikit-learn's ``GaussianMixture`` fitted on a sample of at most
    ``FIT_ROWS`` rows (z-scores capped at +-``FIT_CLIP`` so a few wild values cannot own a
    component); the search over the number of components stops once two more have not lowered
    the BIC. Every covariance gets ``REG`` plus ``FLOOR`` times the largest column variance on
    its diagonal (``reg_covar``), so constant or discrete columns can neither make it singular
    nor let a component collapse onto one value. Rows are
    scored on their uncapped z-scores, so a value ten times further out still scores higher.
    Missing values are marginalised out (see :meth:`score`).
    """

    weights: np.ndarray  # (k,)
    means: np.ndarray  # (k, d)
    chol: np.ndarray  # (k, d, d): y = (z - mean) @ chol has identity covariance
    log_norm: np.ndarray  # (k,): log weight + log det(chol) - d/2 log(2 pi)

    MAX_COMPONENTS = 5
    FLOOR = 0.01
    FIT_ROWS = 5000
    FIT_CLIP = 10.0
    REG = 1e-3  # added to every covariance's diagonal (z-score units)
    MAX_ITER = 100
    TOL = 1e-3  # stop when the mean log-likelihood gains less than this
    CHUNK = 65536  # rows scored at a time
    MAX_PATTERNS = 64  # missing-value patterns marginalised exactly (the most common ones)

    @classmethod
    def fit(cls, Z: np.ndarray, seed: int = 0) -> MixtureDistance:
        """scikit-learn's ``GaussianMixture`` (full covariances, k-means++ starts), 1 to
        ``MAX_COMPONENTS`` components chosen by BIC on a sample of at most ``FIT_ROWS`` rows;
        its arrays are kept, and scored here (with missing values marginalised out)."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import GaussianMixture

        rng = np.random.default_rng(seed)
        Z = np.asarray(Z, dtype=float)
        complete = ~np.isnan(Z).any(axis=1)
        # fitted on the rows without a missing value when there are enough of them
        if complete.sum() >= max(0.5 * Z.shape[0], 2 * (Z.shape[1] + 2)):
            Z = Z[complete]
        Z = np.nan_to_num(Z)
        X = Z if Z.shape[0] <= cls.FIT_ROWS else Z[rng.choice(Z.shape[0], cls.FIT_ROWS, False)]
        X = np.clip(X, -cls.FIT_CLIP, cls.FIT_CLIP)
        n, d = X.shape
        # no component tighter than FLOOR times the reference's variance: a flag or a
        # category share could otherwise let one collapse onto a single value
        reg = cls.REG + cls.FLOOR * float(X.var(axis=0).max(initial=0.0))
        best, best_bic, best_k = None, np.inf, 0
        import warnings

        for k in range(1, cls.MAX_COMPONENTS + 1):
            if n < 2 * k * (d + 2):  # under 2 (d + 2) rows per component
                break
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gm = GaussianMixture(
                    k, covariance_type="full", reg_covar=reg, max_iter=cls.MAX_ITER,
                    tol=cls.TOL, init_params="k-means++", random_state=seed,
                ).fit(X)  # fmt: skip
            bic = gm.bic(X)
            if bic < best_bic:
                best, best_bic, best_k = gm, bic, k
            elif k - best_k >= 2:  # two more components did not help: more will not either
                break
        if best is None:  # too few rows for even one component: a unit Gaussian at 0
            return cls.from_arrays(np.ones(1), np.zeros((1, d)), np.eye(d)[None])
        return cls.from_arrays(best.weights_, best.means_, best.precisions_cholesky_)

    @classmethod
    def from_arrays(cls, weights, means, chol) -> MixtureDistance:
        weights = np.asarray(weights, dtype=float)
        means = np.atleast_2d(np.asarray(means, dtype=float))
        chol = np.asarray(chol, dtype=float).reshape(means.shape[0], means.shape[1], -1)
        d = means.shape[1]
        logdet = np.log(np.abs(np.diagonal(chol, axis1=1, axis2=2))).sum(axis=1)
        log_norm = np.log(np.maximum(weights, 1e-300)) + logdet - 0.5 * d * np.log(2 * np.pi)
        return cls(weights, means, chol, log_norm)

    def _log_joint(self, Z: np.ndarray) -> np.ndarray:
        """log(weight_j * density_j(z)) for every row and component."""
        out = np.empty((Z.shape[0], self.means.shape[0]))
        for j, c in enumerate(self.chol):
            y = Z @ c
            y -= self.means[j] @ c
            out[:, j] = self.log_norm[j] - 0.5 * np.einsum("ij,ij->i", y, y)
        return out

    def score(self, Z: np.ndarray) -> np.ndarray:
        """Twice the negative log density of each row above its lowest possible value (one
        component: the squared Mahalanobis distance). Missing values (NaN) are marginalised
        out: the row is scored on the columns it has, under each component's marginal, so
        a null is not taken for an unusual value. Each pattern of missing columns costs a
        marginal per component, so only the ``MAX_PATTERNS`` most common patterns are done
        exactly; rows with rarer patterns read a missing value as the median."""
        Z = np.asarray(Z, dtype=float)
        missing = np.isnan(Z)
        if not missing.any():
            return self._score(Z)
        out = np.empty(Z.shape[0])
        patterns, inverse, counts = np.unique(
            missing, axis=0, return_inverse=True, return_counts=True
        )
        inverse = inverse.ravel()
        exact = set(np.argsort(-counts, kind="stable")[: self.MAX_PATTERNS].tolist())
        rare = np.zeros(Z.shape[0], dtype=bool)
        for p, pattern in enumerate(patterns):
            rows = np.flatnonzero(inverse == p)
            if p not in exact:
                rare[rows] = True
            elif pattern.all():
                out[rows] = 0.0  # nothing observed: nothing unusual
            else:
                part = self.marginal(~pattern) if pattern.any() else self
                out[rows] = part._score(Z[np.ix_(rows, np.flatnonzero(~pattern))])
        if rare.any():  # beyond the most common patterns: the median for a missing value
            out[rare] = self._score(np.nan_to_num(Z[rare]))
        return out

    def _score(self, Z: np.ndarray) -> np.ndarray:
        out = np.empty(Z.shape[0])
        floor = float(self.log_norm.max())
        for i in range(0, Z.shape[0], self.CHUNK):
            ll = self._log_joint(np.clip(Z[i : i + self.CHUNK], -1e3, 1e3))
            out[i : i + self.CHUNK] = 2.0 * (floor - logsumexp(ll, axis=1))
        return out

    def marginal(self, observed: np.ndarray) -> MixtureDistance:
        """The mixture of the `observed` columns only (each component's marginal)."""
        idx = np.flatnonzero(observed)
        chol = []
        for c in self.chol:
            cov = np.linalg.inv(c @ c.T)[np.ix_(idx, idx)]
            chol.append(np.linalg.solve(np.linalg.cholesky(cov), np.eye(idx.size)).T)
        return MixtureDistance.from_arrays(self.weights, self.means[:, idx], np.array(chol))

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k).tolist() for k in ("weights", "means", "chol")}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MixtureDistance:
        return cls.from_arrays(d["weights"], d["means"], d["chol"])
