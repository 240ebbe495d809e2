"""The ``setpoint`` command. Each command family lives in its own module with a ``register(app)`` function."""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

__all__ = ["app", "main"]


def _without_flag_types(params: list[Any]) -> list[Any]:
    """A flag (``--help``, ``--yes``) takes no value, so its help line shows no ``<bool>`` type."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    return params


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_types(super().get_params(ctx))


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_types(super().get_params(ctx))


app = typer.Typer(
    name="setpoint",
    help="Setpoint: self-hosted managed variables for Python.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Group,
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


def _use_help_classes(typer_app: typer.Typer) -> None:
    if typer_app.info.cls in (None, TyperGroup):
        typer_app.info.cls = _Group
    for command in typer_app.registered_commands:
        if command.cls in (None, TyperCommand):
            command.cls = _Command
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _use_help_classes(group.typer_instance)


def _register_all() -> None:
    for module_name in _COMMAND_MODULES:
        module = importlib.import_module(module_name)
        module.register(app)
    _use_help_classes(app)


def main() -> None:
    """Entry point of the ``setpoint`` console script."""
    _register_all()
    app()
