"""Sending evaluation counts to the server (``POST /v1/usage/``), for the remote provider.

A background thread harvests the counters of `setpoint._sdk.usage` every interval and sends one batch. A send
that fails is merged into the next one; counts that failed `MAX_ATTEMPTS` sends in a row, or that the server
refused as invalid (4xx), are dropped with one warning, so nothing is retried forever and memory stays bounded
(`setpoint._sdk.usage.MAX_KEYS` keys). Nothing here can raise into, or block, ``Variable.get``.

Shutdown (and interpreter exit) sends what is left. A forked child (gunicorn/uvicorn workers) drops the counts
and pending batch it inherited, which stay the parent's to send, and starts from zero with its own instance id
and thread.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import uuid
import weakref
from collections import defaultdict
from typing import Any

from setpoint._remote.client import USER_AGENT, RemoteClient, check
from setpoint._remote.options import RemoteOptions
from setpoint._sdk import usage
from setpoint.exceptions import RemoteError

__all__ = ["MAX_ATTEMPTS", "MAX_ROWS_PER_BATCH", "USAGE_PATH", "UsageReporter"]

USAGE_PATH = "/v1/usage/"
MAX_ROWS_PER_BATCH = 10_000
"""The server's cap on rows per batch; a bigger harvest is sent in several requests."""
MAX_ATTEMPTS = 10
"""Counts that failed this many sends in a row are dropped."""

logger = logging.getLogger("setpoint")


class UsageReporter:
    """Harvests and sends counts for one remote provider."""

    def __init__(self, options: RemoteOptions) -> None:
        self.options = options
        self.interval = options.usage_interval.total_seconds()
        self.instance_id = uuid.uuid4().hex
        self.sent_batches = 0
        """Batches the server accepted (for tests and diagnostics)."""
        self._pending: dict[usage.UsageKey, int] = defaultdict(int)
        self._failed_attempts = 0
        self._warned = False
        self._started = False
        self._closed = False
        self._init_threading()
        self._register_hooks()

    def _init_threading(self) -> None:
        self._lock = threading.RLock()  # guards _pending and the client; never taken by get()
        self._stop = threading.Event()
        self._client: RemoteClient | None = None
        self._thread: threading.Thread | None = None

    def _register_hooks(self) -> None:
        ref = weakref.ref(self)

        def after_in_child() -> None:  # pragma: no cover - runs in forked children (tested via subprocess)
            reporter = ref()
            if reporter is not None:
                reporter._after_fork()

        def at_exit() -> None:
            reporter = ref()
            if reporter is not None:
                reporter.close()

        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=after_in_child)
        atexit.register(at_exit)

    # --- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start counting for this provider and the background sender. Idempotent."""
        if self._started or self._closed:
            return
        self._started = True
        usage.set_reporting(True)
        self._start_thread()

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="setpoint-usage", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and send what is left (waits at most about ``timeout`` seconds)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._started:
            self.flush()
            usage.set_reporting(False)
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _after_fork(self) -> None:
        """In a forked child: the parent's counts are the parent's; start from zero with a new identity."""
        self._init_threading()
        self._pending = defaultdict(int)
        self._failed_attempts = 0
        self.instance_id = uuid.uuid4().hex
        usage.harvest()  # anything counted between the parent's harvest and the fork
        if self._started and not self._closed:
            self._start_thread()

    # --- sending -----------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def _collect(self) -> None:
        counts, dropped = usage.harvest()
        with self._lock:
            for key, hits in counts.items():
                if key in self._pending or len(self._pending) < usage.MAX_KEYS:
                    self._pending[key] += hits
                else:
                    dropped += hits
        if dropped and not self._warned:
            self._warned = True
            logger.warning(
                "setpoint: usage reporting dropped %d counts (more than %d distinct keys)", dropped, usage.MAX_KEYS
            )

    def flush(self) -> bool:
        """Harvest and send now; True when everything pending was accepted (or there was nothing to send)."""
        try:
            self._collect()
            with self._lock:
                if not self._pending:
                    return True
                items = list(self._pending.items())
                try:
                    for start in range(0, len(items), MAX_ROWS_PER_BATCH):
                        chunk = items[start : start + MAX_ROWS_PER_BATCH]
                        self._send(
                            [
                                {"variable": name, "label": label, "version": version, "reason": reason, "count": n}
                                for (name, label, version, reason), n in chunk
                            ]
                        )
                        for key, _ in chunk:
                            self._pending.pop(key, None)
                except RemoteError as exc:
                    return self._failed(exc)
                self._failed_attempts = 0
                return True
        except Exception as exc:  # never let a reporting bug reach the application
            logger.debug("setpoint: usage reporting failed", exc_info=True)
            return self._failed(exc)

    def _send(self, rows: list[dict[str, Any]]) -> None:
        if self._client is None:
            self._client = RemoteClient(self.options)
        body = {"sdk": USER_AGENT, "instance_id": self.instance_id, "counts": rows}
        response = self._client._send("POST", USAGE_PATH, json=body)
        check(response, "reporting usage")
        self.sent_batches += 1

    def _failed(self, exc: Exception) -> bool:
        """Keep the counts for the next send, unless they cannot succeed or have failed too often."""
        self._failed_attempts += 1
        status = getattr(exc, "status_code", None)
        hopeless = isinstance(status, int) and 400 <= status < 500 and status not in (401, 403, 408, 429)
        if hopeless or self._failed_attempts >= MAX_ATTEMPTS:
            with self._lock:
                lost = sum(self._pending.values())
                self._pending.clear()
            self._failed_attempts = 0
            logger.warning("setpoint: usage counts dropped after failed reports (%d resolutions): %s", lost, exc)
        return False

    def pending(self) -> int:
        """Resolutions harvested but not yet accepted by the server."""
        with self._lock:
            return sum(self._pending.values())
