"""Feature serving: `pipewarden serve` against the floor (the same SQL from the same client)
and Feast's feature server, over the same 1M-row PostgreSQL table, in one run.

    .venv/bin/python bench/serve/bench_serve.py --rows 1000000 --rate 200 --seconds 20 \\
        [--feast-python /path/to/venv-with-feast/bin/python]

1. Lands N generated rows with `pipewarden run` (PostgreSQL, schema `bench_serve`) and creates
   the unique index on the key (what the pipeline of a served dataset does).
2. Starts `pipewarden serve` (one uvicorn process) and, with `--feast-python`, Feast: a
   feature repo over the same table (PostgreSQL offline source and online store),
   `feast apply`, `feast materialize`, `feast serve` (one worker).
3. For each target: an **open-loop** run at `--rate` requests/s for `--seconds` (requests are
   sent on schedule whether or not earlier ones finished; latency counts from the scheduled
   time, so a stall is not hidden), then a **closed-loop** run with `--concurrency` clients
   for `--seconds` (the throughput). Key lookups use uniformly random keys; pages are 100 rows
   after a random key (keyset). The floor is the same statement through psycopg's async pool
   in this process: what any server adds is measured against it.

Every figure carries the load average, the client's CPU time and the server's CPU time; the
results go to bench/serve/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from measure import Meter, loadavg, process_cpu, run_info  # noqa: E402

DSN = os.environ.get("PIPEWARDEN_BENCH_DSN", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA = "bench_serve"
KEY = "bench-key-0123456789abcdef"
COLUMNS = "entity_id, f1, f2, f3, f4, category, updated_at"


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its descendants (Feast's server runs its workers as
    children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            total += process_cpu(p)
        todo.extend(children.get(p, []))
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- data


def generate(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    cats = ["a", "b", "c", "d", "e"]
    with open(path, "w") as f:
        for i in range(rows):
            f.write(json.dumps({
                "entity_id": i,
                "f1": round(rng.random(), 6), "f2": round(rng.gauss(0, 1), 6),
                "f3": rng.randint(0, 1000), "f4": round(rng.random() * 100, 3),
                "category": cats[i % 5],
                "updated_at": (base + timedelta(seconds=i)).isoformat(),
            }) + "\n")  # fmt: skip


def setup(work: Path, rows: int) -> dict:
    """Land the rows with pipewarden run (skipped when the table already holds them)."""
    with psycopg.connect(DSN, autocommit=True) as c:
        have = c.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.features",)).fetchone()[
            0
        ]
        n = c.execute(f"SELECT count(*) FROM {SCHEMA}.features").fetchone()[0] if have else 0
    (work / "pipeline.yaml").write_text(
        "version: 1\ndataset: features\nsource:\n  path: features.jsonl\n  chunk_rows: 200000\n"
        f"store:\n  kind: postgres\n  dsn: {DSN}\n  schema: {SCHEMA}\n  raw_landing: false\n"
        "serve:\n  anonymous: false\n  keys:\n    - {name: bench, key: '${BENCH_KEY}'}\n"
        "  limits: {requests_per_second: 1000000, burst: 1000000}\n  pool_size: 8\n"
        "  refresh_seconds: 60\n"
    )
    if n == rows:
        return {"loaded": "reused", "rows": n}
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    print(f"generating {rows:,} rows ...", flush=True)
    generate(work / "features.jsonl", rows)
    print("loading them with pipewarden run ...", flush=True)
    with Meter() as m:
        subprocess.run([sys.executable, "-m", "pipewarden", "run", str(work / "pipeline.yaml"),
                        "--format", "json"], check=True, capture_output=True)  # fmt: skip
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute(f"CREATE UNIQUE INDEX features_entity_id ON {SCHEMA}.features (entity_id)")
        c.execute(f"ANALYZE {SCHEMA}.features")
    return {"loaded": "now", "rows": rows, "run": m.as_dict()}


# ---------------------------------------------------------------- load generation


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def summary(lat: list[float], errors: int, seconds: float) -> dict:
    return {
        "requests": len(lat),
        "errors": errors,
        "p50_ms": round(pct(lat, 0.50) * 1000, 3),
        "p99_ms": round(pct(lat, 0.99) * 1000, 3),
        "max_ms": round(max(lat) * 1000, 3) if lat else None,
        "mean_ms": round(statistics.fmean(lat) * 1000, 3) if lat else None,
        "req_per_s": round(len(lat) / seconds, 1),
    }


async def open_loop(call, rate: float, seconds: float, rng: random.Random) -> dict:
    """Requests sent on schedule at `rate`/s; latency from the scheduled send time."""
    n = int(rate * seconds)
    lat: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.05

    async def one(at: float, arg) -> None:
        nonlocal errors
        await asyncio.sleep(max(0.0, at - loop.time()))
        try:
            ok = await call(arg)
        except Exception:  # noqa: BLE001
            ok = False
        if ok:
            lat.append(loop.time() - at)
        else:
            errors += 1

    await asyncio.gather(*(one(t0 + i / rate, rng.random()) for i in range(n)))
    return summary(lat, errors, seconds)


async def closed_loop(call, concurrency: int, seconds: float, rng: random.Random) -> dict:
    lat: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds

    async def worker() -> None:
        nonlocal errors
        while loop.time() < end:
            t = loop.time()
            try:
                ok = await call(rng.random())
            except Exception:  # noqa: BLE001
                ok = False
            if ok:
                lat.append(loop.time() - t)
            else:
                errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return summary(lat, errors, seconds)


# ---------------------------------------------------------------- a lean HTTP client


class RawHttp:
    """HTTP/1.1 keep-alive over asyncio streams, a pool of connections: the least a client
    can add (httpx's async client cost more CPU per request than the server measured here,
    on a machine the client shares with it)."""

    def __init__(self, host: str, port: int, size: int, headers: dict[str, str]) -> None:
        self.host, self.port, self.size = host, port, size
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.pool: asyncio.Queue = asyncio.Queue()
        self.made = 0

    async def _conn(self):
        if self.pool.empty() and self.made < self.size:
            self.made += 1
            return await asyncio.open_connection(self.host, self.port)
        return await self.pool.get()

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        try:
            return await self._request(await self._conn(), method, path, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            # a kept-alive connection the server closed while idle: once more on a new one
            self.made += 1
            conn = await asyncio.open_connection(self.host, self.port)
            return await self._request(conn, method, path, body)

    async def _request(self, conn, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        reader, writer = conn
        try:
            head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.extra}"
            if body:
                head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            writer.write(head.encode() + b"\r\n" + body)
            raw = await reader.readuntil(b"\r\n\r\n")
            lines = raw.split(b"\r\n")
            status = int(lines[0].split()[1])
            length = 0
            for line in lines[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
                elif k.strip().lower() == b"transfer-encoding":
                    raise RuntimeError("chunked responses are not supported here")
            data = await reader.readexactly(length)
        except BaseException:
            writer.close()
            self.made -= 1
            raise
        self.pool.put_nowait((reader, writer))
        return status, data

    async def close(self) -> None:
        while not self.pool.empty():
            _, w = self.pool.get_nowait()
            w.close()


# ---------------------------------------------------------------- targets


def api_calls(http: RawHttp, rows: int):
    async def lookup(u: float) -> bool:
        status, body = await http.request("GET", f"/datasets/features/rows/{int(u * rows)}")
        return status == 200 and body[:1] == b"{"

    async def page(u: float) -> bool:
        status, body = await http.request(
            "GET", f"/datasets/features/rows?entity_id.gt={int(u * (rows - 101))}&limit=100"
        )
        return status == 200 and len(json.loads(body)["rows"]) == 100

    return lookup, page


def sql_calls(pool, rows: int):
    t = f'"{SCHEMA}"."features"'

    async def lookup(u: float) -> bool:
        async with pool.connection() as conn:
            cur = await conn.execute(f"SELECT {COLUMNS} FROM {t} WHERE entity_id = %s",
                                     (int(u * rows),))  # fmt: skip
            got = await cur.fetchall()
        return len(got) == 1 and bool(json.dumps(got, default=str))

    async def page(u: float) -> bool:
        async with pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {COLUMNS} FROM {t} WHERE entity_id > %s ORDER BY entity_id LIMIT 100",
                (int(u * (rows - 101)),),
            )
            got = await cur.fetchall()
        return len(got) == 100 and bool(json.dumps(got, default=str))

    return lookup, page


def feast_call(http: RawHttp, rows: int):
    feats = [f"features_fv:{f}" for f in ("f1", "f2", "f3", "f4", "category")]

    async def lookup(u: float) -> bool:
        body = json.dumps({"features": feats, "entities": {"entity_id": [int(u * rows)]}})
        status, got = await http.request("POST", "/get-online-features", body.encode())
        return status == 200 and b"results" in got

    return lookup


# ---------------------------------------------------------------- Feast


FEAST_REPO = """
from datetime import timedelta
from feast import Entity, FeatureView, Field
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import PostgreSQLSource
from feast.types import Float64, Int64, String
from feast.value_type import ValueType

