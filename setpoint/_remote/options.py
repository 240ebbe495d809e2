"""Options of the remote provider (`setpoint.configure(remote=setpoint.RemoteOptions(...))`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from setpoint._core.operators import is_number
from setpoint._remote import hints
from setpoint.exceptions import ConfigurationError

__all__ = ["RemoteOptions"]


@dataclass(frozen=True)
class RemoteOptions:
    """How to reach a Setpoint server, and how to behave while it cannot be reached.

    `url` and `api_key` default to the ``SETPOINT_URL`` and ``SETPOINT_API_KEY`` environment variables.
    Durations are `timedelta`s (a number is taken as seconds).
    """

    url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    polling_interval: timedelta = timedelta(seconds=60)
    """How often to poll (with jitter); Server-Sent Events make changes arrive sooner."""
    block_before_first_resolve: bool = True
    """Wait (at most `first_fetch_timeout`) for the first fetch before serving; False serves defaults at once."""
    first_fetch_timeout: timedelta = timedelta(seconds=10)
    sse: bool = True
    """Listen to ``/v1/variable-updates/`` and refresh at once on a change."""
    cache_path: str | os.PathLike[str] | None = None
    """Where to persist the last good config, so a restart while the server is down still serves it."""
    request_timeout: timedelta = timedelta(seconds=10)
    """Timeout of each HTTP request (and of connecting the SSE stream)."""
    sse_read_timeout: timedelta = timedelta(seconds=90)
    """A stream silent for this long (no event, no keep-alive) is treated as dead and reconnected."""
    report_usage: bool = True
    """Send evaluation counts per variable, label and version to ``POST /v1/usage/`` (what the UI's usage charts,
    "last seen" and stale badges show). Counting costs nanoseconds per ``get()``; sending happens in the
    background every `usage_interval`, at shutdown and before a fork."""
    usage_interval: timedelta = timedelta(seconds=60)
    """How often usage counts are sent."""

    def __post_init__(self) -> None:
        for name in (
            "polling_interval",
            "first_fetch_timeout",
            "request_timeout",
            "sse_read_timeout",
            "usage_interval",
        ):
            value = getattr(self, name)
            if is_number(value):
                value = timedelta(seconds=value)
                object.__setattr__(self, name, value)
            if not isinstance(value, timedelta):
                raise ConfigurationError(f"RemoteOptions.{name} must be a timedelta or seconds, not {value!r}")
            minimum = timedelta(0) if name == "first_fetch_timeout" else timedelta(milliseconds=100)
            if value < minimum:
                raise ConfigurationError(f"RemoteOptions.{name} must be at least {minimum.total_seconds()} s")

    def resolved_url(self) -> str:
        """The server URL (argument, else ``SETPOINT_URL``), without a trailing slash."""
        url = self.url or os.environ.get("SETPOINT_URL")
        if not url:
            raise ConfigurationError(f"no Setpoint server URL: {hints.current().url}")
        return url.rstrip("/")

    def resolved_api_key(self) -> str:
        """The API key (argument, else ``SETPOINT_API_KEY``)."""
        key = self.api_key or os.environ.get("SETPOINT_API_KEY")
        if not key:
            raise ConfigurationError(f"no Setpoint API key: {hints.current().api_key}")
        return key

    def resolved_cache_path(self) -> Path | None:
        """The cache file path, if any."""
        return Path(self.cache_path) if self.cache_path is not None else None
