"""PostgreSQL load speed: pipewarden's store against a plain psycopg 3 binary COPY.

Same rows, same server, same run. For each shape (narrow: 3 columns; wide: 20 columns of every
type, with a jsonb column) a chunk of CHUNK rows is generated once, as the typed tuples the run
hands the store (``coerce_row`` output), and written ROWS / CHUNK times:

- ``raw COPY``: ``cursor.copy("COPY ... FROM STDIN (FORMAT BINARY)")`` + ``set_types`` +
  ``write_row``, one COPY per chunk, one transaction;
- ``pipewarden typed``: ``store.transaction()`` -> ``write_typed`` per chunk -> ``mark_done``;
- ``pipewarden typed + raw``: the same plus the raw landing table (payload as jsonb), which is
  what ``pipewarden run`` writes for every loaded row.

Usage: python bench/store/bench_load.py [--rows 1000000] [--chunk 100000] [--dsn DSN]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import time
import uuid
from decimal import Decimal

import psycopg

from pipewarden.schema.types import DataType as T
from pipewarden.store import open_store
from pipewarden.store.base import jdump, quote

NARROW = [("id", T.BIGINT, "bigint"), ("name", T.TEXT, "text"), ("score", T.DOUBLE, "float8")]
WIDE = [
    ("id", T.BIGINT, "bigint"),
    ("customer", T.TEXT, "text"),
    ("email", T.TEXT, "text"),
    ("amount", T.DECIMAL, "numeric(18,2)"),
    ("quantity", T.BIGINT, "bigint"),
    ("price", T.DOUBLE, "float8"),
    ("discount", T.DOUBLE, "float8"),
    ("active", T.BOOLEAN, "boolean"),
    ("day", T.DATE, "date"),
    ("created_at", T.TIMESTAMPTZ, "timestamptz"),
    ("updated_at", T.TIMESTAMP, "timestamp"),
    ("country", T.TEXT, "text"),
    ("city", T.TEXT, "text"),
    ("zip", T.TEXT, "text"),
    ("channel", T.TEXT, "text"),
    ("score", T.DOUBLE, "float8"),
    ("visits", T.BIGINT, "bigint"),
    ("flag", T.BOOLEAN, "boolean"),
    ("note", T.TEXT, "text"),
    ("attrs", T.JSON, "jsonb"),
]


def make_rows(cols, n: int, seed: int = 7) -> list[tuple]:
    rnd = random.Random(seed)
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    gen = {
        T.BIGINT: lambda i: i * 7 + rnd.randrange(1000),
        T.TEXT: lambda i: f"value-{rnd.randrange(10**6)}",
        T.DOUBLE: lambda i: rnd.random() * 1000,
        T.DECIMAL: lambda i: Decimal(rnd.randrange(100000)) / 100,
        T.BOOLEAN: lambda i: rnd.random() < 0.5,
        T.DATE: lambda i: dt.date(2024, 1, 1) + dt.timedelta(days=i % 365),
        T.TIMESTAMPTZ: lambda i: base + dt.timedelta(seconds=i),
        T.TIMESTAMP: lambda i: dt.datetime(2024, 1, 1) + dt.timedelta(seconds=i),
        T.JSON: lambda i: json.dumps({"k": i % 10, "tags": ["a", "b"]}),
    }
    return [tuple(gen[t](i) for _, t, _ in cols) for i in range(n)]


def create(conn, schema: str, table: str, cols) -> None:
    body = ", ".join(f"{quote(n)} {pg}" for n, _, pg in cols)
    conn.execute(f"CREATE TABLE {quote(schema)}.{quote(table)} ({body})")


def raw_copy(dsn, schema, table, cols, chunk, repeats) -> float:
    names = ", ".join(quote(n) for n, _, _ in cols)
    types = [pg.split("(")[0] for _, _, pg in cols]
    with psycopg.connect(dsn) as conn:
        t0 = time.perf_counter()
        with conn.transaction():
            for _ in range(repeats):
                with (
                    conn.cursor() as cur,
                    cur.copy(
                        f"COPY {quote(schema)}.{quote(table)} ({names}) FROM STDIN (FORMAT BINARY)"
                    ) as cp,
                ):
                    cp.set_types(types)
                    for row in chunk:
                        cp.write_row(row)
        return time.perf_counter() - t0


def ours(dsn, schema, table, cols, chunk, repeats, payloads=None) -> float:
    store = open_store(dsn, namespace=schema)
    idents = [n for n, _, _ in cols]
    dtypes = [t for _, t, _ in cols]
    try:
        with store.transaction() as w:  # the dataset's companion tables, outside the timing
            w.ensure_dataset(table)
        t0 = time.perf_counter()
        with store.transaction() as w:
            for k in range(repeats):
                w.write_typed(table, idents, dtypes, chunk)
                if payloads is not None:
                    offsets = range(k * len(chunk), (k + 1) * len(chunk))
                    w.write_raw(table, "bench", offsets, payloads)
            w.mark_done(
                table,
                uuid.uuid4().hex,
                {"rows_read": 1, "rows_loaded": 1, "rows_quarantined": 0},
            )
        return time.perf_counter() - t0
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=100_000)
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    repeats = max(1, args.rows // args.chunk)
    rows = repeats * args.chunk
    schema = f"pwbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.dsn, autocommit=True) as c:
        server = c.execute("show server_version").fetchone()[0]
        c.execute(f"CREATE SCHEMA {quote(schema)}")
    print(f"python {platform.python_version()}, psycopg {psycopg.__version__}, PostgreSQL {server}")
    print(f"{rows:,} rows per measure ({repeats} chunks of {args.chunk:,})")
    print(f"{'shape':<8} {'method':<26} {'seconds':>8} {'rows/s':>10} {'vs raw':>7}")
    try:
        for shape, cols in (("narrow", NARROW), ("wide-20", WIDE)):
            chunk = make_rows(cols, args.chunk)
            payloads = [jdump(dict(zip([n for n, _, _ in cols], r, strict=True))) for r in chunk]
            with psycopg.connect(args.dsn, autocommit=True) as c:
                for t in ("raw", "ours", "full"):
                    create(c, schema, f"{shape.replace('-', '_')}_{t}", cols)
            base = shape.replace("-", "_")
            results = [
                (
                    "raw COPY (psycopg binary)",
                    raw_copy(args.dsn, schema, f"{base}_raw", cols, chunk, repeats),
                ),
                ("pipewarden typed", ours(args.dsn, schema, f"{base}_ours", cols, chunk, repeats)),
                (
                    "pipewarden typed + raw",
                    ours(args.dsn, schema, f"{base}_full", cols, chunk, repeats, payloads),
                ),
            ]
            raw = results[0][1]
            for name, secs in results:
                print(f"{shape:<8} {name:<26} {secs:8.2f} {rows / secs:10,.0f} {secs / raw:6.2f}x")
    finally:
        with psycopg.connect(args.dsn, autocommit=True) as c:
            c.execute(f"DROP SCHEMA {quote(schema)} CASCADE")


if __name__ == "__main__":
    main()
