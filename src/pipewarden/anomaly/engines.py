"""Engines: one interface, raw scores where higher means more anomalous.

Every engine reads the same input, the robust z-score matrix of the encoded features
(:mod:`pipewarden.anomaly.robust`), so scaling and encoding never differ between engines, and
every engine's raw scores go through the same calibration (:mod:`pipewarden.anomaly.calibrate`).

- ``sklearn`` (default, embedded, no JVM): an Isolation Forest on the z-scores plus the
  Mahalanobis distance as one extra feature, combined with the Mahalanobis distance itself:
  ``raw = -ln p_iforest - 0.5 ln p_mahalanobis`` where each ``p`` is that component's tail share
  on the reference. The forest catches rows isolated in few splits (several clusters, skewed
  columns); the distance catches rows whose values are each ordinary but whose combination
  breaks the correlations, which axis-parallel trees miss. The weight and the 50 trees (half
  of scikit-learn's default, so that fitting, calibrating and scoring together stay within the
  time of a plain 100-tree forest) were chosen on the benchmark (``bench/anomaly``).
- ``h2o``: H2O's Isolation Forest or Extended Isolation Forest (:mod:`.h2o_engine`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .calibrate import Calibrator
from .robust import Mahalanobis

ENGINES = ("sklearn", "h2o")
MAX_FIT_ROWS = 100_000  # rows the robust statistics are fitted on
MAX_DISTANCE_ROWS = 50_000  # rows the covariance of the distance is fitted on
MAX_REF_ROWS = 20_000  # reference rows scored to calibrate (the top 1% tail: 200 rows)


class Engine(Protocol):
    name: str

    def fit(self, Z: np.ndarray) -> np.ndarray | None:
        """Fit on Z; may return the raw scores of a reference sample it already scored (the
        model calibrates on them instead of scoring a sample again)."""
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
    WEIGHT_DISTANCE = 0.5

    def __init__(self, n_estimators: int = 50, max_samples: int = 256, seed: int = 0) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.seed = seed
        self.forest: Any = None
        self.distance: Mahalanobis | None = None
        self.cal_forest: Calibrator | None = None
        self.cal_distance: Calibrator | None = None

    def _augment(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.distance is not None
        d = self.distance.score(Z)
        return np.column_stack([np.clip(Z, -1e3, 1e3), np.sqrt(d)]), d

    def fit(self, Z: np.ndarray) -> np.ndarray:
        from sklearn.ensemble import IsolationForest

        self.distance = Mahalanobis.fit(_subsample(Z, MAX_DISTANCE_ROWS, self.seed))
        ref = _subsample(Z, MAX_REF_ROWS, self.seed + 1)
        A, d = self._augment(ref)
        self.forest = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, A.shape[0]),
            random_state=self.seed,
        ).fit(A)
        forest = -self.forest.score_samples(A)
        self.cal_forest = Calibrator.fit(forest)
        self.cal_distance = Calibrator.fit(d)
        return self._combine(forest, d)

    def _combine(self, forest: np.ndarray, d: np.ndarray) -> np.ndarray:
        assert self.cal_forest and self.cal_distance
        f = -np.log(self.cal_forest.tail_p(forest))
        m = -np.log(self.cal_distance.tail_p(d))
        return f + self.WEIGHT_DISTANCE * m

    def raw_scores(self, Z: np.ndarray) -> np.ndarray:
        assert self.forest is not None and self.cal_forest and self.cal_distance
        A, d = self._augment(Z)
        return self._combine(-self.forest.score_samples(A), d)

    def save(self, directory: Path) -> dict[str, Any]:
        import joblib

        assert self.distance and self.cal_forest and self.cal_distance
        joblib.dump(self.forest, directory / "iforest.joblib")
        return {
            "n_estimators": self.n_estimators,
            "max_samples": self.max_samples,
            "seed": self.seed,
            "distance": self.distance.to_dict(),
            "cal_forest": self.cal_forest.to_dict(),
            "cal_distance": self.cal_distance.to_dict(),
        }

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any]) -> SklearnEngine:
        import joblib

        eng = cls(params["n_estimators"], params["max_samples"], params["seed"])
        eng.forest = joblib.load(directory / "iforest.joblib")
        eng.distance = Mahalanobis.from_dict(params["distance"])
        eng.cal_forest = Calibrator.from_dict(params["cal_forest"])
        eng.cal_distance = Calibrator.from_dict(params["cal_distance"])
        return eng

    def close(self) -> None:
        pass


def make_engine(name: str, options: dict[str, Any] | None = None) -> Engine:
    options = dict(options or {})
    if name == "sklearn":
        return SklearnEngine(
            n_estimators=int(options.get("n_estimators", 50)),
            max_samples=int(options.get("max_samples", 256)),
            seed=int(options.get("seed", 0)),
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

    raise InputError(f"model uses an unknown engine {name!r}", key="engine")
