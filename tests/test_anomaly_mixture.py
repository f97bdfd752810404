"""The default engine's distance: a Gaussian mixture, missing values, short time spans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipewarden.anomaly.encode import Encoder
from pipewarden.anomaly.model import Model
from pipewarden.anomaly.robust import MixtureDistance


def _two_clouds(n: int = 4000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cov = [[1.0, 0.8], [0.8, 1.0]]
    return np.r_[
        rng.multivariate_normal([-4, -4], cov, n // 2), rng.multivariate_normal([4, 4], cov, n // 2)
    ]


def test_bic_finds_the_modes_and_a_row_between_them_is_far():
    X = _two_clouds()
    mix = MixtureDistance.fit(X)
    assert mix.means.shape[0] == 2
    assert sorted(np.round(mix.means[:, 0]).tolist()) == [-4.0, 4.0]
    between, inside = np.array([[0.0, 0.0]]), np.array([[4.0, 4.0]])
    # a single Gaussian sees the middle as the most ordinary place; the mixture does not
    assert mix.score(between)[0] > np.quantile(mix.score(X), 0.999)
    assert mix.score(inside)[0] < np.median(mix.score(X))


def test_one_component_is_the_squared_mahalanobis_distance():
    rng = np.random.default_rng(1)
    cov = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 1.0]])
    X = rng.multivariate_normal([0, 0, 0], cov, 3000)
    mix = MixtureDistance.fit(X)
    assert mix.means.shape[0] == 1
    rows = X[:50]
    expected = np.einsum("ij,jk,ik->i", rows, np.linalg.inv(cov), rows)
    assert np.corrcoef(mix.score(rows), expected)[0, 1] > 0.99


def test_missing_values_are_marginalised_not_taken_for_the_median():
    rng = np.random.default_rng(2)
    X = rng.multivariate_normal([0, 0], [[1.0, 0.95], [0.95, 1.0]], 3000)
    mix = MixtureDistance.fit(X)
    row = np.array([[2.5, np.nan]])  # x1 is missing; x0 alone is ordinary enough
    filled = np.array([[2.5, 0.0]])  # the median in x1 breaks the correlation
    assert mix.score(row)[0] < 7.0
    assert mix.score(filled)[0] > 50.0
    assert mix.score(np.array([[np.nan, np.nan]]))[0] == 0.0
    # the marginal of a Gaussian on x0: the squared z-score
    sd = np.sqrt(np.linalg.inv(mix.chol[0] @ mix.chol[0].T)[0, 0])
    assert mix.score(row)[0] == np.float64((2.5 - mix.means[0, 0]) / sd) ** 2


def test_a_model_does_not_flag_rows_for_their_nulls():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(3000, 1))
    X = np.hstack([base + 0.2 * rng.normal(size=(3000, 1)) for _ in range(4)])
    recs = [{f"x{j}": float(v) for j, v in enumerate(row)} for row in X]
    model = Model.fit(recs[:2000])
    fresh = [dict(r) for r in recs[2000:]]
    for r in fresh[:500]:
        r["x3"] = None
    scores, _ = model.score(fresh)
    assert (scores[:500] >= 0.7).mean() <= 0.03
    assert (scores[500:] >= 0.7).mean() <= 0.03


def test_injected_rows_between_segments_rank_high():
    rng = np.random.default_rng(4)
    X = np.r_[rng.normal(-5, 1, (1500, 2)), rng.normal(5, 1, (1500, 2))]
    y = np.zeros(len(X), dtype=int)
    X[:15] = rng.normal(0, 0.5, (15, 2))  # between the two segments: each value ordinary
    y[:15] = 1
    recs = [{"a": float(a), "b": float(b)} for a, b in X]
    scores, _ = Model.fit(recs).score(recs)
    # a single Gaussian put them at its centre: AUC 0.96, none of them at 0.7 or more
    assert roc_auc_score(y, scores) > 0.98


def test_saved_mixture_scores_the_same(tmp_path):
    X = _two_clouds(2000, seed=6)
    recs = [{"a": float(a), "b": float(b)} for a, b in X]
    model = Model.fit(recs)
    before, _ = model.score(recs[:100])
    again = Model.load(model.save(tmp_path / "m"))
    after, _ = again.score(recs[:100])
    assert np.allclose(before, after)


def test_time_parts_need_a_reference_spanning_their_cycle():
    def at(hours: float) -> list[dict]:
        start = datetime(2024, 3, 4, 9, tzinfo=UTC)
        step = timedelta(hours=hours / 200)
        return [{"ts": (start + i * step).isoformat(), "v": i % 7} for i in range(200)]

    names = lambda enc: [f.name for f in enc.features]  # noqa: E731
    assert names(Encoder.fit(at(20))) == ["v"]
    assert Encoder.fit(at(20)).excluded == {"ts": "short_time_span"}
    assert names(Encoder.fit(at(48))) == ["ts__hour", "v"]
    assert names(Encoder.fit(at(24 * 8))) == ["ts__hour", "ts__weekday", "v"]


def test_weights_turn_components_off_and_are_saved(tmp_path):
    from pipewarden.anomaly.engines import make_engine
    from pipewarden.anomaly.model import Model as M

    X = _two_clouds(1500, seed=7)
    recs = [{"a": float(a), "b": float(b)} for a, b in X]
    model = M.fit(recs, engine_options={"weights": {"residual": 0}})
    assert model.engine.weights == {
        "forest": 1.0, "residual": 0.0, "distance": 0.0, "subspace": 0.0
    }  # fmt: skip
    Z = model.z(model.encoder.transform(recs))
    forest_only = model.engine._components(Z)["forest"]
    raw = model.engine.raw_scores(Z)
    assert np.array_equal(np.argsort(raw, kind="stable"), np.argsort(forest_only, kind="stable"))
    again = M.load(model.save(tmp_path / "m"))
    assert again.engine.weights == model.engine.weights
    assert make_engine("sklearn").weights == {
        "forest": 1.0, "residual": 0.0, "distance": 0.0, "subspace": 0.0
    }  # fmt: skip
    assert make_engine("sklearn", {"preset": "ensemble"}).weights == {
        "forest": 1.0, "residual": 0.5, "distance": 0.0, "subspace": 0.0
    }  # fmt: skip
    ens = M.fit(recs, engine_options={"preset": "ensemble", "weights": {"subspace": 1}})
    assert ens.engine.weights["residual"] == 0.5 and ens.engine.weights["subspace"] == 1
    assert (ens.engine.forest_scale, ens.engine.bonus, ens.engine.forest_clip) == (
        "robust", "broken", 5.0
    )  # fmt: skip
    back = M.load(ens.save(tmp_path / "ens"))
    assert np.allclose(back.score(recs)[0], ens.score(recs)[0])
    # the previous default, kept as an option: every component saved and read back
    old = M.fit(recs, engine_options={"weights": {"distance": 0.5, "subspace": 1, "residual": 0},
                                      "n_estimators": 50})  # fmt: skip
    back = M.load(old.save(tmp_path / "old"))
    assert np.allclose(back.score(recs)[0], old.score(recs)[0])


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"trees": 1}, "unknown component 'trees'"),
        ({"forest": -1}, "a weight is a number >= 0"),
        ({"forest": 0, "residual": 0, "distance": 0, "subspace": 0}, "at least one weight"),
    ],
)
def test_bad_weights_are_an_input_error(weights, message):
    from pipewarden.anomaly.engines import make_engine
    from pipewarden.errors import InputError

    with pytest.raises(InputError) as info:
        make_engine("sklearn", {"weights": weights})
    assert message in str(info.value) and "sklearn.weights" in str(info.value)


def test_step_config_validates_weights():
    from pipewarden.anomaly.detector import parse_config
    from pipewarden.errors import InputError

    cfg = parse_config({"sklearn": {"weights": {"subspace": 0}}})
    assert cfg.engine_options == {"weights": {"subspace": 0}}
    with pytest.raises(InputError) as info:
        parse_config({"sklearn": {"weights": {"trees": 1}}})
    assert "steps[].sklearn.weights.trees" in str(info.value)


def test_many_missing_patterns_stay_cheap_and_fall_back_to_the_median():
    rng = np.random.default_rng(8)
    mix = MixtureDistance.fit(rng.normal(size=(2000, 12)))
    Z = rng.normal(size=(3000, 12))
    Z[rng.random(Z.shape) < 0.3] = np.nan  # nearly every row its own pattern
    scores = mix.score(Z)
    patterns, counts = np.unique(np.isnan(Z), axis=0, return_counts=True)
    assert len(patterns) > MixtureDistance.MAX_PATTERNS
    assert np.isfinite(scores).all()
    # a row of a rare pattern is scored with the median in place of its missing values
    pattern = np.isnan(Z)
    rare = next(i for i in range(len(Z)) if (pattern == pattern[i]).all(axis=1).sum() == 1)
    # (the same arithmetic on one row and on 3,000: equal to the last bits BLAS may change)
    assert scores[rare] == pytest.approx(mix.score(np.nan_to_num(Z[rare : rare + 1]))[0], rel=1e-12)


def test_forest_clip_is_saved_and_a_version_4_model_reads_as_capped_at_5(tmp_path):
    """``sklearn.forest_clip`` (the cap on the z-scores the forest reads) is saved with the
    model; a model saved by engine version 4, which had no such key, is read with its forest
    capped at 5 as it was trained, and scores as before."""
    import json

    from pipewarden.anomaly.detector import parse_config
    from pipewarden.anomaly.engines import make_engine
    from pipewarden.anomaly.model import Model as M
    from pipewarden.errors import InputError

    X = _two_clouds(1500, seed=3)
    recs = [{"a": float(a), "b": float(b)} for a, b in X]
    free = M.fit(recs, engine_options={"forest_clip": None, "weights": {"residual": 0}})
    back = M.load(free.save(tmp_path / "free"))
    assert back.engine.forest_clip is None
    assert np.allclose(back.score(recs)[0], free.score(recs)[0])

    old = M.fit(recs, engine_options={"preset": "ensemble"})
    path = old.save(tmp_path / "v4")
    doc = json.loads((path / "model.json").read_text())
    for key in ("forest_clip", "forest_scale", "bonus", "side_scales", "zmax"):
        doc["engine"]["params"].pop(key)  # none of them saved by version 4
    doc["engine"]["params"]["version"] = 4
    (path / "model.json").write_text(json.dumps(doc))
    v4 = M.load(path)
    assert v4.engine.forest_clip == 5.0
    assert np.allclose(v4.score(recs)[0], old.score(recs)[0])

    for bad in (0, -1, "5", True):
        with pytest.raises(InputError) as info:
            make_engine("sklearn", {"forest_clip": bad})
        assert "sklearn.forest_clip" in str(info.value)
    assert parse_config({"sklearn": {"forest_clip": None}}).engine_options == {"forest_clip": None}
    with pytest.raises(InputError) as info:
        parse_config({"sklearn": {"forest_clip": 0}})
    assert "forest_clip" in str(info.value)
