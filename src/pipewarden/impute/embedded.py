"""The ``embedded`` engine: chained regressions on scikit-learn, no JVM.

Fit (on the history):

1. Every column becomes slots of one design matrix: a number standardised, a category (or a
   boolean) one slot per category holding its probability (1 or 0 where observed), a date its
   day number plus its parts (cos/sin of the day of the week and of the year).
2. Chained equations (MICE, as scikit-learn's ``IterativeImputer``): the unknown cells start at
   the column's mean (a category at its shares); then, column by column, fewest missing first,
   a model fitted on the rows where the column is known predicts the others, until a round no
   longer lowers the error on the hidden cells by ``tol`` (relative; at most ``max_iter``
   rounds; with nothing hidden, until the fills move less than ``tol``). Numbers:
   ``BayesianRidge``; categories: multinomial ``LogisticRegression``. With conditional means
   the chain gains little after two or three rounds (on diabetes, wine and breast_cancer at
   10-40% missing, NRMSE within 0.005 of ten rounds at half the time), and the hidden cells'
   error often rises after the first round.
3. The final model of each column blends the linear model with its k nearest neighbours
   (``w`` in 0..0.6), the weight chosen on held-out cells: the linear model's exact
   leave-one-out residuals (the hat matrix of the ridge solution Bayesian ridge converged to)
   and the neighbours' leave-one-out predictions (each row's own neighbours without itself);
   categories by 3-fold cross-validation. That held-out error is the column's **expected
   error**: NRMSE (RMSE / the column's standard deviation; 1.0 is filling with the mean) for a
   number, the error rate (next to the mode's) for a category.

Transform (a batch): the same chained rounds with the stored models (linear), then the blended
prediction of each cell to fill. ``accurate`` writes the conditional mean (a category's most
probable value); ``preserve_variance`` gives a number's fills the spread the missing values
would have had: the predictions' variance plus the residual variance measured on the hidden
cells, by widening the predictions around their mean (noise only beyond a cap; see
``spread.py``), and draws categories from their predicted probabilities with a seeded
generator.

Everything the engine keeps is numbers (coefficients, a reference sample for the neighbours),
saved as arrays in JSON: a saved model is never unpickled.
"""

from __future__ import annotations

import base64
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .spread import fit_stats, legacy_stats, widen
from .table import ColumnSpec, part_values

KNN_K = 10
KNN_ROWS = 2000
HOLDOUT = 0.1  # share of a column's known cells hidden from the training to measure its error
HOLDOUT_MAX = 5000
MIN_HOLDOUT = 5
MIN_KNOWN = 10  # known cells a column needs to get a model
BLEND_WEIGHTS = (0.0, 0.2, 0.4, 0.6)


def pack(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a, dtype=np.float64)
    return {"shape": list(a.shape), "f8": base64.b64encode(a.tobytes()).decode()}


def unpack(d: dict[str, Any]) -> np.ndarray:
    shape = tuple(int(x) for x in d["shape"])
    raw = base64.b64decode(d["f8"], validate=True)
    if len(raw) != 8 * math.prod(shape):
        raise ValueError("an array's size does not match its shape")
    return np.frombuffer(raw, dtype=np.float64).reshape(shape).copy()


# ------------------------------------------------------------------------------ the design


class Design:
    """The slots of each column in the design matrix."""

    def __init__(self, specs: list[ColumnSpec]) -> None:
        self.specs = specs
        self.slots: list[slice] = []
        q = 0
        for s in specs:
            width = len(s.categories) if not s.numeric else 1 + 2 * len(s.parts)
            self.slots.append(slice(q, q + width))
            q += width
        self.width = q
        self._others = [
            np.concatenate([np.arange(self.slots[k].start, self.slots[k].stop)
                            for k in range(len(specs)) if k != j] or [np.zeros(0, int)])
            for j in range(len(specs))
        ]  # fmt: skip

    def others(self, j: int) -> np.ndarray:
        return self._others[j]

    def initial(self, X: np.ndarray) -> np.ndarray:
        """The design of X, unknown cells at the column's mean (a category at its shares)."""
        Z = np.zeros((X.shape[0], self.width))
        for j, s in enumerate(self.specs):
            x = X[:, j]
            known = ~np.isnan(x)
            if s.numeric:
                Z[:, self.slots[j].start] = np.where(known, (x - s.mean) / s.std, 0.0)
                for k, part in enumerate(part_values(s, x)):
                    Z[:, self.slots[j].start + 1 + k] = np.where(known, part, 0.0)
            else:
                block = np.tile(np.asarray(s.shares, dtype=float), (X.shape[0], 1))
                rows = np.flatnonzero(known)
                block[rows] = 0.0
                block[rows, x[rows].astype(int)] = 1.0
                Z[:, self.slots[j]] = block
        return Z

    def set(self, Z: np.ndarray, j: int, rows: np.ndarray, value: np.ndarray) -> None:
        """Write estimates (standardised value, or probabilities) of column j into Z."""
        s = self.slots[j]
        if self.specs[j].numeric:
            Z[rows, s.start] = value
        else:
            Z[np.ix_(rows, np.arange(s.start, s.stop))] = value


