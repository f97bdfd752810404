"""``preserve_variance`` for numbers: fills with the spread the missing values would have had.

A conditional mean ``mu`` has less spread than the values it estimates. With ``y = mu + r``
(``r`` the residual, uncorrelated with ``mu`` for a calibrated model), the missing values'
variance is ``V + s2``: ``V`` the variance of the predictions over the cells to fill, ``s2`` the
residual variance, measured on the known cells hidden from the training (the ones that give
the column's expected error). The fills of a column get that variance, around their own mean
(at random given another column, the missing cells' mean is not the column's):

    f = c + k (mu - c) + t e        c = mean of mu, e ~ N(0, 1) from the seeded generator
    k = min(sqrt(1 + s2 / V), CAP)  t^2 = V + s2 - k^2 V  (0 unless the cap binds)

For the same variance, widening costs less error than noise: ``s2 + (k - 1)^2 V`` against
``2 s2`` for draws around ``mu`` (``(k - 1)^2 V = s2 (k - 1) / (k + 1)``). The cap keeps a
nearly constant prediction (a column the others hardly explain) from being blown up; noise
gives it the rest of its variance. Fills stay inside the range seen in the history, and
clipping takes spread back: the deviations are scaled by the factor ``a >= 1`` that gives the
clipped fills the target variance (bisection).

``c`` and ``V`` are the batch's own when it has at least ``MIN_CELLS`` cells to fill in the
column, else the ones measured on the history's missing cells when the model was trained.
Everything is in the column's standardised units.
"""

from __future__ import annotations

import math

import numpy as np

CAP = 3.0
MIN_CELLS = 20
MAX_SCALE = 4.0


def fit_stats(pred_missing: np.ndarray, pred_hidden: np.ndarray, resid: np.ndarray) -> dict:
    """The numbers kept with a column's model: residual variance on hidden cells, and the
    centre and variance of the predictions of the cells to fill (the history's missing cells,
    or the hidden ones when too few are missing)."""
    pool = pred_missing if pred_missing.size >= MIN_CELLS else np.concatenate(
        [pred_missing, pred_hidden]
    )  # fmt: skip
    return {
        "resid_var": float(np.mean(resid**2)) if resid.size else 0.0,
        "center": float(np.mean(pool)) if pool.size else 0.0,
        "pred_var": float(np.var(pool)) if pool.size else 0.0,
    }


def legacy_stats(error: float) -> dict:
    """The numbers of a model saved before they were kept (it kept a stretch factor): from its
    expected NRMSE, a residual variance of error^2 around the column's mean."""
    return {"resid_var": error**2, "center": 0.0, "pred_var": max(1.0 - error**2, 0.0)}


def widen(z: np.ndarray, stats: dict, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    """The fills (standardised) of predictions ``z`` with the missing values' spread."""
    batch = z.size >= MIN_CELLS
    c, v = (float(np.mean(z)), float(np.var(z))) if batch else (stats["center"], stats["pred_var"])
    target = v + stats["resid_var"]
    k = min(math.sqrt(target / v), CAP) if v > 1e-12 else 1.0
    t = math.sqrt(max(target - k * k * v, 0.0))
    d = k * (z - c) + t * rng.standard_normal(z.size)
    if not batch or target <= 0:
        return np.clip(c + d, lo, hi)

    def var(a: float) -> float:
        return float(np.var(np.clip(c + a * d, lo, hi)))

    a = 1.0
    if var(1.0) < target:
        low, high = 1.0, MAX_SCALE
        if var(high) < target:
            a = high
        else:
            for _ in range(30):
                a = (low + high) / 2
                low, high = (a, high) if var(a) < target else (low, a)
            a = high
    return np.clip(c + a * d, lo, hi)
