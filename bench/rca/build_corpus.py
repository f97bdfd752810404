"""Build bench/rca/corpus.jsonl: real failures provoked on this machine plus the public logs
of public_*.py, each labelled with its class and the fix that resolved it, and split into a
``dev`` part (the one signatures may be tuned on) and a ``heldout`` part by a hash of the
entry's source, fixed before any tuning.

    python bench/rca/build_corpus.py          # needs PostgreSQL on 127.0.0.1:5432 (trust)

The provoked failures come from tests/rca_provoke.py, the same functions the RCA tests use.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(HERE), str(ROOT / "src")]

import rca_provoke as P  # noqa: E402


def split_of(source: str) -> str:
    """A fixed 50/50 split by the source's hash (not by class, not by content)."""
    return "heldout" if int(hashlib.sha256(source.encode()).hexdigest(), 16) % 2 else "dev"


def _mem() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (512 * 1024**2, 512 * 1024**2))


def _schema() -> str:
    name = f"pwbench_{uuid.uuid4().hex[:10]}"
    P.pg(f'create schema "{name}"')
    return name


def provoked() -> list[dict]:
    out: list[dict] = []

    def add(name: str, cls: str, fix: str, log: str, exit_code: int | None = None) -> None:
        out.append({"source": f"provoked:{name}", "cls": cls, "fix": fix, "log": log,
                    "exit_code": exit_code})  # fmt: skip

    # memory
    text, code = P.py("data = bytearray(3 * 1024 ** 3)", preexec=_mem)
    add("memoryerror-rlimit", "out_of_memory", "reduce-batch-size", text, code)
    text, code = P.py("import numpy as np; a = np.ones((200000, 200000))", preexec=_mem)
    add("numpy-allocation", "out_of_memory", "reduce-batch-size", text, code)
    text, code = P.py(
        "import os, signal; print('loading rows'); os.kill(os.getpid(), signal.SIGKILL)"
    )
    add("sigkill-137", "out_of_memory", "raise-memory-limit", text + "\nKilled", 137)

    # disk
    def write_full() -> None:
        with open("/dev/full", "w") as f:
            f.write("x" * 100_000)

    add("enospc-dev-full", "disk_full", "free-disk-space", P.tb(write_full))
    text, code = P.py(
        "import shutil, io; shutil.copyfileobj(io.BytesIO(b'x' * 10**6), open('/dev/full', 'wb'))"
    )
    add("enospc-copy", "disk_full", "free-disk-space", text, code)
    # network
    port = P.free_port()
    import psycopg

    add(
        "pg-closed-port",
        "connection_refused",
        "start-service",
        P.tb(lambda: psycopg.connect(f"postgresql://etl@127.0.0.1:{port}/wh", connect_timeout=3)),
    )
    text, code = P.py(
        f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/api', timeout=3)"
    )
    add("http-closed-port", "connection_refused", "start-service", text, code)
    add(
        "dns-invalid",
        "dns",
        "fix-hostname",
        P.tb(lambda: socket.getaddrinfo("warehouse.invalid", 5432)),
    )
    add(
        "pg-dns",
        "dns",
        "fix-hostname",
        P.tb(
            lambda: psycopg.connect(
                "postgresql://etl@warehouse-db.invalid:5432/wh", connect_timeout=3
            )
        ),
    )
    with P.http_server() as url:
        hport = int(url.rsplit(":", 1)[1])

        def handshake() -> None:
            with socket.create_connection(("127.0.0.1", hport), timeout=5) as raw:
                ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")

        add("tls-to-plain-http", "tls", "fix-tls-mode", P.tb(handshake))
        add(
            "http-429",
            "rate_limited",
            "honour-retry-after",
            P.tb(lambda: P.http_get(f"{url}/status/429")),
        )
        add(
            "http-503",
            "server_error",
            "retry-with-backoff",
            P.tb(lambda: P.http_get(f"{url}/status/503")),
        )
        add(
            "http-502",
            "server_error",
            "retry-with-backoff",
            P.tb(lambda: P.http_get(f"{url}/status/502")),
        )
        add(
            "http-401",
            "authentication",
            "fix-credentials",
            P.tb(lambda: P.http_get(f"{url}/status/401")),
        )
        add(
            "http-403",
            "permission",
            "grant-privileges",
            P.tb(lambda: P.http_get(f"{url}/status/403")),
        )
        add(
            "http-read-timeout",
            "timeout",
            "raise-timeout",
            P.tb(lambda: P.http_get(f"{url}/slow", timeout=0.3)),
        )
    # PostgreSQL
    schema = _schema()
    try:
        add(
            "pg-missing-column",
            "schema_mismatch",
            "update-query-or-mapping",
            P.tb(lambda: P.pg("select amount_eur from pg_class")),
        )
        add(
            "pg-missing-table",
            "schema_mismatch",
            "migrate-target-table",
            P.tb(lambda: P.pg(f'select * from "{schema}".orders')),
        )
        add(
            "pg-bad-int",
            "schema_mismatch",
            "cast-or-clean-values",
            P.tb(lambda: P.pg("select 'twelve'::int")),
        )
        P.pg(f'create table "{schema}".k (id int primary key)')
        P.pg(f'insert into "{schema}".k values (1)')
        add(
            "pg-unique",
            "duplicate_key",
            "upsert-or-merge",
            P.tb(lambda: P.pg(f'insert into "{schema}".k values (1)')),
        )
        add("pg-deadlock", "concurrency_conflict", "retry-with-backoff", P.pg_deadlock(schema))
        add(
            "pg-serialization",
            "concurrency_conflict",
            "retry-with-backoff",
            P.pg_serialization(schema),
        )
        add("pg-nowait", "concurrency_conflict", "serialize-writers", P.pg_lock_nowait(schema))
        add(
            "pg-statement-timeout",
            "timeout",
            "raise-timeout",
            P.tb(lambda: P.pg("set statement_timeout = 50; select pg_sleep(2)")),
        )
        add("pg-idle-timeout", "timeout", "raise-timeout", P.pg_idle_timeout())
        add(
            "pg-no-privilege", "permission", "grant-privileges", P.pg_insufficient_privilege(schema)
        )
        add(
            "pg-no-role",
            "authentication",
            "fix-auth-config",
            P.tb(lambda: psycopg.connect("postgresql://no_such_role_x@127.0.0.1:5432/test")),
        )
        try:
            with P.password_cluster() as dsn:
                add(
                    "pg-wrong-password",
                    "authentication",
                    "fix-credentials",
                    P.tb(lambda: psycopg.connect(dsn + "?password=wrong")),
                )
        except (RuntimeError, OSError, KeyError) as exc:
            print("skipped the password cluster:", exc, file=sys.stderr)
    finally:
        P.pg(f'drop schema "{schema}" cascade')
    # processes and code
    text, code = P.py("import pandas_gbq_not_installed")
    add("missing-module", "missing_module", "install-package", text, code)
    text, code = P.py("from json import loads_fast")
    add("cannot-import-name", "missing_module", "pin-compatible-version", text, code)
    text, code = P.py("def load(rows):\n    return rows + 1\nload(['a'])")
    add("typeerror", "code_error", "fix-code", text, code)
    text, code = P.py("import json\nprint(json.dumps(undefined_config))")
    add("nameerror", "code_error", "fix-code", text, code)
    text, code = P.py("import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    add("sigterm", "killed", "check-orchestrator-kill", text + "\nTerminated", 143)
    with tempfile.TemporaryDirectory() as d:
        bad = Path(d) / "orders.json"
        bad.write_text('{"id": 1,, "amount": 2}')
        add(
            "json-malformed",
            "bad_input",
            "fix-input-file",
            P.tb(lambda: json.loads(bad.read_text())),
        )
        add(
            "file-missing",
            "bad_input",
            "fix-input-file",
            P.tb(lambda: (Path(d) / "orders_2026-01-05.csv").read_text()),
        )
        latin = Path(d) / "customers.csv"
        latin.write_bytes("name\nJos\xe9\n".encode("latin-1"))
        add(
            "wrong-encoding",
            "bad_input",
            "set-encoding",
            P.tb(lambda: latin.read_text(encoding="utf-8")),
        )
        locked = Path(d) / "locked"
        locked.mkdir(mode=0o700)
        if os.geteuid() == 0:
            text, code = P.py(f"open({str(locked / 'out.csv')!r}, 'w')", user="nobody",
                              python="/usr/bin/python3")  # fmt: skip
            add("eacces", "permission", "fix-file-permissions", text, code)
    # our own outcomes, through real runs of pipewarden
    out.extend(_pipewarden_outcomes())
    return out


def _cli(*args: str) -> tuple[str, int]:
    res = subprocess.run([sys.executable, "-m", "pipewarden", *args], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})  # fmt: skip
    return res.stdout + res.stderr, res.returncode


