"""The forest's scores: scikit-learn's ``score_samples`` against ``engines.forest_scores`` (our
own loop over the trees, the same values bit for bit), alternating, in one run.

    .venv/bin/python bench/anomaly/forest_scores.py [--rows 100000] [--features 12] [--rounds 5]

A forest of the default engine's shape (100 trees of 256 rows) fitted on Student-t data,
scoring float32 rows as the engine hands them over; prints the CPU seconds of each round and
the median of each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from measure import Meter, run_info  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from sklearn.ensemble import IsolationForest

    from pipewarden.anomaly.engines import forest_scores

    rng = np.random.default_rng(0)
    X = rng.standard_t(3, size=(args.rows, args.features)).astype(np.float32)
    forest = IsolationForest(n_estimators=100, max_samples=256, random_state=0).fit(X)
    cpu: dict[str, list[float]] = {"scikit-learn score_samples": [], "forest_scores": []}
    for _ in range(args.rounds):
        with Meter() as m:
            want = -forest.score_samples(X)
        cpu["scikit-learn score_samples"].append(m.as_dict()["cpu_s"])
        with Meter() as m:
            got = forest_scores(forest, X)
        cpu["forest_scores"].append(m.as_dict()["cpu_s"])
        assert np.array_equal(got, want)
    out = {
        "run": run_info(),
        "rows": args.rows,
        "features": args.features,
        "cpu_s": cpu,
        "median_cpu_s": {k: statistics.median(v) for k, v in cpu.items()},
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
