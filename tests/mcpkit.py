"""What the MCP tests share: a session with the server through the SDK's own client (in
process), the CLI's JSON document for the same command, and a comparison that ignores only
what differs between two runs (clocks, durations, the folders and schemas of the twins)."""

from __future__ import annotations

import json
import re
from contextlib import ExitStack
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the mcp extra: pip install 'pipewarden[mcp]'")

from anyio.from_thread import start_blocking_portal  # noqa: E402
from mcp import Client  # noqa: E402

from pipewarden.agent.server import build_server  # noqa: E402
from pipewarden.cli import main  # noqa: E402


class Session:
    """A synchronous face of ``mcp.Client`` over ``build_server(...)``: tests call tools and
    read resources as an agent would, through the protocol."""

    def __init__(self, target: Any = None, **server_args: Any) -> None:
        """``target``: a URL (streamable HTTP) or StdioServerParameters (a subprocess);
        default: ``build_server(**server_args)`` in this process."""
        self._server = target if target is not None else build_server(**server_args)
        self._stack = ExitStack()

    def __enter__(self) -> Session:
        self.portal = self._stack.enter_context(start_blocking_portal())
        self.client = self._stack.enter_context(
            self.portal.wrap_async_context_manager(Client(self._server))
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def tools(self) -> list:
        return self.portal.call(self.client.list_tools).tools

    def call(self, tool: str, /, **arguments: Any):
        """The raw CallToolResult."""
        return self.portal.call(self.client.call_tool, tool, arguments)

    def ok(self, tool: str, /, **arguments: Any) -> dict:
        """A call that must not be a tool error: its structured content."""
        res = self.call(tool, **arguments)
        assert not res.is_error, res.content[0].text
        return res.structured_content

    def error(self, tool: str, /, **arguments: Any) -> str:
        """A call that must be a tool error: its text."""
        res = self.call(tool, **arguments)
        assert res.is_error, res.structured_content
        return res.content[0].text

    def read(self, uri: str) -> str:
        res = self.portal.call(self.client.read_resource, uri)
        return res.contents[0].text

    def templates(self) -> list[str]:
        res = self.portal.call(self.client.list_resource_templates)
        return [t.uri_template for t in res.resource_templates]

    def resources(self) -> list[str]:
        res = self.portal.call(self.client.list_resources)
        return [str(r.uri) for r in res.resources]


def cli_json(capsys, *words: str) -> tuple[int, dict | None, str]:
    """(exit code, the JSON document, stderr) of ``pipewarden <words> --format json``."""
    capsys.readouterr()
    code = main([*words, "--format", "json"])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip() else None), out.err


# keys whose values are clocks, durations or speeds: they differ between any two runs
VOLATILE = re.compile(
    r"(^|_)(at|seconds|secs|ms|time|started|finished|elapsed|duration|took|rows_per_s|"
    r"rows_per_second|per_second|run_id|phases|trained_at|created|updated|when|date)($|_)"
)


TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:?\d\d|Z)?")


def normal(doc: Any, subs: dict[str, str]) -> Any:
    """``doc`` with the volatile values left out (clock keys, timestamps in text) and each key
    of ``subs`` (a folder, a schema name) written as its value, for comparing the twins'
    documents."""
    if isinstance(doc, dict):
        return {k: normal(v, subs) for k, v in doc.items() if not VOLATILE.search(str(k))}
    if isinstance(doc, list):
        return [normal(v, subs) for v in doc]
    if isinstance(doc, str):
        for old, new in subs.items():
            doc = doc.replace(old, new)
        return TIMESTAMP.sub("<time>", doc)
    return doc