def _pipewarden_outcomes() -> list[dict]:
    out = []

    def entry(name: str, cls: str, fix: str, text: str, code: int) -> None:
        out.append({"source": f"provoked:{name}", "cls": cls, "fix": fix, "log": text,
                    "exit_code": code})  # fmt: skip

    with tempfile.TemporaryDirectory() as d:
        cfg = P.pipeline_config(d, "contract: {tables: evolve, columns: freeze}\n")
        (Path(d) / "in" / "a.jsonl").write_text('{"id": 1}\n')
        _cli("run", str(cfg))
        (Path(d) / "in" / "b.jsonl").write_text('{"id": 2, "coupon": "X"}\n')
        entry("run-contract-freeze", "contract_reject", "relax-contract-or-fix-producer",
              *_cli("run", str(cfg)))  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        pol = Path(d) / "policy.yaml"
        pol.write_text("version: 1\nrules:\n  - entity: EMAIL_ADDRESS\n    action: block\n")
        cfg = P.pipeline_config(d, f"steps:\n  - type: guardian\n    policy: {pol}\n", "contacts")
        (Path(d) / "in" / "c.jsonl").write_text('{"id": 1, "note": "mail jane.doe@example.com"}\n')
        entry("run-pii-block", "pii_block", "mask-or-drop-pii", *_cli("run", str(cfg)))
    with tempfile.TemporaryDirectory() as d:
        cfg = P.pipeline_config(d, P.BREAKER_STEP, "sales")
        recs = P.healthy_then_tiny_batches(d)
        _cli("run", str(cfg))
        P.tiny_batch(d, recs)
        _cli("run", str(cfg))
        entry("breaker-status", "breaker_open", "investigate-anomalies",
              *_cli("breaker", "status", "--config", str(cfg)))  # fmt: skip
    return out


def public() -> list[dict]:
    out = []
    for part in "abcde":
        mod = __import__(f"public_{part}")
        out.extend({**e, "exit_code": None} for e in mod.ENTRIES)
    return out


def main() -> None:
    rows = []
    for e in provoked() + public():
        rows.append({"id": hashlib.sha256(e["source"].encode()).hexdigest()[:12],
                     "split": split_of(e["source"]), **e})  # fmt: skip
    path = HERE / "corpus.jsonl"
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    by = {}
    for r in rows:
        by.setdefault(r["split"], 0)
        by[r["split"]] += 1
    print(f"wrote {len(rows)} entries to {path}: {by}")


if __name__ == "__main__":
    main()
