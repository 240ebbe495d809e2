"""The server's shared state: storage, caches, the event hub, and the wiring between them."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from setpoint._server.auth import KeyCache
from setpoint._server.events import AuditWatcher, EventHub, PostgresListener
from setpoint._server.services.changes import Change, ChangeSink
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.login_throttle import LoginThrottle
from setpoint._server.services.schedules.runner import ScheduleRunner
from setpoint._server.services.usage.rollup import RollupJob
from setpoint._server.services.webhooks.worker import DeliveryWorker, WorkerOptions
from setpoint._server.settings import Settings
from setpoint._server.snapshot import SnapshotCache
from setpoint._server.storage import Storage
from setpoint._server.storage.records import AuditEntry
from setpoint._server.storage.sql import SqlStorage

log = logging.getLogger("setpoint.server")


@dataclass
class ServerState:
    """One per app; reachable as ``request.app.state.setpoint``."""

    settings: Settings
    storage: Storage
    ctx: ServiceContext
    snapshots: SnapshotCache
    keys: KeyCache
    hub: EventHub
    login_throttle: LoginThrottle
    listener: PostgresListener | None = field(default=None)
    watcher: AuditWatcher | None = field(default=None)
    rollup: RollupJob | None = field(default=None)
    webhooks: DeliveryWorker | None = field(default=None)
    runner: ScheduleRunner | None = field(default=None)

    @classmethod
    def create(cls, settings: Settings, storage: Storage) -> ServerState:
        """Wire the caches and the hub to the change sink."""
        sink = ChangeSink(origin=uuid.uuid4().hex)
        state = cls(
            settings=settings,
            storage=storage,
            ctx=ServiceContext(storage=storage, sink=sink, limits=settings.limits),
            snapshots=SnapshotCache(storage),
            keys=KeyCache(storage),
            hub=EventHub(keepalive=settings.sse_keepalive_seconds),
            login_throttle=LoginThrottle(storage.login_failures),
        )
        sink.subscribe(state._on_change)
        return state

    @property
    def webhook_options(self) -> WorkerOptions:
        """How this server delivers webhooks (from its settings)."""
        s = self.settings
        return WorkerOptions(
            allow_private=s.webhooks_allow_private,
            timeout=s.webhooks_timeout_seconds,
            retry_base=s.webhooks_retry_base_seconds,
            retry_window=s.webhooks_retry_window_seconds,
            log_days=s.webhooks_log_days,
        )

    def wake_runner(self) -> None:
        """Let the runner of scheduled work look for due work now."""
        if self.runner is not None:
            self.runner.wake()

    def _on_change(self, change: Change) -> None:
        if change.affects_config:
            self.snapshots.mark(change.project_id, change.entity, change.name)
        if change.entity == "api_key":
            self.keys.invalidate(change.name)
            if change.event == "deleted":  # revoked: its open SSE streams end too
                self.hub.end_key_streams(key_hash=change.name)
        if change.entity in ("project", "membership", "person"):  # keys act with their maker's current role
            self.keys.invalidate()
        if change.entity in ("membership", "person"):
            self._recheck_streams()
        self.hub.publish(change)

    def _recheck_streams(self) -> None:
        """End the open SSE streams whose key no longer works: revoked, its maker deactivated or no longer a
        member of the project (a role change elsewhere). Costs one key read per open stream's key."""
        for key_hash in self.hub.key_hashes():
            try:
                principal = self.keys.load(key_hash)
            except Exception as exc:  # the next change rechecks
                log.warning("could not recheck an API key of an open SSE stream (%s)", exc)
                continue
            if principal is None or principal.role is None:
                self.hub.end_key_streams(key_hash=key_hash)

    def _on_reconnect(self) -> None:
        self.snapshots.invalidate_all()
        self.keys.invalidate()
        # A revocation may have been notified while disconnected: recheck the keys of the open streams.
        for key_hash in self.hub.key_hashes():
            try:
                revoked = self.keys.load(key_hash) is None
            except Exception as exc:  # the listener must keep running; the next reconnect rechecks
                log.warning("could not recheck an API key of an open SSE stream (%s)", exc)
                continue
            if revoked:
                self.hub.end_key_streams(key_hash=key_hash)

    def _on_audit(self, entry: AuditEntry) -> None:
        if entry.entity_type == "api_key":
            self.keys.invalidate()
            if entry.action == "revoke" and isinstance(entry.after, dict) and isinstance(entry.after.get("id"), int):
                self.hub.end_key_streams(key_id=entry.after["id"])
        elif entry.entity_type in ("membership", "person"):
            self.keys.invalidate()
            self._recheck_streams()
        # Variable and segment changes arrive as change notifications (`ChangeSink.handle_payload`), which skip
        # this process's own and also reach the SSE streams.

    def start(self) -> None:
        """Start cross-process change delivery (LISTEN on PostgreSQL, audit polling on SQLite), the usage
        rollup job, the webhook delivery worker and the runner of scheduled work."""
        self.rollup = RollupJob(self.storage, self.settings)
        self.rollup.start()
        self.webhooks = DeliveryWorker(self.storage, self.webhook_options, self.ctx.clock)
        self.webhooks.start()
        self.runner = ScheduleRunner(self.ctx)
        self.runner.start()
        if self.storage.dialect == "postgresql" and isinstance(self.storage, SqlStorage):
            conninfo = self.storage.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self.listener = PostgresListener(conninfo, self.ctx.sink.handle_payload, self._on_reconnect)
            self.listener.start()
        else:
            self.watcher = AuditWatcher(self.storage, self._on_audit, on_payload=self.ctx.sink.handle_payload)
            self.watcher.start()

    def stop(self) -> None:
        """Stop the listener, end SSE streams and finish pending ``last_used_at`` writes."""
        if self.runner is not None:
            self.runner.stop()
            self.runner = None
        self.hub.close()
        self.keys.close()
        if self.rollup is not None:
            self.rollup.stop()
            self.rollup = None
        if self.webhooks is not None:
            self.webhooks.stop()
            self.webhooks = None
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
