"""The whole run against its peers and against the databases' own loaders, in one run.

Every case loads the same generated JSON Lines file (bench/run/generate.py) in a fresh process
and reports, for that process: wall seconds, CPU seconds (user + system, its children
included), peak resident memory (VmHWM), and for PostgreSQL cases the CPU seconds of the server
backends it used (read from /proc by their pids), with the machine's load average before and
after. Cases:

- ``floor-duckdb``: DuckDB's own ``CREATE TABLE ... AS SELECT * FROM read_json(file)``;
- ``floor-pg``: psycopg 3 binary ``COPY`` of the same rows, as typed tuples made before the
  clock starts, into a prepared table (the typed table only, no raw landing);
- ``pw-duckdb`` / ``pw-pg``: ``pipewarden run`` (sentinel, typed table + raw landing, one
  transaction); ``pw-*-steps`` adds the guardian (e-mail addresses masked) and the anomaly step
  on a dataset's first batch (the anomaly step in warm-up); ``pw-*-steps-trained`` the same
  once the dataset's model is trained: before the clock, the file's four quarters are loaded
  into the same store with the same steps (three warm-up batches, then one whose start trains
  the model), each in its own process, so the measured batch is scored with the stored model;
- ``dlt-duckdb`` / ``dlt-pg``: a dlt pipeline (extract, normalize, load) of the same file.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/run/bench_run.py --rows 1000000 [--wide] [--sparse] [--cases pw-duckdb,floor-duckdb]

Writes bench/run/results-<rows>[-wide][-sparse].json (and prints it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from generate import data_file  # noqa: E402
from measure import loadavg, run_info  # noqa: E402

DSN = os.environ.get("PIPEWARDEN_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test")

# every case runs this prelude and its body in a fresh interpreter, then prints its figures
PRELUDE = """
import json, os, resource, sys, time
ARGS = json.loads(sys.argv[1])
BACKENDS = set()
def backend_cpu(pids):
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total
def watch(conn_pid):
    BACKENDS.add(conn_pid)
t0 = time.perf_counter()
"""

EPILOGUE = """
wall = time.perf_counter() - t0
me = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
hwm = [l for l in open("/proc/self/status").read().splitlines() if l.startswith("VmHWM")]
print("@@" + json.dumps({
    "wall_s": round(wall, 2),
    "cpu_s": round(me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime, 2),
    "server_cpu_s": None if globals().get("SERVER_CPU") is None else round(SERVER_CPU, 2),
    "peak_rss_mb": int(hwm[0].split()[1]) // 1024,
    **RESULT,
}))
"""

FLOOR_DUCKDB = """
import duckdb
con = duckdb.connect(ARGS["db"])
con.execute(f"CREATE TABLE t AS SELECT * FROM read_json('{ARGS['data']}', format='newline_delimited')")
RESULT = {"rows": con.execute("SELECT count(*) FROM t").fetchone()[0]}
"""

FLOOR_PG = """
import datetime as dt
import orjson, psycopg
from psycopg.types.json import Jsonb
cols = ARGS["columns"]
rows = []
with open(ARGS["data"], "rb") as f:
    for line in f:
        r = orjson.loads(line)
        rows.append(tuple(
            dt.datetime.fromisoformat(r[c].replace("Z", "+00:00")) if t == "timestamptz" and r.get(c)
            else Jsonb(r[c]) if t == "jsonb" else r.get(c)
            for c, t in cols))
conn = psycopg.connect(ARGS["dsn"])
types = [t for _, t in cols]
conn.execute(f'CREATE TABLE "{ARGS["schema"]}".t (' + ", ".join(f'"{c}" {t}' for c, t in cols) + ")")
conn.commit()
pid = conn.info.backend_pid
s0 = backend_cpu([pid])
t0 = time.perf_counter()  # the clock starts here: rows are ready
c0 = resource.getrusage(resource.RUSAGE_SELF)
with conn.cursor() as cur, cur.copy(f'COPY "{ARGS["schema"]}".t FROM STDIN (FORMAT BINARY)') as cp:
    cp.set_types(types)
    for row in rows:
        cp.write_row(row)
conn.commit()
SERVER_CPU = backend_cpu([pid]) - s0
c1 = resource.getrusage(resource.RUSAGE_SELF)
RESULT = {"rows": conn.execute(f'SELECT count(*) FROM "{ARGS["schema"]}".t').fetchone()[0],
          "copy_cpu_s": round(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime, 2),
          "note": "wall and copy_cpu_s count the COPY only; cpu_s also counts preparing the "
                  "typed rows before the clock: the floor is copy_cpu_s + server_cpu_s"}
