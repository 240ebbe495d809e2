"""Change notifications: written into the transaction (PostgreSQL NOTIFY) and applied locally after commit."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

from setpoint._server.storage import WriteTx

EventName = Literal["created", "updated", "deleted"]
Entity = Literal["variable", "segment", "type", "api_key", "project", "membership", "person"]


@dataclass(frozen=True)
class Change:
    """One committed change of a project."""

    project_id: int
    entity: Entity
    event: EventName
    name: str

    @property
    def affects_config(self) -> bool:
        """Whether the served variables config (and so the SSE stream) is affected."""
        return self.entity in ("variable", "segment")


class ChangeSink:
    """Receives committed changes; the server wires it to the snapshot cache, the auth cache and SSE."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self._listeners: list[Callable[[Change], None]] = []

    def subscribe(self, listener: Callable[[Change], None]) -> None:
        """Call ``listener`` for every committed change (local ones and ones from other processes)."""
        self._listeners.append(listener)

    def payload(self, change: Change) -> str:
        """The NOTIFY payload for a change: its fields and this process's origin id."""
        return json.dumps({"origin": self.origin, **asdict(change)})

    def record(self, tx: WriteTx, change: Change) -> None:
        """Queue the notification of other processes inside the write transaction."""
        tx.notify(self.payload(change))

    def applied(self, change: Change) -> None:
        """Deliver a committed change to the listeners of this process."""
        for listener in self._listeners:
            listener(change)

    def handle_payload(self, payload: str) -> None:
        """Deliver a change notified by another process (our own notifications are skipped)."""
        data = json.loads(payload)
        if data.pop("origin", None) == self.origin:
            return
        self.applied(Change(**data))
