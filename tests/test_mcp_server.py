"""`pipewarden mcp`: the tools' annotations and refusals, the resources, and the server run
as a subprocess over stdio and over streamable HTTP (the SDK's client on the other end)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mcpkit import Session
from runkit import jsonl, orders

from pipewarden.cli import main

WRITERS = {
    "sentinel_apply", "guard_mask", "anomaly_check_batch", "anomaly_train", "breaker_reset",
    "run", "quarantine_replay", "scaffold", "docs_build", "ingest_reset", "impute_fill",
    "features_discover", "features_emit", "incidents_resolve", "wait",
}  # fmt: skip
DESTRUCTIVE = {"breaker_reset", "ingest_reset", "scaffold", "features_emit"}


def test_every_command_is_a_tool_and_the_writers_say_so():
    with Session() as s:
        tools = {t.name: t for t in s.tools()}
    # every command of the CLI that acts on data or code has its tool; serve (a web server)
    # and demo (a copy of the sample) are not calls an agent makes
    from pipewarden.agent.server import COVERED, TOOLS
    from pipewarden.cli import cli, load_all

    load_all()
    commands = set()
    for name, cmd in cli.commands.items():
        subs = getattr(cmd, "commands", None)
        commands |= {f"{name} {s}" for s in subs} if subs else {name}
    assert commands - set(COVERED) <= {"serve", "demo", "mcp", "skill install", "skill check"}
    assert {"serve", "demo", "mcp"} <= commands
    assert set(tools) == TOOLS
    for name, t in tools.items():
        a = t.annotations
        assert t.output_schema["required"] == ["exit_code", "passed", "result"], name
        assert t.description and t.input_schema["type"] == "object", name
        if name in WRITERS:
            assert a.read_only_hint is False and "confirm" in t.input_schema["properties"], name
            assert a.destructive_hint is (name in DESTRUCTIVE), name
            assert "Refuses unless confirm=true" in t.description
        else:
            assert a.read_only_hint is True and "confirm" not in t.input_schema["properties"]


def test_a_writer_without_confirm_does_nothing(tmp_path):
    with Session() as s:
        text = s.error("scaffold", kind="mage", name="orders", dir=str(tmp_path))
        assert "exit 2 (bad input or call)" in text and "confirm=true" in text
        assert list(tmp_path.iterdir()) == []
        text = s.error("scaffold", kind="mage", name="orders", dir=str(tmp_path), confirm=False)
        assert list(tmp_path.iterdir()) == []


def test_stdin_and_option_like_values_are_refused(tmp_path):
    with Session() as s:
        assert "stdin carries the protocol" in s.error("guard_scan", data="-")
        assert "./--help" in s.error("validate_cycles", paths=["--help"])
        # a value is attached to its option: it is never read as another option
        (tmp_path / "g.json").write_text('[["a", "b"]]')
        got = s.ok("validate_cycles", paths=[str(tmp_path / "g.json")], config=None)
        assert got["exit_code"] == 0
        text = s.error("run", confirm=True)
        assert "give `config`" in text


def test_bad_arguments_are_refused_by_the_schema():
    with Session() as s:
        assert "name" in s.error("scaffold", kind="mage", name="1 bad;name", confirm=True)
        assert s.call("scaffold", kind="kubernetes", name="x", confirm=True).is_error
        assert s.call("validate_dag", paths=[]).is_error


def _project(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    jsonl(tmp_path / "in" / "b1.jsonl", orders(1, 19))
    jsonl(tmp_path / "in" / "b2.jsonl", [*orders(19, 20), {"order_id": 20, "amount": "n/a",
                                         "email": "ada@example.com", "quantity": 1}])  # fmt: skip
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(
        "version: 1\ndataset: orders\nsource:\n  path: in/*.jsonl\n"
        "store:\n  kind: duckdb\n  path: wh.duckdb\n"
        "contract:\n  data_type: quarantine\n"
        "steps:\n  - type: guardian\n"
    )
    return cfg


def test_resources_schema_docs_and_run_log(tmp_path, capsys):
    cfg = _project(tmp_path)
    with Session(config=str(cfg)) as s:
        assert {"pipewarden://schema/{dataset}", "pipewarden://docs/{dataset}",
                "pipewarden://runs/{dataset}"} <= set(s.templates())  # fmt: skip
        assert {"pipewarden://datasets", "pipewarden://runs"} <= set(s.resources())
        got = s.ok("run", confirm=True)  # the server's config is the default
        assert got["result"]["totals"]["rows_quarantined"] == 1
        assert json.loads(s.read("pipewarden://datasets")) == {"datasets": ["orders"]}
        schema = json.loads(s.read("pipewarden://schema/orders"))
        assert schema["version"] == 1 and "amount" in json.dumps(schema["schema"])
        page = s.read("pipewarden://docs/orders")
        assert "# `orders`" in page and 'CREATE TABLE "main"."orders"' in page
        runs = json.loads(s.read("pipewarden://runs/orders"))["runs"]
        assert [r["rows_loaded"] for r in runs] == [18, 1]
        assert json.loads(s.read("pipewarden://runs"))["runs"] == runs
        with pytest.raises(Exception, match="no dataset 'nope'"):
            s.read("pipewarden://schema/nope")
        for uri in ("pipewarden://datasets", "pipewarden://schema/orders",
                    "pipewarden://docs/orders", "pipewarden://runs"):  # fmt: skip
            assert "ada@example.com" not in s.read(uri)
    with Session() as s, pytest.raises(Exception, match="no store"):
        s.read("pipewarden://datasets")


def test_a_bad_config_is_refused_before_serving(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("version: 1\n")
    assert main(["mcp", str(tmp_path / "bad.yaml")]) == 2
    assert main(["mcp", "--transport", "http", "--host", "0.0.0.0"]) == 2
    assert "no authentication" in capsys.readouterr().err


def _env() -> dict:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_the_server_over_stdio(tmp_path):
    """A real subprocess: the protocol on stdout and nothing else (an H2O banner or a
    print in a command cannot corrupt it: the SDK points fd 1 at stderr while serving)."""
    from mcp import StdioServerParameters

    cfg = _project(tmp_path)
    params = StdioServerParameters(command=sys.executable, args=["-m", "pipewarden.cli", "mcp",
                                   str(cfg)], env=_env(), cwd=str(tmp_path))  # fmt: skip
    with Session(params) as s:
        assert len(s.tools()) >= 25
        got = s.ok("run", confirm=True)
        assert got["exit_code"] == 0 and got["result"]["totals"]["rows_loaded"] == 19
        listed = s.ok("quarantine_list")
        assert listed["result"]["rows"][0]["reason"] == "type_mismatch"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_server_over_streamable_http(tmp_path):
    cfg = _project(tmp_path)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipewarden.cli", "mcp", str(cfg), "--transport", "http",
         "--port", str(port)],
        env=_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                time.sleep(0.2)
        with Session(f"http://127.0.0.1:{port}/mcp") as s:
            assert "no such store" in s.error("breaker_status", dataset="orders")
            assert s.ok("run", confirm=True)["result"]["totals"]["rows_loaded"] == 19
            got = s.ok("breaker_status", dataset="orders")
            assert got["exit_code"] == 0 and got["result"]["seen"] is False
    finally:
        proc.terminate()
        proc.wait(timeout=20)
