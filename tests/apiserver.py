"""A misbehaving paged JSON API for the http source's tests and bench/ingest: a small ASGI app
run by uvicorn on 127.0.0.1 (a free port, printed as ``PORT <n>`` on stdout).

``GET /items`` serves ``total`` records (``id``, ``name``, ``amount``, ``updated_at``) in
pages, by ``page``/``per_page``, ``offset``/``limit`` or ``cursor``/``limit`` (``updated_since``
keeps the records updated at or after it), as ``{"data": {"items": [...]}, "meta":
{"next_cursor": ...}}`` with a ``Link: rel=next`` header. What it is told through ``POST
/admin/config`` (a JSON object, merged into the settings) makes it misbehave:

- ``threshold``: more requests in flight than this are answered 429 at once (the hidden
  concurrency limit), with ``Retry-After`` when ``retry_after`` is set (seconds, or "date"
  for an HTTP date one second ahead);
- ``latency_ms`` per request, and ``spike_ms`` extra every ``spike_every`` requests;
- ``faults``: {page index: [action, ...]}: the page's successive requests get, in turn,
  ``reset`` (headers sent, then the connection dropped), ``truncate`` (half the declared body,
  then dropped), ``badjson`` (a complete response whose JSON is cut short), ``500``, ``502``,
  ``503`` or ``429``; then the page is served;
- ``burst_5xx``: [first request number, count]: those requests are answered 502;
- ``shape_from``: from this page index on, the records are under ``results`` (the envelope
  changed); ``field_from``: from this page index on, records carry a new field ``channel``;
- ``overlap``: every page but the first repeats the last ``overlap`` records of the page
  before it (an API that repeats records across pages);
- ``token`` / ``api_key``: required as ``Authorization: Bearer <token>`` / ``?api_key=``
  (401 otherwise).

``GET /admin/log`` is every request of ``/items`` (time, page index, status, in flight);
``POST /admin/reset`` clears the log and the settings; ``POST /admin/add`` adds records
(``{"n": 10}``, updated now). Anything else is 404. The server exits on its own after
``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from email.utils import formatdate
from urllib.parse import parse_qs, urlencode

DEFAULTS = {
    "total": 100,
    "per_page": 10,
    "latency_ms": 2,
    "threshold": None,
    "retry_after": None,
    "spike_every": 0,
    "spike_ms": 0,
    "faults": {},
    "burst_5xx": None,
    "shape_from": None,
    "field_from": None,
    "overlap": 0,
    "token": None,
    "api_key": None,
}
S: dict = {}
LOG: list[dict] = []
FAULTS_DONE: dict[str, int] = {}
STATE = {"inflight": 0, "n": 0, "extra": 0}
T0 = time.monotonic()


def reset() -> None:
    S.clear()
    S.update(json.loads(json.dumps(DEFAULTS)))
    LOG.clear()
    FAULTS_DONE.clear()
    STATE.update(n=0, extra=0)


def record(i: int) -> dict:
    return {
        "id": i,
        "name": f"item-{i}",
        "amount": round(i * 1.5, 2),
        "updated_at": f"2024-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}",
    }


async def body_of(receive) -> bytes:
    out = b""
    while True:
        msg = await receive()
        out += msg.get("body", b"")
        if not msg.get("more_body"):
            return out


async def send_json(send, status: int, doc, headers=()) -> None:
    body = json.dumps(doc).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()), *headers],
        }
    )  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class Dropped(Exception):
    """Raised after the response started: uvicorn closes the connection."""


async def items(scope, send) -> None:
    q = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
    hdrs = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    STATE["n"] += 1
    n = STATE["n"]
    size = int(q.get("per_page") or q.get("limit") or S["per_page"])
    if "page" in q:
        idx = int(q["page"]) - 1
    elif "offset" in q:
        idx = int(q["offset"]) // size
    elif "cursor" in q:
        idx = int(q["cursor"].lstrip("c"))
    else:
        idx = 0
    entry = {"t": round(time.monotonic() - T0, 4), "n": n, "page": idx,
             "inflight": STATE["inflight"] + 1, "auth": "authorization" in hdrs}  # fmt: skip
    LOG.append(entry)
    if S["token"] and hdrs.get("authorization") != f"Bearer {S['token']}":
        entry["status"] = 401
        return await send_json(send, 401, {"error": "unauthorized"})
    if S["api_key"] and q.get("api_key") != S["api_key"]:
        entry["status"] = 401
        return await send_json(send, 401, {"error": "bad api key"})
    STATE["inflight"] += 1
    try:
        if S["threshold"] is not None and STATE["inflight"] > S["threshold"]:
            entry["status"] = 429
            extra = []
            if S["retry_after"] == "date":
                extra = [(b"retry-after", formatdate(time.time() + 1, usegmt=True).encode())]
            elif S["retry_after"] is not None:
                extra = [(b"retry-after", str(S["retry_after"]).encode())]
            return await send_json(send, 429, {"error": "too many requests"}, extra)
        delay = S["latency_ms"]
        if S["spike_every"] and n % S["spike_every"] == 0:
            delay += S["spike_ms"]
        await asyncio.sleep(delay / 1000)
        burst = S["burst_5xx"]
        if burst and burst[0] <= n < burst[0] + burst[1]:
            entry["status"] = 502
            return await send_json(send, 502, {"error": "bad gateway"})
        plan = S["faults"].get(str(idx)) or []
        k = FAULTS_DONE.get(str(idx), 0)
        if k < len(plan):
            FAULTS_DONE[str(idx)] = k + 1
            action = str(plan[k])
            entry["status"] = action
            if action.isdigit():
                return await send_json(send, int(action), {"error": action})
            if action == "reset":
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json")]})  # fmt: skip
                raise Dropped
        total = S["total"] + STATE["extra"]
        ids = list(range(1, total + 1))
        since = q.get("updated_since")
        if since:
            ids = [i for i in ids if record(i)["updated_at"] >= since]
        lo = max(0, idx * size - (S["overlap"] if idx > 0 else 0))
        rows = [record(i) for i in ids[lo : (idx + 1) * size]]
        if S["field_from"] is not None and idx >= S["field_from"]:
            for r in rows:
                r["channel"] = "web"
        more = (idx + 1) * size < len(ids)
        doc = (
            {"results": rows}
            if S["shape_from"] is not None and idx >= S["shape_from"]
            else {"data": {"items": rows}, "meta": {"next_cursor": f"c{idx + 1}" if more else None}}
        )
        link = []
        if more:
            nq = dict(q)
            if "page" in q or not ({"offset", "cursor"} & set(q)):
                nq["page"] = str(idx + 2)
            elif "offset" in q:
                nq["offset"] = str((idx + 1) * size)
            else:
                nq["cursor"] = f"c{idx + 1}"
            link = [(b"link", f'</items?{urlencode(nq)}>; rel="next"'.encode())]
        if k < len(plan) and plan[k] in ("truncate", "badjson"):
            body = json.dumps(doc).encode()
            if plan[k] == "badjson":
                return await send_json_raw(send, body[: len(body) // 2])
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})  # fmt: skip
            await send({"type": "http.response.body", "body": body[: len(body) // 2],
                        "more_body": True})  # fmt: skip
            raise Dropped
        entry["status"] = 200
        entry["records"] = len(rows)
        await send_json(send, 200, doc, link)
    finally:
        STATE["inflight"] -= 1


async def send_json_raw(send, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())],
        }
    )  # fmt: skip
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    if path == "/items" and method == "GET":
        return await items(scope, send)
    if path == "/admin/config" and method == "POST":
        S.update(json.loads(await body_of(receive) or b"{}"))
        return await send_json(send, 200, S)
    if path == "/admin/reset" and method == "POST":
        reset()
        return await send_json(send, 200, S)
    if path == "/admin/add" and method == "POST":
        STATE["extra"] += int(json.loads(await body_of(receive) or b"{}").get("n", 1))
        return await send_json(send, 200, {"total": S["total"] + STATE["extra"]})
    if path == "/admin/log" and method == "GET":
        return await send_json(send, 200, LOG)
    await send_json(send, 404, {"error": "not found"})


def main() -> None:
    import uvicorn

    ap = argparse.ArgumentParser()
    ap.add_argument("--max-seconds", type=float, default=900)
    args = ap.parse_args()
    reset()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)  # connections wait in the backlog until uvicorn accepts them
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(
        app, fd=sock.fileno(), log_level="critical", lifespan="off", access_log=False,
        backlog=4096, timeout_keep_alive=30,
    )  # fmt: skip
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        done, _ = await asyncio.wait({task}, timeout=args.max_seconds)
        if not done:
            server.should_exit = True
            await task

    asyncio.run(serve())
    sys.exit(0)


if __name__ == "__main__":
    main()
