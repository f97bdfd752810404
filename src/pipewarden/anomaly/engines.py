"""Engines: one interface, raw scores where higher means more anomalous.

Every engine reads the same input, the robust z-score matrix of the encoded features
(:mod:`pipewarden.anomaly.robust`), so scaling and encoding never differ between engines, and
every engine's raw scores go through the same calibration (:mod:`pipewarden.anomaly.calibrate`).

- ``sklearn`` (default, embedded, no JVM): two components, each put on a common scale by its
  median and 90th percentile on the reference (``(x - median) / (q90 - median)``), weighted
  and combined by a smooth maximum (``log sum exp``), then calibrated as a whole:

  - *forest* (weight 1): a 100-tree scikit-learn Isolation Forest on the z-scores capped at
    +-5 (the cap keeps nearly constant columns, a pixel blank in 99% of rows, from dominating
    every split with enormous z-scores);
  - *residual* (weight 0.5): the distance of the row from the principal subspace that holds
    95% of the reference's variance (scikit-learn's PCA on the capped z-scores): rows whose
    values are each ordinary but whose combination breaks the correlations, which
    axis-parallel trees miss.

  Chosen on the development group of real data sets of the benchmark and checked on its
  held-out group (``bench/anomaly``). Two more components are options (``sklearn.weights``),
  off by default: *distance* (the distance to the nearest mode of a Gaussian mixture, missing
  values marginalised out) and *subspace* (the length of the projection on the components
  holding the first 30% of the variance). The previous default (engine version 3) was forest
  1 (50 trees) + distance 0.5 + subspace 1.
- ``h2o``: H2O's Isolation Forest or Extended Isolation Forest (:mod:`.h2o_engine`).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .robust import MixtureDistance, logsumexp

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


def _subsample(Z: np.ndarray, n: int, seed: int) -> np.ndarray:
    if Z.shape[0] <= n:
        return Z
    rng = np.random.default_rng(seed)
    return Z[rng.choice(Z.shape[0], size=n, replace=False)]


class SklearnEngine:
    """The embedded default engine (see the module docstring)."""

    name = "sklearn"
    VERSION = 5
    READS = (4, 5)  # version 4 saved no forest_clip: its forest read z-scores capped at 5
    CLIP = 5.0  # |z| cap for the forest, the residual and the principal subspace
    SUBSPACE_SHARE = 0.3  # variance share the principal subspace covers
    RESIDUAL_SHARE = 0.95  # variance share the residual is measured against
    WEIGHTS = {"forest": 1.0, "residual": 0.5, "distance": 0.0, "subspace": 0.0}

    def __init__(
        self,
        n_estimators: int = 100,
        max_samples: int = 256,
        seed: int = 0,
        weights: dict[str, float] | None = None,
        forest_clip: float | None = CLIP,
    ) -> None:
        self.n_estimators = n_estimators
        self.forest_clip = self.check_clip(forest_clip)
        self.max_samples = max_samples
        self.seed = seed
        self.weights = self.check_weights(weights)
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

    @staticmethod
    def check_clip(value: Any) -> float | None:
        from ..errors import InputError

        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
            raise InputError("a number > 0, or null for no cap", key="sklearn.forest_clip")
        return float(value)

    def _inputs(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """What the components read, in few passes over Z (a batch of 100,000 x 200 is 160 MB):
        the largest |z| of each row (for the bonus), the forest's input and the z-scores
        capped at CLIP, both float32 (what scikit-learn's trees convert their input to anyway;
        the residual's products in float32 cost a third of float64's, and the scores differ in
        the seventh digit). With the default cap the forest reads the capped array itself. A
        missing value reads as the median (0)."""
        C = np.empty(Z.shape, dtype=np.float32)
        C[...] = Z
        np.nan_to_num(C, copy=False)
        top = (
            np.maximum(C.max(axis=1), -C.min(axis=1)).astype(float)
            if C.shape[1]
            else np.zeros(len(C))
        )
        cap, forest = self.forest_clip, None
        if self.weights["forest"] > 0 and cap != self.CLIP:
            forest = C.copy() if cap is None else np.clip(C, -cap, cap)
        np.clip(C, -self.CLIP, self.CLIP, out=C)
        if self.weights["forest"] > 0 and forest is None:
            forest = C
        return top, forest, C

    def _components(self, Z: np.ndarray) -> dict[str, np.ndarray]:
        return self._parts(Z)[0]

    def _parts(self, Z: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        top, F, C = self._inputs(Z)
        out: dict[str, np.ndarray] = {}
        w = self.weights
        if w["forest"] > 0:
            out["forest"] = -self.forest.score_samples(F)
        if w["residual"] > 0:
            out["residual"] = self._residual(C, np.isnan(Z))
        if w["distance"] > 0:
            assert self.distance is not None
            out["distance"] = self.distance.score(Z)
        if w["subspace"] > 0:
            assert self.centre is not None and self.basis is not None
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
        from sklearn.decomposition import PCA
        from sklearn.ensemble import IsolationForest

        ref = _subsample(Z, MAX_REF_ROWS, self.seed + 1)
        _, F, C32 = self._inputs(ref)
        C = C32.astype(float)  # the subspaces are fitted in float64
        self._f32 = {}
        self.n_features = int(C.shape[1])
        w = self.weights
        # BLAS threads do not pay on these sizes, and cost a lot on a loaded machine
        with one_blas_thread():
            if w["forest"] > 0:
                self.forest = IsolationForest(
                    n_estimators=self.n_estimators,
                    max_samples=min(self.max_samples, C.shape[0]),
                    random_state=self.seed,
                ).fit(F)
            if w["residual"] > 0:
                if C.shape[0] > C.shape[1] and np.ptp(C, axis=0).any():
                    pca = PCA(n_components=self.RESIDUAL_SHARE, svd_solver="covariance_eigh").fit(C)
                    self.pca_mean, self.pca_basis = pca.mean_, np.atleast_2d(pca.components_)
                else:  # too few rows (or no spread) for a subspace: the distance to the mean
                    self.pca_mean = C.mean(axis=0)
                    self.pca_basis = np.zeros((1, C.shape[1]))
            if w["distance"] > 0:
                self.distance = MixtureDistance.fit(Z, self.seed)
            if w["subspace"] > 0:
                self.centre = np.median(C, axis=0)
                _, s, vt = np.linalg.svd(C - self.centre, full_matrices=False)
                var = s**2
                k = 1
                if var.sum() > 0:
                    k = int(np.searchsorted(np.cumsum(var) / var.sum(), self.SUBSPACE_SHARE) + 1)
                self.basis = vt[: max(1, min(k, vt.shape[0]))]
            parts, top = self._parts(ref)
        self.norms = {}
        for key, x in parts.items():
            median, q90 = (float(v) for v in np.quantile(x, [0.5, 0.9]))
            self.norms[key] = (median, max(q90 - median, abs(median) * 1e-6, 1e-9))
        return self._combine(parts) + self._beyond_cap(top)

    def raw_scores(self, Z: np.ndarray) -> np.ndarray:
        with one_blas_thread():
            parts, top = self._parts(Z)
            return self._combine(parts) + self._beyond_cap(top)

    BROKEN = 20.0  # |robust z| beyond which a value is broken rather than rare

    def _beyond_cap(self, top: np.ndarray) -> np.ndarray:
        """`top`: each row's largest |z|. How far a row's most extreme value lies beyond BROKEN robust SDs (log scale; 0 for
        the other rows): the capped components cannot tell a value 6 robust SDs out from one
        a million out, and the second must rank first. Measured on the development sets,
        a bonus from the cap itself (5) cost 0.006 AUC, from 20 none within the noise."""
        return np.log1p(np.maximum(top - self.BROKEN, 0.0))

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
        eng = cls(
            params["n_estimators"], params["max_samples"], params["seed"], params["weights"], clip
        )
        eng.n_features = d = int(params["n_features"])
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
        return SklearnEngine(
            n_estimators=int(options.get("n_estimators", 100)),
            max_samples=int(options.get("max_samples", 256)),
            seed=int(options.get("seed", 0)),
            weights=options.get("weights"),
            **({"forest_clip": options["forest_clip"]} if "forest_clip" in options else {}),
        )
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