# ------------------------------------------------------------------------------ models


@dataclass
class ColumnModel:
    """One fitted model of one column (numbers only, in the standardised space)."""

    kind: str  # "reg" | "clf"
    coef: np.ndarray  # reg: (q',) ; clf: (classes, q')
    intercept: np.ndarray  # reg: (1,) ; clf: (classes,)
    classes: np.ndarray = field(default_factory=lambda: np.zeros(0))  # clf: category indexes
    weight: float = 0.0  # of the neighbours in the blend
    error: float = 1.0  # expected: NRMSE (reg) or error rate (clf), on hidden cells
    baseline: float = 1.0  # the mean's NRMSE (1.0) or the mode's error rate
    # preserve_variance (spread.py): residual variance on hidden cells, centre and variance
    # of the predictions of the history's missing cells (standardised)
    spread: dict[str, float] = field(default_factory=dict)
    n_train: int = 0
    n_valid: int = 0  # hidden cells the error was measured on

    def linear(self, F: np.ndarray) -> np.ndarray:
        if self.kind == "reg":
            return F @ self.coef + self.intercept[0]
        logits = F @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "coef": pack(self.coef),
            "intercept": pack(self.intercept),
            "classes": pack(self.classes),
            "weight": self.weight,
            "error": self.error,
            "baseline": self.baseline,
            "spread": dict(self.spread),
            "n_train": self.n_train,
            "n_valid": self.n_valid,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnModel:
        kind = str(d["kind"])
        if kind not in ("reg", "clf"):
            raise ValueError(f"unknown model kind {kind!r}")
        spread = {k: float(v) for k, v in d.get("spread", {}).items()}
        if "spread" not in d and kind == "reg":  # saved before these numbers were kept
            spread = legacy_stats(float(d["error"]))
        return cls(
            kind,
            unpack(d["coef"]),
            unpack(d["intercept"]),
            unpack(d["classes"]),
            float(d["weight"]),
            float(d["error"]),
            float(d["baseline"]),
            spread,
            int(d["n_train"]),
            int(d.get("n_valid", 0)),
        )


def _fit_reg(F: np.ndarray, y: np.ndarray) -> ColumnModel:
    from sklearn.linear_model import BayesianRidge

    br = BayesianRidge().fit(F, y)
    return ColumnModel("reg", br.coef_.copy(), np.array([br.intercept_]), n_train=len(y))


