"""Generated data with labelled anomalies: for tests, the benchmark and the demo.

Ten correlated numeric columns (three latent factors plus noise, the levels depending on a
categorical column ``segment``) and 1% anomalies of four kinds, in equal parts:

- ``spike``: one column pushed 6-9 standard deviations away;
- ``shift``: four columns each moved by 2.5-3.5 standard deviations together;
- ``decorrelated``: every column drawn independently from its own marginal, so each value is
  ordinary but their combination breaks the correlations;
- ``category``: a segment never seen in clean rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

SEGMENTS = ["north", "south", "east", "west", "central"]
SEGMENT_P = [0.35, 0.25, 0.2, 0.15, 0.05]
KINDS = ("spike", "shift", "decorrelated", "category")


def generate(
    n: int, anomaly_share: float = 0.01, seed: int = 0, n_numeric: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(X, segment_codes, labels, kinds)``: X is float (n, n_numeric); segment codes
    index :data:`SEGMENTS` (5 = an unseen segment); labels are 1 for anomalies; kinds are
    indexes into :data:`KINDS` (-1 for clean rows)."""
    rng = np.random.default_rng(seed)
    seg = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_P)
    loadings = rng.normal(0, 1, size=(3, n_numeric))
    offsets = rng.normal(0, 1.0, size=(len(SEGMENTS) + 1, n_numeric))
    scales = rng.uniform(0.5, 20, size=n_numeric)
    factors = rng.normal(0, 1, size=(n, 3))
    X = factors @ loadings + rng.normal(0, 0.3, size=(n, n_numeric))
    X += offsets[seg]
    labels = np.zeros(n, dtype=np.int8)
    kinds = np.full(n, -1, dtype=np.int8)
    n_anom = int(round(n * anomaly_share))
    idx = rng.choice(n, size=n_anom, replace=False)
    labels[idx] = 1
    parts = np.array_split(idx, len(KINDS))
    sd = X.std(axis=0)
    for k, rows in enumerate(parts):
        kinds[rows] = k
        if KINDS[k] == "spike":
            cols = rng.integers(0, n_numeric, size=len(rows))
            sign = rng.choice([-1, 1], size=len(rows))
            X[rows, cols] += sign * rng.uniform(6, 9, size=len(rows)) * sd[cols]
        elif KINDS[k] == "shift":
            for r in rows:
                cols = rng.choice(n_numeric, size=4, replace=False)
                X[r, cols] += rng.choice([-1, 1]) * rng.uniform(2.5, 3.5, size=4) * sd[cols]
        elif KINDS[k] == "decorrelated":
            for j in range(n_numeric):
                X[rows, j] = X[rng.integers(0, n, size=len(rows)), j]
        else:
            seg[rows] = len(SEGMENTS)
    X = X * scales + rng.normal(0, 50, size=n_numeric)
    return X, seg, labels, kinds


def records(
    n: int, anomaly_share: float = 0.01, seed: int = 0
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """The same data as JSON-like records (with an ``id`` and a ``ts``), plus the labels."""
    X, seg, labels, _ = generate(n, anomaly_share, seed)
    names = [f"x{j}" for j in range(X.shape[1])]
    segs = [*SEGMENTS, "unknown"]
    out = []
    base = 1_700_000_000
    for i in range(n):
        rec: dict[str, Any] = {"id": i + 1}
        rec.update({c: round(float(v), 4) for c, v in zip(names, X[i], strict=True)})
        rec["segment"] = segs[seg[i]]
        rec["ts"] = datetime.fromtimestamp(base + i * 37, UTC).isoformat()
        out.append(rec)
    return out, labels
