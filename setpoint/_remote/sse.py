"""Listening to ``GET /v1/variable-updates/`` (Server-Sent Events) and the reconnect backoff."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
from httpx_sse import ServerSentEvent, connect_sse

from setpoint._remote.client import check

__all__ = ["CHANGE_EVENTS", "Backoff", "change_of", "listen"]

CHANGE_EVENTS = frozenset({"created", "updated", "deleted"})


@dataclass
class Backoff:
    """Capped exponential backoff with jitter: each delay is uniform in [d/2, d], d doubling up to ``cap``."""

    base: float = 0.5
    cap: float = 30.0
    attempt: int = 0

    def next_delay(self) -> float:
        """The delay before the next reconnect (and count the attempt)."""
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """The connection proved healthy: start again from the base delay."""
        self.attempt = 0


def change_of(sse: ServerSentEvent) -> str | None:
    """The change an event announces (``created``/``updated``/``deleted``), else None. No I/O."""
    if sse.event in CHANGE_EVENTS:
        return sse.event
    try:
        data = json.loads(sse.data) if sse.data else None
    except ValueError:
        return None
    if isinstance(data, dict):
        event = data.get("event")
        if isinstance(event, str) and event in CHANGE_EVENTS:
            return event
    return None


def listen(http: httpx.Client, path: str, on_open: Callable[[httpx.Response], None]) -> Iterator[str]:
    """Yield ``"open"`` once connected, ``"healthy"`` on the first event, then each change announced.

    Returns when the server ends the stream; raises on a connection failure or an error status.
    """
    with connect_sse(http, "GET", path) as source:
        response = source.response
        if response.status_code != 200:
            response.read()
            check(response, "listening for variable updates")
        on_open(response)
        yield "open"
        healthy = False
        for sse in source.iter_sse():
            if not healthy:
                healthy = True
                yield "healthy"
            change = change_of(sse)
            if change is not None:
                yield change
