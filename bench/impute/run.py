"""Imputation accuracy, variance and time against the peers, all in the same run.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/impute/run.py [--quick] [--out bench/impute/results.json]

Data sets (numbers only; every one ships with a package, nothing is downloaded):

- tuned on (they informed the defaults: blend weights, hold-out share, GLRM rank and gamma):
  scikit-learn's diabetes, wine and breast_cancer;
- held out (never looked at while choosing anything): scikit-learn's iris, statsmodels'
  macrodata (US quarterly macro series) and fair (affairs survey; 2,000 rows drawn, seed 0).

Each data set is masked at 10/20/40% of its cells, completely at random (MCAR) and at random
given another column (MAR: a cell of column j is missing with a probability rising with the
rank of column j+1's value in that row, the same share on average). Metrics, on the masked
cells only: NRMSE (RMSE / the column's standard deviation, averaged over columns; 1.0 is mean
filling), and the variance ratio (variance of the completed column / the true column's,
averaged). Methods: mean filling, KNNImputer (k=5, on standardised data), IterativeImputer with
BayesianRidge (and its sample_posterior draws) and with ExtraTrees (missForest-like, 50 trees),
H2O GLRM and H2O GBM per column (pipewarden's h2o engine), and pipewarden's embedded engine in
both modes. BLAS runs on one thread for every method. CPU time is the process's (for H2O the
JVM's, read from /proc); wall time beside it, with the load average.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

from measure import Meter, process_cpu, run_info  # noqa: E402

TUNED = ("diabetes", "wine", "breast_cancer")
HELD_OUT = ("iris", "macrodata", "fair")


def datasets() -> dict[str, np.ndarray]:
    from sklearn import datasets as sk

    out = {
        "diabetes": sk.load_diabetes().data,
        "wine": sk.load_wine().data,
        "breast_cancer": sk.load_breast_cancer().data,
        "iris": sk.load_iris().data,
    }
    from statsmodels.datasets import fair, macrodata

    macro = macrodata.load().data
    out["macrodata"] = np.asarray(macro.drop(columns=["year", "quarter"]), dtype=float)
    f = np.asarray(fair.load().data, dtype=float)
    keep = np.sort(np.random.default_rng(0).choice(len(f), 2000, replace=False))
    out["fair"] = f[keep]
    return out


def mask(X: np.ndarray, frac: float, mech: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n, p = X.shape
    if mech == "mcar":
        M = rng.random(X.shape) < frac
    else:  # MAR: depends on the (observed) next column's rank
        M = np.zeros(X.shape, dtype=bool)
        for j in range(p):
            ranks = np.argsort(np.argsort(X[:, (j + 1) % p], kind="stable")) / max(n - 1, 1)
            M[:, j] = rng.random(n) < np.clip(2 * frac * ranks, 0, 0.95)
        M[:, 0] &= ~M[:, 1]  # the column the mask of the last one depends on stays mostly seen
    M[M.all(axis=1), 0] = False
    return M


def nrmse(X, Xi, M) -> float:
    vals = [
        math.sqrt(float(np.mean((X[M[:, j], j] - Xi[M[:, j], j]) ** 2))) / X[:, j].std()
        for j in range(X.shape[1])
        if M[:, j].any() and X[:, j].std() > 0
    ]
    return float(np.mean(vals))


def var_ratio(X, Xi) -> float:
    ok = X.var(axis=0) > 0
    return float(np.mean(Xi.var(axis=0)[ok] / X.var(axis=0)[ok]))


# ---------------------------------------------------------------- methods


def _iterative(estimator, **kw):
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    def run(Xm):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return IterativeImputer(estimator, max_iter=10, random_state=0, **kw).fit_transform(Xm)

    return run


def mean_fill(Xm):
    from sklearn.impute import SimpleImputer

    return SimpleImputer().fit_transform(Xm)


def knn(Xm):
    from sklearn.impute import KNNImputer

    mu, sd = np.nanmean(Xm, axis=0), np.nanstd(Xm, axis=0)
    sd[sd == 0] = 1
    return KNNImputer(n_neighbors=5).fit_transform((Xm - mu) / sd) * sd + mu


def ours(mode: str, engine: str = "embedded", options: dict | None = None):
    from pipewarden.impute.model import ImputerModel

    def run(Xm):
        names = [f"c{j}" for j in range(Xm.shape[1])]
        recs = [{n: (None if math.isnan(v) else float(v)) for n, v in zip(names, row, strict=True)}
                for row in Xm]  # fmt: skip
        model = ImputerModel.fit(recs, engine=engine, engine_options=options, max_error=1e9)
        try:
            res = model.impute(recs, mode=mode)
        finally:
            model.close()
        out = Xm.copy()
        for i, f in res.fills.items():
            for k, v in f.items():
                out[i, int(k[1:])] = v
        # a cell the engine could not fill (a row of nulls) falls back to the mean, so every
        # method is scored on every cell
        return np.where(np.isnan(out), np.nanmean(Xm, axis=0), out)

    return run


def methods(with_h2o: bool) -> dict:
    from sklearn.ensemble import ExtraTreesRegressor
    from sklearn.linear_model import BayesianRidge

    m = {
        "mean": mean_fill,
        "knn": knn,
        "iterative_bayesian_ridge": _iterative(BayesianRidge()),
        "iterative_bayesian_ridge_posterior": _iterative(BayesianRidge(), sample_posterior=True),
        "iterative_extra_trees": _iterative(
            ExtraTreesRegressor(n_estimators=50, random_state=0, n_jobs=1)
        ),
        "pipewarden_accurate": ours("accurate"),
        "pipewarden_preserve_variance": ours("preserve_variance"),
    }
    if with_h2o:
        m["h2o_glrm"] = ours("accurate", "h2o", {"algorithm": "glrm"})
        m["h2o_gbm"] = ours("accurate", "h2o", {"algorithm": "gbm"})
    return m


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="20% MCAR only, no H2O")
    ap.add_argument("--no-h2o", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    with_h2o = not (args.quick or args.no_h2o)
    if with_h2o:
        from pipewarden import h2o_cluster

        h2o_cluster.ensure_cluster(max_mem="2g", nthreads=2)
    fracs = (0.2,) if args.quick else (0.1, 0.2, 0.4)
    mechs = ("mcar",) if args.quick else ("mcar", "mar")
    info = run_info()
    info["command"] = "python bench/impute/run.py" + (" --quick" if args.quick else "")
    rows = []
    data = datasets()
    meths = methods(with_h2o)
    with threadpool_limits(1, user_api="blas"):
        for name, X in data.items():
            for frac in fracs:
                for mech in mechs:
                    M = mask(X, frac, mech, seed=1)
                    Xm = np.where(M, np.nan, X)
                    for meth, fn in meths.items():
                        jvm = h2o_cluster.local_pid() if meth.startswith("h2o") else None
                        jvm0 = process_cpu(jvm) if jvm else 0.0
                        with Meter() as t:
                            Xi = fn(Xm)
                        row = {
                            "dataset": name, "held_out": name in HELD_OUT, "missing": frac,
                            "mechanism": mech, "method": meth,
                            "nrmse": round(nrmse(X, Xi, M), 4),
                            "variance_ratio": round(var_ratio(X, Xi), 4),
                            **t.as_dict(),
                        }  # fmt: skip
                        if jvm:
                            row["cpu_jvm_s"] = round(process_cpu(jvm) - jvm0, 3)
                        rows.append(row)
                        print(json.dumps(row), flush=True)
    if with_h2o:
        h2o_cluster.shutdown()
    doc = {"run": info, "rows": rows, "summary": summary(rows)}
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc["summary"], indent=1))
    return 0


def summary(rows: list[dict]) -> dict:
    """Per method: mean NRMSE, variance ratio and CPU seconds, over all cases and over the
    held-out data sets only."""
    out = {}
    for meth in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == meth]
        held = [r for r in mine if r["held_out"]]

        def avg(rs, k):
            return round(float(np.mean([r[k] for r in rs])), 4) if rs else None

        cpu = [r.get("cpu_jvm_s", 0) + r["cpu_s"] for r in mine]
        out[meth] = {
            "nrmse": avg(mine, "nrmse"),
            "nrmse_held_out": avg(held, "nrmse"),
            "variance_ratio": avg(mine, "variance_ratio"),
            "variance_ratio_held_out": avg(held, "variance_ratio"),
            "cpu_s_total": round(sum(cpu), 2),
            "wall_s_total": round(sum(r["wall_s"] for r in mine), 2),
            "cases": len(mine),
        }
    return out


if __name__ == "__main__":
    t0 = time.time()
    rc = main()
    print(f"done in {time.time() - t0:.0f}s", file=sys.stderr)
    sys.exit(rc)
