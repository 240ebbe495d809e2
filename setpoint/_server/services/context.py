"""What every service function needs: the storage and where to report committed changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from setpoint._server.services.changes import ChangeSink
from setpoint._server.services.limits import Limits
from setpoint._server.storage import Storage


@dataclass(frozen=True)
class ServiceContext:
    """Storage, the change sink, limits and the clock; the server builds one at startup."""

    storage: Storage
    sink: ChangeSink
    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    """The current time, timezone-aware UTC. Scheduled work, webhook retries and review timestamps read it here,
    so tests drive time without sleeping."""
