"""Engines: one interface, raw scores where higher means more anomalous.

Every engine reads the same input, the robust z-score matrix of the encoded features
(:mod:`pipewarden.anomaly.robust`), so scaling and encoding never differ between engines, and
every engine's raw scores go through the same calibration (:mod:`pipewarden.anomaly.calibrate`).

- ``sklearn`` (default, embedded, no JVM): three components, each put on a common scale by
  its median and 90th percentile on the reference (``(x - median) / (q90 - median)``),
  weighted, combined by a smooth maximum (``log sum exp``) and calibrated as a whole:

  - *forest* (weight 1): a 50-tree Isolation Forest on the z-scores capped at +-5. The cap
    keeps nearly constant columns (a pixel that is blank in 99% of rows) from dominating
    every split with enormous z-scores;
  - *distance* (weight 0.5): the distance to the nearest mode of a Gaussian mixture
    (:class:`~pipewarden.anomaly.robust.MixtureDistance`, 1 to 5 components chosen by BIC;
    with one, the squared Mahalanobis distance) on the uncapped z-scores: rows whose values
    are each ordinary but whose combination breaks the correlations, which axis-parallel
    trees miss, and rows between the segments of data that is not one cloud; uncapped, so a
    value ten times further out ranks higher; a missing value is left out, not read as the
    median;
  - *subspace* (weight 1): the length of the row's projection (capped z-scores, centred on
    the median) onto the principal components that carry the first 30% of the reference's
    variance: rows far out along the data's main directions of variation (e.g. every size
    measure large together), which whitening in the distance plays down.

  Weights, cap and share were chosen on the benchmark (``bench/anomaly``), measured on
  generated and real data sets and checked on held-out ones; no single component or weighting
  wins on all of them, so the weights are an option (``sklearn.weights``; the forest alone
  suits data made of well separated clusters).
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
MAX_REF_ROWS = 20_000  # reference rows scored to calibrate (the top 1% tail: 200 rows)


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


def _subsample(Z: np.ndarray, n: int, seed: int) -> np.ndarray:
    if Z.shape[0] <= n:
        return Z
    rng = np.random.default_rng(seed)
    return Z[rng.choice(Z.shape[0], size=n, replace=False)]


class SklearnEngine:
    """The embedded default engine (see the module docstring)."""

    name = "sklearn"
    VERSION = 3
    CLIP = 5.0  # |z| cap for the forest and the principal subspace
    SUBSPACE_SHARE = 0.3  # variance share the principal subspace covers
    WEIGHTS = {"forest": 1.0, "distance": 0.5, "subspace": 1.0}

    def __init__(
        self,
        n_estimators: int = 50,
        max_samples: int = 256,
        seed: int = 0,
        weights: dict[str, float] | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.seed = seed
        self.weights = self.check_weights(weights)
        self.forest: Any = None
        self.distance: MixtureDistance | None = None
        self.centre: np.ndarray | None = None
        self.basis: np.ndarray | None = None
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

    def _components(self, Z: np.ndarray) -> dict[str, np.ndarray]:
        assert self.forest is not None and self.distance is not None
        assert self.centre is not None and self.basis is not None
        C = np.clip(np.nan_to_num(Z), -self.CLIP, self.CLIP)  # missing: the median
        P = (C - self.centre) @ self.basis.T
        return {
            "forest": -self.forest.score_samples(C),
            "distance": self.distance.score(Z),
            "subspace": np.sqrt(np.einsum("ij,ij->i", P, P)),
        }

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
        from sklearn.ensemble import IsolationForest

        self.distance = MixtureDistance.fit(Z, self.seed)
        ref = _subsample(Z, MAX_REF_ROWS, self.seed + 1)
        C = np.clip(np.nan_to_num(ref), -self.CLIP, self.CLIP)
        self.centre = np.median(C, axis=0)
        _, s, vt = np.linalg.svd(C - self.centre, full_matrices=False)
        var = s**2
        k = 1
        if var.sum() > 0:
            k = int(np.searchsorted(np.cumsum(var) / var.sum(), self.SUBSPACE_SHARE) + 1)
        self.basis = vt[: max(1, min(k, vt.shape[0]))]
        self.forest = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, C.shape[0]),
            random_state=self.seed,
        ).fit(C)
        parts = self._components(ref)
        self.norms = {}
        for key, x in parts.items():
            median, q90 = (float(v) for v in np.quantile(x, [0.5, 0.9]))
            self.norms[key] = (median, max(q90 - median, abs(median) * 1e-6, 1e-9))
        return self._combine(parts)

    def raw_scores(self, Z: np.ndarray) -> np.ndarray:
        return self._combine(self._components(Z))

    def save(self, directory: Path) -> dict[str, Any]:
        import pickle

        assert self.distance is not None and self.centre is not None and self.basis is not None
        with open(directory / FOREST_FILE, "wb") as f:
            pickle.dump(self.forest, f, protocol=5)  # read back by load_forest only
        return {
            "version": self.VERSION,
            "n_estimators": self.n_estimators,
            "max_samples": self.max_samples,
            "seed": self.seed,
            "distance": self.distance.to_dict(),
            "centre": self.centre.tolist(),
            "basis": self.basis.tolist(),
            "norms": {k: list(v) for k, v in self.norms.items()},
            "weights": self.weights,
        }

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any]) -> SklearnEngine:
        if params.get("version") != cls.VERSION:
            raise ModelError(
                f"the sklearn engine is not of version {cls.VERSION} (an earlier default)"
            )
        eng = cls(params["n_estimators"], params["max_samples"], params["seed"], params["weights"])
        eng.centre = np.asarray(params["centre"], dtype=float)
        eng.basis = np.atleast_2d(np.asarray(params["basis"], dtype=float))
        eng.forest = load_forest(directory, n_features=eng.centre.shape[0])
        eng.distance = MixtureDistance.from_dict(params["distance"])
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
            n_estimators=int(options.get("n_estimators", 50)),
            max_samples=int(options.get("max_samples", 256)),
            seed=int(options.get("seed", 0)),
            weights=options.get("weights"),
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
