"""A raw SSE reader for tests: collects comments and data lines from ``/v1/variable-updates/``."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

import httpx


class SSEReader:
    """Reads an SSE stream in a thread; ``events`` receives ``(monotonic_time, kind, payload)``."""

    def __init__(self, url: str, api_key: str) -> None:
        self.url = url
        self.api_key = api_key
        self.events: queue.Queue[tuple[float, str, Any]] = queue.Queue()
        self.connected = threading.Event()
        self.closed = threading.Event()
        self.status_code: int | None = None
        self.process: str | None = None
        """The ``X-Setpoint-Process`` header: which server process holds the stream."""
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SSEReader:
        self._thread.start()
        assert self.connected.wait(10), "SSE stream did not open"
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()
        self._thread.join(5)

    def _run(self) -> None:
        headers = {"Authorization": f"bearer {self.api_key}", "Accept": "text/event-stream"}
        try:
            with self._client.stream("GET", f"{self.url}/v1/variable-updates/", headers=headers) as response:
                self.status_code = response.status_code
                self.process = response.headers.get("x-setpoint-process")
                for line in response.iter_lines():
                    if line.startswith(":"):
                        self.events.put((time.monotonic(), "comment", line[1:].strip()))
                        self.connected.set()
                    elif line.startswith("data:"):
                        self.events.put((time.monotonic(), "data", json.loads(line[5:])))
        except (httpx.HTTPError, RuntimeError):
            pass
        finally:
            self.connected.set()
            self.closed.set()

    def next_data(self, timeout: float = 5.0) -> tuple[float, dict[str, Any]]:
        """The next ``data:`` event (skipping comments) and when it arrived."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no SSE data event within {timeout}s")
            try:
                at, kind, payload = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if kind == "data":
                return at, payload