resource_self = None
"""

PIPEWARDEN = """
from pipewarden.store import postgres
real_close = postgres.PostgresStore.close
SERVER = {"cpu": 0.0}
def close(self):
    pids = [c.info.backend_pid for c in (self.conn, self._aux_conn) if c is not None and not c.closed]
    SERVER["cpu"] += backend_cpu(pids)
    real_close(self)
postgres.PostgresStore.close = close
# each step's CPU seconds (prepare and check), measured around its calls
STEP_CPU = {}
def timed(cls, name, method):
    real = getattr(cls, method)
    def wrapper(self, *a, **k):
        c0 = time.process_time()
        try:
            return real(self, *a, **k)
        finally:
            STEP_CPU[name] = STEP_CPU.get(name, 0.0) + time.process_time() - c0
    setattr(cls, method, wrapper)
if ARGS.get("steps"):
    from pipewarden.compliance.step import GuardianStep
    from pipewarden.anomaly.step import AnomalyStep
    timed(GuardianStep, "guardian", "prepare")
    timed(GuardianStep, "guardian", "check")
    timed(AnomalyStep, "anomaly", "check")
def anomaly_model(batch):
    rep = (batch.get("steps") or {}).get("anomaly")
    rep = rep[-1] if isinstance(rep, list) else rep  # one report per chunk
    return None if rep is None else {k: v for k, v in (rep.get("model") or {}).items()
                                     if k in ("source", "status", "version", "rows")}
from pipewarden.run import run_pipeline
report = run_pipeline(ARGS["config"], fmt="json")
SERVER_CPU = SERVER["cpu"] if ARGS.get("pg") else None
b = report["batches"][0]
RESULT = {"rows": report["totals"]["rows_loaded"] + report["totals"]["rows_quarantined"],
          "rows_loaded": report["totals"]["rows_loaded"], "status": b["status"],
          "phases": b.get("phases"),
          "step_cpu_s": {k: round(v, 2) for k, v in STEP_CPU.items()} or None,
          "anomaly_model": anomaly_model(b)}
"""

DLT = """
import dlt
sys.path.insert(0, ARGS["bench"])
from measure import jsonl_chunks
@dlt.resource(name="events", write_disposition="append")
def events():
    yield from jsonl_chunks(ARGS["data"])
if ARGS["kind"] == "duckdb":
    dest = dlt.destinations.duckdb(ARGS["db"])
else:
    # dlt asks for a password even where the server trusts local connections
    dest = dlt.destinations.postgres(ARGS["dsn"].replace("postgres@", "postgres:unused@", 1))
pipe = dlt.pipeline(pipeline_name="pw_bench_" + ARGS["tag"], pipelines_dir=ARGS["work"],
                    destination=dest, dataset_name=ARGS["schema"])
info = pipe.run(events())
RESULT = {"rows": pipe.last_trace.last_normalize_info.row_counts.get("events"),
          "dlt_version": dlt.__version__}
"""

NARROW_PG = [
    ("id", "int8"), ("user_id", "int8"), ("amount", "float8"), ("qty", "int8"),
    ("name", "text"), ("email", "text"), ("country", "text"), ("status", "text"),
    ("created_at", "timestamptz"), ("active", "bool"), ("meta", "jsonb"), ("note", "text"),
]  # fmt: skip


def pg_columns(wide: bool) -> list[tuple[str, str]]:
    cols = list(NARROW_PG)
    if wide:
        for k in range(12):
            cols += [(f"n{k}", "int8"), (f"f{k}", "float8"), (f"s{k}", "text"),
                     (f"t{k}", "timestamptz")]  # fmt: skip
    return cols


STEPS = """steps:
  - type: guardian
    policy: policy.yaml
  - type: anomaly
"""
POLICY = """version: 1
rules:
  - name: mask e-mail addresses
    entity: [EMAIL_ADDRESS]
    action: mask
    method: partial
