"""bench/ingest: fetching every page of a throttling API (a hidden limit of concurrent
requests) with fixed concurrency and tenacity retries, dlt's REST API source, and pipewarden's
adaptive controller cold and warm-started from its memory in the store.

The API is tests/apiserver.py (uvicorn, 127.0.0.1, a subprocess): above ``--threshold``
requests in flight it answers 429 at once (no Retry-After: the clients must find the limit),
otherwise it answers after ``--latency-ms``. Every case reads the same pages; wall and CPU
seconds are the client's, the 429s and requests are counted by the server.

    nice -n 10 python bench/ingest/bench_ingest.py --pages 10000 --slow-pages 1000

The fixed-1 and dlt cases are sequential (dlt's REST API source pages one request at a time):
they read ``--slow-pages`` pages and their time is scaled to ``--pages`` (marked
``scaled``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from httpkit import ApiServer  # noqa: E402


class Transient(Exception):
    pass


async def fixed(base: str, pages: int, per: int, c: int) -> int:
    """Concurrency c, each request retried by tenacity (full jitter, 8 attempts): the way a
    client is usually written."""
    import httpx
    from tenacity import (
        AsyncRetrying,
        retry_if_exception_type,
        stop_after_attempt,
        wait_random_exponential,
    )

    sem = asyncio.Semaphore(c)
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:

        async def one(p: int) -> int:
            async with sem:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type((Transient, httpx.TransportError)),
                    wait=wait_random_exponential(multiplier=0.05, max=30),
                    stop=stop_after_attempt(8),
                    reraise=True,
                ):
                    with attempt:
                        r = await http.get(f"{base}/items", params={"page": p, "per_page": per})
                        if r.status_code == 429 or r.status_code >= 500:
                            raise Transient(r.status_code)
                        return len(r.json()["data"]["items"])
            return 0

        got = await asyncio.gather(*(one(p) for p in range(1, pages + 1)), return_exceptions=True)
    return sum(g for g in got if isinstance(g, int))


def dlt_case(base: str, pages: int, per: int) -> int:
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source(
        {
            "client": {
                "base_url": base + "/",
                "paginator": {
                    "type": "page_number",
                    "page_param": "page",
                    "base_page": 1,
                    "total_path": None,
                    "maximum_page": pages + 1,  # exclusive: pages 1..pages
                },
            },
            "resources": [
                {
                    "name": "items",
                    "endpoint": {
                        "path": "items",
                        "params": {"per_page": per},
                        "data_selector": "data.items",
                    },
                }
            ],
        }
    )
    return sum(1 for _ in source)


async def pipewarden_case(base: str, pages: int, per: int, learned: dict | None):
    """The fetch layer of pipewarden's http source (the Pager and AdaptiveClient a run uses)."""
    import httpx

    from pipewarden.ingest.adaptive import Controller, ControllerConfig
    from pipewarden.ingest.client import AdaptiveClient
    from pipewarden.sources.http import Pager, open_source

    spec = open_source(
        {
            "kind": "http",
            "url": f"{base}/items",
            "records_path": "data.items",
            "paginate": {"type": "page", "size": per, "size_param": "per_page"},
        },
        "bench",
        "<bench>",
    )
    controller = Controller(
        ControllerConfig.from_dict(spec.controller),
        clock=time.monotonic,
        wall=time.time,
        memory=learned,
    )
    n = 0
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        pager = Pager(spec, AdaptiveClient(controller, http), dict(spec.params))
        async for page in pager.pages({"page": 1}):
            if page.error is not None:
                raise page.error
            n += len(page.records)
    return n, controller


def measure(server: ApiServer, args, name: str, fn, pages: int) -> dict:
    server.configure(total=pages * args.per_page, per_page=args.per_page,
                     threshold=args.threshold, latency_ms=args.latency_ms)  # fmt: skip
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    records = out[0] if isinstance(out, tuple) else out
    log = server.log()
    throttled = sum(1 for e in log if e.get("status") == 429)
    scale = args.pages / pages
    row = {
        "case": name,
        "pages": pages,
        "records": records,
        "complete": records == pages * args.per_page,
        "requests": len(log),
        "throttled_429": throttled,
        "throttled_share": round(throttled / max(1, len(log)), 4),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "wall_s_at_pages": round(wall * scale, 1),
        "scaled": scale != 1,
        "max_server_inflight": max((e["inflight"] for e in log), default=0),
        "load": os.getloadavg(),
    }
    if isinstance(out, tuple):
        row["controller"] = out[1].report()
    print(json.dumps({k: v for k, v in row.items() if k != "controller"}), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=10_000)
    ap.add_argument("--slow-pages", type=int, default=1_000)
    ap.add_argument("--per-page", type=int, default=5)
    ap.add_argument("--threshold", type=int, default=16)
    ap.add_argument("--latency-ms", type=float, default=50)
    ap.add_argument("--cases", default="fixed1,fixed8,fixed64,dlt,cold,warm")
    ap.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    args = ap.parse_args()
    cases = args.cases.split(",")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    server = ApiServer(max_seconds=3600)
    rows = []
    learned = None
    try:
        for case in cases:
            if case.startswith("fixed"):
                c = int(case[5:])
                pages = args.slow_pages if c == 1 else args.pages
                rows.append(
                    measure(
                        server,
                        args,
                        f"fixed {c} + tenacity",
                        lambda c=c, p=pages: asyncio.run(fixed(server.base, p, args.per_page, c)),
                        pages,
                    )  # fmt: skip
                )
            elif case == "dlt":
                rows.append(
                    measure(
                        server,
                        args,
                        "dlt rest_api (default retry)",
                        lambda: dlt_case(server.base, args.slow_pages, args.per_page),
                        args.slow_pages,
                    )  # fmt: skip
                )
            elif case in ("cold", "warm"):
                memory = learned if case == "warm" else None
                row = measure(
                    server, args, f"pipewarden {case}",
                    lambda m=memory: asyncio.run(
                        pipewarden_case(server.base, args.pages, args.per_page, m)
                    ),
                    args.pages,
                )  # fmt: skip
                rows.append(row)
                if case == "cold":  # through the store, as a run keeps it
                    from pipewarden.ingest import memory as mem
                    from pipewarden.store import open_store

                    path = Path("/tmp") / f"bench-ingest-{os.getpid()}.duckdb"
                    store = open_store(f"duckdb:///{path}")
                    mem.save(store, "bench", "api", row["controller"]["memory"], row["controller"])
                    learned = mem.load(store, "bench", "api")
                    store.close()
                    path.unlink(missing_ok=True)
    finally:
        server.close()
    doc = {
        "command": " ".join(sys.argv),
        "commit": commit,
        "settings": vars(args),
        "cpu_count": os.cpu_count(),
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
