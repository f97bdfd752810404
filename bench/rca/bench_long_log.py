"""Time `pipewarden rca` on a long log: N progress lines, then a traceback.

    python bench/rca/bench_long_log.py --lines 100000

Prints wall and CPU seconds of diagnose() (parse, classify, fingerprint, report) and the
machine's load; the TF-IDF baseline of run_bench.py is timed there on the corpus.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=100_000)
    args = ap.parse_args()
    from pipewarden.rca import diagnose

    lines = [
        f"2026-01-05T02:00:{i % 60:02d} INFO processed batch {i} rows=1000 in 0.{i % 9}s"
        for i in range(args.lines)
    ]
    lines += [
        "Traceback (most recent call last):",
        '  File "/opt/etl/load.py", line 3, in load',
        "    conn.execute(q)",
        'psycopg.errors.UndefinedColumn: column "amount_eur" does not exist',
    ]
    text = "\n".join(lines)
    diagnose("warm up: ValueError: x")
    load = Path("/proc/loadavg").read_text().split()[:3]
    t0, c0 = time.perf_counter(), time.process_time()
    doc = diagnose(text)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"{args.lines} lines, {len(text) / 1e6:.1f} MB: {doc['verdict']['class']} in "
          f"{wall:.2f} s wall, {cpu:.2f} s CPU; load {load}")  # fmt: skip


if __name__ == "__main__":
    main()
