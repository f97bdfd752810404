"""Every signature class is recognised from a real failure provoked on this machine: a real
PostgreSQL refusing a password, a real missing column, a real deadlock between two
connections, a real ENOSPC, a real MemoryError under RLIMIT_AS, real 429/401/503 answers from
a local HTTP server, real kills, real runs of pipewarden that the gate blocks."""

from __future__ import annotations

import json
import os
import resource
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from rca_provoke import (
    BREAKER_STEP,
    free_port,
    healthy_then_tiny_batches,
    http_get,
    http_server,
    password_cluster,
    pg,
    pg_deadlock,
    pg_idle_timeout,
    pg_insufficient_privilege,
    pg_lock_nowait,
    pg_serialization,
    pipeline_config,
    py,
    tb,
    tiny_batch,
    tiny_fs,
)

from pipewarden.rca import CLASSES, diagnose
from pipewarden.rca.signatures import SIGNATURES


def verdict(text: str, **kw) -> dict:
    return diagnose(text, **kw)


def assert_class(text: str, cls: str, **kw) -> dict:
    doc = verdict(text, **kw)
    assert doc["verdict"]["class"] == cls, (doc["verdict"], doc["causes"], text[-1500:])
    assert doc["exit_code"] == 0
    assert doc["fixes"], "a classified failure has fixes"
    return doc


def test_the_library_has_at_least_15_classes_each_with_fixes_and_a_retry_flag():
    assert len(CLASSES) >= 15 and len(set(CLASSES)) == len(CLASSES)
    for s in SIGNATURES:
        assert s.fixes and isinstance(s.retryable, bool), s.cls
        assert (
            s.sqlstates
            or s.errnos
            or s.exit_codes
            or s.http_statuses
            or s.outcomes
            or (s.exceptions)
        ), s.cls


# --------------------------------------------------------------------------- memory, disk


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (512 * 1024 * 1024, 512 * 1024 * 1024))


def test_out_of_memory_from_a_memory_limited_process():
    out, code = py("data = bytearray(2 * 1024 ** 3)", preexec=_limit_memory)
    assert code == 1 and "MemoryError" in out
    doc = assert_class(out, "out_of_memory", exit_code=code)
    assert doc["verdict"]["retryable"] is False


def test_a_killed_process_exit_137_reads_as_out_of_memory():
    # the OOM killer sends SIGKILL: a shell reports 137
    out, code = py("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert code == -9
    assert_class(out + "\nCommand exited with code 137", "out_of_memory", exit_code=137)


def test_disk_full_from_a_real_enospc():
    def write() -> None:
        with open("/dev/full", "w") as f:
            f.write("x" * 100_000)

    text = tb(write)
    assert "No space left on device" in text
    assert_class(text, "disk_full")


def test_disk_full_in_a_real_pipewarden_run_on_a_tiny_filesystem(tmp_path):
    """The store lives on a 256 kB filesystem: the run fails with ENOSPC, nothing of the
    batch is kept, and the run's own one-line verdict says disk_full."""
    import json as _json

    try:
        ctx = tiny_fs("256k")
        root = ctx.__enter__()
    except RuntimeError as exc:  # pragma: no cover - not root
        from conftest import missing

        missing("a tmpfs mount", str(exc))
    try:
        (tmp_path / "in").mkdir()
        rows = "".join(_json.dumps({"id": i, "note": "x" * 200}) + "\n" for i in range(5000))
        (tmp_path / "in" / "a.jsonl").write_text(rows)
        cfg = tmp_path / "p.yaml"
        cfg.write_text(
            "version: 1\ndataset: notes\nsource:\n  path: 'in/*.jsonl'\n"
            f"store:\n  kind: duckdb\n  path: {root}/wh.duckdb\n"
        )
        code, out = _cli("run", str(cfg))
    finally:
        ctx.__exit__(None, None, None)
    assert code != 0, out
    doc = assert_class(out, "disk_full")
    assert doc["verdict"]["retryable"] is False


# --------------------------------------------------------------------------- network


def test_connection_refused_by_a_closed_port():
    import psycopg

    port = free_port()
    text = tb(lambda: psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/test",
                                      connect_timeout=3))  # fmt: skip
    doc = assert_class(text, "connection_refused")
    assert doc["verdict"]["retryable"] is True
    assert doc["fixes"][0]["id"] == "start-service"