"""


def warmup_files(data: Path, parts: int = 4) -> list[Path]:
    """The files loaded before a ``-trained`` case: the measured file cut into ``parts``
    slices of consecutive rows (written once beside it), so the model is trained on rows
    like the measured batch's, over their whole range (a model trained on the head of the
    file alone finds the later ids and timestamps beyond its range)."""
    lines = None
    out = []
    for k in range(parts):
        path = data.with_name(f"{data.stem}_part{k + 1}of{parts}.jsonl")
        if not path.exists():
            if lines is None:
                lines = data.read_bytes().splitlines(keepends=True)
            step = -(-len(lines) // parts)
            path.with_suffix(".part").write_bytes(b"".join(lines[k * step : (k + 1) * step]))
            path.with_suffix(".part").rename(path)
        out.append(path)
    return out


def pw_config(data: Path, store: str, steps: bool) -> str:
    return f"version: 1\ndataset: events\nsource:\n  path: {data}\n{store}" + (
        STEPS if steps else ""
    )


def run_case(body: str, args: dict) -> dict:
    code = textwrap.dedent(PRELUDE) + textwrap.dedent(body) + textwrap.dedent(EPILOGUE)
    before = loadavg()
    res = subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True
    )
    if res.returncode != 0 or "@@" not in res.stdout:
        return {"error": res.stderr[-1500:], "load_before": before}
    out = json.loads(res.stdout.rsplit("@@", 1)[1])
    return {**out, "load_before": before, "load_after": loadavg()}


def create_schema(name: str) -> None:
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute(f'CREATE SCHEMA "{name}"')


def drop_schema(name: str) -> None:
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--wide", action="store_true")
    ap.add_argument("--sparse", action="store_true")  # null fields left out (generate.py)
    ap.add_argument(
        "--cases",
        default="floor-duckdb,floor-pg,pw-duckdb,pw-pg,pw-duckdb-steps,pw-pg-steps,dlt-duckdb,dlt-pg",
    )
    ap.add_argument("--out")  # pw-duckdb-steps-trained, pw-pg-steps-trained: see the docstring
    args = ap.parse_args(argv)
    data = data_file(args.rows, args.wide, args.sparse)
    result = {**run_info(), "rows": args.rows, "wide": args.wide, "sparse": args.sparse,
              "file": str(data),
              "file_mb": round(data.stat().st_size / 2**20, 1), "cases": {}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="pw-bench-run-") as tmp:
        work = Path(tmp)
        (work / "policy.yaml").write_text(POLICY)
        for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
            tag = case.replace("-", "_") + "_" + uuid.uuid4().hex[:6]
            schema = f"pwbench_{tag}"
            pg = "pg" in case.split("-")
            if pg:
                create_schema(schema)
            print(f"{case} ...", file=sys.stderr, flush=True)
            try:
                if case == "floor-duckdb":
                    out = run_case(FLOOR_DUCKDB, {"db": str(work / f"{tag}.duckdb"),
                                                  "data": str(data)})  # fmt: skip
                elif case == "floor-pg":
                    out = run_case(FLOOR_PG, {"dsn": DSN, "schema": schema, "data": str(data),
                                              "columns": pg_columns(args.wide)})  # fmt: skip
                elif case.startswith("pw-"):
                    store = (
                        f"store:\n  kind: postgres\n  dsn: {DSN}\n  schema: {schema}\n"
                        if pg
                        else f"store:\n  kind: duckdb\n  path: {tag}.duckdb\n"
                    )
                    steps = case.endswith(("-steps", "-steps-trained"))
                    warm = []
                    if case.endswith("-trained"):
                        for k, f in enumerate(warmup_files(data)):
                            cfg = work / f"{tag}-warmup{k}.yaml"
                            cfg.write_text(pw_config(f, store, steps))
                            got = run_case(PIPEWARDEN, {"config": str(cfg), "pg": pg})
                            keep = ("rows", "status", "cpu_s", "anomaly_model", "error")
                            warm.append({k: got.get(k) for k in keep})
                    cfg = work / f"{tag}.yaml"
                    cfg.write_text(pw_config(data, store, steps))
                    out = run_case(PIPEWARDEN, {"config": str(cfg), "pg": pg, "steps": steps})
                    if warm:
                        out["warmup"] = warm
                elif case.startswith("dlt-"):
                    out = run_case(DLT, {"kind": "postgres" if pg else "duckdb", "dsn": DSN,
                                         "schema": schema, "db": str(work / f"{tag}.duckdb"),
                                         "data": str(data), "tag": tag,
                                         "work": str(work / "dlt"),
                                         "bench": str(HERE.parent)})  # fmt: skip
                else:
                    raise SystemExit(f"unknown case {case}")
            finally:
                if pg:
                    drop_schema(schema)
            result["cases"][case] = out
            print(f"{case}: {json.dumps(out)[:400]}", file=sys.stderr, flush=True)
    result["load_average_end"] = loadavg()
    text = json.dumps(result, indent=2)
    out_path = (
        Path(args.out)
        if args.out
        else HERE
        / f"results-{args.rows}{'-wide' if args.wide else ''}{'-sparse' if args.sparse else ''}.json"
    )
    out_path.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
