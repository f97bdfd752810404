"""`pipewarden rca` and `pipewarden incidents`: a log file, a wrapped command, Airflow 3 JSON
task logs, a recorded run; the exit codes; fingerprints and the incident memory; the git
context since the last success; no secret and no PII in any output; the optional LLM against
a real local server speaking the chat-completions API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rca_provoke import py, tb

from pipewarden.rca import diagnose
from pipewarden.rca.memory import template
from pipewarden.store import MemoryStateStore


def rca(*args: str, stdin: str | None = None, cwd=None) -> tuple[int, dict | None, str]:
    res = subprocess.run(
        [sys.executable, "-m", "pipewarden", "rca", "--format", "json", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        cwd=cwd,
    )
    doc = json.loads(res.stdout) if res.stdout.strip() else None
    return res.returncode, doc, res.stderr


SECRET_LOG = """\
Traceback (most recent call last):
  File "/opt/etl/load.py", line 12, in load
    conn = psycopg.connect("postgresql://loader:S3cretPassw0rd@db.internal:5432/wh")
psycopg.OperationalError: connection failed: connection to server at "10.0.0.7", port 5432 failed: Connection refused
	customer jane.doe@example.com card 4111 1111 1111 1111 api_key=sk_live_abcdefghijklmnop1234
"""


def test_rca_of_a_log_file_exit_0_and_nothing_secret_or_personal(tmp_path):
    log = tmp_path / "task.log"
    log.write_text(SECRET_LOG)
    code, doc, _ = rca(str(log))
    assert code == 0 and doc["verdict"]["class"] == "connection_refused"
    text = json.dumps(doc)
    for leak in ("S3cretPassw0rd", "jane.doe@example.com", "4111 1111 1111 1111",
                 "sk_live_abcdefghijklmnop1234"):  # fmt: skip
        assert leak not in text, leak
    assert doc["exception"]["top_frame"]["function"] == "load"
    assert doc["retry"]["retry"] is True


def test_unknown_is_exit_1_and_bad_input_exit_2(tmp_path):
    (tmp_path / "calm.log").write_text("all good\nnothing to see\n")
    code, doc, _ = rca(str(tmp_path / "calm.log"))
    assert code == 1 and doc["verdict"]["class"] == "unknown"
    code, doc, err = rca(str(tmp_path / "missing.log"))
    assert code == 2 and "no such log file" in err and "Traceback" not in err
    (tmp_path / "empty.log").write_text("")
    assert rca(str(tmp_path / "empty.log"))[0] == 2
    code, _, err = rca()
    assert code == 2 and "give one of" in err


def test_rca_reads_stdin(tmp_path):
    text = tb(lambda: json.loads("{"))
    code, doc, _ = rca("-", stdin=text)
    assert code == 0 and doc["verdict"]["class"] == "bad_input"


def test_wrapping_a_command_passes_its_output_through_and_explains_it(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "pipewarden", "rca", "--", sys.executable, "-c",
         "print('step 1 ok'); import no_such_module_pw"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0  # classified
    assert "step 1 ok" in res.stdout  # the command's own output is passed through
    assert "missing_module" in res.stdout and "No module named" in res.stderr
    # --propagate: the command's own exit code
    res = subprocess.run(
        [sys.executable, "-m", "pipewarden", "rca", "--propagate", "--", sys.executable, "-c",
         "import sys; sys.exit(3)"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 3
    # a command that succeeds: nothing to explain
    code, doc, _ = rca("--", sys.executable, "-c", "print('fine')")
    assert code == 0 and doc["status"] == "succeeded"
    # a command that does not exist
    code, _, err = rca("--", "/no/such/command")
    assert code == 2 and "no such command" in err


def test_a_wrapped_command_killed_by_the_kernel_reads_as_oom():
    code, doc, _ = rca("--", sys.executable, "-c", "import os; os.kill(os.getpid(), 9)")
    assert code == 0 and doc["verdict"]["class"] == "out_of_memory"
    assert doc["context"]["process"]["signal"] == "SIGKILL"


def test_airflow3_json_task_log_error_detail(tmp_path):
    """The task log lines Airflow 3 writes: structlog JSON with error_detail."""
    detail = [
        {
            "exc_type": "UndefinedColumn",
            "exc_value": 'column "amount_eur" does not exist\nLINE 1: select amount_eur from orders',
            "exc_notes": [],
            "syntax_error": None,
            "is_cause": False,
            "frames": [
                {"filename": "/opt/airflow/dags/orders.py", "lineno": 41, "name": "load"},
                {"filename": "/usr/lib/python3.12/site-packages/psycopg/cursor.py", "lineno": 97,
                 "name": "execute"},
            ],
            "is_group": False,
            "exceptions": [],
        }
    ]  # fmt: skip
    lines = [
        {"timestamp": "2026-01-05T02:00:01Z", "level": "info", "event": "Task started"},
        {"timestamp": "2026-01-05T02:00:02Z", "level": "warning", "event": "retrying in 5s"},
        {"timestamp": "2026-01-05T02:00:09Z", "level": "error",
         "event": "Task failed with exception", "error_detail": detail},
    ]  # fmt: skip
    log = tmp_path / "attempt=1.log"
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    code, doc, _ = rca(str(log))
    assert code == 0 and doc["verdict"]["class"] == "schema_mismatch"
    assert doc["source"]["kind"] == "airflow_json"
    assert doc["exception"]["top_frame"] == {
        "file": "/opt/airflow/dags/orders.py",
        "line": 41,
        "function": "load",
    }
    assert any(e["kind"] == "sqlstate" and e["value"] == "42703"
               for e in doc["causes"][0]["evidence"])  # fmt: skip


def test_fingerprint_is_stable_across_runs_and_ignores_variable_parts():
    a = tb(lambda: json.loads('{"a": 1,,}'))
    b = tb(lambda: json.loads('{"bb": 22222,,,}'))
    da, db = diagnose(a), diagnose(b)
    assert da["fingerprint"] == db["fingerprint"]
    assert diagnose(a)["fingerprint"] == da["fingerprint"]
    assert template("row 42 of /data/in/2026-01-05/orders.csv: '7' at 10.1.2.3:5432") == (
        "row <NUM> of <PATH>: '<*>' at <IP>"
    )
    other = diagnose(tb(lambda: {}["missing_key"]))
    assert other["fingerprint"] != da["fingerprint"]


def test_incident_memory_recalls_the_fix_of_the_same_failure():
    store = MemoryStateStore()
    text = tb(lambda: json.loads("{,}"))
    first = diagnose(text, store=store, pipeline="orders")
    assert first["similar"] == []
    from pipewarden.rca import memory

    memory.resolve(store, first["fingerprint"][:8], fix="fix-input-file",
                   note="upstream re-sent the file")  # fmt: skip
    again = diagnose(text, store=store, pipeline="orders")
    assert again["similar"][0]["same_fingerprint"] is True
    assert again["similar"][0]["resolution"]["fix"] == "fix-input-file"
    assert again["fixes"][0]["from"] == "incident memory"
    listed = memory.incidents(store)
    assert listed[0]["count"] == 2 and listed[0]["resolution"] is None  # it failed again


def test_a_success_after_failures_resolves_the_open_incidents_as_healed():
    from pipewarden.rca import memory

    store = MemoryStateStore()
    doc = diagnose(tb(lambda: 1 / 0), store=store, pipeline="p")
    memory.record_execution(store, "p", {"run_id": "r1", "status": "failed", "git_commit": "a"})
    assert memory.open_incidents(store, "p")[0]["fingerprint"] == doc["fingerprint"]
    memory.record_execution(store, "p", {"run_id": "r2", "status": "succeeded", "git_commit": "b"})
    assert memory.open_incidents(store, "p") == []
    res = memory.incidents(store)[0]["resolution"]
    assert res["how"] == "healed" and res["commit_healed"] == "b"


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()  # fmt: skip


def test_wrapped_runs_record_the_run_log_and_the_diff_since_the_last_success(tmp_path):
    """A real git repository: the pipeline succeeds, a commit breaks it, rca shows that
    commit and its diff (scrubbed), and the run log has both executions."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    etl = repo / "etl.py"
    etl.write_text("print('loaded 10 rows')\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "first")
    store = f"duckdb:///{tmp_path}/wh.duckdb"
    args = ["--store", store, "--pipeline", "orders", "--repo", str(repo)]
    assert rca(*args, "--", sys.executable, str(etl))[0] == 0
    etl.write_text(
        "import os\nPASSWORD = 'hunter2-secret'  # contact ops@example.com\n"
        "raise KeyError('amount_eur')\n"
    )
    _git(repo, "commit", "-qam", "use amount_eur")
    code, doc, _ = rca(*args, "--", sys.executable, str(etl))
    assert code == 0 and doc["verdict"]["class"] == "schema_mismatch"
    code_ctx = doc["context"]["code"]
    assert code_ctx["commits"][0].endswith("use amount_eur")
    assert code_ctx["changed_files"] == ["etl.py"]
    assert "raise KeyError" in code_ctx["diff"]
    dumped = json.dumps(doc)
    assert "hunter2-secret" not in dumped and "ops@example.com" not in dumped
    assert doc["context"]["last_success"]["git_commit"] != code_ctx["commit"]
    # the whole report of the recorded run, later
    code, again, _ = rca("--store", store, "--pipeline", "orders", "--run", "last")
    assert code == 0 and again["verdict"]["class"] == "schema_mismatch"
    assert again["run"]["status"] == "failed"
    # the incident list
    res = subprocess.run(
        [sys.executable, "-m", "pipewarden", "incidents", "list", "--store", store,
         "--format", "json"], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    listed = json.loads(res.stdout)
    assert listed["count"] == 1 and listed["incidents"][0]["class"] == "schema_mismatch"
    fp = listed["incidents"][0]["fingerprint"]

    def incidents(*args: str) -> tuple[int, dict]:
        res = subprocess.run([sys.executable, "-m", "pipewarden", "incidents", *args, "--store",
                              store, "--format", "json"], capture_output=True, text=True,
                             timeout=60)  # fmt: skip
        return res.returncode, json.loads(res.stdout)

    code, res_doc = incidents("resolve", fp[:6], "--fix", "update-query-or-mapping",
                              "--note", "renamed back; told ops@example.com")  # fmt: skip
    assert code == 0 and res_doc["fingerprint"] == fp and "ops@example.com" not in res_doc["note"]
    assert incidents("list", "--open")[1]["count"] == 0
    assert incidents("resolve", "ffffffffff", "--fix", "x")[0] == 2  # no such incident


@pytest.mark.postgres
def test_memory_and_run_log_on_postgres(pg_schema):
    dsn, schema = pg_schema
    from pipewarden.rca import memory
    from pipewarden.store import open_store

    store = open_store(dsn, namespace=schema)
    try:
        text = tb(lambda: json.loads("{,}"))
        doc = diagnose(text, store=store, pipeline="orders")
        memory.record_execution(store, "orders", {"run_id": "x1", "status": "failed"})
        again = diagnose(text, store=store, pipeline="orders")
        assert again["similar"][0]["fingerprint"] == doc["fingerprint"]
        assert memory.find_execution(store, "orders", None)["run_id"] == "x1"
    finally:
        store.close()


# --------------------------------------------------------------------------- optional LLM


class _ChatHandler(BaseHTTPRequestHandler):
    seen: list = []

    def log_message(self, *a) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _ChatHandler.seen.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                  "body": body})  # fmt: skip
        answer = {"summary": "The orders table lost a column.",
                  "fixes": ["map amount to amount_eur", "ask upstream"]}  # fmt: skip
        doc = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": json.dumps(answer)}}],
        }  # fmt: skip
        data = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_llm_refines_from_the_redacted_context_and_its_absence_is_not_an_error(tmp_path):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _ChatHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    log = tmp_path / "t.log"
    log.write_text(SECRET_LOG)
    try:
        env = {**os.environ, "PIPEWARDEN_LLM_API_KEY": "sk-test-key-123456789"}
        res = subprocess.run(
            [sys.executable, "-m", "pipewarden", "rca", str(log), "--llm-url", url,
             "--format", "json"], capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
        doc = json.loads(res.stdout)
    finally:
        srv.shutdown()
    assert res.returncode == 0
    assert doc["llm"]["summary"] == "The orders table lost a column."
    assert doc["verdict"]["class"] == "connection_refused"  # the LLM cannot change it
    sent = _ChatHandler.seen[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["auth"] == "Bearer sk-test-key-123456789"
    prompt = json.dumps(sent["body"])
    for leak in ("S3cretPassw0rd", "jane.doe@example.com", "sk_live_abcdefghijklmnop1234"):
        assert leak not in prompt, leak
    # the server is gone: a note in the report, still exit 0
    code, doc, _ = rca(str(log), "--llm-url", url)
    assert code == 0 and "unreachable" in doc["llm"]["error"]


def test_signal_exit_code_of_a_real_subprocess_is_reported():
    out, code = py("import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    doc = diagnose(out, exit_code=128 - code)
    assert doc["verdict"]["class"] == "killed"


# --------------------------------------------------------------------------- data and container


def test_data_context_lists_the_schema_changes_since_the_last_success(tmp_path):
    from pipewarden.run import run_pipeline

    (tmp_path / "in").mkdir()
    cfg = tmp_path / "p.yaml"
    cfg.write_text("version: 1\nname: orders\ndataset: orders\nsource:\n  path: 'in/*.jsonl'\n"
                   "store:\n  kind: duckdb\n  path: wh.duckdb\n")  # fmt: skip
    (tmp_path / "in" / "a.jsonl").write_text('{"id": 1}\n')
    assert run_pipeline(cfg, fmt="json")["exit_code"] == 0  # the last success
    (tmp_path / "in" / "b.jsonl").write_text('{"id": 2, "coupon": "X"}\n')  # evolves: v2
    (tmp_path / "in" / "c.jsonl").write_text('{"id": 3,,}\n')  # then a bad file
    rep = run_pipeline(cfg, fmt="json")
    assert rep["exit_code"] == 2 and rep["rca"]["class"] == "bad_input"
    code, doc, _ = rca("--config", str(cfg), "--run", rep["run_id"][:8])
    assert code == 0 and doc["verdict"]["class"] == "bad_input"
    data = doc["context"]["data"]
    assert [c["version"] for c in data["schema_changes"]] == [2]
    assert any("coupon" in d for d in data["schema_changes"][0]["ddl"])
    assert data["quarantine"] == {"pending": 0, "replayed": 0}
    assert doc["run"]["status"] == "failed"


class _Docker(BaseHTTPRequestHandler):
    def log_message(self, *a) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        if not self.path.startswith("/containers/etl-worker-7/json"):
            self.send_response(404)
            self.end_headers()
            return
        body = json.dumps({"Name": "/etl-worker-7", "RestartCount": 2,
                           "State": {"Status": "exited", "OOMKilled": True, "ExitCode": 137},
                           "HostConfig": {"Memory": 536870912}}).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_container_stats_from_a_docker_engine_socket(tmp_path, monkeypatch):
    """A real HTTP server on a unix socket answering the Engine API's inspect call: the
    container's OOMKilled becomes evidence, its memory limit context."""
    import socketserver

    class UnixHTTP(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

        def get_request(self):
            req, _ = super().get_request()
            return req, ("local", 0)

    path = str(tmp_path / "docker.sock")
    srv = UnixHTTP(path, _Docker)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        from pipewarden.rca.context import container_stats

        stats = container_stats("etl-worker-7", socket_path=path)
        assert stats == {"container": "etl-worker-7", "oom_killed": True, "exit_code": 137,
                         "status": "exited", "memory_limit": 536870912, "restart_count": 2}  # fmt: skip
        assert container_stats("other", socket_path=path)["error"] == "HTTP 404"
        assert container_stats(socket_path=str(tmp_path / "none.sock")) is None
        monkeypatch.setenv("PIPEWARDEN_DOCKER_SOCKET", path)
        monkeypatch.setattr("socket.gethostname", lambda: "etl-worker-7")
        doc = diagnose("worker exited\nERROR task failed with exit code 1")
        assert doc["verdict"]["class"] == "out_of_memory"
        assert doc["context"]["container"]["memory_limit"] == 536870912
    finally:
        srv.shutdown()
        srv.server_close()


def test_retries_rerun_a_transient_failure_and_not_a_permanent_one(tmp_path):
    """The first run is refused by a closed port (retryable), the second finds the port's
    marker and succeeds; a missing module is not retried."""
    from rca_provoke import free_port

    port = free_port()
    marker = tmp_path / "tries"
    script = tmp_path / "job.py"
    script.write_text(
        "import pathlib, socket\n"
        f"m = pathlib.Path({str(marker)!r})\n"
        "n = int(m.read_text()) if m.exists() else 0\n"
        "m.write_text(str(n + 1))\n"
        f"if n == 0:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "print('loaded')\n"
    )
    code, doc, err = rca("--retries", "3", "--retry-base", "0.05", "--", sys.executable,
                         str(script))  # fmt: skip
    assert code == 0 and doc["status"] == "succeeded", err
    assert doc["attempts"] == [{"exit_code": 1, "class": "connection_refused"},
                               {"exit_code": 0, "class": None}]  # fmt: skip
    assert "attempt 2 of 4" in err
    code, doc, _ = rca("--retries", "3", "--retry-base", "0.05", "--", sys.executable, "-c",
                       "import no_such_module_pw")  # fmt: skip
    assert code == 0 and doc["verdict"]["class"] == "missing_module"
    assert len(doc["attempts"]) == 1  # permanent: not retried
