"""The agent surface: the MCP server (server.py, invoke.py), the skill package (skill.py) and
their commands (cli.py: ``pipewarden mcp``, ``pipewarden skill install``)."""
