"""`targeting_context`: set the targeting key once for a block of code (a request, a job).

One `ContextVar` holds an immutable `TargetingState` (the default key and the per-variable keys), so a
resolution costs one ``.get()`` and nesting or concurrency (threads, asyncio tasks) never leak keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from setpoint._sdk.variable import Variable

__all__ = ["TARGETING", "TargetingState", "targeting_context"]


class TargetingState:
    """The targeting keys in effect: a default one and variable-specific ones (which always win)."""

    __slots__ = ("default", "specific")

    def __init__(self, default: str | None, specific: Mapping[str, str]) -> None:
        self.default = default
        self.specific = specific

    def key_for(self, name: str) -> str | None:
        """The key for variable ``name``: its specific key, else the default one."""
        return self.specific.get(name, self.default)


TARGETING: ContextVar[TargetingState | None] = ContextVar("setpoint_targeting", default=None)


@contextmanager
def targeting_context(targeting_key: str, variables: Iterable[Variable[Any] | str] | None = None) -> Iterator[None]:
    """Use ``targeting_key`` for the variables resolved inside this block.

    Without ``variables`` it is the default key of every variable; with ``variables`` (`Variable` objects or
    names) it applies to those only, and a variable-specific key beats the default one whatever the nesting
    order. A key passed to ``get(targeting_key=...)`` beats both. Safe across threads and asyncio tasks.
    """
    if not isinstance(targeting_key, str):
        raise TypeError(f"targeting_key must be a str, not {type(targeting_key).__name__}")
    current = TARGETING.get()
    default = current.default if current is not None else None
    specific: Mapping[str, str] = current.specific if current is not None else {}
    if variables is None:
        state = TargetingState(targeting_key, specific)
    else:
        names = [v if isinstance(v, str) else v.name for v in variables]
        state = TargetingState(default, {**specific, **dict.fromkeys(names, targeting_key)})
    token = TARGETING.set(state)
    try:
        yield
    finally:
        TARGETING.reset(token)
