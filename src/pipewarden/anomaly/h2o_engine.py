"""The ``h2o`` engine: H2O's Isolation Forest and Extended Isolation Forest.

Cluster: shared with the other H2O engines, see :mod:`pipewarden.h2o_cluster`.

Persistence: a trained model is saved as H2O's **binary model** (``h2o.download_model``, loaded
back with ``h2o.upload_model``), which works with a local or a remote cluster. The pinned
``h2o==3.46.0.12`` refuses MOJO export (it is reserved to H2O-3 Secure); pinning 3.46.0.11
only for MOJO would hold back the client and tie us to an export path the vendor has closed.
The price: a binary model loads only into the same H2O version, so the version is recorded in
``model.json`` and checked on load with a clear error.

Raw score: minus the mean path length (shorter paths = more anomalous), then the shared
calibration. The engine reads the same robust z-scores as every engine (EIF's random
hyperplanes need comparable scales; the plain forest does not care).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..h2o_cluster import (  # noqa: F401  (the cluster helpers are part of this module's API)
    _quiet,
    check_reachable,
    ensure_cluster,
    h2o_module,
    local_pid,
    session,
    shutdown,
)
from .engines import ModelError


def _h2o():
    return h2o_module("pip install 'pipewarden[h2o]' (and Java 11+), or use --engine sklearn")


ALGORITHMS = ("isolation_forest", "extended_isolation_forest")


class H2OEngine:
    name = "h2o"

    def __init__(
        self,
        algorithm: str = "extended_isolation_forest",
        ntrees: int = 100,
        sample_size: int = 256,
        extension_level: int | None = None,
        seed: int = 1,
        url: str | None = None,
        max_mem: str = "1g",
        nthreads: int = -1,
        connect_timeout: float = 5.0,
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise InputError(
                f"unknown H2O algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}",
                key="h2o.algorithm",
            )
        self.algorithm = algorithm
        self.ntrees = ntrees
        self.sample_size = sample_size
        self.extension_level = extension_level
        self.seed = seed
        self.url = url
        self.max_mem = max_mem
        self.nthreads = nthreads
        self.connect_timeout = connect_timeout
        self.model: Any = None
        self.n_features = 0

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> H2OEngine:
        known = {
            "algorithm", "ntrees", "sample_size", "extension_level", "seed", "url",
            "max_mem", "nthreads", "connect_timeout",
        }  # fmt: skip
        return cls(**{k: v for k, v in options.items() if k in known})

    def _connect(self) -> None:
        ensure_cluster(self.url, self.max_mem, self.nthreads, self.connect_timeout)

    def _upload(self, Z: np.ndarray):
        h2o = _h2o()
        names = [f"f{j}" for j in range(Z.shape[1])]
        fd, path = tempfile.mkstemp(suffix=".csv", prefix="pw-h2o-")
        os.close(fd)
        try:
            # a missing value (NaN) goes in as the median, z-score 0
            np.savetxt(path, np.clip(np.nan_to_num(Z), -1e6, 1e6), delimiter=",", fmt="%.6g",
                       header=",".join(names), comments="")  # fmt: skip
            with _quiet():
                return h2o.upload_file(
                    path, header=1, col_types=["numeric"] * len(names), col_names=names
                )
        finally:
            os.unlink(path)

    def fit(self, Z: np.ndarray) -> None:
        self._connect()
        from h2o.estimators import (
            H2OExtendedIsolationForestEstimator,
            H2OIsolationForestEstimator,
        )

        self.n_features = Z.shape[1]
        frame = self._upload(Z)
        sample = min(self.sample_size, Z.shape[0])
        if self.algorithm == "isolation_forest":
            est = H2OIsolationForestEstimator(
                ntrees=self.ntrees, sample_size=sample, seed=self.seed, ignore_const_cols=False
            )
        else:
            level = self.extension_level
            if level is None:
                level = max(self.n_features - 1, 0)
            est = H2OExtendedIsolationForestEstimator(
                ntrees=self.ntrees,
                sample_size=sample,
                extension_level=min(level, max(self.n_features - 1, 0)),
                seed=self.seed,
                ignore_const_cols=False,
            )
        with _quiet():
            est.train(training_frame=frame)
        self.model = est
        _h2o().remove(frame)

    def raw_scores(self, Z: np.ndarray) -> np.ndarray:
        h2o = _h2o()
        frame = self._upload(Z)
        with _quiet():
            pred = self.model.predict(frame)
        fd, path = tempfile.mkstemp(suffix=".csv", prefix="pw-h2o-pred-")
        os.close(fd)
        try:
            h2o.download_csv(pred["mean_length"], path)
            lengths = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=1)
        finally:
            os.unlink(path)
            h2o.remove(frame)
            h2o.remove(pred)
        return -np.asarray(lengths, dtype=float)

    def save(self, directory: Path) -> dict[str, Any]:
        h2o = _h2o()
        saved = h2o.download_model(self.model, path=str(directory), filename="h2o_model")
        return {
            "algorithm": self.algorithm,
            "ntrees": self.ntrees,
            "sample_size": self.sample_size,
            "extension_level": self.extension_level,
            "seed": self.seed,
            "n_features": self.n_features,
            "file": Path(saved).name,
            "h2o_version": h2o.__version__,
            "persistence": "h2o binary model (MOJO export is refused by the pinned H2O)",
        }

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], options: dict[str, Any]) -> H2OEngine:
        h2o = _h2o()
        if params.get("h2o_version") != h2o.__version__:
            raise InputError(
                f"the model was saved by H2O {params.get('h2o_version')} and H2O "
                f"{h2o.__version__} is installed; binary H2O models load only into the same version",
                file=str(directory),
                hint=f"install h2o=={params.get('h2o_version')} or train the model again",
            )
        conn = {
            k: options[k] for k in ("url", "max_mem", "nthreads", "connect_timeout") if k in options
        }
        eng = cls(
            params["algorithm"],
            params["ntrees"],
            params["sample_size"],
            params.get("extension_level"),
            params.get("seed", 1),
            **conn,
        )
        eng.n_features = params.get("n_features", 0)
        name = str(params["file"])
        if Path(name).name != name or name in ("", ".", ".."):
            # the binary model lies in the model directory: never upload another file
            raise ModelError("the H2O model file named in model.json is not in the directory")
        eng._connect()
        with _quiet():
            eng.model = h2o.upload_model(str(directory / params["file"]))
        return eng

    def close(self) -> None:
        if self.model is None:
            return
        with contextlib.suppress(Exception):
            _h2o().remove(self.model)
        self.model = None
