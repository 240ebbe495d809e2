"""The background job that keeps usage storage bounded: hourly buckets older than ``usage_hourly_days`` become
daily ones, and counts past ``usage_retention_days`` are deleted. Safe to run in several processes at once."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from setpoint._server.settings import Settings
from setpoint._server.storage import Storage

log = logging.getLogger("setpoint.server")


class RollupJob:
    """Runs `UsageStore.rollup` ``first_delay`` seconds after start (not at once: a server that is restarted
    in a loop must not spend its start on it), then every ``interval`` seconds."""

    def __init__(self, storage: Storage, settings: Settings, interval: float = 3600.0, first_delay: float = 600.0):
        self.storage = storage
        self.settings = settings
        self.interval = interval
        self.first_delay = first_delay
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime | None = None) -> tuple[int, int]:
        """One rollup pass; (hourly rows folded into days, rows deleted)."""
        return self.storage.usage.rollup(
            now=now or datetime.now(UTC),
            hourly_days=self.settings.usage_hourly_days,
            retention_days=self.settings.usage_retention_days,
        )

    def _loop(self) -> None:
        delay = self.first_delay
        while not self._stop.wait(delay):
            delay = self.interval
            try:
                folded, deleted = self.run_once()
                if folded or deleted:
                    log.info("usage rollup: %d hourly rows folded into days, %d expired rows deleted", folded, deleted)
            except Exception as exc:  # the next pass retries; the server keeps serving
                log.warning("usage rollup failed (%s); retrying in %.0f s", exc, self.interval)

    def start(self) -> None:
        """Start the background thread."""
        self._thread = threading.Thread(target=self._loop, name="setpoint-usage-rollup", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (waits for a pass in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
