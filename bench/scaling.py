"""Scaling check: each measured part timed at N and at 4N, reported as the ratio t(4N) / t(N).

A linear part gives about 4 (less when a fixed cost dominates at N); a quadratic one about 16.
Run it before a figure of bench/README.md is updated: a ratio above ``--max-ratio`` (6 by
default: 1.5x linear, room for n log n and noise) is a complexity regression, and the command
exits 1 naming the part. Times are CPU seconds of this process (the best of ``--repeat``), so
the load of a shared machine moves them far less than wall time; the wall times and the load
average are recorded too.

    .venv/bin/python bench/scaling.py                 # every part
    .venv/bin/python bench/scaling.py --parts dags,run --scale 2

Parts (N at --scale 1): ``dags`` validate_dags over 1,000 generated DAG files; ``cycles``
find_cycles on 100,000 edges; ``infer`` the sentinel's inference over 50,000 rows x 20 columns;
``guardian`` Guardian.detect over 2,000 records x 5 text fields; ``anomaly`` the default engine's
fit + score on 50,000 rows; ``run`` pipewarden run of 50,000 rows x 12 columns into DuckDB.

The quadratic loop this check was written for: validate_dags united, for every file, the
import sets of every other file (since commit 466c144). Measured here with that code, 4,000
files took 7.05x the CPU time of 1,000 (2.320 s against 0.329 s): flagged; with one count of the
imported names for all files, 4.51x (1.282 s against 0.284 s).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "pipelines"))

from measure import loadavg, run_info  # noqa: E402


def _best(fn, repeat: int) -> tuple[float, float]:
    """Best CPU seconds and best wall seconds of ``repeat`` calls of ``fn``."""
    cpu, wall = [], []
    for _ in range(repeat):
        gc.collect()
        c, w = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return min(cpu), min(wall)


def part_dags(n: int, tmp: Path):
    from architect.bench_architect import make_dags

    from pipewarden.pipelines.airflow import validate_dags

    folder = tmp / f"dags_{n}"
    folder.mkdir()
    make_dags(folder, n)
    return lambda: validate_dags([folder])


def part_cycles(n: int, tmp: Path):
    from architect.bench_architect import make_graph

    from pipewarden.pipelines.graph import Graph, find_cycles

    edges = make_graph(n)
    return lambda: find_cycles(Graph.from_edges(edges))


def part_infer(n: int, tmp: Path):
    import random

    from sentinel.generate import row

    from pipewarden.batch import Batch
    from pipewarden.schema import infer

    rnd = random.Random(42)
    records = [row(i, n, rnd) for i in range(n)]
    batch = Batch(records, "<scaling>")
    return lambda: infer(batch)


def part_guardian(n: int, tmp: Path):
    from pipewarden.batch import Batch
    from pipewarden.compliance.evalset import Generator
    from pipewarden.compliance.guardian import Guardian

    batch = Batch([r["fields"] for r in Generator(11).records(n)], "<scaling>")
    return lambda: Guardian().detect(batch, "scaling")


def part_anomaly(n: int, tmp: Path):
    import numpy as np

    from pipewarden.anomaly.encode import Encoder, Feature
    from pipewarden.anomaly.engines import make_engine
    from pipewarden.anomaly.model import Model
    from pipewarden.anomaly.synth import generate

    X, seg, _, _ = generate(n, 0.01, 1)
    F = np.column_stack([X, (np.bincount(seg, minlength=6) / n)[seg]])
    enc = Encoder([Feature(f"f{j}", f"f{j}", "numeric") for j in range(F.shape[1])], {})

    def fit_score():
        Model.fit_matrix(F, enc, make_engine("sklearn", {"seed": 0})).score_matrix(F)

    return fit_score


def part_run(n: int, tmp: Path):
    from run.generate import write_rows

    from pipewarden.run import run_pipeline

    data = tmp / f"rows_{n}.jsonl"
    write_rows(data, n, wide=False)
    counter = iter(range(1_000_000))

    def run():
        # a new store each time: a second run of the same file into one store is a skip
        k = next(counter)
        cfg = tmp / f"run_{n}_{k}.yaml"
        cfg.write_text(
            f"version: 1\ndataset: rows\nsource:\n  path: {data}\n"
            f"store:\n  kind: duckdb\n  path: {tmp / f'run_{n}_{k}.duckdb'}\n"
        )
        report = run_pipeline(cfg, fmt="json")
        assert report["totals"]["rows_loaded"] == n, report["totals"]

    return run


PARTS = {
    "dags": (part_dags, 1_000),
    "cycles": (part_cycles, 100_000),
    "infer": (part_infer, 50_000),
    "guardian": (part_guardian, 2_000),
    "anomaly": (part_anomaly, 50_000),
    "run": (part_run, 50_000),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default=",".join(PARTS), help="comma-separated: " + ", ".join(PARTS))
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every N")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-ratio", type=float, default=6.0)
    ap.add_argument("--out", help="write the results as JSON to this file")
    args = ap.parse_args(argv)
    names = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in names if p not in PARTS]
    if unknown:
        ap.error(f"unknown part(s): {', '.join(unknown)}")
    result = {**run_info(), "max_ratio": args.max_ratio, "parts": {}}
    failed = []
    print(f"commit {result['commit']}, load {result['load_average']}")
    print(f"{'part':<9} {'N':>9} {'cpu N':>8} {'cpu 4N':>8} {'ratio':>6}  wall N / 4N")
    with tempfile.TemporaryDirectory(prefix="pw-scaling-") as tmp:
        for name in names:
            make, base = PARTS[name]
            n = max(1, int(base * args.scale))
            rows = {}
            for size in (n, 4 * n):
                fn = make(size, Path(tmp))
                fn()  # warm: imports, caches, JIT-free but lazy modules
                rows[size] = _best(fn, args.repeat)
            ratio = rows[4 * n][0] / max(rows[n][0], 1e-9)
            ok = ratio <= args.max_ratio
            if not ok:
                failed.append(name)
            result["parts"][name] = {
                "n": n,
                "cpu_n_s": round(rows[n][0], 4),
                "cpu_4n_s": round(rows[4 * n][0], 4),
                "wall_n_s": round(rows[n][1], 4),
                "wall_4n_s": round(rows[4 * n][1], 4),
                "ratio": round(ratio, 2),
                "ok": ok,
            }
            print(
                f"{name:<9} {n:>9,} {rows[n][0]:>8.3f} {rows[4 * n][0]:>8.3f} {ratio:>6.2f}  "
                f"{rows[n][1]:.3f} / {rows[4 * n][1]:.3f}{'' if ok else '  <- REGRESSION'}",
                flush=True,
            )
    result["load_average_end"] = loadavg()
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if failed:
        print(f"complexity regression (ratio above {args.max_ratio}): {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
