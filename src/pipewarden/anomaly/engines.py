"""Engines: one interface, raw scores where higher means more anomalous.

Every engine reads the same input, the robust z-score matrix of the encoded features
(:mod:`pipewarden.anomaly.robust`), so scaling and encoding never differ between engines, and
every engine's raw scores go through the same calibration (:mod:`pipewarden.anomaly.calibrate`).

- ``sklearn`` (default, embedded, no JVM), engine version 6, two presets:

  - ``forest`` (the default): a 100-tree scikit-learn Isolation Forest on each column's own
    scale (the robust z-score times its side's scale over the mean of both sides: one affine
    map per column, under which a forest's splits do not change, so the forest ranks rows as
    scikit-learn's forest on the encoded columns does), plus a bonus for a row whose most
    extreme value lies beyond RANGE_FACTOR times the reference's range of that column (the
    log of how far): a forest cannot tell a value just beyond its training range from one a
    million times beyond it. The range is each column's second largest |z| in the reference,
    so a lone broken value in a batch fitted on itself still ranks first; no other row of that
    batch gets a bonus.
  - ``ensemble`` (versions 4 and 5's default): the forest on the z-scores capped at +-5 and the
    distance of the row from the principal subspace holding 95% of the reference's variance
    (scikit-learn's PCA), each scaled by its median and 90th percentile on the reference
    (``(x - median) / (q90 - median)``), weighted 1 and 0.5 and combined by a smooth maximum
    (``log sum exp``), plus a bonus beyond 20 robust SDs. It ranks rows whose values are each
    ordinary but whose combination breaks the columns' correlations, which axis-parallel
    trees miss, and isolated spikes in one of many columns; it is also below scikit-learn's
    forest on real labelled sets nobody tuned it on (``bench/anomaly``).

  Two more components are options (``sklearn.weights``), off in both presets: *distance* (the
  distance to the nearest mode of a Gaussian mixture, missing values marginalised out) and
  *subspace* (the length of the projection on the components holding the first 30% of the
  variance). Engine version 3's default was forest 1 (50 trees) + distance 0.5 + subspace 1.
- ``h2o``: H2O's Isolation Forest or Extended Isolation Forest (:mod:`.h2o_engine`).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .robust import MixtureDistance, logsumexp

RANGE_FACTOR = 4.0  # the range bonus and Model.beyond_range: this many times the reference's |z|

ENGINES = ("sklearn", "h2o")
MAX_FIT_ROWS = 100_000  # rows the robust statistics are fitted on
MAX_REF_ROWS = 8_000  # reference rows scored to calibrate (the top 1% tail: 80 rows)


class Engine(Protocol):
    name: str

    def fit(self, Z: np.ndarray) -> np.ndarray | None:
        """Fit on Z (NaN where a value is missing); may return the raw scores of a reference
        sample it already scored (the model calibrates on them instead of scoring a sample
        again)."""
        ...

    def raw_scores(self, Z: np.ndarray) -> np.ndarray: ...

    def save(self, directory: Path) -> dict[str, Any]: ...

    def close(self) -> None: ...


_CONTROLLER: list[Any] = []


def one_blas_thread() -> Any:
    """A context that limits BLAS to one thread. The controller scans the loaded libraries
    once per process (a fresh ``threadpool_limits`` scans them on every call: 20 ms each on a
    busy machine, more than scoring a small batch)."""
    from threadpoolctl import ThreadpoolController

    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


def _sample_rows(rows: int, n: int, seed: int) -> np.ndarray:
    """The rows :func:`_subsample` keeps of an array of ``rows`` rows (more than n)."""
    return np.random.default_rng(seed).choice(rows, size=n, replace=False)


def _subsample(Z: np.ndarray, n: int, seed: int) -> np.ndarray:
    if Z.shape[0] <= n:
        return Z
    return Z[_sample_rows(Z.shape[0], n, seed)]


def forest_scores(forest: Any, X: np.ndarray) -> np.ndarray:
    """``-forest.score_samples(X)`` of a fitted scikit-learn IsolationForest, the same values
    bit for bit, in one plain loop over its trees. scikit-learn (1.9) scores through joblib,
    and per tree and row adds the leaf's decision path length and its average path length
    under a lock; here each tree's leaf depths are added up once a tree, then read per row by
    its leaf (``Tree.apply``), in the same order, so each row's sum is the same: 0.29 -> 0.26
    CPU-s a 100,000 x 12 float32 batch (bench/anomaly/forest_scores.py, median of 5 rounds).
    scikit-learn's own path where the forest lacks what the loop reads (another release),
    draws features, or is given no row."""
    try:
        from sklearn.ensemble._iforest import _average_path_length

        trees = forest.estimators_
        paths, averages = forest._decision_path_lengths, forest._average_path_length_per_tree
        denominator = len(trees) * float(_average_path_length([forest._max_samples])[0])
        own = X.ndim == 2 and forest._max_features == X.shape[1] == forest.n_features_in_
    except (ImportError, AttributeError, TypeError, IndexError):
        own = False
    if not own or not denominator or not X.shape[0]:  # no row: scikit-learn's error
        return -forest.score_samples(X)
    X = np.ascontiguousarray(X, dtype=np.float32)
    depths = np.zeros(X.shape[0])
    for tree, path, average in zip(trees, paths, averages, strict=True):
        depths += (path + average - 1.0)[tree.tree_.apply(X)]
    return 2 ** -(depths / denominator)


class SklearnEngine:
    """The embedded default engine (see the module docstring). Options given beside a preset
    override its values; a model saved by version 4 or 5 has no scale or bonus saved and reads
    back as the ensemble it was trained as."""

    name = "sklearn"
    VERSION = 6
    READS = (4, 5, 6)  # 4 saved no forest_clip (capped at 5); 4 and 5 no scale or bonus
    CLIP = 5.0  # |z| cap for the residual and the principal subspace (and the ensemble's forest)
    SUBSPACE_SHARE = 0.3  # variance share the principal subspace covers
    RESIDUAL_SHARE = 0.95  # variance share the residual is measured against
    WEIGHTS = {"forest": 1.0, "residual": 0.0, "distance": 0.0, "subspace": 0.0}
    SCALES = ("data", "robust")
    BONUSES = ("range", "broken", "none")
    # the default ("forest") and the engine of versions 4 and 5 ("ensemble"), by name
    PRESETS: dict[str, dict[str, Any]] = {
        "forest": {
            "weights": {"forest": 1.0, "residual": 0.0},
            "forest_clip": None,
            "forest_scale": "data",
            "bonus": "range",
        },
        "ensemble": {
            "weights": {"forest": 1.0, "residual": 0.5},
            "forest_clip": CLIP,
            "forest_scale": "robust",
            "bonus": "broken",
        },
    }

    def __init__(
        self,
        n_estimators: int = 100,
        max_samples: int = 256,
        seed: int = 0,
        weights: dict[str, float] | None = None,
        forest_clip: float | None = None,
        forest_scale: str = "data",
        bonus: str = "range",
    ) -> None:
        from ..errors import InputError

        self.n_estimators = n_estimators
        self.forest_clip = self.check_clip(forest_clip)
        if forest_scale not in self.SCALES:
            raise InputError(
                f"{forest_scale!r}: one of {', '.join(self.SCALES)}", key="sklearn.forest_scale"
            )
        if bonus not in self.BONUSES:
            raise InputError(f"{bonus!r}: one of {', '.join(self.BONUSES)}", key="sklearn.bonus")
        self.forest_scale = forest_scale
        self.bonus = bonus
        self.max_samples = max_samples
        self.seed = seed
        self.weights = self.check_weights(weights)
        # set from the reference by the model before fit (use_reference): the ratio of each
        # feature's upper and lower robust scale to their mean (the data's own scale), and the
        # largest |robust z| of each feature over the whole reference
        self.side_scales: np.ndarray | None = None  # (2, d): upper, lower
        self.zmax: np.ndarray | None = None
        self.forest: Any = None
        self.distance: MixtureDistance | None = None
        self.centre: np.ndarray | None = None
        self.basis: np.ndarray | None = None
        self.pca_mean: np.ndarray | None = None
        self.pca_basis: np.ndarray | None = None
        self._f32: dict[str, np.ndarray] = {}  # float32 copies of the residual's arrays
        self.n_features = 0
        self.norms: dict[str, tuple[float, float]] = {}

    @classmethod
    def check_weights(cls, weights: dict[str, float] | None) -> dict[str, float]:
        """The default weights with `weights` over them; an unknown component, a negative
        weight or no positive weight at all is an error naming ``sklearn.weights``."""
        from ..errors import InputError

        out = dict(cls.WEIGHTS)
        for key, value in (weights or {}).items():
            if key not in out:
                raise InputError(
                    f"unknown component {key!r}; known: {', '.join(out)}", key="sklearn.weights"
                )
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise InputError(f"{key}: a weight is a number >= 0", key="sklearn.weights")
            out[key] = float(value)
        if not any(w > 0 for w in out.values()):
            raise InputError("at least one weight must be above 0", key="sklearn.weights")
        return out

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> SklearnEngine:
        """The engine of ``anomaly.sklearn`` options: a preset (``forest``, the default, or
        ``ensemble``) with any option given beside it over the preset's value."""
        from ..errors import InputError

        preset = options.get("preset", "forest")
        if preset not in cls.PRESETS:
            raise InputError(
                f"unknown preset {preset!r}; known: {', '.join(cls.PRESETS)}", key="sklearn.preset"
            )
        base = cls.PRESETS[preset]
        weights = {**base["weights"], **(options.get("weights") or {})}
        return cls(
            n_estimators=int(options.get("n_estimators", 100)),
            max_samples=int(options.get("max_samples", 256)),
            seed=int(options.get("seed", 0)),
            weights=weights,
            forest_clip=options.get("forest_clip", base["forest_clip"]),
            forest_scale=options.get("forest_scale", base["forest_scale"]),
            bonus=options.get("bonus", base["bonus"]),
        )

    def use_reference(self, left: np.ndarray, right: np.ndarray, zmax: np.ndarray) -> None:
        """What the engine learns from the scaler and the whole reference, before :meth:`fit`:
        the robust scales (to put the forest's input back on the data's own scale) and, per
        feature, the second largest |z| of the reference (the ``range`` bonus)."""
        with np.errstate(over="ignore", invalid="ignore"):  # scales near the float limit
            mean = np.maximum(left / 2.0 + right / 2.0, 1e-300)
            ratios = np.vstack([right / mean, left / mean])
        # where a ratio is not a number (an infinite scale) the forest reads the z-score itself
        self.side_scales = np.where(np.isfinite(ratios), ratios, 1.0)
        self.zmax = np.asarray(zmax, dtype=float)

    @staticmethod
    def check_clip(value: Any) -> float | None:
        from ..errors import InputError

        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
            raise InputError("a number > 0, or null for no cap", key="sklearn.forest_clip")
        return float(value)

    def _inputs(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """What the components read, in few passes over Z (a batch of 100,000 x 200 is 160 MB):
        each row's excess for the bonus, the forest's input and the z-scores capped at CLIP (for
        the residual and the subspace; None when neither is on), float32 (what scikit-learn's
        trees convert their input to anyway; the residual's products in float32 cost a third
        of float64's, and the scores differ in the seventh digit). A missing value reads as the
        median (0).

        The forest reads each feature on the data's own scale (``forest_scale: data``): the
        robust z-score times the side's scale over the mean of both sides, ``(x - median) /
        mean scale``, one affine map per column; an Isolation Forest's splits do not change
        under such a map, so the forest ranks rows as scikit-learn's forest on the encoded
        columns does. ``robust`` reads the z-scores themselves, whose left and right scales
        differ (the ensemble's forest, capped at ``forest_clip``)."""
        C = np.empty(Z.shape, dtype=np.float32)
        C[...] = Z
        np.nan_to_num(C, copy=False)
        top = self._excess(C)
        w, cap, forest = self.weights, self.forest_clip, None
        needs_capped = w["residual"] > 0 or w["subspace"] > 0
        if w["forest"] > 0:
            if self.forest_scale == "data" and self.side_scales is not None:
                up, low = self.side_scales.astype(np.float32)
                forest = C * up
                np.multiply(C, low, out=forest, where=C < 0)
                if cap is not None:
                    np.clip(forest, -cap, cap, out=forest)
            elif cap != self.CLIP or not needs_capped:
                forest = C.copy() if cap is None else np.clip(C, -cap, cap)
        if not needs_capped:
            return top, forest, None
        np.clip(C, -self.CLIP, self.CLIP, out=C)
        if w["forest"] > 0 and forest is None:
            forest = C
        return top, forest, C

    def _excess(self, C: np.ndarray) -> np.ndarray:
        """Per row, how far its most extreme value lies beyond where the bonus starts (<= 0:
        no bonus): BROKEN robust SDs (``broken``), or RANGE_FACTOR times the reference's own
        range of that feature (``range``; :meth:`Model.beyond_range` has the same factor). The
        range is the feature's second largest |z| in the reference, so a batch scored against
        itself ranks as the forest alone does unless one of its values lies four times beyond
        all the others: a value off by a factor of a million in a self-fitted batch still ranks
        first."""
        if not C.shape[1] or self.bonus == "none":
            return np.zeros(len(C))
        if self.bonus == "range" and self.zmax is not None and self.zmax.shape == (C.shape[1],):
            limit = (RANGE_FACTOR * np.maximum(self.zmax, 1.0)).astype(np.float32)
            # the columns with a value beyond the limit (usually none: two reductions)
            cols = np.flatnonzero((C.max(axis=0) > limit) | (-C.min(axis=0) > limit))
            if not cols.size:
                return np.full(len(C), -1.0)
            return (np.abs(C[:, cols]) - limit[cols]).max(axis=1).astype(float)
        top = np.maximum(C.max(axis=1), -C.min(axis=1)).astype(float)
        return top - self.BROKEN

    def _components(self, Z: np.ndarray) -> dict[str, np.ndarray]:
        return self._parts(Z)[0]

    def _parts(
        self, Z: np.ndarray, inputs: tuple | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        top, F, C = self._inputs(Z) if inputs is None else inputs
        out: dict[str, np.ndarray] = {}
        w = self.weights
        if w["forest"] > 0:
            out["forest"] = forest_scores(self.forest, F)
        if w["residual"] > 0:
            assert C is not None
            out["residual"] = self._residual(C, np.isnan(Z))
        if w["distance"] > 0:
            assert self.distance is not None
            out["distance"] = self.distance.score(Z)
        if w["subspace"] > 0:
            assert self.centre is not None and self.basis is not None and C is not None
            P = (C - self.centre) @ self.basis.T
            out["subspace"] = np.sqrt(np.einsum("ij,ij->i", P, P))
        return out, top

    MAX_PATTERNS = 64  # missing-value patterns projected exactly (the most common ones)
    F32_RESOLUTION = 1e-5  # relative: a float32 residual below this share of |row| is rounding

    def _residual(self, C: np.ndarray, missing: np.ndarray) -> np.ndarray:
        """Distance from the principal subspace. A row with missing values is measured on the
        columns it has: its best fit in the subspace from those columns alone, and the
        distance on them (a null read as the median would break the correlations and make
        every row with a null look unusual: that is the null-rate monitor's business)."""
        assert self.pca_mean is not None and self.pca_basis is not None
        B = self.pca_basis
        k, d = B.shape
        if 2 * k <= d:  # |D|^2 - |D B'|^2: one product of k columns, in float64 (a difference)
            D = C - self.pca_mean
            P = D @ B.T
            sq = np.einsum("ij,ij->i", D, D) - np.einsum("ij,ij->i", P, P)
        else:  # the projection on the complement: one product of d - k columns, in float32
            if "complement" not in self._f32:
                from scipy.linalg import null_space

                self._f32["mean"] = self.pca_mean.astype(np.float32)
                self._f32["complement"] = null_space(B).T.astype(np.float32)
            D = C - self._f32["mean"]
            Q = D @ self._f32["complement"].T
            sq = np.einsum("ij,ij->i", Q, Q).astype(float)
            # below float32's resolution of the row a residual is rounding, not distance (data
            # whose subspace holds every direction would otherwise score its rounding)
            sq[sq <= (self.F32_RESOLUTION**2) * np.einsum("ij,ij->i", D, D)] = 0.0
        out = np.sqrt(np.maximum(sq, 0.0))
        if not missing.any():
            return out
        rows = np.flatnonzero(missing.any(axis=1))
        patterns, inverse, counts = np.unique(
            missing[rows], axis=0, return_inverse=True, return_counts=True
        )
        inverse = inverse.ravel()
        for p in np.argsort(-counts, kind="stable")[: self.MAX_PATTERNS]:
            obs = ~patterns[p]
            idx = rows[inverse == p]
            if not obs.any():
                out[idx] = 0.0
                continue
            Do = D[np.ix_(idx, np.flatnonzero(obs))].astype(float)
            Bo = B[:, obs]
            coef, *_ = np.linalg.lstsq(Bo.T, Do.T, rcond=None)
            Ro = Do - coef.T @ Bo
            out[idx] = np.sqrt(np.einsum("ij,ij->i", Ro, Ro) * (obs.size / obs.sum()))
        return out

    def _combine(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        """A smooth maximum (log-sum-exp) of the weighted, scaled components: a row is about
        as anomalous as its most anomalous view, and a second view adds a little."""
        P = np.stack(
            [
                weight * (parts[key] - self.norms[key][0]) / self.norms[key][1]
                for key, weight in self.weights.items()
                if weight > 0
            ]
        )
        return logsumexp(P, axis=0)

    def fit(self, Z: np.ndarray) -> np.ndarray:
        ref = _subsample(Z, MAX_REF_ROWS, self.seed + 1)
        inputs = self._fit_components(Z, ref)
        with one_blas_thread():
            parts, top = self._parts(ref, inputs)
        self._set_norms(parts)
        return self._combine(parts) + self._beyond_cap(top)

    def fit_score(self, Z: np.ndarray, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Fit on the rows ``rows`` of Z (all of them when None) and score every row of Z in
        one pass: what :meth:`fit` then :meth:`raw_scores` of Z give, without scoring the
        reference twice. Returns the raw scores of Z and those of the reference."""
        sample = Z if rows is None else Z[rows]
        ref = sample
        if sample.shape[0] > MAX_REF_ROWS:  # as fit would: its own subsample of the reference
            pick = _sample_rows(sample.shape[0], MAX_REF_ROWS, self.seed + 1)
            rows = pick if rows is None else rows[pick]
            ref = Z[rows]
        self._fit_components(sample, ref)
        with one_blas_thread():
            parts, top = self._parts(Z)
        self._set_norms(parts if rows is None else {k: v[rows] for k, v in parts.items()})
        raw = self._combine(parts) + self._beyond_cap(top)
        return raw, raw if rows is None else raw[rows]

    def _set_norms(self, parts: dict[str, np.ndarray]) -> None:
        self.norms = {}
        for key, x in parts.items():
            median, q90 = (float(v) for v in np.quantile(x, [0.5, 0.9]))
            self.norms[key] = (median, max(q90 - median, abs(median) * 1e-6, 1e-9))

    def _fit_components(self, Z: np.ndarray, ref: np.ndarray) -> tuple:
        """Fit every component on the reference ``ref`` (the mixture on Z); returns the
        reference's inputs."""
        from sklearn.decomposition import PCA
        from sklearn.ensemble import IsolationForest

        inputs = self._inputs(ref)
        _, F, C32 = inputs
        C = None if C32 is None else C32.astype(float)  # the subspaces are fitted in float64
        self._f32 = {}
        self.n_features = int(ref.shape[1])
        w = self.weights
        # BLAS threads do not pay on these sizes, and cost a lot on a loaded machine
        with one_blas_thread():
            if w["forest"] > 0:
                self.forest = IsolationForest(
                    n_estimators=self.n_estimators,
                    max_samples=min(self.max_samples, ref.shape[0]),
                    random_state=self.seed,
                ).fit(F)
            if w["residual"] > 0:
                assert C is not None
                if C.shape[0] > C.shape[1] and np.ptp(C, axis=0).any():
                    pca = PCA(n_components=self.RESIDUAL_SHARE, svd_solver="covariance_eigh").fit(C)
                    self.pca_mean, self.pca_basis = pca.mean_, np.atleast_2d(pca.components_)
                else:  # too few rows (or no spread) for a subspace: the distance to the mean
                    self.pca_mean = C.mean(axis=0)
                    self.pca_basis = np.zeros((1, C.shape[1]))
            if w["distance"] > 0:
                self.distance = MixtureDistance.fit(Z, self.seed)
            if w["subspace"] > 0:
                assert C is not None
                self.centre = np.median(C, axis=0)
                _, s, vt = np.linalg.svd(C - self.centre, full_matrices=False)
                var = s**2
                k = 1
                if var.sum() > 0:
                    k = int(np.searchsorted(np.cumsum(var) / var.sum(), self.SUBSPACE_SHARE) + 1)
                self.basis = vt[: max(1, min(k, vt.shape[0]))]
        return inputs

    def raw_scores(self, Z: np.ndarray) -> np.ndarray:
        with one_blas_thread():
            parts, top = self._parts(Z)
            return self._combine(parts) + self._beyond_cap(top)

    BROKEN = 20.0  # |robust z| beyond which a value is broken rather than rare

    def _beyond_cap(self, excess: np.ndarray) -> np.ndarray:
        """`excess`: each row's from :meth:`_excess`. The log of how far a row's most extreme
        value lies beyond where the bonus starts (0 for the other rows): a forest cannot tell
        a value just beyond the values it was grown on from one a million robust SDs beyond
        them, and the second must rank first. ``range`` starts at RANGE_FACTOR times the
        reference's own largest |z| of the feature (and at least BROKEN), so no reference row
        gets it; ``broken`` (the ensemble's) at BROKEN for every feature: measured on the
        development sets, a bonus from the cap itself (5) cost 0.006 AUC, from 20 none within
        the noise, but it moves the ranking of a batch's own extremes (bench/anomaly)."""
        return np.log1p(np.maximum(excess, 0.0))

    def save(self, directory: Path) -> dict[str, Any]:
        import pickle

        if self.forest is not None:
            with open(directory / FOREST_FILE, "wb") as f:
                pickle.dump(self.forest, f, protocol=5)  # read back by load_forest only
        arrays = {
            k: None if getattr(self, k) is None else getattr(self, k).tolist()
            for k in ("centre", "basis", "pca_mean", "pca_basis")
        }
        return {
            "version": self.VERSION,
            "n_estimators": self.n_estimators,
            "max_samples": self.max_samples,
            "seed": self.seed,
            "n_features": self.n_features,
            "distance": None if self.distance is None else self.distance.to_dict(),
            **arrays,
            "norms": {k: list(v) for k, v in self.norms.items()},
            "weights": self.weights,
            "forest_clip": self.forest_clip,
            "forest_scale": self.forest_scale,
            "bonus": self.bonus,
            "side_scales": None if self.side_scales is None else self.side_scales.tolist(),
            "zmax": None if self.zmax is None else self.zmax.tolist(),
        }

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any]) -> SklearnEngine:
        if params.get("version") not in cls.READS:
            raise ModelError(
                f"the sklearn engine is not of version {cls.VERSION} (an earlier default)"
            )
        clip = params.get("forest_clip", cls.CLIP)  # version 4 capped the forest's input at 5
        if clip is not None and not (isinstance(clip, int | float) and clip > 0):
            raise ModelError("model.json: forest_clip is not a number > 0 or null")
        # versions 4 and 5: the forest on the robust z-scores, the bonus beyond BROKEN
        scale = params.get("forest_scale", "robust")
        bonus = params.get("bonus", "broken")
        if scale not in cls.SCALES or bonus not in cls.BONUSES:
            raise ModelError("model.json: forest_scale or bonus is not one this engine knows")
        eng = cls(
            params["n_estimators"],
            params["max_samples"],
            params["seed"],
            params["weights"],
            clip,
            scale,
            bonus,
        )
        eng.n_features = d = int(params["n_features"])
        if params.get("side_scales") is not None:
            a = np.asarray(params["side_scales"], dtype=float)
            if a.shape != (2, d):
                raise ModelError(f"model.json: side_scales does not match the model's {d} features")
            eng.side_scales = a
        if params.get("zmax") is not None:
            a = np.asarray(params["zmax"], dtype=float)
            if a.shape != (d,):
                raise ModelError(f"model.json: zmax does not match the model's {d} features")
            eng.zmax = a
        if scale == "data" and eng.side_scales is None:
            raise ModelError("model.json lacks the forest's scales (side_scales)")
        for key, dims in (("centre", 1), ("basis", 2), ("pca_mean", 1), ("pca_basis", 2)):
            if params.get(key) is None:
                continue
            a = np.asarray(params[key], dtype=float)
            a = np.atleast_2d(a) if dims == 2 else a
            if a.shape[-1] != d or a.ndim != dims:
                raise ModelError(f"model.json: {key} does not match the model's {d} features")
            setattr(eng, key, a)
        if params.get("distance") is not None:
            eng.distance = MixtureDistance.from_dict(params["distance"])
        if eng.weights["forest"] > 0:
            eng.forest = load_forest(directory, n_features=d)
        have = {
            "forest": eng.forest is not None,
            "residual": eng.pca_basis is not None and eng.pca_mean is not None,
            "distance": eng.distance is not None,
            "subspace": eng.basis is not None and eng.centre is not None,
        }
        missing = [k for k, w in eng.weights.items() if w > 0 and not have[k]]
        if missing:
            raise ModelError(f"model.json lacks the {', '.join(missing)} component")
        eng.norms = {k: (float(v[0]), float(v[1])) for k, v in params["norms"].items()}
        return eng

    def close(self) -> None:
        pass


class ModelError(ValueError):
    """A model directory that cannot be used; the message quotes nothing from the files."""


FOREST_FILE = "forest.pickle"
# the only globals a fitted IsolationForest pickles (scikit-learn >= 1.4, numpy 1 and 2)
_FOREST_GLOBALS = frozenset(
    [
        ("sklearn.ensemble._iforest", "IsolationForest"),
        ("sklearn.tree._classes", "ExtraTreeRegressor"),
        ("sklearn.tree._tree", "Tree"),
        ("numpy", "dtype"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
    ]
)


class _ForestUnpickler(pickle.Unpickler):
    """An unpickler that can build a forest and nothing else: any other class or function a
    file names (``os.system``, ``builtins.eval``, ...) is refused before it is looked up, so a
    crafted model file cannot run code when it is loaded."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _FOREST_GLOBALS:
            raise ModelError(f"{FOREST_FILE} refers to {module}.{name}, which no forest holds")
        return super().find_class(module, name)


def load_forest(directory: Path, n_features: int) -> Any:
    """The forest of a model directory: unpickled with only the classes a forest is made of
    allowed, then every tree's node indices checked, because scikit-learn follows them without
    bounds checks (a crafted file could otherwise make scoring read out of bounds)."""
    path = directory / FOREST_FILE
    if not path.is_file():
        if (directory / "iforest.joblib").is_file():
            raise ModelError(
                "the forest was saved by an earlier version as a plain joblib pickle "
                "(iforest.joblib), which can run any code when loaded"
            )
        raise ModelError(f"{FOREST_FILE} is missing")
    try:
        with open(path, "rb") as f:
            forest = _ForestUnpickler(f).load()
    except ModelError:
        raise
    except Exception as exc:  # a truncated or damaged file
        raise ModelError(f"{FOREST_FILE} cannot be read ({type(exc).__name__})") from exc
    _check_forest(forest, n_features)
    return forest


def _check_forest(forest: Any, n_features: int) -> None:
    from sklearn.ensemble import IsolationForest

    if not isinstance(forest, IsolationForest) or getattr(forest, "n_features_in_", None) != (
        n_features
    ):
        raise ModelError(f"{FOREST_FILE} is not a forest over the model's {n_features} features")
    trees = getattr(forest, "estimators_", [])
    features = getattr(forest, "estimators_features_", [])
    if not trees or len(features) != len(trees):
        raise ModelError(f"{FOREST_FILE} has no trees")
    for est, cols in zip(trees, features, strict=True):
        cols = np.asarray(cols)
        t = est.tree_
        n = int(t.node_count)
        left, right, feat = (np.asarray(a) for a in (t.children_left, t.children_right, t.feature))
        ids = np.arange(n)
        leaf = left == -1
        ok = (
            n >= 1
            and len(left) == len(right) == len(feat) == n
            and cols.ndim == 1
            and ((cols >= 0) & (cols < n_features)).all()
            and (leaf == (right == -1)).all()
            # children come after their parent: every walk down a tree ends at a leaf
            and ((left > ids) & (left < n) & (right > ids) & (right < n))[~leaf].all()
            and ((feat >= 0) & (feat < len(cols)))[~leaf].all()
            and est.n_features_in_ == len(cols)
        )
        if not ok:
            raise ModelError(f"{FOREST_FILE} holds a damaged tree")


def make_engine(name: str, options: dict[str, Any] | None = None) -> Engine:
    options = dict(options or {})
    if name == "sklearn":
        return SklearnEngine.from_options(options)
    if name == "h2o":
        from .h2o_engine import H2OEngine

        return H2OEngine.from_options(options)
    from ..errors import InputError

    raise InputError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}", key="engine")


def load_engine(name: str, directory: Path, params: dict[str, Any], options: dict | None = None):
    if name == "sklearn":
        return SklearnEngine.load(directory, params)
    if name == "h2o":
        from .h2o_engine import H2OEngine

        return H2OEngine.load(directory, params, options or {})
    from ..errors import InputError

    raise InputError(f"the model uses an engine other than {', '.join(ENGINES)}", key="engine")
