"""What an error about the server's URL or API key tells the user to change: the SDK names
``RemoteOptions(url=...)``, the CLI names ``--url``; both name the environment variables.

The SDK's hints are the default; the CLI switches to its own for the duration of a command (`cli_hints`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["CLI", "SDK", "Hints", "cli_hints", "current"]


@dataclass(frozen=True)
class Hints:
    """How to set the server URL and the API key, in the words of one front end."""

    url: str
    api_key: str


SDK = Hints(
    url="pass RemoteOptions(url=...) or set SETPOINT_URL",
    api_key="pass RemoteOptions(api_key=...) or set SETPOINT_API_KEY",
)
CLI = Hints(url="pass --url or set SETPOINT_URL", api_key="pass --api-key or set SETPOINT_API_KEY")

_CURRENT: ContextVar[Hints] = ContextVar("setpoint_remote_hints", default=SDK)


def current() -> Hints:
    """The hints of the front end in use (the SDK's unless inside `cli_hints`)."""
    return _CURRENT.get()


@contextmanager
def cli_hints() -> Iterator[None]:
    """Within this block, errors about the URL or API key name the CLI's options."""
    token = _CURRENT.set(CLI)
    try:
        yield
    finally:
        _CURRENT.reset(token)
