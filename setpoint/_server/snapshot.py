"""Each project's served config, held in memory and rebuilt on change: a fetch does no database work.

A snapshot keeps the validated ``VariablesConfig``, its JSON bytes and ETag, and the same for the form
served to Logfire SDK clients. The ETag is a hash of the bytes, so it changes exactly when the content does.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

from setpoint._core.jsonvalues import STORED_CONFIG
from setpoint._server.services.logfire_compat import to_logfire
from setpoint._server.services.wire import project_wire
from setpoint._server.storage import Storage
from setpoint.config import VariablesConfig


def _encode(data: dict[str, Any]) -> tuple[bytes, str]:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@dataclass(frozen=True)
class Variant:
    """One serialized form of a config."""

    body: bytes
    etag: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """A project's config as served: Setpoint's form and the Logfire-compatible form."""

    project_id: int
    config: VariablesConfig
    native: Variant
    logfire: Variant


def build_snapshot(storage: Storage, project_id: int) -> Snapshot:
    """Read a project and build its snapshot (one read transaction)."""
    with storage.read() as tx:
        state = tx.load_project_state(project_id)
    data = project_wire(state)
    config = VariablesConfig.model_validate(data, context={STORED_CONFIG: True})
    logfire_data, warnings = to_logfire(data)
    native = Variant(*_encode(data))
    logfire = Variant(*_encode(logfire_data), warnings=tuple(warnings))
    return Snapshot(project_id=project_id, config=config, native=native, logfire=logfire)


class SnapshotCache:
    """Snapshots by project id; ``invalidate`` drops one, the next ``get`` rebuilds it.

    A generation counter per project stops a rebuild that started before a change from storing stale data.
    """

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._snapshots: dict[int, Snapshot] = {}
        self._generations: dict[int, int] = {}
        self._lock = threading.Lock()
        self._build_locks: dict[int, threading.Lock] = {}

    def cached(self, project_id: int) -> Snapshot | None:
        """The snapshot if it is built (no I/O, safe on the event loop)."""
        return self._snapshots.get(project_id)

    def get(self, project_id: int) -> Snapshot:
        """The snapshot, built from the database when missing (blocking: call from a worker thread)."""
        snapshot = self._snapshots.get(project_id)
        if snapshot is not None:
            return snapshot
        with self._lock:
            build_lock = self._build_locks.setdefault(project_id, threading.Lock())
        with build_lock:
            snapshot = self._snapshots.get(project_id)
            if snapshot is not None:
                return snapshot
            generation = self._generations.get(project_id, 0)
            snapshot = build_snapshot(self._storage, project_id)
            with self._lock:
                if self._generations.get(project_id, 0) == generation:
                    self._snapshots[project_id] = snapshot
            return snapshot

    def invalidate(self, project_id: int) -> None:
        """Forget a project's snapshot (its config changed)."""
        with self._lock:
            self._generations[project_id] = self._generations.get(project_id, 0) + 1
            self._snapshots.pop(project_id, None)

    def invalidate_all(self) -> None:
        """Forget every snapshot (e.g. after missing notifications while disconnected)."""
        with self._lock:
            for project_id in list(self._snapshots) + list(self._generations):
                self._generations[project_id] = self._generations.get(project_id, 0) + 1
            self._snapshots.clear()