def test_dns_failure_of_a_name_that_does_not_resolve():
    import socket

    text = tb(lambda: socket.getaddrinfo("no-such-host.invalid", 5432))
    assert_class(text, "dns")


def test_tls_handshake_with_a_plain_http_server():
    import socket

    with http_server() as url:
        port = int(url.rsplit(":", 1)[1])
        ctx = ssl.create_default_context()

        def handshake() -> None:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                ctx.wrap_socket(raw, server_hostname="localhost")

        text = tb(handshake)
    doc = assert_class(text, "tls")
    assert doc["fixes"][0]["id"] == "fix-tls-mode"


def test_rate_limited_by_a_real_429_with_retry_after():
    with http_server() as url:
        text = tb(lambda: http_get(f"{url}/status/429"))
    text += "\nresponse headers: Retry-After: 7"
    doc = assert_class(text, "rate_limited")
    assert doc["retry"]["retry"] is True and doc["retry"]["after_seconds"] == 7


def test_server_error_from_a_real_503():
    with http_server() as url:
        text = tb(lambda: http_get(f"{url}/status/503"))
    assert_class(text, "server_error")


def test_http_401_is_authentication_and_403_permission():
    with http_server() as url:
        assert_class(tb(lambda: http_get(f"{url}/status/401")), "authentication")
        assert_class(tb(lambda: http_get(f"{url}/status/403")), "permission")


def test_timeout_reading_from_a_slow_server():
    with http_server() as url:
        text = tb(lambda: http_get(f"{url}/slow", timeout=0.3))
    assert_class(text, "timeout")


# --------------------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
def test_missing_column_and_missing_table(pg_dsn):
    assert_class(tb(lambda: pg("select no_such_column from pg_class")), "schema_mismatch")
    doc = assert_class(tb(lambda: pg("select * from no_such_table_x")), "schema_mismatch")
    assert doc["fixes"][0]["id"] == "migrate-target-table"
    doc = assert_class(tb(lambda: pg("select 'abc'::int")), "schema_mismatch")
    assert doc["fixes"][0]["id"] == "cast-or-clean-values"


@pytest.mark.postgres
def test_datatype_mismatch(pg_schema):
    _, schema = pg_schema
    pg(f'create table "{schema}".t (n int)')
    assert_class(tb(lambda: pg(f'insert into "{schema}".t select now()')), "schema_mismatch")


@pytest.mark.postgres
def test_duplicate_key(pg_schema):
    _, schema = pg_schema
    pg(f'create table "{schema}".k (id int primary key)')
    pg(f'insert into "{schema}".k values (1)')
    assert_class(tb(lambda: pg(f'insert into "{schema}".k values (1)')), "duplicate_key")


@pytest.mark.postgres
def test_a_real_deadlock_between_two_connections(pg_schema):
    text = pg_deadlock(pg_schema[1])
    assert "deadlock detected" in text
    doc = assert_class(text, "concurrency_conflict")
    assert doc["verdict"]["retryable"] is True


@pytest.mark.postgres
def test_serialization_failure_and_lock_not_available(pg_schema):
    assert_class(pg_serialization(pg_schema[1]), "concurrency_conflict")
    assert_class(pg_lock_nowait(pg_schema[1]), "concurrency_conflict")


@pytest.mark.postgres
def test_statement_and_idle_in_transaction_timeouts(pg_dsn):
    text = tb(lambda: pg("set statement_timeout = 50; select pg_sleep(2)"))
    assert_class(text, "timeout")
    assert_class(pg_idle_timeout(), "timeout")


@pytest.mark.postgres
def test_permission_denied_for_a_role_without_grants(pg_schema):
    doc = assert_class(pg_insufficient_privilege(pg_schema[1]), "permission")
    assert doc["fixes"][0]["id"] == "grant-privileges"


@pytest.mark.postgres
def test_a_role_that_does_not_exist_is_authentication(pg_dsn):
    import psycopg

    text = tb(lambda: psycopg.connect("postgresql://no_such_role_pw@127.0.0.1:5432/test"))
    assert_class(text, "authentication")


