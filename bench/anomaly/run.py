"""Anomaly detector benchmark: our engines against scikit-learn, PyOD and H2O used directly.

    .venv/bin/python bench/anomaly/run.py            # everything (30-40 minutes on 2 cores, most of it H2O)
    .venv/bin/python bench/anomaly/run.py --sizes 100000 --no-h2o
    .venv/bin/python bench/anomaly/run.py --sizes "" --real "" --heldout   # held-out sets only

Data: generated (pipewarden.anomaly.synth: 10 correlated numeric columns + a categorical
segment, 1% anomalies: spikes, joint shifts, broken correlations, unseen segments) and real
data sets bundled with scikit-learn (no download): a minority class as the anomalies.
Every method reads the same matrix: the numeric columns plus the segment frequency-encoded.
Times are wall-clock seconds on one thread for the Python methods (H2O: nthreads=2).
Writes bench/anomaly/results.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from sklearn import datasets
from sklearn.metrics import average_precision_score, roc_auc_score

from pipewarden.anomaly.encode import Encoder, Feature
from pipewarden.anomaly.engines import make_engine
from pipewarden.anomaly.model import Model
from pipewarden.anomaly.synth import generate

HERE = Path(__file__).resolve().parent


def generated(n: int, seed: int = 1):
    X, seg, y, _ = generate(n, 0.01, seed)
    freq = np.bincount(seg, minlength=6) / n
    F = np.column_stack([X, freq[seg]])
    kinds = ["numeric"] * X.shape[1] + ["category"]
    return F, y, kinds


LOADERS = {
    "breast_cancer": datasets.load_breast_cancer,
    "wine": datasets.load_wine,
    "digits": datasets.load_digits,
    "iris": datasets.load_iris,
}

# Held-out variants: the same bundled sets with another class as the anomalies (and iris).
# They were not looked at while the default engine was designed; they show how far the
# figures of the three benchmark sets carry to data nobody tuned for.
HELDOUT = (
    [("digits", c, 30) for c in range(1, 10)]
    + [("wine", 0, 10), ("wine", 1, 10), ("iris", 1, 5), ("iris", 2, 5)]
    + [("breast_cancer", 0, 10), ("breast_cancer", 0, 40)]
)


def real(name: str, seed: int, anomaly: int | None = None, k: int | None = None):
    """A bundled data set: every row not of class `anomaly` plus `k` rows of it, drawn with
    `seed`. Without `anomaly`: the benchmark's own choice (20 malignant among the benign
    tumours, 10 wines of class 2 among classes 0 and 1, 30 zeros among the digits 1-9)."""
    default = {"breast_cancer": (0, 20), "wine": (2, 10), "digits": (0, 30)}
    if name not in LOADERS:
        raise ValueError(name)
    if anomaly is None:
        anomaly, k = default[name]
    else:
        seed += 100  # held-out draws do not reuse the benchmark's random draws
    rng = np.random.default_rng(seed)
    d = LOADERS[name]()
    normal, anom = d.target != anomaly, d.target == anomaly
    pick = rng.choice(np.flatnonzero(anom), k, replace=False)
    idx = np.concatenate([np.flatnonzero(normal), pick])
    y = np.r_[np.zeros(int(normal.sum()), dtype=int), np.ones(k, dtype=int)]
    F = d.data[idx].astype(float)
    return F, y, ["numeric"] * F.shape[1]


def _encoder(kinds):
    return Encoder([Feature(f"f{j}", f"f{j}", k) for j, k in enumerate(kinds)], {})


def ours(engine: str, options: dict | None = None):
    def run(F, kinds, seed=0):
        opts = dict(options or {})
        opts["seed"] = opts.get("seed", 1 if engine == "h2o" else 0) + seed
        t0 = time.perf_counter()
        model = Model.fit_matrix(F, _encoder(kinds), make_engine(engine, opts))
        t1 = time.perf_counter()
        s, _ = model.score_matrix(F)
        t2 = time.perf_counter()
        model.close()
        return s, t1 - t0, t2 - t1, float((s >= 0.7).mean())

    return run


def sk_iforest(F, kinds, seed=0):
    from sklearn.ensemble import IsolationForest

    t0 = time.perf_counter()
    m = IsolationForest(random_state=seed).fit(F)
    t1 = time.perf_counter()
    s = -m.score_samples(F)
    return s, t1 - t0, time.perf_counter() - t1, None


def pyod(kind):
    def run(F, kinds, seed=0):
        from pyod.models.ecod import ECOD
        from pyod.models.iforest import IForest

        m = IForest(random_state=seed) if kind == "iforest" else ECOD()
        t0 = time.perf_counter()
        m.fit(F)
        t1 = time.perf_counter()
        s = m.decision_function(F)
        return s, t1 - t0, time.perf_counter() - t1, None

    return run


def h2o_direct(algorithm):
    def run(F, kinds, seed=0):
        import h2o
        from h2o.estimators import (
            H2OExtendedIsolationForestEstimator,
            H2OIsolationForestEstimator,
        )

        from pipewarden.anomaly.h2o_engine import H2OEngine, ensure_cluster

        ensure_cluster(max_mem="3g", nthreads=2)
        up = H2OEngine()._upload  # the same CSV upload our engine uses
        t0 = time.perf_counter()
        frame = up(F)
        sample = min(256, F.shape[0])  # H2O refuses a sample larger than the frame
        if algorithm == "isolation_forest":
            est = H2OIsolationForestEstimator(
                ntrees=100, sample_size=sample, seed=1 + seed, ignore_const_cols=False
            )
        else:  # constant columns kept, so extension_level = columns - 1 stays valid
            est = H2OExtendedIsolationForestEstimator(
                ntrees=100, sample_size=sample, extension_level=F.shape[1] - 1, seed=1 + seed,
                ignore_const_cols=False,
            )  # fmt: skip
        est.train(training_frame=frame)
        t1 = time.perf_counter()
        pred = est.predict(frame)
        import os
        import tempfile

        fd, path = tempfile.mkstemp(suffix=".csv")
        os.close(fd)
        h2o.download_csv(pred["mean_length"], path)
        s = -np.loadtxt(path, delimiter=",", skiprows=1, ndmin=1)
        os.unlink(path)
        h2o.remove(frame)
        h2o.remove(pred)
        h2o.remove(est)
        return s, t1 - t0, time.perf_counter() - t1, None

    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--real", default="breast_cancer,wine,digits")
    ap.add_argument("--seeds", type=int, default=5, help="draws of the minority class (real sets)")
    ap.add_argument("--no-h2o", action="store_true")
    ap.add_argument(
        "--heldout",
        action="store_true",
        help="also the held-out variants (other classes as the anomalies, 3 draws each)",
    )
    ap.add_argument(
        "--repeats", type=int, default=3, help="timing runs on generated data (best kept)"
    )
    ap.add_argument(
        "--model-seeds",
        type=int,
        default=3,
        help="seeds of every randomised method on each draw of the real and held-out sets",
    )
    args = ap.parse_args(argv)

    methods = {
        "pipewarden sklearn (default)": ours("sklearn"),
        # the documented option for clustered data: the forest alone, 100 trees
        "pipewarden sklearn, forest only": ours(
            "sklearn", {"n_estimators": 100, "weights": {"distance": 0, "subspace": 0}}
        ),
        "scikit-learn IsolationForest": sk_iforest,
        "PyOD IForest": pyod("iforest"),
        "PyOD ECOD": pyod("ecod"),
    }
    if not args.no_h2o:
        methods["pipewarden h2o (EIF)"] = ours("h2o", {"max_mem": "3g", "nthreads": 2})
        methods["H2O IF"] = h2o_direct("isolation_forest")
        methods["H2O EIF"] = h2o_direct("extended_isolation_forest")

    cases = []
    for size in [int(s) for s in args.sizes.split(",") if s]:
        cases.append((f"generated {size:,}", [generated(size)]))
    for name in [s for s in args.real.split(",") if s]:
        cases.append((name, [real(name, seed) for seed in range(args.seeds)]))
    if args.heldout:
        for name, cls, k in HELDOUT:
            draws = [real(name, seed, cls, k) for seed in range(3)]
            cases.append((f"held-out {name} class {cls} x{k}", draws))

    results = []
    for case, draws in cases:
        F0, y0, _ = draws[0]
        print(f"## {case}: {F0.shape[0]:,} rows x {F0.shape[1]} features, {int(y0.sum())} anomalies",
              file=sys.stderr)  # fmt: skip
        for method, run in methods.items():
            if case == "generated 1,000,000" and method == "pipewarden h2o (EIF)":
                continue  # H2O at 1M is run once, directly (60-120 s per fit)
            aucs, aps, fits, scores, flags = [], [], [], [], []
            slow = method.startswith("H2O") or "h2o" in method
            repeats = 1 if slow else (args.repeats if len(draws) == 1 else 1)
            # one seed on the generated data (one large draw, where the seed hardly matters);
            # on the small sets a forest's accuracy moves with its seed (digits: AUC 0.65 to
            # 0.84 over five seeds), so every randomised method is averaged over the same seeds
            seeds = 1 if len(draws) == 1 or method == "PyOD ECOD" else args.model_seeds
            per_seed = np.zeros((seeds, 2))
            for F, y, kinds in draws:
                for seed in range(seeds):
                    # the best of `repeats` runs for the time, the first for accuracy
                    s, tf, ts, flag = run(F, kinds, seed)
                    for _ in range(repeats - 1):
                        _, tf2, ts2, _ = run(F, kinds, seed)
                        if tf2 + ts2 < tf + ts:
                            tf, ts = tf2, ts2
                    aucs.append(roc_auc_score(y, s))
                    aps.append(average_precision_score(y, s))
                    per_seed[seed] += (aucs[-1] / len(draws), aps[-1] / len(draws))
                    fits.append(tf)
                    scores.append(ts)
                    if flag is not None:
                        flags.append(flag)
            row = {
                "case": case,
                "method": method,
                "roc_auc": round(float(np.mean(aucs)), 4),
                "avg_precision": round(float(np.mean(aps)), 4),
                "fit_s": round(float(np.mean(fits)), 3),
                "score_s": round(float(np.mean(scores)), 3),
                "share_at_0.7": round(float(np.mean(flags)), 4) if flags else None,
                "seeds": seeds,
                # each seed's mean over the draws: how far the accuracy moves with the seed
                "roc_auc_by_seed": [round(float(v), 4) for v in per_seed[:, 0]],
                "avg_precision_by_seed": [round(float(v), 4) for v in per_seed[:, 1]],
            }
            results.append(row)
            print(f"   {method:32s} AUC {row['roc_auc']:.4f}  AP {row['avg_precision']:.4f}  "
                  f"fit {row['fit_s']:.2f}s  score {row['score_s']:.2f}s", file=sys.stderr)  # fmt: skip
    if not args.no_h2o:
        from pipewarden.anomaly.h2o_engine import shutdown

        shutdown()
    doc = {
        "command": "python bench/anomaly/run.py " + " ".join(argv or sys.argv[1:]),
        "machine": f"{platform.machine()}, {platform.processor() or ''} {__import__('os').cpu_count()} cores, Python {platform.python_version()}",
        "results": results,
    }
    # rows of earlier runs for other data sets or methods are kept (H2O is slow: run apart)
    out = HERE / "results.json"
    if out.exists():
        done = {(r["case"], r["method"]) for r in results}
        old = json.loads(out.read_text())
        kept = [r for r in old.get("results", []) if (r["case"], r["method"]) not in done]
        doc["results"] = kept + results
        doc["runs"] = old.get("runs", [old.get("command")]) + [doc["command"]]
    out.write_text(json.dumps(doc, indent=2))
    results = doc["results"]
    held = [r for r in results if r["case"].startswith("held-out")]
    if held:
        print("| method | held-out sets | mean ROC AUC | mean AP | best AUC on | best AP on |")
        print("|---|---|---|---|---|---|")
        by_case: dict[str, list[dict]] = {}
        for r in held:
            by_case.setdefault(r["case"], []).append(r)
        for method in dict.fromkeys(r["method"] for r in held):
            mine = [r for r in held if r["method"] == method]
            best_auc = sum(
                r["roc_auc"] >= max(o["roc_auc"] for o in by_case[r["case"]]) for r in mine
            )
            best_ap = sum(
                r["avg_precision"] >= max(o["avg_precision"] for o in by_case[r["case"]])
                for r in mine
            )
            print(f"| {method} | {len(mine)} | {np.mean([r['roc_auc'] for r in mine]):.4f} | "
                  f"{np.mean([r['avg_precision'] for r in mine]):.4f} | {best_auc} | {best_ap} |")  # fmt: skip
        print()
    print("| data | method | ROC AUC | AP | fit s | score s | share >= 0.7 |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        share = "" if r["share_at_0.7"] is None else f"{r['share_at_0.7']:.2%}"
        print(f"| {r['case']} | {r['method']} | {r['roc_auc']:.4f} | {r['avg_precision']:.4f} | "
              f"{r['fit_s']:.2f} | {r['score_s']:.2f} | {share} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
