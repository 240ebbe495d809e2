"""What every service function needs: the storage and where to report committed changes."""

from __future__ import annotations

from dataclasses import dataclass, field

from setpoint._server.services.changes import ChangeSink
from setpoint._server.services.limits import Limits
from setpoint._server.storage import Storage


@dataclass(frozen=True)
class ServiceContext:
    """Storage plus the change sink; the server builds one at startup."""

    storage: Storage
    sink: ChangeSink
    limits: Limits = field(default_factory=Limits)
