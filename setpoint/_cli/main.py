"""The ``setpoint`` command. Each command family lives in its own module with a ``register(app)`` function."""

from __future__ import annotations

import importlib

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="setpoint",
    help="Setpoint: self-hosted managed variables for Python.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_COMMAND_MODULES = (
    "setpoint._cli.serve",
    "setpoint._cli.migrate",
    "setpoint._cli.data",
    "setpoint._cli.keys",
    "setpoint._cli.people",
    "setpoint._cli.variables",
    "setpoint._cli.mcp",
    "setpoint._cli.refs",
)


def _register_all() -> None:
    for module_name in _COMMAND_MODULES:
        module = importlib.import_module(module_name)
        module.register(app)


def main() -> None:
    """Entry point of the ``setpoint`` console script."""
    _register_all()
    app()