def _fit_clf(F: np.ndarray, y: np.ndarray) -> ColumnModel:
    from sklearn.linear_model import LogisticRegression

    classes = np.unique(y).astype(int)
    if classes.size < 2:  # one class seen: a constant prediction
        coef = np.zeros((1, F.shape[1]))
        return ColumnModel("clf", coef, np.zeros(1), classes.astype(float), n_train=len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lr = LogisticRegression(C=1.0, max_iter=300).fit(F, y)
    if classes.size == 2:  # one row of coefficients: the softmax of -z/2, z/2
        coef = np.vstack([-lr.coef_[0] / 2, lr.coef_[0] / 2])
        icpt = np.array([-lr.intercept_[0] / 2, lr.intercept_[0] / 2])
    else:
        coef, icpt = lr.coef_, lr.intercept_
    return ColumnModel("clf", coef.copy(), icpt.copy(), classes.astype(float), n_train=len(y))


def _expand(model: ColumnModel, p: np.ndarray, n_classes: int) -> np.ndarray:
    """Class probabilities over all categories of the column."""
    out = np.zeros((p.shape[0], n_classes))
    out[:, model.classes.astype(int)] = p
    return out


# ------------------------------------------------------------------------------ the engine


class EmbeddedEngine:
    name = "embedded"

    def __init__(
        self,
        max_iter: int = 10,
        tol: float = 1e-3,
        knn_k: int = KNN_K,
        knn_rows: int = KNN_ROWS,
        seed: int = 0,
    ) -> None:
        self.max_iter = max_iter
        self.tol = tol
        self.knn_k = knn_k
        self.knn_rows = knn_rows
        self.seed = seed
        self.design: Design | None = None
        self.models: list[ColumnModel | None] = []  # the last round's, with their errors
        self.rounds: list[list[ColumnModel]] = []
        self.order: list[int] = []
        self.ref_Z = np.zeros((0, 0))
        self.ref_X = np.zeros((0, 0))

    @property
    def iterations(self) -> int:
        return len(self.rounds)

    # -- fit
    def fit(self, X: np.ndarray, specs: list[ColumnSpec]) -> None:
        from sklearn import config_context

        # the design has no NaN and the estimators' parameters are ours: scikit-learn's
        # checks of both, on each of the hundreds of fits, were a fifth of the fit's time
        with config_context(assume_finite=True, skip_parameter_validation=True):
            self._fit(X, specs)

    def _fit(self, X: np.ndarray, specs: list[ColumnSpec]) -> None:
        design = self.design = Design(specs)
        rng = np.random.default_rng(self.seed)
        # cells hidden from the training: the chain fills them like the missing ones, and
        # their error is the column's expected error (and picks the blend)
        hidden = np.zeros(X.shape, dtype=bool)
        for j in range(X.shape[1]):
            known = np.flatnonzero(~np.isnan(X[:, j]))
            n = min(int(round(HOLDOUT * known.size)), HOLDOUT_MAX)
            if known.size >= MIN_KNOWN and n >= MIN_HOLDOUT:
                hidden[rng.choice(known, n, replace=False), j] = True
        Xt = np.where(hidden, np.nan, X)
        unknown = np.isnan(Xt)
        Z = design.initial(Xt)
        self.order = sorted(
            (j for j in range(len(specs)) if (~unknown[:, j]).sum() >= MIN_KNOWN),
            key=lambda j: (unknown[:, j].sum(), j),
        )
        self.rounds = []
        last = math.inf
        for _ in range(self.max_iter if self.order else 0):
            before = Z.copy() if not hidden.any() else None
            self.rounds.append([self._step(Z, Xt, unknown, j) for j in self.order])
            if before is not None:  # nothing hidden: until the fills stop moving
                if np.abs(Z - before).max() < self.tol * max(np.abs(Z).max(), 1e-12):
                    break
                continue
            err = self._hidden_error(Z, X, hidden)
            if err > last * (1 - self.tol):  # the round no longer helps the hidden cells
                break
            last = err
        stats = {}
        for k, j in enumerate(self.order):
            if hidden[:, j].any():
                stats[j] = self._validate(self.rounds[-1][k], Z, X, unknown, hidden, j)
        # a last round on every known cell (the hidden ones back): its models fill
        unknown = np.isnan(X)
        full = design.initial(X)
        for j in range(len(specs)):
            rows = np.flatnonzero(unknown[:, j])
            full[np.ix_(rows, np.arange(design.slots[j].start, design.slots[j].stop))] = Z[
                np.ix_(rows, np.arange(design.slots[j].start, design.slots[j].stop))
            ]
        Z = full
        self.rounds.append([self._step(Z, X, unknown, j) for j in self.order])
        self.models = [None] * len(specs)
        for k, j in enumerate(self.order):
            if j in stats:
                model = self.rounds[-1][k]
                model.weight, model.error, model.baseline, held, model.n_valid = stats[j]
                if held is not None:  # what preserve_variance widens by
                    y = self._target(X, j, np.flatnonzero(hidden[:, j]))
                    missing = Z[unknown[:, j], design.slots[j].start]
                    model.spread = fit_stats(missing, held, y - held)
                self.models[j] = model
        keep = (
            np.sort(rng.choice(len(X), self.knn_rows, replace=False))
            if len(X) > self.knn_rows
            else np.arange(len(X))
        )
        self.ref_Z, self.ref_X = Z[keep], X[keep]

    def _hidden_error(self, Z, X, hidden) -> float:
        """The mean over columns of the hidden cells' squared error (standardised numbers;
        a category's Brier score)."""
        design, errs = self.design, []
        for j in self.order:
            rows = np.flatnonzero(hidden[:, j])
            if rows.size == 0:
                continue
            y = self._target(X, j, rows)
            p = Z[rows][:, design.slots[j]]
            if design.specs[j].numeric:
                errs.append(float(np.mean((y - p[:, 0]) ** 2)))
            else:
                errs.append(float(np.mean((np.eye(p.shape[1])[y] - p) ** 2)) * p.shape[1])
        return float(np.mean(errs)) if errs else 0.0

    def _target(self, X: np.ndarray, j: int, rows: np.ndarray) -> np.ndarray:
        s = self.design.specs[j]
        x = X[rows, j]
        return (x - s.mean) / s.std if s.numeric else x.astype(int)

    def _predict(self, model: ColumnModel, F: np.ndarray, j: int) -> np.ndarray:
        p = model.linear(F)
        return p if model.kind == "reg" else _expand(model, p, len(self.design.specs[j].categories))

    def _step(self, Z, X, unknown, j) -> ColumnModel:
        design = self.design
        known = np.flatnonzero(~unknown[:, j])
        need = np.flatnonzero(unknown[:, j])
        F = Z[:, design.others(j)]
        fit = _fit_reg if design.specs[j].numeric else _fit_clf
        model = fit(F[known], self._target(X, j, known))
        if need.size:
            design.set(Z, j, need, self._predict(model, F[need], j))
        return model

    def _neighbours(self, RF: np.ndarray, F: np.ndarray) -> np.ndarray | None:
        if RF.shape[1] == 0 or len(RF) < 2 or len(F) == 0:
            return None
        from sklearn.neighbors import NearestNeighbors

        k = min(self.knn_k, len(RF))
        return NearestNeighbors(n_neighbors=k).fit(RF).kneighbors(F, return_distance=False)

    def _validate(self, model: ColumnModel, Z, X, unknown, hidden, j) -> tuple:
        """(blend weight, expected error, baseline, R^2, cells) of column j, measured on its
        hidden cells."""
        design, s = self.design, self.design.specs[j]
        rows = np.flatnonzero(hidden[:, j])
        known = np.flatnonzero(~unknown[:, j])
        cols = design.others(j)
        held = Z[rows][:, design.slots[j]]
        idx = self._neighbours(Z[known][:, cols], Z[rows][:, cols])
        y = self._target(X, j, rows)
        yk = self._target(X, j, known)
        if s.numeric:
            held = held[:, 0]
            var = float(np.var(yk)) or 1.0
            losses = [(float(np.mean((y - held) ** 2)), 0.0)]
            if idx is not None:
                knn = yk[idx].mean(axis=1)
                losses += [(float(np.mean((y - ((1 - w) * held + w * knn)) ** 2)), w)
                           for w in BLEND_WEIGHTS[1:]]  # fmt: skip
            mse, weight = min(losses)
            blend = held if idx is None else (1 - weight) * held + weight * knn
            # the mean's error on the same cells: the baseline the fill must beat
            base = math.sqrt(float(np.mean((y - yk.mean()) ** 2)) / var)
            return weight, math.sqrt(mse / var), base, blend, int(rows.size)
        onehot = np.eye(len(s.categories))
        cands = [(float(np.mean((onehot[y] - held) ** 2)), 0.0, held)]
        if idx is not None:
            knn = onehot[yk][idx].mean(axis=1)
            for w in BLEND_WEIGHTS[1:]:
                p = (1 - w) * held + w * knn
                cands.append((float(np.mean((onehot[y] - p) ** 2)), w, p))
        _, weight, p = min(cands, key=lambda t: t[:2])
        error = float(np.mean(p.argmax(axis=1) != y))
        baseline = 1.0 - float(np.bincount(yk).max() / len(yk))
        return weight, error, baseline, None, int(rows.size)

    # -- transform
    def transform(
        self, X: np.ndarray, fill: np.ndarray, mode: str, rng: np.random.Generator
    ) -> np.ndarray:
        """Values (numbers, category indexes) for the cells of ``fill`` (n x p booleans); NaN
        where a cell is not filled. Unknown cells of every column are estimated on the way by
        the rounds of models the fit made, in the same order."""
        design = self.design
        Z = design.initial(X)
        unknown = np.isnan(X)
        for models in self.rounds:
            for j, m in zip(self.order, models, strict=True):
                need = np.flatnonzero(unknown[:, j])
                if need.size:
                    design.set(Z, j, need, self._predict(m, Z[need][:, design.others(j)], j))
        out = np.full(X.shape, np.nan)
        for j, s in enumerate(design.specs):
            rows = np.flatnonzero(fill[:, j])
            m = self.models[j]
            if rows.size == 0 or m is None:
                continue
            cols = design.others(j)
            p = Z[rows][:, design.slots[j]]
            ref = np.flatnonzero(~np.isnan(self.ref_X[:, j]))
            idx = self._neighbours(self.ref_Z[ref][:, cols], Z[rows][:, cols]) if m.weight else None
            if s.numeric:
                z = p[:, 0]
                if idx is not None:
                    knn = ((self.ref_X[ref, j] - s.mean) / s.std)[idx].mean(axis=1)
                    z = (1 - m.weight) * z + m.weight * knn
                if mode == "preserve_variance" and m.spread:
                    z = widen(z, m.spread, (s.lo - s.mean) / s.std, (s.hi - s.mean) / s.std, rng)
                out[rows, j] = np.clip(z * s.std + s.mean, s.lo, s.hi)
            else:
                probs = p
                if idx is not None:
                    onehot = np.eye(len(s.categories))
                    knn = onehot[self.ref_X[ref, j].astype(int)][idx].mean(axis=1)
                    probs = (1 - m.weight) * probs + m.weight * knn
                if mode == "preserve_variance":
                    cum = probs.cumsum(axis=1)
                    u = rng.random(len(rows))[:, None] * cum[:, -1:]
                    out[rows, j] = np.minimum((cum < u).sum(axis=1), len(s.categories) - 1)
                else:
                    out[rows, j] = probs.argmax(axis=1)
        return out

    # -- persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "params": {
                "max_iter": self.max_iter,
                "tol": self.tol,
                "knn_k": self.knn_k,
                "knn_rows": self.knn_rows,
                "seed": self.seed,
            },
            "order": list(self.order),
            "rounds": [[m.to_dict() for m in r] for r in self.rounds],
            "validated": [m is not None for m in self.models],
            "stats": [None if m is None else m.to_dict() for m in self.models],
            "ref_Z": pack(self.ref_Z),
            "ref_X": pack(self.ref_X),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], specs: list[ColumnSpec]) -> EmbeddedEngine:
        p = d["params"]
        eng = cls(int(p["max_iter"]), float(p["tol"]), int(p["knn_k"]), int(p["knn_rows"]),
                  int(p["seed"]))  # fmt: skip
        design = eng.design = Design(specs)
        eng.order = [int(j) for j in d["order"]]
        eng.rounds = [[ColumnModel.from_dict(m) for m in r] for r in d["rounds"]]
        stats = list(d["stats"])
        eng.ref_Z, eng.ref_X = unpack(d["ref_Z"]), unpack(d["ref_X"])
        if (
            len(stats) != len(specs)
            or any(len(r) != len(eng.order) for r in eng.rounds)
            or any(not 0 <= j < len(specs) for j in eng.order)
            or len(set(eng.order)) != len(eng.order)
            or eng.ref_X.shape[1:] != (len(specs),)
            or eng.ref_Z.shape[1:] != (design.width,)
        ):
            raise ValueError("the engine's models do not match the model's columns")
        for r in eng.rounds:
            for j, m in zip(eng.order, r, strict=True):
                if m.coef.shape[-1] != len(design.others(j)):
                    raise ValueError("a model's coefficients do not match the model's columns")
        eng.models = [None if m is None else ColumnModel.from_dict(m) for m in stats]
        for j, m in enumerate(eng.models):
            if m is not None and (j not in eng.order or m.coef.shape[-1] != len(design.others(j))):
                raise ValueError("a model's coefficients do not match the model's columns")
        return eng

    def expected_error(self, j: int) -> tuple[float | None, float | None]:
        m = self.models[j]
        return (None, None) if m is None else (m.error, m.baseline)

    def column_info(self, j: int) -> dict[str, Any]:
        m = self.models[j]
        if m is None:
            return {"model": None}
        base = "bayesian_ridge" if m.kind == "reg" else "logistic_regression"
        name = base if not m.weight else f"{base} + {self.knn_k}-nn (weight {m.weight:.1f})"
        return {"model": name, "trained_on": m.n_train, "error_measured_on": m.n_valid}
