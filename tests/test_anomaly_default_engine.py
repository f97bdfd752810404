"""The default engine (version 6, preset ``forest``): an Isolation Forest on each column's own
scale ranks rows as scikit-learn's forest does on the same columns; the bonus beyond the
reference's range ranks a broken value first without moving the ranking of a batch's own
extremes; models of version 5 read back as the ensemble they were trained as."""

from __future__ import annotations

import json

import numpy as np
from scipy.stats import spearmanr
from sklearn.ensemble import IsolationForest

from pipewarden.anomaly.encode import Encoder, Feature
from pipewarden.anomaly.engines import SklearnEngine, make_engine
from pipewarden.anomaly.model import Model


def _skewed(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=n)
    return np.c_[
        np.exp(base + 0.5 * rng.normal(size=n)),  # a long right tail: left and right scales differ
        3 * base + rng.normal(size=n) + 100,
        rng.exponential(size=n) * 1000,
        np.round(rng.gamma(2.0, size=n)),  # ties
    ]


def _model(X: np.ndarray, options: dict | None = None) -> Model:
    enc = Encoder([Feature(f"f{j}", f"f{j}", "numeric") for j in range(X.shape[1])], {})
    return Model.fit_matrix(X, enc, make_engine("sklearn", options))


def test_a_self_fitted_batch_ranks_as_scikit_learns_forest():
    X = _skewed(3000, seed=1)
    scores, _ = _model(X, {"seed": 5}).score_matrix(X)
    theirs = -IsolationForest(random_state=5).fit(X).score_samples(X)
    assert spearmanr(scores, theirs).statistic > 0.9999
    # the robust z-scores (the ensemble's input) differ left and right of the median, and move
    # a forest's splits: not the same ranking
    ens, _ = _model(
        X, {"seed": 5, "weights": {"residual": 0}, "forest_scale": "robust"}
    ).score_matrix(X)
    assert spearmanr(ens, theirs).statistic < 0.999


def test_a_broken_value_ranks_first_with_a_trained_model_and_in_its_own_batch():
    X = _skewed(4000, seed=2)
    model = _model(X[:3000])
    batch = X[3000:].copy()
    batch[7, 1] = 100 + 3 * 40  # 40 SDs out: four times beyond anything the reference had
    scores, Z = model.score_matrix(batch)
    assert int(np.argmax(scores)) == 7 and scores[7] > 0.95
    assert model.beyond_range(Z)[7] and model.beyond_range(Z).sum() == 1
    # the same value in a batch the engine fits on itself: the range leaves out the top 0.1%
    # of the batch's own values, so the lone broken value still ranks first
    own, _ = _model(batch).score_matrix(batch)
    assert int(np.argmax(own)) == 7 and own[7] >= 0.7
    # without it the forest alone cannot tell it from the batch's ordinary extremes
    plain, _ = _model(batch, {"bonus": "none"}).score_matrix(batch)
    assert (plain > plain[7]).sum() >= 3


def test_a_version_5_model_reads_back_as_the_ensemble_it_was_trained_as(tmp_path):
    X = _skewed(2000, seed=3)
    old = _model(X, {"preset": "ensemble"})
    path = old.save(tmp_path / "v5")
    doc = json.loads((path / "model.json").read_text())
    for key in ("forest_scale", "bonus", "side_scales", "zmax"):
        doc["engine"]["params"].pop(key)  # version 5 saved none of these
    doc["engine"]["params"]["version"] = 5
    (path / "model.json").write_text(json.dumps(doc))
    v5 = Model.load(path)
    assert isinstance(v5.engine, SklearnEngine)
    assert (v5.engine.forest_scale, v5.engine.bonus, v5.engine.weights["residual"]) == (
        "robust", "broken", 0.5
    )  # fmt: skip
    assert np.allclose(v5.score_matrix(X)[0], old.score_matrix(X)[0])
    # a version 6 model of the default saves its scales and range, and scores the same again
    new = _model(X)
    back = Model.load(new.save(tmp_path / "v6"))
    assert back.engine.forest_scale == "data" and back.engine.side_scales is not None
    assert np.allclose(back.score_matrix(X)[0], new.score_matrix(X)[0])


def test_bad_preset_scale_and_bonus_are_input_errors():
    import pytest

    from pipewarden.anomaly.detector import parse_config
    from pipewarden.errors import InputError

    for options, key in (
        ({"preset": "fast"}, "sklearn.preset"),
        ({"forest_scale": "log"}, "sklearn.forest_scale"),
        ({"bonus": "always"}, "sklearn.bonus"),
    ):
        with pytest.raises(InputError) as info:
            make_engine("sklearn", options)
        assert key in str(info.value)
    with pytest.raises(InputError) as info:
        parse_config({"sklearn": {"preset": "fast"}})
    assert "preset" in str(info.value)
    assert parse_config({"sklearn": {"preset": "ensemble"}}).engine_options == {
        "preset": "ensemble"
    }


def test_fit_score_gives_what_fit_then_score_gives():
    from pipewarden.anomaly.engines import MAX_REF_ROWS

    rng = np.random.default_rng(9)
    for n, options in ((3000, {}), (MAX_REF_ROWS + 4000, {}), (3000, {"preset": "ensemble"})):
        X = _skewed(n, seed=int(rng.integers(100)))
        X[rng.random(X.shape) < 0.02] = np.nan
        enc = Encoder([Feature(f"f{j}", f"f{j}", "numeric") for j in range(X.shape[1])], {})
        model, scores, Z = Model.fit_score(X, enc, make_engine("sklearn", options))
        again = Model.fit_matrix(X, enc, make_engine("sklearn", options))
        s2, Z2 = again.score_matrix(X)
        assert np.allclose(scores, s2, rtol=0, atol=1e-9) and np.array_equal(Z, Z2)
        assert model.info["zmax"] == again.info["zmax"]
        assert np.allclose(model.score_matrix(X)[0], scores, rtol=0, atol=1e-9)


def test_fit_score_on_awkward_matrices_matches_and_stays_in_0_1():
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays

    values = st.one_of(
        st.floats(min_value=-1e300, max_value=1e300, allow_nan=False),
        st.just(np.nan),
        st.sampled_from([0.0, 1.0, 1e12]),
    )

    @settings(max_examples=60, deadline=None)
    @given(arrays(np.float64, st.tuples(st.integers(10, 120), st.integers(1, 4)), elements=values))
    def check(X):
        enc = Encoder([Feature(f"f{j}", f"f{j}", "numeric") for j in range(X.shape[1])], {})
        model, scores, Z = Model.fit_score(X, enc, make_engine("sklearn"))
        assert np.isfinite(scores).all() and (scores >= 0).all() and (scores <= 1).all()
        again, _ = Model.fit_matrix(X, enc, make_engine("sklearn")).score_matrix(X)
        assert np.allclose(scores, again, rtol=0, atol=1e-9)
        assert np.isfinite(Z).all()

    check()
