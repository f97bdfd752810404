"""Write dispositions: `pipewarden run` with append and with merge (upsert on a primary key),
into DuckDB and PostgreSQL, next to dlt's merge on the same files, in the same run.

Two files of N JSON Lines rows each, 10 columns (integers, floats, strings, a timestamp with a
zone, a boolean, a nested object), generated once:

- ``first``: ids 0 .. N-1;
- ``second``: ids N/2 .. 3N/2-1 with other values: half of it updates rows of ``first``, half
  is new.

Per store, each measure in its own process (CPU seconds of that process and its children,
wall time, the load average before and after), on a fresh schema or DuckDB file:

- ``pipewarden append``: ``first`` into an empty dataset;
- ``pipewarden merge, empty``: ``first`` with ``primary_key: id, write_disposition: merge``;
- ``pipewarden merge, upsert``: then ``second`` (N/2 updates, N/2 inserts);
- ``dlt merge, empty`` and ``dlt merge, upsert``: the same two loads with a dlt resource of
  ``primary_key="id", write_disposition="merge"`` (dlt's default merge strategy,
  delete-insert), reading the same files line by line with orjson.

Usage: python bench/dispositions/bench_dispositions.py [--rows 1000000] [--dsn DSN]
       [--stores duckdb,postgres] [--out bench/dispositions/results.json]
Needs the bench extra (dlt with its duckdb and postgres destinations).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from measure import Meter, run_info  # noqa: E402

STATUSES = ["new", "paid", "shipped", "returned", "cancelled"]


def generate(path: Path, start: int, n: int, version: int) -> None:
    with open(path, "wb") as f:
        for i in range(start, start + n):
            f.write(
                orjson.dumps(
                    {
                        "id": i,
                        "customer": f"c{i % 50_000}",
                        "amount": round((i * 7919 % 100_000) / 100 + version, 2),
                        "quantity": i % 9 + version,
                        "status": STATUSES[(i + version) % 5],
                        "score": (i % 1000) / 997.0,
                        "active": (i + version) % 3 == 0,
                        "updated_at": f"2024-0{1 + version}-{1 + i % 28:02d}T10:{i % 60:02d}:00Z",
                        "attrs": {"v": version, "k": i % 7},
                        "note": None if i % 10 else f"note {i}",
                    }
                )
                + b"\n"
            )


def pipewarden_load(args) -> dict:
    """One `pipewarden run` of the given files (in this process)."""
    from pipewarden.run import run_pipeline

    root = Path(args.root)
    cfg = root / f"pipeline-{uuid.uuid4().hex[:6]}.yaml"
    store = (
        f"store:\n  kind: duckdb\n  path: {args.duckdb}\n  raw_landing: false\n"
        if args.store == "duckdb"
        else f"store:\n  kind: postgres\n  dsn: {args.dsn}\n  schema: {args.schema}\n"
        "  raw_landing: false\n"
    )
    keys = "primary_key: id\nwrite_disposition: merge\n" if args.disposition == "merge" else ""
    cfg.write_text(
        f"version: 1\ndataset: orders\nsource:\n  path: {args.file}\n  chunk_rows: 100000\n"
        + store
        + keys
    )
    rep = run_pipeline(cfg, fmt="json")
    (b,) = rep["batches"]
    assert b["status"] == "loaded" and b["rows_loaded"] == b["rows_read"], b
    return {"rows": b["rows_read"], "rows_updated": b.get("rows_updated")}


def dlt_load(args) -> dict:
    """One dlt pipeline run with a merge resource over the given file (in this process)."""
    import dlt

    path = Path(args.file)

    @dlt.resource(name="orders", primary_key="id", write_disposition="merge")
    def orders():
        with open(path, "rb") as f:
            batch = []
            for line in f:
                batch.append(orjson.loads(line))
                if len(batch) == 10_000:
                    yield batch
                    batch = []
            if batch:
                yield batch

    if args.store == "duckdb":
        dest = dlt.destinations.duckdb(str(args.duckdb))
    else:
        # dlt asks for a password even where the server trusts the connection: any will do
        import psycopg

        info = psycopg.conninfo.conninfo_to_dict(args.dsn)
        info.setdefault("password", "unused")
        dsn = (
            f"postgresql://{info.get('user', 'postgres')}:{info['password']}@"
            f"{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}/{info.get('dbname', 'test')}"
        )
        dest = dlt.destinations.postgres(dsn)
    pipe = dlt.pipeline(
        pipeline_name=f"bench_{args.pipeline}",
        destination=dest,
        dataset_name=args.schema,
        pipelines_dir=str(Path(args.root) / "dlt_pipelines"),
    )
    info = pipe.run(orders())
    assert not info.has_failed_jobs, info
    return {"rows": sum(1 for _ in open(path, "rb"))}


def measure(label: str, argv: list[str]) -> dict:
    with Meter() as m:
        proc = subprocess.run(
            [sys.executable, __file__, *argv], capture_output=True, text=True, cwd=ROOT
        )
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    row = {"measure": label, **out, **m.as_dict()}
    row["cpu_s"] = row.pop("cpu_children_s")  # the child process's CPU time
    row["rows_per_s"] = round(out["rows"] / row["wall_s"])
    row["rows_per_cpu_s"] = round(out["rows"] / row["cpu_s"]) if row["cpu_s"] else None
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--stores", default="duckdb,postgres")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    # one load, run in a child process
    ap.add_argument("--one", choices=["pipewarden", "dlt"])
    ap.add_argument("--store"), ap.add_argument("--file"), ap.add_argument("--root")
    ap.add_argument("--duckdb"), ap.add_argument("--schema"), ap.add_argument("--pipeline")
    ap.add_argument("--disposition", default="append")
    args = ap.parse_args()
    if args.one:
        out = pipewarden_load(args) if args.one == "pipewarden" else dlt_load(args)
        print(json.dumps(out))
        return

    info = run_info()
    results = []
    with tempfile.TemporaryDirectory(prefix="pw-bench-disp-") as tmp:
        root = Path(tmp)
        first, second = root / "first.jsonl", root / "second.jsonl"
        generate(first, 0, args.rows, 0)
        generate(second, args.rows // 2, args.rows, 1)
        for store in args.stores.split(","):
            cases = [
                ("pipewarden append", "pipewarden", "append", [first]),
                ("pipewarden merge, empty then upsert", "pipewarden", "merge", [first, second]),
                ("dlt merge, empty then upsert", "dlt", "merge", [first, second]),
            ]
            for label, tool, disposition, files in cases:
                tag = uuid.uuid4().hex[:8]
                schema = f"bench_{tag}"
                duck = root / f"{tag}.duckdb"
                for n, f in enumerate(files):
                    step = "empty" if n == 0 else "upsert (half updates)"
                    name = label.split(",")[0] + ("" if disposition == "append" else f", {step}")
                    results.append(
                        {
                            "store": store,
                            **measure(
                                f"{store}: {name}",
                                [
                                    "--one",
                                    tool,
                                    "--store",
                                    store,
                                    "--file",
                                    str(f),
                                    "--root",
                                    str(root),
                                    "--duckdb",
                                    str(duck),
                                    "--schema",
                                    schema,
                                    "--pipeline",
                                    tag,
                                    "--disposition",
                                    disposition,
                                    "--dsn",
                                    args.dsn,
                                ],
                            ),  # fmt: skip
                        }
                    )
                if store == "postgres":
                    import psycopg

                    with psycopg.connect(args.dsn, autocommit=True) as c:
                        for s in (schema, f"{schema}_staging"):
                            c.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
    doc = {
        **info,
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]]),
        "rows": args.rows,
        "results": results,
    }
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
