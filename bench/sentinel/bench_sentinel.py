"""Schema inference + delta: pipewarden against dlt's normalize and genson, on the same rows.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/sentinel/bench_sentinel.py --rows 1000000

Generates (once) ``bench/out/sentinel_<rows>.jsonl``: ROWS x 20 columns with nesting, nulls,
date/timestamp strings and a type change half way (see generate.py). Then, in one run:

- pipewarden: ``iter_batches`` (parse) + ``Inferrer.update`` (every row) + ``plan`` (the delta
  against the schema of the first half, in which ``ver`` and ``qty`` were integers); parse and
  inference+delta are timed apart, over the same streamed chunks;
- genson: ``SchemaBuilder.add_object`` on the same parsed chunks (inference only);
- dlt: a pipeline to DuckDB fed the same file; ``extract`` and ``normalize`` timed apart
  (normalize is where dlt infers and coerces types; nothing is loaded).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from measure import Meter, jsonl_chunks, run_info  # noqa: E402

from pipewarden.batch import iter_batches  # noqa: E402
from pipewarden.schema import Inferrer, plan  # noqa: E402
from pipewarden.schema.types import Column, DataType, Schema  # noqa: E402

T = DataType


def first_half_schema() -> Schema:
    """The table as it stood before the type change (what a previous load created)."""
    types = {
        "id": T.BIGINT, "user_id": T.BIGINT, "ts": T.TIMESTAMPTZ, "day": T.DATE,
        "amount": T.DOUBLE, "qty": T.BIGINT, "price": T.DOUBLE, "name": T.TEXT,
        "email": T.TEXT, "country": T.TEXT, "status": T.TEXT, "active": T.BOOLEAN,
        "score": T.DOUBLE, "tags": T.JSON, "meta": T.JSON, "note": T.TEXT, "ref": T.TEXT,
        "ver": T.BIGINT, "flag": T.BOOLEAN, "code": T.TEXT,
    }  # fmt: skip
    return Schema({k: Column(k, t, True) for k, t in types.items()}, 1)


def bench_ours_and_genson(path: Path, with_genson: bool) -> dict:
    from genson import SchemaBuilder

    inferrer = Inferrer()
    builder = SchemaBuilder()
    t_parse = t_infer = t_genson = 0.0
    c_parse = c_infer = c_genson = 0.0  # CPU seconds of this process
    rows = 0
    t, c = time.perf_counter(), time.process_time()
    for batch in iter_batches(path, chunk_rows=100_000):
        t1, c1 = time.perf_counter(), time.process_time()
        t_parse += t1 - t
        c_parse += c1 - c
        inferrer.update(batch)
        t2, c2 = time.perf_counter(), time.process_time()
        t_infer += t2 - t1
        c_infer += c2 - c1
        if with_genson:
            add = builder.add_object
            gc.disable()
            for r in batch.records:
                add(r)
            gc.enable()
            t_genson += time.perf_counter() - t2
            c_genson += time.process_time() - c2
        rows += len(batch)
        t, c = time.perf_counter(), time.process_time()
    t1, c1 = time.perf_counter(), time.process_time()
    p = plan(first_half_schema(), inferrer.schema(), None, "postgres", "events", None,
             conflicts=inferrer.conflicts())  # fmt: skip
    t_infer += time.perf_counter() - t1
    c_infer += time.process_time() - c1
    changes = [(c.op, c.column, c.from_, c.to, c.action) for c in p.delta]
    out = {
        "rows": rows,
        "pipewarden_parse_s": round(t_parse, 3),
        "pipewarden_parse_cpu_s": round(c_parse, 3),
        "pipewarden_infer_delta_s": round(t_infer, 3),
        "pipewarden_infer_delta_cpu_s": round(c_infer, 3),
        "pipewarden_infer_delta_rows_s": round(rows / t_infer),
        "pipewarden_end_to_end_rows_s": round(rows / (t_parse + t_infer)),
        "pipewarden_delta": changes,
    }
    if with_genson:
        out["genson_s"] = round(t_genson, 3)
        out["genson_cpu_s"] = round(c_genson, 3)
        out["genson_rows_s"] = round(rows / t_genson)
        g = builder.to_schema()["properties"]
        out["genson_types"] = {k: g[k].get("type") or g[k].get("anyOf") for k in ("qty", "ver")}
    return out


def bench_dlt(path: Path) -> dict:
    import dlt

    work = Path(tempfile.mkdtemp(prefix="pw-bench-dlt-"))
    try:

        @dlt.resource(name="events", write_disposition="append")
        def events():
            yield from jsonl_chunks(path)

        pipe = dlt.pipeline(
            pipeline_name="pw_bench",
            pipelines_dir=str(work / "pipelines"),
            destination=dlt.destinations.duckdb(str(work / "bench.duckdb")),
            dataset_name="bench",
        )
        with Meter() as extract:
            pipe.extract(events())
        with Meter() as normalize:
            pipe.normalize()
        t, t1, t2 = 0.0, extract.wall, extract.wall + normalize.wall
        table = pipe.default_schema.get_table("events")
        cols = {k: v.get("data_type") for k, v in table["columns"].items()}
        variants = sorted(k for k in cols if "__v_" in k)
        with open(path, "rb") as f:
            rows = sum(1 for _ in f)
        return {
            "dlt_version": dlt.__version__,
            "dlt_extract_s": round(t1 - t, 3),
            "dlt_normalize_s": round(t2 - t1, 3),
            "dlt_extract_cpu_s": round(extract.cpu + extract.cpu_children, 3),
            "dlt_normalize_cpu_s": round(normalize.cpu + normalize.cpu_children, 3),
            "dlt_normalize_rows_s": round(rows / (t2 - t1)),
            "dlt_extract_normalize_rows_s": round(rows / (t2 - t)),
            "dlt_variant_columns": variants,
            "dlt_types": {k: cols.get(k) for k in ("qty", "ver", "ts", "day")},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--no-dlt", action="store_true")
    ap.add_argument("--no-genson", action="store_true")
    args = ap.parse_args()
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"sentinel_{args.rows}.jsonl"
    if not path.exists():
        subprocess.run([sys.executable, str(Path(__file__).with_name("generate.py")),
                        "--rows", str(args.rows), "--out", str(path)], check=True)  # fmt: skip
    result = {
        **run_info(),
        "file_mb": round(path.stat().st_size / 2**20, 1),
    }
    result |= bench_ours_and_genson(path, not args.no_genson)
    if not args.no_dlt:
        result |= bench_dlt(path)
        result["speedup_vs_dlt_normalize"] = round(
            result["pipewarden_infer_delta_rows_s"] / result["dlt_normalize_rows_s"], 1
        )
        result["speedup_cpu_vs_dlt_normalize"] = round(
            result["dlt_normalize_cpu_s"] / result["pipewarden_infer_delta_cpu_s"], 1
        )
        result["speedup_end_to_end_vs_dlt_extract_normalize"] = round(
            result["pipewarden_end_to_end_rows_s"] / result["dlt_extract_normalize_rows_s"], 1
        )
    if "genson_rows_s" in result:
        result["speedup_vs_genson"] = round(
            result["pipewarden_infer_delta_rows_s"] / result["genson_rows_s"], 1
        )
    result["load_average_end"] = os.getloadavg()
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
