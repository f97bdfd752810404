"""The ``h2o`` engine: H2O's GLRM (a low-rank model of the whole table) or a GBM per column.

It runs on the process's one H2O cluster (:mod:`pipewarden.h2o_cluster`: a local H2O started on
demand and shut down after the command, or an existing cluster at ``url``). As in the embedded
engine, 10% of each column's known cells are hidden from the training and their error is the
column's expected error; ``preserve_variance`` gives numeric fills the spread the missing
values would have had (``spread.py``, from the residuals on the hidden cells) and draws categories from the GBM's class probabilities (GLRM gives a category, not
probabilities: its categories are the most likely one in both modes).

Data goes to H2O as CSV (numbers in the column's units, categories as labels ``c0``, ``c1``,
...) and comes back as CSV: no pandas. Models are kept as H2O binary models, embedded base64
in the model document; they load only into the H2O version that saved them (checked).
"""

from __future__ import annotations

import base64
import contextlib
import csv
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..h2o_cluster import _quiet, ensure_cluster, h2o_module
from .embedded import HOLDOUT, HOLDOUT_MAX, MIN_HOLDOUT, MIN_KNOWN
from .spread import fit_stats, legacy_stats, widen
from .table import ColumnSpec

ALGORITHMS = ("glrm", "gbm")


def _h2o():
    return h2o_module("pip install 'pipewarden[h2o]' (and Java 11+), or use --engine embedded")


