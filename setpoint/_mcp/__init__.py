"""``setpoint mcp``: an MCP server exposing a project's variables to agents and IDE assistants (over HTTP)."""
