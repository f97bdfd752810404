"""Real failures provoked on this machine, one function per kind: each returns the failure as
the operator would see it (the traceback or the command's output, and its exit code).

Used by the RCA tests (tests/test_rca_signatures.py) and by the benchmark's corpus builder
(bench/rca/build_corpus.py), so the "provoked" part of the corpus is the same real failures.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

PG = os.environ.get("PIPEWARDEN_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def tb(fn: Callable[[], object]) -> str:
    """The traceback ``fn`` raises, as Python prints it."""
    try:
        fn()
    except BaseException:  # noqa: BLE001 - any failure is the point
        return traceback.format_exc()
    raise AssertionError("expected a failure")


def py(code: str, *, timeout: float = 60, preexec=None, user: str | None = None,
       env: dict | None = None, python: str | None = None) -> tuple[str, int]:  # fmt: skip
    """(stdout+stderr, exit code) of a Python snippet in a fresh interpreter."""
    res = subprocess.run(
        [python or sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec,
        user=user,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    return res.stdout + res.stderr, res.returncode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- a local server


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        path = self.path
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            self.send_response(code)
            if code == 429:
                self.send_header("Retry-After", "7")
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"status %d\n" % code)
        elif path.startswith("/slow"):
            time.sleep(2)
            self.send_response(200)
            self.end_headers()
        else:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok\n")


@contextmanager
def http_server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (a thread), answering /status/<code> and /slow."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def http_get(url: str, timeout: float = 5) -> None:
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - local server
        r.read()


# --------------------------------------------------------------------------- PostgreSQL


def pg(sql: str, dsn: str = PG, **kw) -> None:
    import psycopg

    with psycopg.connect(dsn, connect_timeout=3, **kw) as c:
        c.execute(sql)


def pg_deadlock(schema: str) -> str:
    """Two connections that lock two rows in opposite orders: one gets 40P01."""
    import psycopg

    with psycopg.connect(PG, autocommit=True) as c:
        c.execute(f'create table "{schema}".locks (id int primary key, v int)')
        c.execute(f'insert into "{schema}".locks values (1, 0), (2, 0)')
    barrier = threading.Barrier(2)
    errors: list[str] = []

    def worker(first: int, second: int) -> None:
        try:
            with psycopg.connect(PG) as c:
                c.execute("set deadlock_timeout = '100ms'")
                c.execute(f'update "{schema}".locks set v = v + 1 where id = %s', (first,))
                barrier.wait(timeout=10)
                c.execute(f'update "{schema}".locks set v = v + 1 where id = %s', (second,))
        except Exception:  # noqa: BLE001
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=worker, args=a) for a in ((1, 2), (2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors, "no deadlock happened"
    return errors[0]


def pg_serialization(schema: str) -> str:
    """Two SERIALIZABLE transactions that read and write the same row: one gets 40001."""
    import psycopg

    with psycopg.connect(PG, autocommit=True) as c:
        c.execute(f'create table "{schema}".ser (id int primary key, v int)')
        c.execute(f'insert into "{schema}".ser values (1, 0)')
    a = psycopg.connect(PG)
    b = psycopg.connect(PG)
    try:
        for c in (a, b):
            c.execute("set transaction isolation level serializable")
            c.execute(f'select v from "{schema}".ser where id = 1').fetchall()
        a.execute(f'update "{schema}".ser set v = 1 where id = 1')
        a.commit()
        return tb(lambda: b.execute(f'update "{schema}".ser set v = 2 where id = 1'))
    finally:
        a.close()
        b.close()


def pg_lock_nowait(schema: str) -> str:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as c:
        c.execute(f'create table "{schema}".lk (id int)')
    holder = psycopg.connect(PG)
    try:
        holder.execute(f'lock table "{schema}".lk in access exclusive mode')
        return tb(lambda: pg(f'lock table "{schema}".lk in access exclusive mode nowait'))
    finally:
        holder.close()


def pg_idle_timeout() -> str:
    import psycopg

    def run() -> None:
        with psycopg.connect(PG) as c:
            c.execute("set idle_in_transaction_session_timeout = '100ms'")
            c.execute("select 1")
            time.sleep(0.6)
            c.execute("select 1")

    return tb(run)


def pg_insufficient_privilege(schema: str) -> str:
    import psycopg

    role = f"{schema}_ro"
    with psycopg.connect(PG, autocommit=True) as c:
        c.execute(f'create table "{schema}".secret (id int)')
        c.execute(f'create role "{role}" nologin')
        c.execute(f'grant usage on schema "{schema}" to "{role}"')
    try:

        def run() -> None:
            with psycopg.connect(PG) as c:
                c.execute(f'set role "{role}"')
                c.execute(f'select * from "{schema}".secret')

        return tb(run)
    finally:
        with psycopg.connect(PG, autocommit=True) as c:
            c.execute(f'drop owned by "{role}"')
            c.execute(f'drop role "{role}"')


@contextmanager
def password_cluster() -> Iterator[str]:
    """A throwaway PostgreSQL cluster (initdb) on a free port whose pg_hba asks for a
    password (scram-sha-256), with role ``etl`` / password ``right-horse``: yields its
    host/port DSN without a password. Runs as the ``postgres`` system user."""
    import glob
    import pwd
    import shutil

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        raise RuntimeError("initdb is not installed")
    bindir = os.path.dirname(bins[-1])
    pw = pwd.getpwnam("postgres")
    root = tempfile.mkdtemp(prefix="pw-pgauth-")
    os.chown(root, pw.pw_uid, pw.pw_gid)
    data, port = os.path.join(root, "data"), free_port()
    pwfile = os.path.join(root, "pw")
    with open(pwfile, "w") as f:
        f.write("right-horse\n")
    os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    as_pg = {"user": "postgres", "capture_output": True, "text": True, "timeout": 120}
    res = subprocess.run(
        [f"{bindir}/initdb", "-D", data, "-U", "etl", "--auth=scram-sha-256",
         f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync"], **as_pg,
    )  # fmt: skip
    if res.returncode:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {res.stderr[-500:]}")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    res = subprocess.run(
        [f"{bindir}/pg_ctl", "-D", data, "-o", opts, "-w", "-l", f"{root}/log", "start"], **as_pg
    )
    if res.returncode:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed: {res.stderr[-500:]}")
    try:
        yield f"postgresql://etl@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"], **as_pg)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def tiny_fs(size: str = "256k") -> Iterator[str]:
    """A real filesystem of ``size`` (tmpfs, mounted for the block; needs root)."""
    root = tempfile.mkdtemp(prefix="pw-tinyfs-")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", root],
                         capture_output=True, text=True)  # fmt: skip
    if res.returncode:
        os.rmdir(root)
        raise RuntimeError(f"cannot mount a tmpfs: {res.stderr.strip()}")
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", root], capture_output=True)
        os.rmdir(root)


# --------------------------------------------------------------------------- pipewarden runs

BREAKER_STEP = (
    "steps:\n  - type: anomaly\n"
    "    breaker: {min_batches: 1, window: 3, severe_anomaly_rate: 0.3}\n"
    "    monitors: {min_history: 2}\n"
)


def pipeline_config(folder, extra: str = "", dataset: str = "orders"):
    """A pipeline config in ``folder`` reading ``in/*.jsonl`` into ``wh.duckdb``."""
    from pathlib import Path

    folder = Path(folder)
    (folder / "in").mkdir(exist_ok=True)
    cfg = folder / "pipeline.yaml"
    cfg.write_text(
        f"version: 1\nname: {dataset}\ndataset: {dataset}\n"
        'source:\n  path: "in/*.jsonl"\n'
        "store:\n  kind: duckdb\n  path: wh.duckdb\n" + extra
    )
    return cfg


def healthy_then_tiny_batches(folder) -> list:
    """Three healthy batches of 300 rows, then one of 20: with BREAKER_STEP, the run of the
    last one opens the breaker (its row count is a severe breach)."""
    import json as _json
    from pathlib import Path

    from pipewarden.anomaly.synth import records

    recs, _ = records(900, anomaly_share=0.0, seed=9)
    for d in range(3):
        (Path(folder) / "in" / f"day{d}.jsonl").write_text(
            "".join(_json.dumps(r) + "\n" for r in recs[d * 300 : (d + 1) * 300])
        )
    return recs


def tiny_batch(folder, recs) -> None:
    import json as _json
    from pathlib import Path

    (Path(folder) / "in" / "day9.jsonl").write_text(
        "".join(_json.dumps(r) + "\n" for r in recs[:20])
    )
