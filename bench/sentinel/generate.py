"""Generate the benchmark batch: N rows x 20 columns of JSON Lines, with nesting, nulls,
date/timestamp strings, leading-zero codes, and a type change half way (``ver`` turns from
integers into strings, ``qty`` from integers into decimals)."""

from __future__ import annotations

import argparse
import random
import uuid

import orjson

COUNTRIES = ["DE", "FR", "US", "BR", "IN", "JP", "NG", "SE"]
STATUSES = ["new", "paid", "shipped", "returned"]


def row(i: int, n: int, rnd: random.Random) -> dict:
    late = i >= n // 2
    return {
        "id": i,
        "user_id": rnd.randrange(1, 50_000),
        "ts": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}Z",
        "day": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "amount": round(rnd.random() * 1000, 2),
        "qty": (rnd.randrange(1, 9) + 0.5) if late else rnd.randrange(1, 9),
        "price": rnd.randrange(100, 100_000) / 100,
        "name": f"user {rnd.randrange(1_000_000)}",
        "email": f"u{i}@example.com",
        "country": rnd.choice(COUNTRIES),
        "status": rnd.choice(STATUSES),
        "active": rnd.random() < 0.8,
        "score": rnd.gauss(0, 1),
        "tags": [rnd.choice(STATUSES) for _ in range(i % 3)],
        "meta": {"source": "api", "depth": {"level": i % 5, "ok": True}},
        "note": None if i % 7 else "check this one",
        "ref": str(uuid.UUID(int=rnd.getrandbits(128))),
        "ver": f"v{i % 10}" if late else i % 10,
        "flag": None if i % 3 == 0 else bool(i % 2),
        "code": f"{i % 100_000:05d}",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--out", default="bench/out/sentinel.jsonl")
    args = ap.parse_args()
    rnd = random.Random(42)
    with open(args.out, "wb") as f:
        for i in range(args.rows):
            f.write(orjson.dumps(row(i, args.rows, rnd)) + b"\n")


if __name__ == "__main__":
    main()
