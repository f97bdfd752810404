"""Paired differences against scikit-learn's IsolationForest, from ``results-real.json``.

    .venv/bin/python bench/anomaly/paired.py

For each group and method: the mean difference of ROC AUC and of AP over the sets (method minus
the forest, set by set) with a 95% bootstrap interval over the sets (10,000 resamples), and on
how many sets the method is at least as good. A mean whose interval holds 0 is a tie at this
number of sets.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PEER = "scikit-learn IsolationForest"


def paired(rows: list[dict], seed: int = 0) -> list[str]:
    out = [
        "| group | method | AUC diff (95% interval) | AUC >= | AP diff (95% interval) | AP >= |",
        "|---|---|---|---|---|---|",
    ]
    rng = np.random.default_rng(seed)
    for group in ("dev", "heldout", "fresh", "fresh2", "all"):
        sel = [r for r in rows if group == "all" or r["group"] == group]
        peer = {r["set"]: r for r in sel if r["method"] == PEER}
        sets = sorted(peer)
        if not sets:
            continue
        boot = rng.integers(0, len(sets), size=(10_000, len(sets)))
        for method in dict.fromkeys(r["method"] for r in sel):
            if method == PEER:
                continue
            mine = {r["set"]: r for r in sel if r["method"] == method}
            if set(mine) != set(sets):
                continue
            cells = []
            for key in ("roc_auc", "avg_precision"):
                d = np.array([mine[s][key] - peer[s][key] for s in sets])
                lo, hi = np.quantile(d[boot].mean(axis=1), [0.025, 0.975])
                cells += [f"{d.mean():+.4f} ({lo:+.4f}, {hi:+.4f})", f"{(d >= 0).sum()}/{d.size}"]
            out.append(f"| {group} | {method} | " + " | ".join(cells) + " |")
    return out


def main() -> int:
    doc = json.loads((HERE / "results-real.json").read_text())
    print("\n".join(paired(doc["real"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