entity = Entity(name="entity_id", join_keys=["entity_id"], value_type=ValueType.INT64)
source = PostgreSQLSource(name="features_src", query="SELECT * FROM {schema}.features",
                          timestamp_field="updated_at")
features_fv = FeatureView(
    name="features_fv", entities=[entity], ttl=timedelta(days=3650), source=source,
    schema=[Field(name="f1", dtype=Float64), Field(name="f2", dtype=Float64),
            Field(name="f3", dtype=Int64), Field(name="f4", dtype=Float64),
            Field(name="category", dtype=String)],
    online=True,
)
"""

FEAST_YAML = """project: pwbench
provider: local
registry: {registry}
entity_key_serialization_version: 3
offline_store:
  type: postgres
  host: 127.0.0.1
  port: 5432
  database: test
  db_schema: {schema}
  user: postgres
  password: ""
  sslmode: disable
online_store:
  type: postgres
  host: 127.0.0.1
  port: 5432
  database: test
  db_schema: feast_online
  user: postgres
  password: ""
  sslmode: disable
"""


def feast_setup(python: str, work: Path, reuse: bool) -> tuple[Path, dict]:
    repo = work / "feast_repo"
    repo.mkdir(exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        FEAST_YAML.format(registry=repo / "registry.db", schema=SCHEMA)
    )
    (repo / "features.py").write_text(FEAST_REPO.format(schema=SCHEMA))
    feast = str(Path(python).parent / "feast")
    if reuse and (repo / "registry.db").is_file():
        return repo, {"reused": True}
    with psycopg.connect(DSN, autocommit=True) as c:  # a fresh online store each run
        c.execute("DROP SCHEMA IF EXISTS feast_online CASCADE")
        c.execute("CREATE SCHEMA feast_online")
    (repo / "registry.db").unlink(missing_ok=True)
    info: dict = {}
    with Meter() as m:
        subprocess.run([feast, "apply"], cwd=repo, check=True, capture_output=True, text=True)
    info["apply"] = m.as_dict()
    print("feast materialize (the whole table into Feast's online store) ...", flush=True)
    with Meter() as m:
        res = subprocess.run([feast, "materialize", "2023-12-31T00:00:00",
                              datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")],
                             cwd=repo, capture_output=True, text=True)  # fmt: skip
    if res.returncode != 0:
        raise RuntimeError("feast materialize failed: " + res.stderr[-3000:])
    info["materialize"] = m.as_dict()
    return repo, info


# ---------------------------------------------------------------- main


def wait_http(url: str, proc: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


async def measure(args, api_base: int, feast_base: int | None, pids: dict) -> dict:
    from psycopg_pool import AsyncConnectionPool

    rng = random.Random(11)
    out: dict = {}
    api = RawHttp("127.0.0.1", api_base, 64, {"X-API-Key": KEY})
    fst = RawHttp("127.0.0.1", feast_base, 64, {}) if feast_base else None
    async with AsyncConnectionPool(DSN, min_size=8, max_size=8, open=False,
                                   kwargs={"autocommit": True}) as pool:  # fmt: skip
        api_lookup, api_page = api_calls(api, args.rows)
        sql_lookup, sql_page = sql_calls(pool, args.rows)
        targets = [
            ("lookup", "sql (floor)", sql_lookup, None),
            ("lookup", "pipewarden serve", api_lookup, "api"),
            ("page100", "sql (floor)", sql_page, None),
            ("page100", "pipewarden serve", api_page, "api"),
        ]
        if feast_base:
            targets.insert(2, ("lookup", "feast serve", feast_call(fst, args.rows), "feast"))
        for what, who, call, server in targets:
            for _ in range(50):  # warm up: connections, caches
                await call(rng.random())
            row: dict = {"what": what, "target": who}
            for mode in ("open_loop", "closed_loop"):
                cpu0 = tree_cpu(pids[server]) if server else None
                with Meter() as m:
                    if mode == "open_loop":
                        got = await open_loop(call, args.rate, args.seconds, rng)
                    else:
                        got = await closed_loop(call, args.concurrency, args.seconds, rng)
                got["client"] = m.as_dict()
                if server:
                    got["server_cpu_s"] = round(tree_cpu(pids[server]) - cpu0, 3)
                row[mode] = got
                print(f"{what:8} {who:18} {mode:11} p50 {got['p50_ms']:8.3f} ms  p99 "
                      f"{got['p99_ms']:8.3f} ms  {got['req_per_s']:8.1f} req/s  errors "
                      f"{got['errors']}  load {m.load_end}", flush=True)  # fmt: skip
            out.setdefault("results", []).append(row)
    await api.close()
    if fst:
        await fst.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--feast-python", help="python of a virtualenv with feast[postgres]")
    ap.add_argument(
        "--feast-reuse",
        action="store_true",
        help="keep Feast's registry and online store from an earlier run in --work",
    )
    ap.add_argument("--work", help="working folder (default: a temporary one)")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="pw-bench-serve-"))
    work.mkdir(parents=True, exist_ok=True)
    doc: dict = {"info": run_info(), "args": vars(args)}
    doc["setup"] = setup(work, args.rows)
    env = {**os.environ, "BENCH_KEY": KEY}
    port = free_port()
    procs: dict[str, subprocess.Popen] = {}
    logs = []
    try:
        log = open(work / "serve.log", "w")  # noqa: SIM115
        logs.append(log)
        procs["api"] = subprocess.Popen(
            [sys.executable, "-m", "pipewarden", "serve", str(work / "pipeline.yaml"),
             "--port", str(port), "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_http(f"http://127.0.0.1:{port}/health", procs["api"])
        feast_base, fport = None, None
        if args.feast_python:
            repo, doc["feast_setup"] = feast_setup(args.feast_python, work, args.feast_reuse)
            fport = free_port()
            flog = open(work / "feast.log", "w")  # noqa: SIM115
            logs.append(flog)
            feast = str(Path(args.feast_python).parent / "feast")
            procs["feast"] = subprocess.Popen(
                [feast, "serve", "-h", "127.0.0.1", "-p", str(fport), "--workers", "1",
                 "--no-access-log"],
                cwd=repo, stdout=flog, stderr=subprocess.STDOUT,
            )  # fmt: skip
            feast_base = f"http://127.0.0.1:{fport}"
            wait_http(f"{feast_base}/health", procs["feast"])
        pids = {k: p.pid for k, p in procs.items()}
        doc.update(asyncio.run(measure(args, port, fport if feast_base else None, pids)))
    finally:
        for p in procs.values():
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs:
            f.close()
    doc["load_average_end"] = loadavg()
    Path(args.out).write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"results in {args.out}")


if __name__ == "__main__":
    main()
