"""The run benchmark's input: N rows of JSON Lines, written once to bench/out/.

Narrow (12 columns): integers, floats, strings (names, e-mail addresses, low-cardinality
codes), an ISO timestamp with a zone, a boolean, a nested object and a mostly-null text column.
Wide (60 columns): the same 12 plus 48 more (12 each of integers, floats, low-cardinality
strings and timestamps), the shape of an event table. Sparse: the same rows with each null
field left out, as APIs that omit nulls write them (records then differ in their keys).

    .venv/bin/python bench/run/generate.py --rows 1000000 [--wide] [--sparse]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
COUNTRIES = ["DE", "FR", "US", "BR", "IN", "JP", "NG", "SE", "MX", "KR"]
STATUSES = ["new", "paid", "shipped", "returned", "cancelled"]
FIRST = ["ana", "bo", "chen", "dara", "eli", "femi", "gus", "hana", "ivo", "jun", "kim", "lea"]


def _rows(n: int, wide: bool, seed: int = 7):
    rnd = random.Random(seed)
    rand, randrange, choice = rnd.random, rnd.randrange, rnd.choice
    for i in range(n):
        sec = 1_700_000_000 + i * 3
        day, rest = divmod(sec - 1_700_000_000, 86_400)
        ts = f"2024-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}Z"
        name = f"{choice(FIRST)} {randrange(100_000)}"
        r = {
            "id": i,
            "user_id": randrange(1, 200_000),
            "amount": None if i % 50 == 0 else round(rand() * 500, 2),
            "qty": randrange(1, 20),
            "name": name,
            "email": f"{name.replace(' ', '.')}@example.com",
            "country": choice(COUNTRIES),
            "status": choice(STATUSES),
            "created_at": ts,
            "active": rand() < 0.9,
            "meta": {"source": choice(("web", "app", "api")), "v": i % 4, "ok": True},
            "note": None if i % 9 else f"call back {i % 97}",
        }
        if wide:
            for k in range(12):
                r[f"n{k}"] = randrange(0, 10_000 * (k + 1))
                r[f"f{k}"] = round(rand() * (k + 1) * 10, 3)
                r[f"s{k}"] = STATUSES[(i + k) % 5] + str(k)
                r[f"t{k}"] = ts
        yield r


def write_rows(path: Path, n: int, wide: bool = False, sparse: bool = False) -> Path:
    with open(path, "wb") as f:
        buf = []
        for r in _rows(n, wide):
            if sparse:
                r = {k: v for k, v in r.items() if v is not None}
            buf.append(orjson.dumps(r))
            if len(buf) == 10_000:
                f.write(b"\n".join(buf) + b"\n")
                buf = []
        if buf:
            f.write(b"\n".join(buf) + b"\n")
    return path


def data_file(n: int, wide: bool = False, sparse: bool = False) -> Path:
    """bench/out/run_<n>[_wide][_sparse].jsonl, written on first use."""
    name = f"run_{n}{'_wide' if wide else ''}{'_sparse' if sparse else ''}.jsonl"
    path = ROOT / "bench" / "out" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        write_rows(tmp, n, wide, sparse)
        tmp.rename(path)
    return path


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--wide", action="store_true")
    ap.add_argument("--sparse", action="store_true")
    args = ap.parse_args()
    print(data_file(args.rows, args.wide, args.sparse))