class H2OImputeEngine:
    name = "h2o"

    def __init__(
        self,
        algorithm: str = "glrm",
        rank: int | None = None,
        ntrees: int = 50,
        seed: int = 0,
        gamma: float = 5.0,
        url: str | None = None,
        max_mem: str = "1g",
        nthreads: int = -1,
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise InputError(
                f"unknown H2O imputation algorithm {algorithm!r}",
                key="h2o.algorithm",
                hint=" or ".join(ALGORITHMS),
            )
        self.algorithm, self.rank, self.ntrees, self.seed = algorithm, rank, ntrees, seed
        self.url, self.max_mem, self.nthreads = url, max_mem, nthreads
        self.gamma = gamma
        self.specs: list[ColumnSpec] = []
        self.models: dict[int, Any] = {}  # glrm: {-1: model}; gbm: {column: model}
        self.stats: dict[int, dict[str, float]] = {}  # column -> error, baseline, stretch, n

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> H2OImputeEngine:
        known = {"algorithm", "rank", "ntrees", "seed", "gamma", "url", "max_mem", "nthreads"}
        return cls(**{k: v for k, v in options.items() if k in known})

    def _connect(self) -> None:
        ensure_cluster(self.url, self.max_mem, self.nthreads)

    # -------------------------------------------------------------- frames
    def _names(self) -> list[str]:
        return [f"f{j}" for j in range(len(self.specs))]

    def _upload(self, X: np.ndarray):
        h2o = _h2o()
        fd, path = tempfile.mkstemp(suffix=".csv", prefix="pw-impute-")
        types = ["numeric" if s.numeric else "enum" for s in self.specs]
        try:
            with os.fdopen(fd, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(self._names())
                for row in X:
                    w.writerow(
                        "" if math.isnan(v) else (repr(float(v)) if s.numeric else f"c{int(v)}")
                        for v, s in zip(row, self.specs, strict=True)
                    )
            with _quiet():
                frame = h2o.upload_file(
                    path, header=1, col_types=types, col_names=self._names(),
                    na_strings=[""] * len(types),
                )  # fmt: skip
            # a category column must know every level, even one this frame lacks
            return frame
        finally:
            os.unlink(path)

    def _download(self, frame) -> list[list[str]]:
        h2o = _h2o()
        fd, path = tempfile.mkstemp(suffix=".csv", prefix="pw-impute-pred-")
        os.close(fd)
        try:
            h2o.download_csv(frame, path)
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
        finally:
            os.unlink(path)
        return rows

    # -------------------------------------------------------------- fit
    def fit(self, X: np.ndarray, specs: list[ColumnSpec]) -> None:
        self._connect()
        self.specs = specs
        rng = np.random.default_rng(self.seed)
        hidden = np.zeros(X.shape, dtype=bool)
        for j in range(X.shape[1]):
            known = np.flatnonzero(~np.isnan(X[:, j]))
            n = min(int(round(HOLDOUT * known.size)), HOLDOUT_MAX)
            if known.size >= MIN_KNOWN and n >= MIN_HOLDOUT:
                hidden[rng.choice(known, n, replace=False), j] = True
        Xt = np.where(hidden, np.nan, X)
        frame = self._upload(Xt)
        h2o = _h2o()
        try:
            if self.algorithm == "glrm":
                self._fit_glrm(frame)
            else:
                self._fit_gbm(frame, Xt)
            pred = self._predict_values(frame, probs=True)
        finally:
            h2o.remove(frame)
        for j, s in enumerate(specs):
            rows = np.flatnonzero(hidden[:, j])
            if rows.size == 0 or self._column_model(j) is None:
                continue
            known = ~np.isnan(Xt[:, j])
            if s.numeric:
                y = (X[rows, j] - s.mean) / s.std
                p = (pred[0][rows, j] - s.mean) / s.std
                yk = (Xt[known, j] - s.mean) / s.std
                var = float(np.var(yk)) or 1.0
                error = math.sqrt(float(np.mean((y - p) ** 2)) / var)
                base = math.sqrt(float(np.mean((y - yk.mean()) ** 2)) / var)
                missing = (pred[0][np.isnan(Xt[:, j]) & ~hidden[:, j], j] - s.mean) / s.std
                spread = fit_stats(missing, p, y - p)
            else:
                y = X[rows, j].astype(int)
                yk = Xt[known, j].astype(int)
                error = float(np.mean(pred[0][rows, j] != y))
                base = 1.0 - float(np.bincount(yk).max() / len(yk))
                spread = {}
            self.stats[j] = {"error": error, "baseline": base, **spread,
                             "n_valid": int(rows.size), "n_train": int(known.sum())}  # fmt: skip

    def _column_model(self, j: int):
        return self.models.get(-1) if self.algorithm == "glrm" else self.models.get(j)

    def _fit_glrm(self, frame) -> None:
        from h2o.estimators import H2OGeneralizedLowRankEstimator

        p = len(self.specs)
        rank = self.rank or max(1, min(p - 1, math.ceil(p / 2)))
        est = H2OGeneralizedLowRankEstimator(
            k=rank, loss="quadratic", multi_loss="categorical", transform="standardize",
            regularization_x="quadratic", regularization_y="quadratic", gamma_x=self.gamma,
            gamma_y=self.gamma, max_iterations=300, init="svd", seed=self.seed, impute_original=True,
        )  # fmt: skip
        with _quiet():
            est.train(training_frame=frame)
        self.models = {-1: est}

    def _fit_gbm(self, frame, Xt: np.ndarray) -> None:
        from h2o.estimators import H2OGradientBoostingEstimator

        names = self._names()
        self.models = {}
        for j in range(len(self.specs)):
            known = ~np.isnan(Xt[:, j])
            if known.sum() < MIN_KNOWN:
                continue
            sub = frame[frame[names[j]].isna().logical_negation(), :]
            est = H2OGradientBoostingEstimator(
                ntrees=self.ntrees, max_depth=5, learn_rate=0.1, seed=self.seed, min_rows=5
            )
            with _quiet():
                est.train(x=[n for n in names if n != names[j]], y=names[j], training_frame=sub)
            _h2o().remove(sub)
            self.models[j] = est

    def _predict_values(self, frame, probs: bool = False):
        """(values n x p: number or category index, NaN where no model; class probabilities
        per category column of a GBM)."""
        n = frame.nrows
        out = np.full((n, len(self.specs)), np.nan)
        proba: dict[int, np.ndarray] = {}
        h2o = _h2o()
        if self.algorithm == "glrm":
            with _quiet():
                rec = self.models[-1].predict(frame)
            rows = self._download(rec)
            h2o.remove(rec)
            header, body = rows[0], rows[1:]
            for j, s in enumerate(self.specs):
                k = header.index(f"reconstr_{self._names()[j]}")
                out[:, j] = [_cell(r[k], s) for r in body]
            return out, proba
        for j, model in self.models.items():
            s = self.specs[j]
            with _quiet():
                pr = model.predict(frame)
            rows = self._download(pr)
            h2o.remove(pr)
            header, body = rows[0], rows[1:]
            out[:, j] = [_cell(r[0], s) for r in body]
            if not s.numeric:
                P = np.zeros((n, len(s.categories)))
                for k in range(len(s.categories)):
                    if f"c{k}" in header:
                        P[:, k] = [float(r[header.index(f"c{k}")]) for r in body]
                proba[j] = P
        return out, proba

    # -------------------------------------------------------------- transform
    def transform(
        self, X: np.ndarray, fill: np.ndarray, mode: str, rng: np.random.Generator
    ) -> np.ndarray:
        self._connect()
        frame = self._upload(X)
        try:
            values, proba = self._predict_values(frame)
        finally:
            _h2o().remove(frame)
        out = np.full(X.shape, np.nan)
        for j, s in enumerate(self.specs):
            rows = np.flatnonzero(fill[:, j])
            if rows.size == 0 or j not in self.stats:
                continue
            v = values[rows, j]
            if s.numeric:
                if mode == "preserve_variance":
                    st = self.stats[j]
                    if "resid_var" not in st:  # saved before the spread's numbers were kept
                        st = {**st, **legacy_stats(st["error"])}
                    z = widen((v - s.mean) / s.std, st, (s.lo - s.mean) / s.std,
                              (s.hi - s.mean) / s.std, rng)  # fmt: skip
                    v = z * s.std + s.mean
                out[rows, j] = np.clip(v, s.lo, s.hi)
            elif mode == "preserve_variance" and j in proba:
                P = proba[j][rows]
                cum = P.cumsum(axis=1)
                u = rng.random(len(rows))[:, None] * cum[:, -1:]
                out[rows, j] = np.minimum((cum < u).sum(axis=1), len(s.categories) - 1)
            else:
                out[rows, j] = v
        return out

    # -------------------------------------------------------------- report
    def expected_error(self, j: int) -> tuple[float | None, float | None]:
        st = self.stats.get(j)
        return (None, None) if st is None else (st["error"], st["baseline"])

    def column_info(self, j: int) -> dict[str, Any]:
        st = self.stats.get(j)
        if st is None:
            return {"model": None}
        name = "h2o_glrm" if self.algorithm == "glrm" else f"h2o_gbm ({self.ntrees} trees)"
        return {"model": name, "trained_on": st["n_train"], "error_measured_on": st["n_valid"]}

    # -------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        h2o = _h2o()
        blobs = {}
        with tempfile.TemporaryDirectory(prefix="pw-h2o-model-") as tmp:
            for key, model in self.models.items():
                saved = h2o.download_model(model, path=tmp, filename=f"m{key}")
                blobs[str(key)] = base64.b64encode(Path(saved).read_bytes()).decode()
        return {
            "params": {
                "algorithm": self.algorithm,
                "rank": self.rank,
                "ntrees": self.ntrees,
                "seed": self.seed,
            },  # fmt: skip
            "h2o_version": h2o.__version__,
            "models": blobs,
            "stats": {str(k): v for k, v in self.stats.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], specs: list[ColumnSpec], options: dict[str, Any]):
        h2o = _h2o()
        if d.get("h2o_version") != h2o.__version__:
            raise InputError(
                f"the imputer was saved by H2O {d.get('h2o_version')} and H2O {h2o.__version__} "
                "is installed; binary H2O models load only into the same version",
                hint="train the imputer again",
            )
        p = d["params"]
        conn = {k: options[k] for k in ("url", "max_mem", "nthreads") if k in options}
        eng = cls(str(p["algorithm"]), p.get("rank"), int(p["ntrees"]), int(p["seed"]), **conn)
        eng.specs = specs
        eng.stats = {int(k): {kk: float(vv) for kk, vv in v.items()} for k, v in d["stats"].items()}
        if any(not 0 <= k < len(specs) for k in eng.stats):
            raise ValueError("the engine's statistics do not match the model's columns")
        eng._connect()
        with tempfile.TemporaryDirectory(prefix="pw-h2o-model-") as tmp:
            for key, blob in d["models"].items():
                path = Path(tmp) / f"m{int(key)}"
                path.write_bytes(base64.b64decode(blob, validate=True))
                with _quiet():
                    eng.models[int(key)] = h2o.upload_model(str(path))
        for k in eng.stats:
            if k not in eng.models and -1 not in eng.models:
                raise ValueError("a column's H2O model is missing")
        return eng

    def close(self) -> None:
        for model in self.models.values():
            with contextlib.suppress(Exception):
                _h2o().remove(model)
        self.models = {}


def _cell(text: str, spec: ColumnSpec) -> float:
    if text in ("", "NA", "nan"):
        return math.nan
    if spec.numeric:
        return float(text)
    if text.startswith("c") and text[1:].isdigit():
        k = int(text[1:])
        return float(k) if k < len(spec.categories) else math.nan
    return math.nan