@pytest.mark.postgres
@pytest.mark.slow
def test_a_real_postgresql_refusing_a_password():
    import psycopg

    try:
        cluster = password_cluster()
        dsn = cluster.__enter__()
    except (RuntimeError, OSError, KeyError) as exc:
        from conftest import missing

        missing("initdb", str(exc))
    try:
        psycopg.connect(dsn + "?password=right-horse").close()  # the right one works
        text = tb(lambda: psycopg.connect(dsn + "?password=wrong-horse"))
    finally:
        cluster.__exit__(None, None, None)
    assert "password authentication failed" in text
    doc = assert_class(text, "authentication")
    assert doc["fixes"][0]["id"] == "fix-credentials"
    assert "wrong-horse" not in json.dumps(doc)


# --------------------------------------------------------------------------- processes


def test_permission_denied_writing_as_an_unprivileged_user(tmp_path):
    if os.geteuid() != 0:
        text = tb(lambda: Path("/proc/1/mem").write_bytes(b"x"))
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o700)
        # the system's Python: nobody may not enter the folders of the test's virtualenv
        out, code = py(
            f"open({str(locked / 'x')!r}, 'w')", user="nobody", python="/usr/bin/python3"
        )
        assert code == 1
        text = out
    assert "Permission denied" in text
    doc = assert_class(text, "permission")
    assert doc["fixes"][0]["id"] == "fix-file-permissions"


def test_missing_module():
    out, code = py("import pipewarden_no_such_module")
    assert_class(out, "missing_module", exit_code=code)


def test_code_error():
    out, code = py("def f(a):\n    return a + 1\nf('x')")
    doc = assert_class(out, "code_error", exit_code=code)
    assert doc["exception"]["type"] == "TypeError"


def test_killed_by_sigterm():
    out, code = py("import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    assert code == -15
    assert_class(out, "killed", exit_code=128 + 15)


def test_bad_input_a_malformed_json_file(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"a": 1,,}')
    assert_class(tb(lambda: json.loads(bad.read_text())), "bad_input")
    assert_class(tb(lambda: (tmp_path / "missing.csv").read_text()), "bad_input")


# --------------------------------------------------------------------------- our own outcomes


def _pipeline(tmp_path: Path, extra: str) -> Path:
    return pipeline_config(tmp_path, extra)


def _cli(*args: str) -> tuple[int, str]:
    res = subprocess.run(
        [sys.executable, "-m", "pipewarden", *args], capture_output=True, text=True, timeout=120
    )
    return res.returncode, res.stdout + res.stderr


def test_contract_reject_from_a_real_run(tmp_path):
    cfg = _pipeline(tmp_path, "contract: {tables: evolve, columns: freeze}\n")
    (tmp_path / "in" / "a.jsonl").write_text('{"id": 1}\n')
    assert _cli("run", str(cfg))[0] == 0
    (tmp_path / "in" / "b.jsonl").write_text('{"id": 2, "surprise": 1}\n')
    code, out = _cli("run", str(cfg))
    assert code == 1
    assert_class(out, "contract_reject")
    # and the run printed the one-line verdict with the command for the whole report
    assert "rca: contract_reject" in out and "pipewarden rca --config" in out


def test_pii_block_from_a_real_run(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nrules:\n  - entity: EMAIL_ADDRESS\n    action: block\n")
    cfg = _pipeline(tmp_path, f"steps:\n  - type: guardian\n    policy: {policy}\n")
    (tmp_path / "in" / "a.jsonl").write_text('{"id": 1, "contact": "jane.doe@example.com"}\n')
    code, out = _cli("run", str(cfg))
    assert code == 1, out
    doc = assert_class(out, "pii_block")
    assert "jane.doe@example.com" not in json.dumps(doc)


def test_breaker_open_from_a_real_breaker(tmp_path):
    cfg = _pipeline(tmp_path, BREAKER_STEP)
    recs = healthy_then_tiny_batches(tmp_path)
    assert _cli("run", str(cfg))[0] == 0
    tiny_batch(tmp_path, recs)
    code, out = _cli("run", str(cfg))
    assert code == 0 and "rca: breaker_open" in out  # loaded into the quarantine: degraded
    code, out = _cli("breaker", "status", "--config", str(cfg))
    assert code == 1
    assert_class(out, "breaker_open")


def test_every_class_has_a_test_here():
    text = Path(__file__).read_text()
    missing = [c for c in CLASSES if f'"{c}"' not in text]
    assert not missing, missing
