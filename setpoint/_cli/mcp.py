"""``setpoint mcp``: serve MCP tools over stdio for agents and IDE assistants (needs the ``mcp`` extra)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["register"]

UrlOption = Annotated[
    str | None, typer.Option("--url", envvar="SETPOINT_URL", help="Server URL (default: $SETPOINT_URL).")
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="SETPOINT_API_KEY",
        help="API key (default: $SETPOINT_API_KEY); its scopes limit the tools (read: no writes).",
        show_default=False,
    ),
]


def mcp(url: UrlOption = None, api_key: KeyOption = None) -> None:
    """Serve MCP tools on stdin/stdout: list and get variables, resolve with an explanation, create a version,
    move a label, read history. Configure it as a stdio server in your MCP client (see the README)."""
    if not url or not api_key:
        missing = " and ".join(
            n for n, v in (("--url/SETPOINT_URL", url), ("--api-key/SETPOINT_API_KEY", api_key)) if not v
        )
        typer.echo(f"error: give {missing} (the Setpoint server and an API key of the project)", err=True)
        raise typer.Exit(2)
    try:
        from setpoint._mcp.server import run_stdio
    except ImportError as exc:  # pragma: no cover - the extra is a dev dependency
        typer.echo(f"error: the MCP server needs the `mcp` extra: pip install 'setpoint[mcp]' ({exc})", err=True)
        raise typer.Exit(1) from None
    run_stdio(url, api_key)


def register(app: typer.Typer) -> None:
    """Add ``setpoint mcp``."""
    app.command("mcp")(mcp)
