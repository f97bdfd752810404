"""The forest's scores by our own loop over its trees are scikit-learn's, bit for bit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from pipewarden.anomaly.engines import forest_scores


def _data(seed: int, n: int = 3000, f: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.standard_t(3, size=(n, f)).astype(np.float32)
    X[rng.random(X.shape) < 0.02] = rng.normal(scale=50, size=1)  # a few far values
    return X


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("max_samples", [256, 40])
def test_the_scores_are_scikit_learns_bit_for_bit(seed, max_samples):
    X = _data(seed)
    forest = IsolationForest(n_estimators=60, max_samples=max_samples, random_state=seed).fit(X)
    other = _data(seed + 100, n=2000)
    other[5] = np.inf
    other[6, 2] = np.nan  # read as scikit-learn's trees read it
    other[7] = -3e38
    for batch in (X, other, other.astype(np.float64), other[::2], other[:1]):
        want = -forest.score_samples(batch)
        got = forest_scores(forest, batch)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want, equal_nan=True)
    # a forest read back from its pickle scores the same
    again = pickle.loads(pickle.dumps(forest))
    assert np.array_equal(forest_scores(again, other), -forest.score_samples(other))


def test_a_forest_that_draws_features_is_scored_by_scikit_learn(monkeypatch):
    X = _data(1)
    forest = IsolationForest(n_estimators=30, max_features=0.5, random_state=0).fit(X)
    calls = []
    real = IsolationForest.score_samples
    monkeypatch.setattr(
        IsolationForest, "score_samples", lambda self, X: calls.append(1) or real(self, X)
    )
    assert np.array_equal(forest_scores(forest, X), -real(forest, X))
    assert calls  # its own path: each tree reads its own features


def test_the_wrong_number_of_features_or_no_row_is_scikit_learns_error():
    forest = IsolationForest(n_estimators=10, random_state=0).fit(_data(2))
    with pytest.raises(ValueError, match="features"):
        forest_scores(forest, _data(2, f=5))
    with pytest.raises(ValueError, match="0 sample"):
        forest_scores(forest, _data(2)[:0])
