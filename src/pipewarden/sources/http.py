"""The ``http`` source of ``pipewarden run``: pages of an HTTP API as batches.

A pipeline config with ``source.kind: http`` names a URL, headers and query parameters (any of
them may hold ``${ENV}`` secrets, expanded at run time and never printed, logged or stored), a
pagination (``page``, ``offset``, ``cursor`` from a JSON path, ``link`` from ``Link:
rel=next``, or ``none``), ``records_path`` to the records in each response, and optionally an
``incremental`` field whose highest value is sent as a parameter on the next run.

Requests go through :class:`pipewarden.ingest.client.AdaptiveClient`: the concurrency limit,
retries, ``Retry-After`` and quota headers are the controller's, warm-started from what earlier
runs learned about the host (:mod:`pipewarden.ingest.memory`). ``page`` and ``offset``
pagination fetch ahead concurrently (pages are loaded in order); ``cursor`` and ``link`` are
sequential by nature, the next page fetched while the last one loads.

Every ``pages_per_batch`` pages are one batch through the same sentinel, steps, quarantine and
store path as a file (:func:`pipewarden.run.load_file`). The source's position (the next page,
offset, cursor or URL) and incremental value are written to the store's state
(``_pw_state``, key ``source:http``) **in the batch's transaction**: a run killed at any
point resumes after the last batch that committed, and loads nothing twice.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..batch import Batch, json_bytes, json_loads, parse_records_path
from ..errors import InputError
from ..ingest import memory
from ..ingest.adaptive import Controller, ControllerConfig
from ..ingest.client import AdaptiveClient, BadBody, ClientRefused, FetchError

STATE_KEY = "source:http"
PAGINATIONS = ("none", "page", "offset", "cursor", "link")
MASK = "***"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _config_error(message: str, key: str, file: str, hint: str | None = None) -> InputError:
    from ..run import ConfigError

    err = ConfigError(f"{key}: {message}", file=file, hint=hint)
    err.key = key
    return err


# ---------------------------------------------------------------- secrets


class Secrets:
    """The values ``${ENV}`` expanded to: replaced by ``***`` in every text the source
    produces, and by their ``${VAR}`` again in a URL kept in the store."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}  # value -> the placeholder it came from

    def expand(self, text: str, key: str, file: str) -> str:
        import os

        def sub(m: re.Match) -> str:
            value = os.environ.get(m.group(1))
            if value is None:
                if m.group(2) is not None:
                    return m.group(2)
                raise _config_error(
                    f"environment variable {m.group(1)} is not set", key, file,
                    f"export {m.group(1)}=... or write ${{{m.group(1)}:-default}}",
                )  # fmt: skip
            if len(value) >= 3:
                self.values.setdefault(value, m.group(0))
            return value

        return _ENV.sub(sub, text)

    def _sorted(self) -> list[str]:
        return sorted(self.values, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for v in self._sorted():
            text = text.replace(v, MASK)
        return text

    def unexpand(self, text: str) -> str:
        from urllib.parse import quote, quote_plus

        for v in self._sorted():
            for form in {v, quote(v, safe=""), quote_plus(v)}:
                text = text.replace(form, self.values[v])
        return text


class _MaskFilter(logging.Filter):
    """Masks the secrets in httpx's and httpcore's log records (they log request URLs)."""

    def __init__(self, secrets: Secrets) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.secrets.mask(str(record.getMessage()))
        record.args = ()
        return True


# ---------------------------------------------------------------- config


@dataclass
class HttpSource:
    name: str
    url_template: str  # as written (``${VAR}`` kept): what labels show
    url: str  # expanded
    headers: dict[str, str]
    params: dict[str, str]
    records_path: tuple[str, ...]
    records_path_text: str
    paginate: dict[str, Any]
    incremental: dict[str, Any] | None
    pages_per_batch: int
    timeout: float
    controller: dict[str, Any]
    secrets: Secrets = field(default_factory=Secrets)

    @property
    def kind(self) -> str:
        return self.paginate["type"]

    @property
    def host(self) -> str:
        parts = urlsplit(self.url)
        host = (parts.hostname or "").lower()
        return f"{host}:{parts.port}" if parts.port else host

    def label(self, position: dict[str, Any] | None) -> str:
        where = ""
        if position:
            k, v = next(iter(position.items()))
            where = f" {k} {self.secrets.mask(str(v))[:80]}"
        return f"{self.url_template}{where}"


def check_config(src: dict[str, Any], file: str) -> None:
    """What the JSON schema cannot say about an http source: each pagination's required
    options, and that every ``${ENV}`` it names is set (the values are not kept)."""
    open_source(src, "<dataset>", file)


def open_source(src: dict[str, Any], dataset: str, file: str) -> HttpSource:
    secrets = Secrets()
    url = secrets.expand(src["url"], "source.url", file)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _config_error(
            f"{src['url']!r} is not an http(s) URL", "source.url", file,
            "e.g. https://api.example.com/v1/orders",
        )  # fmt: skip
    headers = {
        str(k): secrets.expand(str(v), f"source.headers.{k}", file)
        for k, v in (src.get("headers") or {}).items()
    }
    params = {
        str(k): secrets.expand(str(v), f"source.params.{k}", file)
        for k, v in (src.get("params") or {}).items()
    }
    pag = dict(src.get("paginate") or {"type": "none"})
    kind = pag.setdefault("type", "none")
    if kind == "page":
        pag.setdefault("param", "page")
        pag.setdefault("start", 1)
    elif kind == "offset":
        pag.setdefault("param", "offset")
        pag.setdefault("start", 0)
        pag.setdefault("size_param", "limit")
        if not pag.get("size"):
            raise _config_error(
                "offset pagination needs size (records per page)", "source.paginate.size",
                file, "e.g. size: 100",
            )  # fmt: skip
    elif kind == "cursor":
        pag.setdefault("param", "cursor")
        if not pag.get("cursor_path"):
            raise _config_error(
                "cursor pagination needs cursor_path (where the next cursor is in a response)",
                "source.paginate.cursor_path", file, "e.g. cursor_path: meta.next_cursor",
            )  # fmt: skip
        try:
            pag["_cursor_path"] = parse_records_path(pag["cursor_path"])
        except InputError as exc:
            raise _config_error(exc.message, "source.paginate.cursor_path", file) from None
    if pag.get("size") and pag.get("size_param"):
        params.setdefault(pag["size_param"], str(pag["size"]))
    inc = src.get("incremental")
    if inc is not None:
        inc = dict(inc)
        if inc.get("initial") is not None:
            inc["initial"] = secrets.expand(str(inc["initial"]), "source.incremental.initial", file)
    try:
        controller = ControllerConfig.from_dict(src.get("controller"))
    except (TypeError, ValueError) as exc:
        raise _config_error(str(exc), "source.controller", file, "see docs/ingest.md") from None
    return HttpSource(
        name=src.get("name") or dataset,
        url_template=src["url"],
        url=url,
        headers=headers,
        params=params,
        records_path=parse_records_path(src.get("records_path")),
        records_path_text=src.get("records_path") or "(the top-level array)",
        paginate=pag,
        incremental=inc,
        pages_per_batch=int(src.get("pages_per_batch", 1)),
        timeout=float(src.get("timeout", 30)),
        controller={**vars(controller)},
        secrets=secrets,
    )


# ---------------------------------------------------------------- pages


@dataclass
class Page:
    index: int  # 0 for the first page of this run
    position: dict[str, Any]  # where it was read from
    records: list[dict[str, Any]]
    after: dict[str, Any] | None  # where the next page is; None after the last
    error: FetchError | None = None


def _dig(doc: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    cur = doc
    for seg in path:
        if isinstance(cur, dict) and seg in cur:
            cur = cur[seg]
        elif isinstance(cur, list) and seg.isdigit() and int(seg) < len(cur):
            cur = cur[int(seg)]
        else:
            return False, None
    return True, cur


class Pager:
    """Fetches the pages of one run in order, ahead of the loads (``window`` pages at most)."""

    def __init__(self, spec: HttpSource, client: AdaptiveClient, params: dict[str, str]):
        self.spec = spec
        self.client = client
        self.params = params
        self.window = max(8, min(256, 2 * int(spec.controller.get("max_limit", 64))))
        self.requests = 0

    def ahead(self) -> int:
        """Pages fetched ahead of the loads: the controller's limit (what the host takes now)
        and a few more, so that little is fetched past the last page."""
        return max(2, min(self.window, math.ceil(self.client.controller.limit) + 4))

    # ---- one page
    def _parse(self, r: Any) -> tuple[list[dict], Any]:
        try:
            doc = json_loads(r.content)
        except ValueError:
            raise BadBody("the body is not JSON (truncated?)") from None
        found, records = _dig(doc, self.spec.records_path)
        if not found or not isinstance(records, list):
            raise BadBody(
                f"records_path {self.spec.records_path_text}: no array there in the response"
            )
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise BadBody(f"record {i + 1} of the page is not a JSON object")
        cursor = None
        if self.spec.kind == "cursor":
            _, cursor = _dig(doc, self.spec.paginate["_cursor_path"])
        return records, cursor

    async def fetch(self, position: dict[str, Any]) -> tuple[list[dict], Any, Any]:
        spec, pag = self.spec, self.spec.paginate
        url, params = spec.url, dict(self.params)
        if "url" in position:  # a Link: rel=next (kept with ${VAR} in place of secrets)
            url = spec.secrets.expand(position["url"], "source.url", "<state>")
            given = httpx.URL(url).params
            params = {k: v for k, v in params.items() if k not in given}
        else:
            for k, v in position.items():
                placeholder = "{" + k + "}"
                if placeholder in url:
                    url = url.replace(placeholder, str(v))
                elif v is not None:
                    params[pag["param"]] = str(v)
        self.requests += 1
        # the URL's own query stays (httpx's params= would replace it)
        resp = await self.client.get(
            str(httpx.URL(url).copy_merge_params(params)),
            label=spec.label(position),
            params=None,
            headers=spec.headers,
            parse=self._parse,
        )
        records, cursor = resp.value
        return records, cursor, resp

    # ---- the run's pages, in order
    async def pages(self, start: dict[str, Any]) -> AsyncIterator[Page]:
        # pages wait here for the loads: a batch's worth and one more (the fetch-ahead of page
        # and offset pagination is bounded by ahead(), not by this queue)
        out: asyncio.Queue = asyncio.Queue(maxsize=self.spec.pages_per_batch + 1)
        producer = (
            self._ahead(start, out)
            if self.spec.kind in ("page", "offset")
            else self._sequential(start, out)
        )

        async def produce() -> None:
            try:
                await producer
            except Exception as exc:  # a bug must not leave the consumer waiting
                await out.put(exc)

        task = asyncio.create_task(produce())
        try:
            while True:
                page = await out.get()
                if page is None:
                    break
                if isinstance(page, Exception):
                    raise page
                yield page
                if page.error is not None or page.after is None:
                    break
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _sequential(self, position: dict[str, Any], out: asyncio.Queue) -> None:
        kind, index = self.spec.kind, 0
        while True:
            try:
                records, cursor, resp = await self.fetch(position)
            except FetchError as exc:
                await out.put(Page(index, position, [], None, exc))
                return
            after: dict[str, Any] | None = None
            if kind == "cursor" and cursor not in (None, "") and records:
                if str(cursor) != str(position.get("cursor")):
                    after = {"cursor": cursor}
            elif kind == "link":
                nxt = resp.headers.get("link") and resp.url and _next_link(resp)
                if nxt:
                    after = {"url": self.spec.secrets.unexpand(nxt)}
            await out.put(Page(index, position, records, after))
            if after is None:
                await out.put(None)
                return
            position, index = after, index + 1

    async def _ahead(self, start: dict[str, Any], out: asyncio.Queue) -> None:
        pag = self.spec.paginate
        kind = self.spec.kind
        size = pag.get("size")
        step = int(size) if kind == "offset" else 1
        first = int(start[kind])
        tasks: dict[int, asyncio.Task] = {}
        end: int | None = None
        delivered = 0
        space = asyncio.Condition()

        def pos(i: int) -> dict[str, Any]:
            return {kind: first + i * step}

        async def issue() -> None:
            i = 0
            while True:
                async with space:
                    await space.wait_for(
                        lambda i=i: (end is not None and i > end) or i - delivered < self.ahead()
                    )
                if end is not None and i > end:
                    return
                tasks[i] = asyncio.create_task(self.fetch(pos(i)))
                i += 1
                await asyncio.sleep(0)

        issuer = asyncio.create_task(issue())
        try:
            while True:
                while delivered not in tasks:
                    await asyncio.sleep(0.001)
                try:
                    records, _, _ = await tasks.pop(delivered)
                except FetchError as exc:
                    await out.put(Page(delivered, pos(delivered), [], None, exc))
                    return
                last = not records or (size is not None and len(records) < int(size))
                if last:
                    end = delivered
                    for k in [k for k in tasks if k > end]:
                        tasks.pop(k).cancel()
                after = None if last else pos(delivered + 1)
                await out.put(Page(delivered, pos(delivered), records, after))
                delivered += 1
                async with space:
                    space.notify_all()
                if last:
                    await out.put(None)
                    return
        finally:
            issuer.cancel()
            for t in tasks.values():
                t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.gather(issuer, *tasks.values(), return_exceptions=True)


def _next_link(resp: Any) -> str | None:
    links = httpx.Response(200, headers=resp.headers, request=httpx.Request("GET", resp.url)).links
    nxt = links.get("next", {}).get("url")
    return str(resp.url.join(nxt)) if nxt else None


# ---------------------------------------------------------------- the run


def _high(records: list[dict], name: str, current: Any) -> Any:
    best = current
    for r in records:
        v = r.get(name)
        if v is None:
            continue
        try:
            if best is None or v > best:
                best = v
        except TypeError:  # values of two types: their text decides
            if str(v) > str(best):
                best = v
    return best


def batch_id_of(spec: HttpSource, dataset: str, since: Any, pages: list[Page]) -> str:
    h = hashlib.sha256()
    h.update(json_bytes([dataset, spec.url_template, spec.paginate["type"], since]))
    for p in pages:
        h.update(json_bytes(p.position, sort_keys=True))
        h.update(json_bytes(p.records, sort_keys=True))
    return h.hexdigest()[:32]


def run_http(store: Any, cfg: dict[str, Any], steps: list, run_id: str, progress, batches: list,
             after_batch: Callable[[dict], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Load the pages of ``cfg``'s http source into ``store``, each ``pages_per_batch`` pages
    one batch (appended to ``batches``). Returns the ingest report (the controller's figures,
    pages, the position reached). A 4xx ends the run with an ``invalid`` entry (exit 2); a
    transient failure past its retries with a ``failed`` one (exit 1); either way every batch
    before it committed with its position, and a re-run resumes there."""
    spec = open_source(cfg["source"], cfg["dataset"], cfg["_file"])
    dataset = cfg["dataset"]
    filt = _MaskFilter(spec.secrets)
    loggers = [logging.getLogger(n) for n in ("httpx", "httpcore")]
    for lg in loggers:
        lg.addFilter(filt)
    learned = memory.load(store, spec.name, spec.host)
    controller = Controller(
        ControllerConfig.from_dict(spec.controller),
        clock=time.monotonic,
        wall=time.time,
        memory=learned,
    )
    state = store.load_state(dataset, STATE_KEY) or {}
    inc = spec.incremental
    resumed = state.get("position") is not None
    if resumed:
        position = dict(state["position"])
        since = state.get("since")
        high = state.get("high")
    else:
        kind = spec.kind
        position = {kind: spec.paginate["start"]} if kind in ("page", "offset") else {}
        if kind == "cursor" and spec.paginate.get("initial") is not None:
            position = {"cursor": spec.paginate["initial"]}
        since = state.get("since") if state.get("since") is not None else (inc or {}).get("initial")
        high = since
    params = dict(spec.params)
    if inc and since is not None:
        params[inc["param"]] = str(since)
    report: dict[str, Any] = {
        "source": spec.name,
        "kind": "http",
        "url": spec.url_template,
        "host": spec.host,
        "pagination": spec.kind,
        "resumed_at": spec.label(position) if resumed else None,
        "since": since,
        "pages": 0,
    }
    t0 = time.perf_counter()
    try:
        asyncio_run(
            _drive(
                store,
                cfg,
                spec,
                controller,
                params,
                position,
                since,
                high,
                steps,
                run_id,
                progress,
                batches,
                report,
                after_batch,
            )  # fmt: skip
        )
    finally:
        for lg in loggers:
            lg.removeFilter(filt)
        stats = controller.report()
        if stats["requests"]:
            memory.save(store, spec.name, spec.host, controller.memory(), stats)
        report["controller"] = stats
        report["seconds"] = round(time.perf_counter() - t0, 3)
    return report


def asyncio_run(coro: Any) -> Any:
    """``asyncio.run``, in a thread of its own when an event loop already runs here (a
    notebook, an orchestrator's async task)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(asyncio.run, coro).result()


async def _drive(store, cfg, spec: HttpSource, controller, params, position, since, high, steps,
                 run_id, progress, batches, report, after_batch) -> None:  # fmt: skip
    from ..run import load_file

    dataset = cfg["dataset"]
    chunk_rows = int(cfg["source"].get("chunk_rows", 100_000))
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
    inc = spec.incremental
    state = {"since": since, "high": high}

    def load(group: list[Page], done: bool) -> dict[str, Any]:
        records = [r for p in group for r in p.records]
        new_high = _high(records, inc["field"], state["high"]) if inc else None
        after = None if done else group[-1].after
        value = {
            "since": new_high if done else state["since"],
            "high": new_high,
            "position": after,
            "run_id": run_id,
        }
        bid = batch_id_of(spec, dataset, state["since"], group)
        label = spec.label(group[0].position) + (
            f" (+{len(group) - 1} pages)" if len(group) > 1 else ""
        )

        def read():
            for off in range(0, len(records), chunk_rows):
                yield Batch(records[off : off + chunk_rows], label, off, bid, "json")

        entry = load_file(
            store, cfg, label, label, steps, run_id, progress,
            ids=[bid], read=read, on_commit=lambda w: w.save_state(dataset, STATE_KEY, value),
        )  # fmt: skip
        if entry["status"] == "skipped":  # loaded before: its position may still be behind
            store.save_state(dataset, STATE_KEY, value)
        if entry["status"] in ("loaded", "skipped"):
            state["high"] = new_high
            if done:
                state["since"] = new_high
        entry["pages"] = len(group)
        return entry

    async with httpx.AsyncClient(timeout=spec.timeout, limits=limits) as http:
        client = AdaptiveClient(controller, http)
        pager = Pager(spec, client, params)
        group: list[Page] = []
        error: FetchError | None = None
        async for page in pager.pages(position):
            if page.error is not None:
                error = page.error
                break
            report["pages"] += 1
            last = page.after is None
            if page.records:
                group.append(page)
            if group and (len(group) >= spec.pages_per_batch or last):
                entry = await asyncio.to_thread(load, group, last)
                group = []
                batches.append(entry)
                if after_batch:
                    after_batch(entry)
                if entry["status"] in ("failed", "invalid", "blocked"):
                    report["stopped"] = f"batch {entry['status']}"
                    return
            elif last:  # the end, on an empty page: the run is complete
                value = {"since": state["high"], "high": state["high"], "position": None,
                         "run_id": run_id}  # fmt: skip
                await asyncio.to_thread(store.save_state, dataset, STATE_KEY, value)
        if error is not None:
            if group:  # the pages before it still load, in order
                entry = await asyncio.to_thread(load, group, False)
                batches.append(entry)
                if after_batch:
                    after_batch(entry)
            msg = spec.secrets.mask(str(error))
            status = "invalid" if isinstance(error, ClientRefused) else "failed"
            hint = (
                "check the URL, parameters and credentials; a re-run resumes here"
                if status == "invalid"
                else "the server kept failing; a re-run resumes at this page"
            )
            batches.append(
                {
                    "source": spec.secrets.mask(error.label),
                    "status": status,
                    "decision": status,
                    "error": f"{msg} ({hint})",
                    "http_status": error.status,
                    "rows_read": 0,
                    "rows_loaded": 0,
                    "rows_quarantined": 0,
                }
            )
            report["stopped"] = msg
