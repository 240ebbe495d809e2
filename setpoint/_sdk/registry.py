"""The process-wide registry of variables defined with `setpoint.var()` (names are unique per process)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from setpoint._sdk.variable import Variable

__all__ = ["clear_registry", "lookup", "register", "registered_variables", "restore_registry"]

_LOCK = threading.Lock()
_VARIABLES: dict[str, Variable[Any]] = {}


def register(variable: Variable[Any]) -> None:
    """Add ``variable``; raises `ConfigurationError` if its name is taken."""
    from setpoint.exceptions import ConfigurationError

    with _LOCK:
        if variable.name in _VARIABLES:
            raise ConfigurationError(
                f"a variable named {variable.name!r} is already defined in this process; "
                "define each variable once (at module level) and import it where it is used"
            )
        _VARIABLES[variable.name] = variable


def lookup(name: str) -> Variable[Any] | None:
    """The registered variable called ``name``, if any."""
    return _VARIABLES.get(name)


def registered_variables() -> list[Variable[Any]]:
    """Every registered variable, in definition order."""
    with _LOCK:
        return list(_VARIABLES.values())


def clear_registry() -> None:
    """Forget every variable (for tests)."""
    with _LOCK:
        _VARIABLES.clear()


def restore_registry(variables: list[Variable[Any]]) -> None:
    """Make ``variables`` (from `registered_variables`) the registry again (for tests)."""
    with _LOCK:
        _VARIABLES.clear()
        _VARIABLES.update((variable.name, variable) for variable in variables)
