"""The FastAPI app over the store: routes built from the datasets' schemas.

One app is built per snapshot of the catalog (datasets, schemas, keys, PII classification).
:class:`ServeApp` is the ASGI entry point: it looks at the schema versions at most every
``refresh_seconds`` and swaps in a new app when they (or the batches) changed, so a schema
change shows in the routes and in ``/openapi.json`` without a restart.

Per dataset ``D`` (its name as it is; a name that is not plain letters, digits and ``_`` is
listed by ``/datasets`` but not served):

- ``GET /datasets/D``: columns, key, schema and docs versions, PII columns, the latest verdict;
- ``GET /datasets/D/rows/{key}``: one row by its key (a one-column key), typed;
- ``POST /datasets/D/rows/lookup``: many rows by key (``{"keys": [...]}``);
- ``GET /datasets/D/rows``: a page (``limit``, ``cursor``, ``fields``), filtered by column
  (``col=``, ``col.gt=``, ``col.gte=``, ``col.lt=``, ``col.lte=``, ``col.null=``), ordered by
  the key (or the row's place in the table when there is none);
- ``GET /datasets/D/batches``: the loaded batches with their counts;
- ``GET /datasets/D/quarantine``: the quarantine by status and reason; rows (payloads) only
  with the ``quarantine`` scope.

A column the guardian classified as PII (or whose name points at an entity) is returned
masked (``jo**********``) and cannot be filtered on without the ``pii`` scope.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import inspect
import logging
import time
from decimal import Decimal
from typing import Annotated, Any

import anyio
import orjson
from fastapi import Body, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import preview
from ..reflect.model import DatasetFacts, dataset_facts
from ..store.base import jdump, quote
from .backend import Backend
from .settings import RateLimiter, ServeSettings

log = logging.getLogger("pipewarden.serve")

SAFE_NAME = __import__("re").compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
ORDERED = {"bigint", "double", "decimal", "text", "date", "timestamp", "timestamptz"}
OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
INT64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
TEXT = Annotated[str, Field(max_length=10_000)]
DOC_PATHS = {"/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"}
MAX_COLUMNS_FILTERED = 200  # columns that get filter parameters (the rest: fields only)


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, headers: dict | None = None, body: dict | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.headers, self.body = status, message, headers or {}, body


# ---------------------------------------------------------------- types


def _param_type(t: str) -> Any:
    return {
        "boolean": bool, "bigint": INT64, "double": float, "decimal": Decimal, "text": TEXT,
        "date": dt.date, "timestamp": dt.datetime, "timestamptz": dt.datetime, "null": TEXT,
    }.get(t, TEXT)  # fmt: skip


def _out_type(t: str) -> Any:
    return {
        "boolean": bool, "bigint": int, "double": float,
        "decimal": Annotated[str, Field(description="exact decimal, as text")],
        "text": str, "date": dt.date,
        "timestamp": Annotated[str, Field(description="ISO 8601 local time, no offset")],
        "timestamptz": dt.datetime, "json": Any, "null": Any,
    }.get(t, Any)  # fmt: skip


def _value_in(t: str, v: Any) -> Any:
    """A parameter value as the database takes it."""
    if t == "text" and isinstance(v, str):
        if "\x00" in v:
            raise ApiError(400, "a text value cannot hold a NUL character")
        return v
    if t == "timestamptz" and isinstance(v, dt.datetime) and v.tzinfo is None:
        return v.replace(tzinfo=dt.UTC)
    if t == "timestamp" and isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.UTC).replace(tzinfo=None)
    if t == "decimal" and isinstance(v, Decimal) and not v.is_finite():
        raise ApiError(400, "a decimal filter must be a finite number")
    return v


def _masked(v: Any) -> Any:
    if v is None:
        return None
    return preview(v if isinstance(v, str) else jdump(v))


# ---------------------------------------------------------------- the catalog


class Dataset:
    """One served dataset: its facts and the SQL pieces routes need."""

    def __init__(self, facts: DatasetFacts, namespace: str, dialect: str) -> None:
        self.facts = facts
        self.name = facts.dataset
        self.dialect = dialect
        self.table = f"{quote(namespace)}.{quote(self.name)}"
        self.columns = [c for c in facts.columns if c["type"] != "null"]
        self.by_name = {c["name"]: c for c in self.columns}
        self.key = [k for k in (facts.key or []) if k in self.by_name] or None
        self.pii = {c for c in facts.pii if c in self.by_name}
        self.select = ", ".join(quote(c["ident"]) for c in self.columns)
        self.rowpos = "ctid" if dialect == "postgres" else "rowid"
        self._specials: dict[tuple, list[str]] = {}
        self.quality = _jsonable(facts.quality)
        for part in ("last_batch", "last_verdict"):  # file names, not the server's folders
            if isinstance(self.quality.get(part), dict):
                q = self.quality[part]
                q["source"] = _source_name(q.get("source"))

    def row(self, values: tuple, names: list[str], pii_ok: bool) -> dict[str, Any]:
        """A row as JSON-ready values: orjson writes numbers, dates, timestamps (and NaN as
        null) itself, decimals through ``default=str``; only JSON text (DuckDB) is parsed and
        PII masked."""
        out = dict(zip(names, values, strict=False))
        for n in self._special(tuple(names), pii_ok):
            v = out[n]
            if v is None:
                continue
            if n in self.pii and not pii_ok:
                out[n] = _masked(v)
            elif isinstance(v, str | bytes):  # a JSON column read as text
                out[n] = orjson.loads(v)
        return out

    def _special(self, names: tuple, pii_ok: bool) -> list[str]:
        key = (names, pii_ok)
        got = self._specials.get(key)
        if got is None:
            got = [n for n in names
                   if self.by_name[n]["type"] == "json" or (n in self.pii and not pii_ok)]  # fmt: skip
            if len(self._specials) < 1024:
                self._specials[key] = got
        return got

    def info(self) -> dict[str, Any]:
        f = self.facts
        cur = f.current
        return {
            "dataset": self.name,
            "schema_version": cur.version if cur else None,
            "docs_version": cur.docs_version if cur else None,
            "key": self.key,
            "columns": [
                {
                    "name": c["name"],
                    "type": c["type"],
                    "nullable": c["nullable"],
                    "pii": f.pii[c["name"]]["entities"] if c["name"] in self.pii else None,
                }
                for c in self.columns
            ],  # fmt: skip
            "quality": self.quality,
        }


def _jsonable(doc: Any) -> Any:
    return orjson.loads(orjson.dumps(doc, default=str))


def load_catalog(backend: Backend, settings: ServeSettings) -> tuple[list[Dataset], list[str]]:
    """The datasets to serve, and the names not served (synchronous: call it in a thread)."""
    db = backend.catalog()
    served, skipped = [], []
    for name in db.datasets():
        if not SAFE_NAME.match(name):
            skipped.append(name)
            continue
        facts = dataset_facts(db, name, key=settings.primary_keys.get(name))
        served.append(Dataset(facts, backend.namespace, backend.dialect))
    return served, skipped


def catalog_token(backend: Backend) -> tuple:
    """What changes when a schema or the batches change (one or two small queries)."""
    db = backend.catalog()
    versions = tuple(sorted(db.latest_versions().items()))
    batches: tuple = ()
    if db.has_table("_pw_batches"):
        batches = tuple(
            db.query(
                f"SELECT dataset, count(*), CAST(max(loaded_at) AS TEXT) FROM "
                f"{db.table('_pw_batches')} GROUP BY dataset ORDER BY dataset"
            )
        )
    return versions, batches


# ---------------------------------------------------------------- cursors


def _encode_cursor(values: list[Any]) -> str:
    raw = orjson.dumps(values, default=str)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(text: str, types: list[str]) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        values = orjson.loads(raw)
        if not isinstance(values, list) or len(values) != len(types):
            raise ValueError
        return [_cursor_value(t, v) for t, v in zip(types, values, strict=True)]
    except (ValueError, TypeError, orjson.JSONDecodeError, ArithmeticError):
        raise ApiError(400, "cursor: not a cursor this API returned") from None


def _cursor_value(t: str, v: Any) -> Any:
    if v is None:
        raise ValueError
    if t == "bigint" and isinstance(v, int) and not isinstance(v, bool):
        return v
    if t == "double" and isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    if t in ("text", "tid") and isinstance(v, str):
        return _value_in("text", v)
    if t == "rowid" and isinstance(v, int):
        return v
    if isinstance(v, str):
        if t == "decimal":
            return Decimal(v)
        if t == "date":
            return dt.date.fromisoformat(v)
        if t in ("timestamp", "timestamptz"):
            return _value_in(t, dt.datetime.fromisoformat(v))
    if t == "boolean" and isinstance(v, bool):
        return v
    raise ValueError


# ---------------------------------------------------------------- the app


def _json(doc: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(doc, default=str), status, headers=headers,
                    media_type="application/json")  # fmt: skip


ERRORS = {
    400: {"description": "A parameter the database cannot take (out of range, bad cursor)"},
    401: {"description": "No key, or an unknown key"},
    403: {"description": "The key lacks the scope"},
    404: {"description": "No such row"},
    429: {"description": "Too many requests (see Retry-After)"},
    503: {"description": "The store did not answer"},
}


class Error(BaseModel):
    error: str


class Invalid(BaseModel):
    error: str
    detail: list[dict[str, Any]]


def build_app(
    settings: ServeSettings,
    backend: Backend,
    datasets: list[Dataset],
    skipped: list[str],
    limiter: RateLimiter,
    store_label: dict[str, Any],
) -> FastAPI:
    app = FastAPI(
        title="pipewarden serve",
        description="Read-only access to the datasets of a pipewarden store: typed rows by key, "
        "filtered pages, the latest quality verdict, batches and the quarantine.",
        version="1",
        responses={k: {"model": Error, **v} for k, v in ERRORS.items()},
    )

    async def guard(request: Request, scope: str = "read") -> tuple[str, frozenset[str]]:
        """(caller, scopes) of a request, or ApiError 401/403/429."""
        presented = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if not presented and auth.lower().startswith("bearer "):
            presented = auth[7:].strip()
        key = settings.authenticate(presented)
        if key is None:
            if presented or not settings.anonymous:
                raise ApiError(401, "give a valid key in X-API-Key (or Authorization: Bearer)")
            who = "anonymous:" + (request.client.host if request.client else "?")
            scopes, rate, burst = frozenset({"read"}), None, None
        else:
            who, scopes, rate, burst = "key:" + key.name, key.scopes, key.rate, key.burst
        lim = settings.limits
        wait = limiter.allow(who, rate or lim.requests_per_second, burst or lim.burst)
        if wait > 0:
            raise ApiError(429, "too many requests", {"Retry-After": str(max(1, round(wait)))})
        if scope not in scopes:
            raise ApiError(403, f"this key lacks the {scope!r} scope")
        request.state.caller = who
        return who, scopes

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return _json({"error": exc.message, **(exc.body or {})}, exc.status, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _json({"error": str(exc.detail)}, exc.status_code, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        # the errors without the value sent (it may be PII): where and what
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
                  for e in exc.errors()]  # fmt: skip
        return _json({"error": "invalid request", "detail": detail}, 422)

    async def fetch(sql: str, params: list[Any]) -> list[tuple]:
        try:
            return await backend.fetch(sql, params)
        except Exception as exc:  # noqa: BLE001 - mapped to a status, never echoed
            raise _db_error(exc) from None

    @app.get("/health", tags=["store"])
    async def health() -> Response:
        """The store answers (no key needed; no data)."""
        try:
            await backend.fetch("SELECT 1", [])
        except Exception as exc:  # noqa: BLE001
            return _json({"status": "unavailable", "error": type(exc).__name__,
                          "store": store_label}, 503)  # fmt: skip
        return _json({"status": "ok", "store": store_label, "datasets": len(datasets),
                      "schema_versions": {d.name: d.facts.current.version for d in datasets
                                          if d.facts.current}})  # fmt: skip

    @app.get("/datasets", tags=["datasets"])
    async def list_datasets(request: Request) -> Response:
        """Every dataset of the store with its versions and key."""
        await guard(request)
        return _json({
            "datasets": [{"dataset": d.name, "schema_version": d.info()["schema_version"],
                          "docs_version": d.info()["docs_version"], "key": d.key,
                          "columns": len(d.columns)} for d in datasets],
            "not_served": skipped,
        })  # fmt: skip

    for d in datasets:
        _dataset_routes(app, d, settings, guard, fetch, backend)
    return app


def _db_error(exc: Exception) -> ApiError:
    sqlstate = getattr(exc, "sqlstate", None) or ""
    name = type(exc).__name__
    if sqlstate.startswith("22") or name in ("ConversionException", "OutOfRangeException",
                                             "InvalidInputException"):  # fmt: skip
        return ApiError(400, f"a value the column's type cannot take ({name})")
    if sqlstate == "57014":
        return ApiError(503, "the query took longer than the statement timeout")
    log.warning("store error: %s %s", name, sqlstate)
    return ApiError(503, f"the store did not answer ({name})")


def _dataset_routes(app: FastAPI, d: Dataset, settings: ServeSettings, guard, fetch, backend):
    base = f"/datasets/{d.name}"
    tag = d.name
    lim = settings.limits
    Row = create_model(  # noqa: N806 - a model class
        f"Row_{d.name}",
        __config__=ConfigDict(populate_by_name=True),
        **{
            f"f{i}": (
                (_out_type(c["type"]) if c["name"] not in d.pii else str | None) | None,
                Field(None, alias=c["name"]),
            )
            for i, c in enumerate(d.columns)
        },
    )
    Page = create_model(f"Page_{d.name}", rows=(list[Row], ...), next=(str | None, None))  # noqa: N806

    def names_of(fields: list[str] | None) -> list[str]:
        if not fields:
            return [c["name"] for c in d.columns]
        unknown = [f for f in fields if f not in d.by_name]
        if unknown:
            raise ApiError(400, f"fields: no column {unknown[0]!r} in {d.name}")
        return list(dict.fromkeys(fields))

    def select_of(names: list[str]) -> str:
        return ", ".join(quote(d.by_name[n]["ident"]) for n in names)

    @app.get(base, tags=[tag], summary=f"{d.name}: schema, versions, latest verdict")
    async def info(request: Request) -> Response:
        await guard(request)
        return _json(d.info())

    key_types = [d.by_name[k]["type"] for k in d.key] if d.key else []

    def key_needs_pii() -> bool:
        return bool(d.key and set(d.key) & d.pii)

    if d.key and len(d.key) == 1:
        kcol = d.by_name[d.key[0]]
        convertor = ":path" if kcol["type"] in ("text", "null") else ""

        async def get_row(request: Request, key) -> Response:
            _, scopes = await guard(request)
            pii_ok = "pii" in scopes
            if key_needs_pii() and not pii_ok:
                raise ApiError(403, "the key is a PII column: this needs the 'pii' scope")
            names = [c["name"] for c in d.columns]
            rows = await fetch(
                f"SELECT {d.select} FROM {d.table} WHERE {quote(kcol['ident'])} = ? LIMIT 1",
                [_value_in(kcol["type"], key)],
            )
            if not rows:
                raise ApiError(404, f"no row of {d.name} has this key")
            return _json(d.row(rows[0], names, pii_ok))

        get_row.__signature__ = inspect.Signature([
            inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
            inspect.Parameter("key", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                              annotation=Annotated[_param_type(kcol["type"]),
                                                   Path(description=f"the {kcol['name']!r} of the row")]),
        ])  # fmt: skip
        app.add_api_route(
            f"{base}/rows/{{key{convertor}}}", get_row, methods=["GET"], tags=[tag],
            response_model=Row, summary=f"{d.name}: one row by {kcol['name']!r}",
        )  # fmt: skip

    if d.key:
        if len(d.key) == 1:
            KeyT = _param_type(key_types[0])  # noqa: N806
        else:
            KeyT = create_model(  # noqa: N806
                f"Key_{d.name}",
                __config__=ConfigDict(populate_by_name=True, extra="forbid"),
                **{f"k{i}": (_param_type(t), Field(..., alias=k))
                   for i, (k, t) in enumerate(zip(d.key, key_types, strict=True))},
            )  # fmt: skip
        Lookup = create_model(  # noqa: N806
            f"Lookup_{d.name}", keys=(list[KeyT], Field(..., min_length=1, max_length=lim.lookup_keys))
        )  # fmt: skip
        Found = create_model(f"Found_{d.name}", rows=(list[Row], ...), missing=(list[Any], ...))  # noqa: N806

        async def lookup(request: Request, body) -> Response:
            _, scopes = await guard(request)
            pii_ok = "pii" in scopes
            if key_needs_pii() and not pii_ok:
                raise ApiError(403, "the key is a PII column: this needs the 'pii' scope")
            if len(d.key) == 1:
                wanted = [(_value_in(key_types[0], k),) for k in body.keys]
            else:
                wanted = [tuple(_value_in(t, getattr(k, f"k{i}")) for i, t in enumerate(key_types))
                          for k in body.keys]  # fmt: skip
            wanted = list(dict.fromkeys(wanted))
            kidents = [quote(d.by_name[k]["ident"]) for k in d.key]
            names = [c["name"] for c in d.columns]
            if len(d.key) == 1 and d.dialect == "postgres":
                where, params = f"{kidents[0]} = ANY(?)", [[w[0] for w in wanted]]
            else:
                one = "(" + ", ".join("?" * len(d.key)) + ")"
                where = f"({', '.join(kidents)}) IN ({', '.join([one] * len(wanted))})"
                params = [v for w in wanted for v in w]
            rows = await fetch(f"SELECT {d.select} FROM {d.table} WHERE {where}", params)
            out, seen = [], set()
            kpos = [names.index(k) for k in d.key]
            for r in rows:
                kv = tuple(r[p] for p in kpos)
                if kv in seen:
                    continue
                seen.add(kv)
                out.append(d.row(r, names, pii_ok))
            missing = [w[0] if len(w) == 1 else dict(zip(d.key, w, strict=True))
                       for w in wanted if w not in seen]  # fmt: skip
            return _json({"rows": out, "missing": missing})

        lookup.__signature__ = inspect.Signature([
            inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
            inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                              annotation=Annotated[Lookup, Body()]),
        ])  # fmt: skip
        app.add_api_route(
            f"{base}/rows/lookup", lookup, methods=["POST"], tags=[tag], response_model=Found,
            summary=f"{d.name}: many rows by key (at most {lim.lookup_keys})",
        )  # fmt: skip

    # ---- pages
    filters: list[tuple[str, str, str, Any]] = []  # (param name, column, op, type)
    taken = {"limit", "cursor", "fields"}
    for c in d.columns[:MAX_COLUMNS_FILTERED]:
        if c["type"] in ("json", "null"):
            continue
        ops = ["eq", *(OPS if c["type"] in ORDERED else ()), "null"]
        for op in ops:
            pname = c["name"] if op == "eq" else f"{c['name']}.{op}"
            if pname in taken:
                continue  # a column named like another's filter: that filter is left out
            taken.add(pname)
            filters.append((pname, c["name"], op, bool if op == "null" else _param_type(c["type"])))

    adapters = {f[0]: (TypeAdapter(f[3]), f) for f in filters}
    limit_adapter = TypeAdapter(Annotated[int, Field(ge=1, le=lim.page_size)])

    def parse(request: Request) -> tuple[int, str | None, list[str] | None, list[tuple]]:
        """The page's query string, validated like FastAPI's parameters (422 naming the
        parameter, not the value); cheaper than declaring each filter as a parameter."""
        limit, cursor, fields, given, errors = lim.default_page_size, None, None, [], []
        for name, value in request.query_params.multi_items():
            try:
                if name == "limit":
                    limit = limit_adapter.validate_python(value)
                elif name == "cursor":
                    if len(value) > 4096:
                        raise ValueError("too long")
                    cursor = value
                elif name == "fields":
                    fields = [*(fields or []), value]
                elif name in adapters:
                    ad, f = adapters[name]
                    given.append((f, ad.validate_python(value)))
                else:
                    errors.append({"loc": ["query", name], "msg": "unknown parameter",
                                   "type": "extra_forbidden"})  # fmt: skip
            except (ValidationError, ValueError) as exc:
                msg = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
                errors.append({"loc": ["query", name], "msg": msg, "type": "invalid"})
        if errors:
            raise ApiError(422, "invalid request", body={"detail": errors})
        return limit, cursor, fields, given

    async def page(request: Request) -> Response:
        _, scopes = await guard(request)
        pii_ok = "pii" in scopes
        limit, cursor, fields, given = parse(request)
        names = names_of(fields)
        where, params = [], []
        for (_pname, col, op, _t), v in given:
            if col in d.pii and not pii_ok:
                raise ApiError(403, f"filtering on the PII column {col!r} needs the 'pii' scope")
            c = d.by_name[col]
            ident = quote(c["ident"])
            if op == "null":
                where.append(f"{ident} IS {'' if v else 'NOT '}NULL")
            else:
                where.append(f"{ident} {OPS.get(op, '=')} ?")
                params.append(_value_in(c["type"], v))
        if d.key:
            order = [quote(d.by_name[k]["ident"]) for k in d.key]
            ctypes = key_types
        else:
            order = [d.rowpos]
            ctypes = ["tid" if d.dialect == "postgres" else "rowid"]
        if cursor:
            after = _decode_cursor(cursor, ctypes)
            if d.key:
                where.append(f"({', '.join(order)}) > ({', '.join('?' * len(order))})")
            else:
                where.append(f"{d.rowpos} > ?" + ("::tid" if d.dialect == "postgres" else ""))
            params.extend(after)
        # the key (or the row's place) is read too, for the next cursor
        if d.key:
            hidden = [k for k in d.key if k not in names]
            sel = select_of(names + hidden)
            kpos = [(names + hidden).index(k) for k in d.key]
        else:
            # (named apart: ORDER BY ctid would otherwise sort the text)
            pos = f"CAST({d.rowpos} AS TEXT) AS _pw_place" if d.dialect == "postgres" else d.rowpos
            sel = select_of(names) + f", {pos}"
            kpos = [len(names)]
        sql = (
            f"SELECT {sel} FROM {d.table}"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY {', '.join(order)} LIMIT {int(limit) + 1}"
        )
        rows = await fetch(sql, params)
        more = len(rows) > limit
        rows = rows[:limit]
        n = len(names)
        out = [d.row(r[:n], names, pii_ok) for r in rows]
        nxt = _encode_cursor([_cursor_out(rows[-1][p]) for p in kpos]) if more and rows else None
        return _json({"rows": out, "next": nxt})

    def qparam(name: str, schema: dict, description: str, **extra) -> dict:
        return {"name": name, "in": "query", "required": False, "schema": schema,
                "description": description, **extra}  # fmt: skip

    documented = [
        qparam("limit", limit_adapter.json_schema() | {"default": lim.default_page_size},
               "rows per page"),
        qparam("cursor", {"type": "string", "maxLength": 4096},
               "the `next` of the previous page"),
        qparam("fields", {"type": "array", "items": {"type": "string",
                                                      "enum": [c["name"] for c in d.columns]}},
               "columns to return (repeat the parameter)", style="form", explode=True),
    ]  # fmt: skip
    for pname, col, op, _t in filters:
        what = "is null (true) or not (false)" if op == "null" else f"{op} this value"
        documented.append(qparam(pname, adapters[pname][0].json_schema(), f"{col!r} {what}"))
    app.add_api_route(
        f"{base}/rows", page, methods=["GET"], tags=[tag], response_model=Page,
        summary=f"{d.name}: a page of rows, filtered",
        openapi_extra={"parameters": documented},
        responses={422: {"model": Invalid, "description": "A parameter that does not validate"}},
    )  # fmt: skip

    # ---- batches and quarantine
    async def batches(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[
            str | None, Query(max_length=200, description="`next` of the previous page")
        ] = None,
    ) -> Response:
        await guard(request)
        got = await anyio.to_thread.run_sync(
            lambda: backend.catalog().batches(d.name, limit=limit + 1, before=before)
        )
        more = len(got) > limit
        got = got[:limit]
        nxt = f"{got[-1]['loaded_at']}|{got[-1]['batch_id']}" if more and got else None
        for b in got:
            b["source"] = _source_name(b.get("source"))
        return _json({"batches": _jsonable(got), "next": nxt,
                      "latest_verdict": d.quality.get("last_verdict")})  # fmt: skip

    app.add_api_route(f"{base}/batches", batches, methods=["GET"], tags=[tag],
                      summary=f"{d.name}: loaded batches, newest first")  # fmt: skip

    async def quarantine(
        request: Request,
        rows: Annotated[
            bool, Query(description="also the rows (needs the 'quarantine' scope)")
        ] = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        _, scopes = await guard(request)
        summary = await anyio.to_thread.run_sync(
            lambda: backend.catalog().quarantine_summary(d.name)
        )
        out: dict[str, Any] = {"summary": summary}
        if rows:
            if "quarantine" not in scopes:
                raise ApiError(403, "quarantined rows need the 'quarantine' scope")
            out["rows"] = await _quarantine_rows(d, fetch, limit, "pii" in scopes)
        return _json(out)

    app.add_api_route(f"{base}/quarantine", quarantine, methods=["GET"], tags=[tag],
                      summary=f"{d.name}: quarantine by status and reason")  # fmt: skip


def _cursor_out(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, dt.date | dt.datetime):
        return v.isoformat()
    return v


def _source_name(path: Any) -> Any:
    """A source path as its file name (the server's folders are not the caller's business)."""
    if not isinstance(path, str):
        return path
    return path.replace("\\", "/").rsplit("/", 1)[-1]


async def _quarantine_rows(d: Dataset, fetch, limit: int, pii_ok: bool) -> list[dict[str, Any]]:
    t = f"{d.table[: -len(quote(d.name))]}{quote(d.name + '__quarantine')}"
    got = await fetch(
        'SELECT batch_id, "offset", reason, message, column_path, status, '
        f"CAST(quarantined_at AS TEXT), payload FROM {t} ORDER BY quarantined_at DESC, "
        f'batch_id, "offset" LIMIT {int(limit)}',
        [],
    )
    out = []
    for b, o, reason, msg, col, status, at, payload in got:
        if isinstance(payload, str | bytes):
            payload = orjson.loads(payload)
        if isinstance(payload, dict) and not pii_ok:
            payload = {k: (_masked(v) if k in d.pii else v) for k, v in payload.items()}
        out.append({"batch_id": b, "offset": int(o), "reason": reason, "message": msg,
                    "column": col, "status": status, "quarantined_at": at, "payload": payload})  # fmt: skip
    return out


# ---------------------------------------------------------------- the live app


class ServeApp:
    """The ASGI app ``pipewarden serve`` runs: opens the backend at start-up, rebuilds the
    routes when the catalog changes, logs one line per request (method, route, status, time,
    caller name; never the query string or a key)."""

    def __init__(self, settings: ServeSettings, backend: Backend, store_label: dict) -> None:
        self.settings = settings
        self.backend = backend
        self.store_label = store_label
        self.limiter = RateLimiter()
        self.app: FastAPI | None = None
        self.token: tuple | None = None
        self._next_check = 0.0
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await self.backend.open()
        await self.refresh(force=True)

    async def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and (now < self._next_check or self._lock.locked()):
            return
        async with self._lock:
            self._next_check = now + self.settings.refresh_seconds
            try:
                token = await anyio.to_thread.run_sync(catalog_token, self.backend)
            except Exception as exc:  # noqa: BLE001 - keep serving the last catalog
                log.warning("catalog refresh failed: %s", type(exc).__name__)
                if self.app is not None:
                    return
                raise
            if token == self.token and self.app is not None:
                return
            served, skipped = await anyio.to_thread.run_sync(
                load_catalog, self.backend, self.settings
            )
            self.app = build_app(self.settings, self.backend, served, skipped, self.limiter,
                                 self.store_label)  # fmt: skip
            self.token = token
            log.info("serving %d dataset(s)", len(served))

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if self.app is None:
            await self.start()
        if scope["type"] == "http":
            await self.refresh()
            if scope.get("path") in DOC_PATHS and not self._may_read_docs(scope):
                # the schema names every column: without anonymous access it needs a key too
                body = b'{"error":"give a valid key in X-API-Key (or Authorization: Bearer)"}'
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json")]})  # fmt: skip
                await send({"type": "http.response.body", "body": body})
                return
            t0 = time.perf_counter()
            status = {"code": 500}

            async def send_logged(message):
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                await send(message)

            try:
                await self.app(scope, receive, send_logged)
            finally:
                route = scope.get("route")
                path = getattr(route, "path", None) or "(no route)"
                caller = getattr(scope.get("state", {}), "get", lambda *_: None)("caller")
                log.info("%s %s %s %.1fms %s", scope.get("method"), path, status["code"],
                         (time.perf_counter() - t0) * 1000, caller or "-")  # fmt: skip
            return
        await self.app(scope, receive, send)

    def _may_read_docs(self, scope) -> bool:
        if self.settings.anonymous:
            return True
        headers = {k.lower(): v for k, v in scope.get("headers") or []}
        presented = headers.get(b"x-api-key", b"").decode("latin-1")
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if not presented and auth.lower().startswith("bearer "):
            presented = auth[7:].strip()
        return self.settings.authenticate(presented) is not None

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:  # noqa: BLE001
                    await send({"type": "lifespan.startup.failed", "message": type(exc).__name__})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.backend.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(config_path: Any) -> ServeApp:
    """The ASGI app of ``pipewarden serve CONFIG`` (for uvicorn, gunicorn, or a test)."""
    from ..redact import redact
    from ..run import load_config
    from .backend import backend_for
    from .settings import settings_from_config

    cfg = load_config(config_path)
    settings = settings_from_config(cfg)
    backend = backend_for(cfg, settings.dsn, settings.pool_size,
                          settings.limits.statement_timeout_ms)  # fmt: skip
    st = cfg["store"]
    label = {"kind": st["kind"], "schema": st["schema"],
             "url": redact(st["dsn"]) if st["kind"] == "postgres" else str(st["path"])}  # fmt: skip
    app = ServeApp(settings, backend, label)
    app.settings_host, app.settings_port = settings.host, settings.port
    return app


__all__ = ["ServeApp", "create_app", "JSONResponse"]
