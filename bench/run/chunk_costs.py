"""Two costs of a run that a whole-run figure hides in its noise, measured on their own.

- ``guardian``: the CPU seconds of the guardian step's ``prepare`` and ``check`` (bench_run's
  POLICY: e-mail addresses masked) over the 100,000-row chunks of a file, as the run reads them;
- ``collector``: the CPU seconds Python's garbage collector takes during ``pipewarden run`` of
  the file into a fresh DuckDB store with bench_run's steps (``gc.callbacks``), by generation.

Run it for two checkouts in turn (the other one's ``src`` on ``PYTHONPATH``) to compare them:

    .venv/bin/python bench/run/generate.py --rows 1000000
    .venv/bin/python bench/run/chunk_costs.py bench/out/run_1000000.jsonl
    PYTHONPATH=<other checkout>/src .venv/bin/python bench/run/chunk_costs.py bench/out/run_1000000.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_run import POLICY, STEPS  # noqa: E402


def guardian_cpu(path: Path, work: Path) -> dict[str, float]:
    from pipewarden.batch import iter_batches
    from pipewarden.compliance.step import build_step
    from pipewarden.steps import StepContext

    (work / "policy.yaml").write_text(POLICY)
    step = build_step({"type": "guardian", "policy": "policy.yaml"}, work)
    ctx = StepContext("events", "b", None, work)
    prepare = check = 0.0
    for chunk in iter_batches(path, chunk_rows=100_000, lines=True):
        chunk.batch_id = "b"
        t = time.process_time()
        step.prepare(chunk)
        prepare += time.process_time() - t
        chunk.columns()  # made by the inferrer before the checks in a run
        t = time.process_time()
        step.check(chunk, ctx)
        check += time.process_time() - t
    return {"prepare_cpu_s": round(prepare, 3), "check_cpu_s": round(check, 3)}


def collector_cpu(path: Path, work: Path) -> dict[str, list]:
    from pipewarden.cli import main

    (work / "policy.yaml").write_text(POLICY)
    config = work / "pipeline.yaml"
    config.write_text(
        f"version: 1\ndataset: events\nsource:\n  path: {path}\n"
        f"store:\n  kind: duckdb\n  path: {work / 'store.duckdb'}\n{STEPS}"
    )
    started: dict[int, float] = {}
    spent: Counter = Counter()
    count: Counter = Counter()

    def on_gc(phase: str, info: dict) -> None:
        g = info["generation"]
        if phase == "start":
            started[g] = time.process_time()
        else:
            spent[g] += time.process_time() - started[g]
            count[g] += 1

    gc.callbacks.append(on_gc)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the run's report
            code = main(["run", str(config)])
    finally:
        gc.callbacks.remove(on_gc)
    if code:
        raise SystemExit(f"pipewarden run exited with {code}")
    return {
        "collector_cpu_s": round(sum(spent.values()), 3),
        "by_generation": [[g, count[g], round(spent[g], 3)] for g in sorted(count)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", type=Path)
    args = ap.parse_args()
    import pipewarden

    out: dict = {"pipewarden": str(Path(pipewarden.__file__).parent)}
    with tempfile.TemporaryDirectory() as tmp:
        out["guardian"] = guardian_cpu(args.file.resolve(), Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        out["collector"] = collector_cpu(args.file.resolve(), Path(tmp))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
