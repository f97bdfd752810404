"""An agent's session through the MCP client, every JSON-RPC message recorded: scaffold a Mage
pipeline, validate it, run it on a batch with a schema change and PII, read the quarantine,
fix the contract, replay. Every step's output is machine-readable and no raw PII value crosses
the protocol (the recorded messages are searched for each raw value)."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
import yaml
from mcpkit import Session

from pipewarden.agent.server import build_server

pytest.importorskip("mcp", reason="the mcp extra: pip install 'pipewarden[mcp]'")
from mcp.client._memory import InMemoryTransport  # noqa: E402

EMAILS = [f"lena.vogel{i}@example.net" for i in range(30)]
PHONES = [f"+31 20 794 {1000 + i}" for i in range(30)]


class Recorded:
    """The SDK's in-memory transport to a server in this process, with every JSON-RPC message
    either way kept as the JSON text that crossed (``messages``)."""

    def __init__(self, server) -> None:
        self.server = server
        self.messages: list[str] = []

    @asynccontextmanager
    async def _connect(self):
        async with InMemoryTransport(self.server) as (read, write):
            to_client_send, to_client = anyio.create_memory_object_stream(100)
            from_client, from_client_recv = anyio.create_memory_object_stream(100)

            async def down() -> None:
                async with to_client_send:
                    async for msg in read:
                        self._keep(msg)
                        await to_client_send.send(msg)

            async def up() -> None:
                async for msg in from_client_recv:
                    self._keep(msg)
                    await write.send(msg)

            async with anyio.create_task_group() as tg:
                tg.start_soon(down)
                tg.start_soon(up)
                try:
                    yield to_client, from_client
                finally:
                    tg.cancel_scope.cancel()

    def _keep(self, msg) -> None:
        inner = getattr(msg, "message", msg)  # a SessionMessage, or an exception
        dump = getattr(inner, "model_dump_json", None)
        self.messages.append(dump(by_alias=True, exclude_none=True) if dump else repr(inner))

    async def __aenter__(self):
        self._cm = self._connect()
        return await self._cm.__aenter__()

    async def __aexit__(self, *exc):
        return await self._cm.__aexit__(*exc)


def _rows(start: int, n: int, **extra) -> list[dict]:
    return [
        {"id": i, "amount": round(12 + i * 0.75, 2), "email": EMAILS[i], "phone": PHONES[i],
         **extra}
        for i in range(start, start + n)
    ]  # fmt: skip


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _step(s: Session, tool: str, **arguments) -> dict:
    """One tool call: a result (not a tool error) whose text is the JSON of its structured
    output, in the one shape every tool has."""
    res = s.call(tool, **arguments)
    assert not res.is_error, res.content[0].text
    doc = res.structured_content
    assert set(doc) == {"exit_code", "passed", "result"}, tool
    assert json.loads(res.content[0].text) == doc, tool
    assert doc["passed"] is (doc["exit_code"] == 0)
    return doc


def test_an_agent_session_scaffold_validate_run_quarantine_fix_replay(tmp_path):
    project = tmp_path / "mage_project"
    wire = Recorded(build_server())
    with Session(wire) as s:
        # 1. scaffold a Mage pipeline of pipewarden blocks, then validate it
        got = _step(s, "scaffold", kind="mage", name="orders", dir=str(project), blocks=True,
                    source="data/*.jsonl", confirm=True)  # fmt: skip
        config = project / got["result"]["config"]
        assert "transformers/orders_load.py" in got["result"]["files"]
        got = _step(s, "validate_pipeline", paths=[str(project)])
        assert got["exit_code"] == 0 and got["result"]["findings"] == []

        # the team's contract: a new key waits in the quarantine for review
        cfg = yaml.safe_load(config.read_text())
        cfg["contract"]["columns"] = "quarantine"
        config.write_text(yaml.safe_dump(cfg, sort_keys=False))

        # 2. run on the first day, then on a day with a new key (coupon) and PII
        _write(project / "data" / "day1.jsonl", _rows(0, 20))
        got = _step(s, "run", config=str(config), confirm=True)
        assert got["result"]["totals"]["rows_loaded"] == 20
        day2 = _rows(20, 10)
        for r in day2[:4]:
            r["coupon"] = "SPRING24"
        _write(project / "data" / "day2.jsonl", day2)
        got = _step(s, "run", config=str(config), confirm=True)
        (batch,) = [b for b in got["result"]["batches"] if b["status"] != "skipped"]
        assert (batch["rows_read"], batch["rows_loaded"], batch["rows_quarantined"]) == (10, 6, 4)
        assert batch["reasons"] == {"new_column": 4}
        change = next(c for c in batch["delta"]["changes"] if c["column"] == "coupon")
        assert change["op"] == "add" and change["action"] == "quarantine"

        # 3. read the quarantine: the reason and the column, masked previews
        got = _step(s, "quarantine_list", config=str(config))
        rows = got["result"]["rows"]
        assert len(rows) == 4
        assert {(r["reason"], r["column"], r["status"]) for r in rows} == {
            ("new_column", "coupon", "pending")
        }
        assert all("*" in r["preview"]["email"] and "*" in r["preview"]["phone"] for r in rows)

        # 4. fix the contract for that column (the agent edits the config), check the plan
        cfg["contract"]["overrides"] = {"coupon": {"columns": "evolve"}}
        config.write_text(yaml.safe_dump(cfg, sort_keys=False))
        got = _step(s, "sentinel_plan", source=str(project / "data" / "day2.jsonl"),
                    dsn=f"duckdb://{config.parent / 'warehouse.duckdb'}", table="orders",
                    contract="columns=quarantine,overrides.coupon.columns=evolve")  # fmt: skip
        assert got["exit_code"] == 0 and got["result"]["rows"]["quarantined"] == 0

        # 5. replay: the held rows load, the table gets the column
        got = _step(s, "quarantine_replay", config=str(config), confirm=True)
        assert (got["result"]["rows_replayed"], got["result"]["rows_still_quarantined"]) == (4, 0)
        assert any("coupon" in stmt for stmt in got["result"]["ddl"])
        got = _step(s, "quarantine_list", config=str(config), status="pending")
        assert got["result"]["rows"] == [] and got["result"]["counts"]["orders"]["replayed"] == 4

    # every message that crossed, both ways, is JSON-RPC; none holds a raw value of the batch
    assert len(wire.messages) >= 20
    for text in wire.messages:
        assert json.loads(text)["jsonrpc"] == "2.0"
    crossed = "\n".join(wire.messages)
    leaked = [v for v in [*EMAILS, *PHONES] if v in crossed]
    assert not leaked, f"raw PII crossed the protocol: {leaked[:3]}"
    assert "coupon" in crossed and "new_column" in crossed  # the session did see the batch


def test_the_scaffold_tool_takes_the_commands_newer_options(tmp_path, capsys):
    """blocks, h2o_url and steps reach `scaffold mage` as --blocks, --h2o-url and --step."""
    from mcpkit import cli_json

    args = {"kind": "mage", "name": "orders", "blocks": True, "steps": ["impute"],
            "h2o_url": "${PIPEWARDEN_H2O_URL}", "confirm": True}  # fmt: skip
    with Session() as s:
        got = _step(s, "scaffold", dir=str(tmp_path / "a"), **args)
        assert "already" not in s.error("scaffold", kind="airflow", name="x", blocks=True,
                                        dir=str(tmp_path / "b"), confirm=True)  # fmt: skip
    code, doc, _ = cli_json(capsys, "scaffold", "mage", "orders", "--dir", str(tmp_path / "c"),
                            "--blocks", "--step", "impute", "--h2o-url", "${PIPEWARDEN_H2O_URL}")  # fmt: skip
    assert code == 0 and got["result"]["files"] == doc["files"]
    tool_cfg = (tmp_path / "a" / "pipewarden" / "orders.yaml").read_text()
    assert tool_cfg == (tmp_path / "c" / "pipewarden" / "orders.yaml").read_text()
    assert "type: impute" in tool_cfg and "${PIPEWARDEN_H2O_URL}" in tool_cfg
