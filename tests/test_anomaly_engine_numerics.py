"""The default engine's numerics: quantiles of sorted data equal numpy's, and the residual
computed in float32 measures distance, not rounding."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pipewarden.anomaly.calibrate import Calibrator
from pipewarden.anomaly.engines import SklearnEngine
from pipewarden.anomaly.robust import RobustScaler, sorted_quantiles

finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, width=64)


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 300), st.integers(1, 4)), elements=finite),
    st.lists(st.floats(0, 1), min_size=1, max_size=20),
)
def test_sorted_quantiles_are_numpys_linear_quantiles_bit_for_bit(X, q):
    q = [*q, 0.0, 0.25, 0.5, 0.75, 0.99, 1.0]
    assert np.array_equal(sorted_quantiles(np.sort(X, axis=0), q), np.quantile(X, q, axis=0))
    col = np.sort(X[:, 0])
    assert sorted_quantiles(col, 0.99) == np.quantile(X[:, 0], 0.99)


def test_scaler_and_calibrator_keep_numpys_values():
    rng = np.random.default_rng(4)
    X = np.round(rng.lognormal(size=(5000, 7)) * 100)  # ties and skew
    q25, med, q75 = np.quantile(X, [0.25, 0.5, 0.75], axis=0)
    sc = RobustScaler.fit(X)
    assert np.array_equal(sc.median, med)
    raw = rng.normal(size=9000)
    cal = Calibrator.fit(raw)
    levels = (np.arange(4000) + 0.5) / 4000
    assert np.array_equal(cal.ref, np.quantile(raw, levels))
    assert cal.tail_start == float(np.quantile(raw, 0.99))
    # with missing values the scaler still ignores them
    X[::7, 2] = np.nan
    assert np.array_equal(RobustScaler.fit(X).median, np.nan_to_num(np.nanmedian(X, axis=0)))


def _residual(eng: SklearnEngine, Z: np.ndarray) -> np.ndarray:
    return eng._components(Z)["residual"]


def test_float32_residual_on_data_whose_subspace_holds_every_direction():
    # 10 columns spanned by 8 directions of equal variance: the subspace holding 95% of the
    # variance holds all 8 (more than half the columns: the float32 complement branch), so
    # every reference row's residual is rounding and must read as 0, while a row that breaks
    # the span (each value ordinary) stands out
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(10, 8)))
    Z = rng.normal(size=(4000, 8)) @ basis.T
    eng = SklearnEngine.from_options({"preset": "ensemble", "seed": 0})  # the residual
    eng.fit(Z)
    assert eng.pca_basis.shape[0] == 8
    r = _residual(eng, Z)
    assert (r == 0).all()
    broken = Z[:5] + 0.5 * rng.normal(size=(5, 10))
    assert (_residual(eng, broken) > 0.1).all()


def test_float32_complement_branch_matches_float64():
    # k > d/2 components: the residual is measured on the complement in float32; it agrees
    # with the float64 distance to within float32's resolution
    rng = np.random.default_rng(1)
    n, d = 6000, 60
    basis, _ = np.linalg.qr(rng.normal(size=(d, 40)))
    Z = rng.normal(size=(n, 40)) @ basis.T + 0.3 * rng.normal(size=(n, d))
    eng = SklearnEngine.from_options({"preset": "ensemble", "seed": 0})  # the residual
    eng.fit(Z)
    k = eng.pca_basis.shape[0]
    assert 2 * k > d
    r32 = _residual(eng, Z)
    C = np.clip(Z, -eng.CLIP, eng.CLIP) - eng.pca_mean
    R = C - (C @ eng.pca_basis.T) @ eng.pca_basis
    r64 = np.sqrt(np.einsum("ij,ij->i", R, R))
    assert np.allclose(r32, r64, rtol=1e-3, atol=1e-4 * np.sqrt(d))
    # rows with missing values are measured on the columns they have, as before
    Zm = Z[:200].copy()
    Zm[:, :5] = np.nan
    rm = _residual(eng, Zm)
    assert np.isfinite(rm).all() and (rm > 0).all()
