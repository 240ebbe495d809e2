"""`RemoteProvider`: live config from a Setpoint server — jittered polling with ETags, plus Server-Sent Events.

Threads: a poller (the only thread that fetches on a schedule; SSE events and `refresh` wake it) and an SSE
listener (reconnects with capped, jittered exponential backoff and forces a fetch after each reconnect, to
catch changes missed while disconnected). The served config only ever moves to a config that validated
(see `setpoint._remote.lkg`), compiled straight from the JSON (no second, pydantic copy); it is persisted to
``cache_path`` (a snapshot plus a journal of changes: `setpoint._remote.cache`) and read from there when the
server is down at start. After ``fork()`` the child gets fresh locks, fresh connections and its own threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import threading
import time
import weakref
from typing import Any

import httpx

from setpoint._remote.cache import CacheFile
from setpoint._remote.client import (
    VARIABLE_UPDATES_PATH,
    Fetched,
    RemoteClient,
    fetch_config_async,
    is_transient,
    request_headers,
    unreachable,
)
from setpoint._remote.lkg import InvalidResponseError, Loaded, apply_delta, is_delta, load_response
from setpoint._remote.options import RemoteOptions
from setpoint._remote.sse import Backoff, listen
from setpoint._remote.usage import UsageReporter
from setpoint._sdk.providers.base import Provider, gc_paused
from setpoint.exceptions import RemoteError

__all__ = ["RemoteProvider"]

logger = logging.getLogger("setpoint.remote")


_EVENT_RECHECK_SECONDS = 1.0
"""After a refresh triggered by a change event, the poller fetches once more this soon."""


def _jittered(seconds: float) -> float:
    return seconds * random.uniform(0.9, 1.1)


class RemoteProvider(Provider):
    """Serves the config of a Setpoint server; ``compiled`` is swapped atomically and read without locks."""

    name = "remote"

    def __init__(self, options: RemoteOptions | None = None) -> None:
        super().__init__()
        options = options if options is not None else RemoteOptions()
        self.options = options
        self.url = options.resolved_url()
        self._api_key = options.resolved_api_key()
        self._cache_path = options.resolved_cache_path()
        self.cache: CacheFile | None = CacheFile(self._cache_path, self.url) if self._cache_path is not None else None
        """The on-disk last-known-good cache (None without ``cache_path``)."""
        self._to_persist: list[Loaded] = []  # applied changes not yet written to the cache, in order
        self._interval = options.polling_interval.total_seconds()
        self.source: str | None = None
        """Where ``config`` came from: ``"server"`` or ``"cache"``."""
        self.last_error: Exception | None = None
        self.sse_connected = False
        self._etag: str | None = None
        self._last_fetch = float("-inf")
        self._failures = 0
        self._down_since: float | None = None  # when the server became unreachable (None: reachable)
        self._seq = 0  # requests started
        self._applied_seq = 0  # the newest request whose answer was applied
        self._started = False
        self._shut_down = False
        self._pid = os.getpid()
        self.usage: UsageReporter | None = UsageReporter(options) if options.report_usage else None
        """Sends evaluation counts to the server (None with ``RemoteOptions(report_usage=False)``)."""
        self._init_threading()
        self._register_fork_handler()

    # --- lifecycle -------------------------------------------------------------------------------------

    def _init_threading(self) -> None:
        self._fetch_lock = threading.Lock()  # one synchronous request at a time
        self._apply_lock = threading.Lock()  # guards the served state; never held during I/O
        self._persist_lock = threading.Lock()
        self._health_lock = threading.Lock()
        self._ready = threading.Event()
        self._wake = threading.Event()
        self._force = threading.Event()
        self._event_seen = threading.Event()  # an SSE change event arrived since the poller last looked
        self._stop = threading.Event()
        self._client = RemoteClient(self.options)
        self._poller: threading.Thread | None = None
        self._sse_thread: threading.Thread | None = None
        self._sse_response: httpx.Response | None = None

    def _register_fork_handler(self) -> None:
        if not hasattr(os, "register_at_fork"):  # pragma: no cover - Windows
            return
        ref = weakref.ref(self)

        def after_in_child() -> None:  # pragma: no cover - runs in forked children (tested via subprocess)
            provider = ref()
            if provider is not None:
                provider._after_fork()

        os.register_at_fork(after_in_child=after_in_child)

    def _after_fork(self) -> None:
        """In a forked child: the parent's threads do not exist here; make fresh ones (and fresh sockets)."""
        self._pid = os.getpid()
        if self._shut_down:
            return
        ready = self._ready.is_set()
        self._init_threading()
        if ready:
            self._ready.set()
        self.sse_connected = False
        if self._started:
            self._start_threads()

    def start(self) -> None:
        """Start the background poller and (if enabled) the SSE listener. Idempotent."""
        if self._started or self._shut_down:
            return
        self._started = True
        self._start_threads()
        if self.usage is not None:
            self.usage.start()

    def _start_threads(self) -> None:
        self._poller = threading.Thread(target=self._poll_loop, name="setpoint-remote-poller", daemon=True)
        self._poller.start()
        if self.options.sse:
            self._sse_thread = threading.Thread(target=self._sse_loop, name="setpoint-remote-sse", daemon=True)
            self._sse_thread.start()

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop the threads and close the connections (waits at most ``timeout`` seconds in total)."""
        if self._shut_down:
            return
        self._shut_down = True
        self._stop.set()
        self._wake.set()
        self._interrupt_sse()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in (self._poller, self._sse_thread):
            if thread is not None and thread is not threading.current_thread():
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if self.usage is not None:  # sends the counts not yet reported
            self.usage.close(5.0 if deadline is None else max(0.5, deadline - time.monotonic()))
        self._client.close()

    def __repr__(self) -> str:
        return f"RemoteProvider(url={self.url!r}, source={self.source!r})"

    # --- refreshing ------------------------------------------------------------------------------------

    def _due(self, force: bool) -> bool:
        return force or time.monotonic() - self._last_fetch >= self._interval

    def refresh(self, force: bool = False) -> None:
        """Fetch now if ``force`` or the polling interval has passed; never raises (see ``last_error``)."""
        if os.getpid() != self._pid:  # pragma: no cover - fork without the at-fork hook (e.g. os.fork in C)
            self._after_fork()
        if not self._due(force):
            return
        with self._fetch_lock:  # one request at a time from the threads
            if not self._due(force):
                return
            seq = self._next_seq()
            try:
                fetched = self._client.fetch_config(self._etag, delta=self.compiled is not None)
            except RemoteError as exc:
                with self._apply_lock:
                    self._fetch_failed(exc)
                return
            with self._apply_lock:
                self._apply(fetched, seq)
            self._persist()

    async def refresh_async(self, force: bool = False) -> None:
        """The async twin of `refresh`: the request runs on the event loop (no thread, no blocking lock)."""
        if not self._due(force):
            return
        seq = self._next_seq()
        try:
            fetched = await fetch_config_async(self.options, self._etag, delta=self.compiled is not None)
        except RemoteError as exc:
            with self._apply_lock:
                self._fetch_failed(exc)
            return
        with self._apply_lock:  # held only while applying: no I/O under it
            self._apply(fetched, seq)
        if self._to_persist:
            await asyncio.to_thread(self._persist)

    def _next_seq(self) -> int:
        with self._apply_lock:
            self._seq += 1
            return self._seq

    def _apply(self, fetched: Fetched, seq: int) -> None:
        """Serve what was fetched if it is good and not older than what is served (apply lock held).

        A change is queued for the caller to persist (`_persist`, outside the lock).
        """
        try:
            if seq < self._applied_seq:
                return  # a slower request that started earlier: what we serve is newer
            self._applied_seq = seq
            self._server_up()
            self._last_fetch = time.monotonic()
            self._failures = 0
            if fetched.not_modified:
                self.last_error = None
                if self.compiled is None:  # a 304 for an ETag we do not hold the body of: ask again in full
                    self._etag = None
                    self._last_fetch = float("-inf")
                return
            if is_delta(fetched.data):
                self._apply_delta(fetched)
                return
            try:
                with gc_paused():
                    loaded = load_response(self.compiled, fetched.data)
            except InvalidResponseError as exc:
                self.last_error = exc
                self._warn(f"ignoring a bad response from {self.url}: {exc}; still serving the last good config")
                return
            for problem in loaded.problems:
                self._warn(f"config from {self.url}: {problem}")
            self._etag = fetched.etag
            self.last_error = None
            # A full answer means a change (the server sends 304 otherwise): serve and persist it.
            self.compiled = loaded.compiled
            self.source = "server"
            self._queue_persist(loaded)
        finally:
            self._ready.set()

    def _queue_persist(self, loaded: Loaded) -> None:
        if self.cache is not None:
            self._to_persist.append(loaded)

    def _apply_delta(self, fetched: Fetched) -> None:
        """Apply what changed since the config we hold, recompiling only that (apply lock held)."""
        compiled = self.compiled
        try:
            if compiled is None:
                raise InvalidResponseError("a delta arrived, but no config is held to apply it to")
            with gc_paused():
                loaded = apply_delta(compiled, fetched.data)
        except InvalidResponseError as exc:
            logger.info("cannot apply the delta from %s (%s); fetching the whole config", self.url, exc)
            self._etag = None
            self._last_fetch = float("-inf")  # the next refresh fetches everything
            self._request_refresh()
            return
        for problem in loaded.problems:
            self._warn(f"config from {self.url}: {problem}")
        self._etag = fetched.etag
        self.last_error = None
        self.compiled = loaded.compiled
        self.source = "server"
        self._queue_persist(loaded)

    def _fetch_failed(self, exc: RemoteError) -> None:
        self.last_error = exc
        self._failures += 1
        self._last_fetch = time.monotonic()
        if self.compiled is None and self.cache is not None:
            cached = self.cache.read()
            if cached is not None:
                try:
                    with gc_paused():
                        loaded = load_response(None, cached)
                except InvalidResponseError:
                    loaded = None
                if loaded is not None:
                    for problem in loaded.problems:
                        self._warn(f"cached config {self._cache_path}: {problem}")
                    self.compiled = loaded.compiled
                    self.source = "cache"
                    logger.warning("%s; serving the cached config from %s", exc, self._cache_path)
        self._ready.set()
        if is_transient(exc):
            if not self._server_down(str(exc)):
                logger.debug("refreshing variables failed again: %s", exc)
        else:
            logger.warning("refreshing variables failed: %s", exc)

    def _server_down(self, reason: str) -> bool:
        """Log one warning when the server stops answering (not one per retry); True if this call logged it."""
        with self._health_lock:
            if self._down_since is not None:
                return False
            self._down_since = time.monotonic()
        serving = "the last values" if self.compiled is not None else "the code defaults"
        logger.warning("%s; serving %s, retrying in the background", reason, serving)
        return True

    def _server_up(self) -> None:
        """Log one warning (so it shows wherever the loss did) when the server answers again."""
        with self._health_lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            logger.warning(
                "reconnected to the Setpoint server at %s after %.0f s; updates resume",
                self.url,
                time.monotonic() - since,
            )

    def _persist(self) -> None:
        """Write the changes applied so far to the cache, in the order they were applied: a whole config as a
        new snapshot, a delta as one journal line."""
        cache = self.cache
        if cache is None:
            return
        with self._persist_lock:
            while self._to_persist:
                with self._apply_lock:
                    if not self._to_persist:
                        return
                    loaded = self._to_persist.pop(0)
                    compiled = self.compiled
                try:
                    if loaded.full:
                        cache.write_snapshot(loaded.variables, loaded.segments)
                        continue
                    appended = cache.append(loaded.variables, loaded.removed, loaded.segments, loaded.removed_segments)
                    if not appended and compiled is not None:  # no snapshot of ours to append to: write one
                        document = compiled.config.to_dict()
                        cache.write_snapshot(document["variables"], document["segments"])
                except OSError as exc:
                    cache.forget_snapshot()  # what is on disk may now miss a change: the next write is a snapshot
                    logger.warning("cannot write the variables cache %s: %s", self._cache_path, exc)

    @staticmethod
    def _warn(message: str) -> None:
        # Logged, not `warnings.warn`: this runs in background threads, where a warning filter set to
        # "error" would kill the poller.
        logger.warning(message)

    # --- threads ---------------------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._force.clear()
            after_event = self._event_seen.is_set()
            self._event_seen.clear()
            try:
                self.refresh(force=True)
            except Exception:  # a bug must not stop the updates: log it, keep serving, poll again
                logger.exception("refreshing variables from %s failed unexpectedly", self.url)
            delay = _jittered(self._interval)
            if after_event:
                # Look once more shortly after a change event (a 304 costs the server nothing). One server process
                # never answers from before an event it sent (`SnapshotCache.cached`), but with several processes
                # (`--workers`, a load balancer) the fetch can reach one that has not heard of the change yet
                # (SQLite: its poller runs about once a second; PostgreSQL: NOTIFY reaches each process apart).
                delay = min(delay, _EVENT_RECHECK_SECONDS)
            self._wake.wait(delay)
            self._wake.clear()

    def _request_refresh(self) -> None:
        """Called by the SSE listener: fetch now."""
        self._force.set()
        self._wake.set()

    def _sse_loop(self) -> None:
        backoff = Backoff()
        headers = request_headers(self._api_key)
        while not self._stop.is_set():
            opened_at = time.monotonic()
            opened = False
            try:
                with httpx.Client(base_url=self.url, headers=headers, timeout=self._sse_timeout()) as http:
                    for event in listen(http, VARIABLE_UPDATES_PATH, self._on_sse_open):
                        if self._stop.is_set():
                            break
                        if event == "open":
                            opened = True
                            self._server_up()
                            # Changes made before the subscription existed send no event: fetch once now (a
                            # 304 when nothing changed). Covers reconnects, the first connection racing the
                            # first fetch, and a forked child's first stream.
                            self._request_refresh()
                        elif event == "healthy":
                            backoff.reset()
                        else:
                            self._event_seen.set()
                            self._request_refresh()
            except Exception as exc:
                logger.debug("variable updates stream failed: %s", exc)
                # A stream that ends is normal (restarts, proxies): only a failed (re)connection means the server
                # is unreachable, and `_server_down` says so once until it answers again.
                if isinstance(exc, httpx.TransportError) and not opened:
                    self._server_down(str(unreachable(self.url, exc)))
                elif isinstance(exc, RemoteError) and is_transient(exc):
                    self._server_down(str(exc))
            finally:
                if self.sse_connected and time.monotonic() - opened_at > 5.0:
                    backoff.reset()  # a stream that stayed up a while was healthy, events or not
                self.sse_connected = False
                self._sse_response = None
            if self._stop.is_set():
                break
            self._stop.wait(backoff.next_delay())

    def _on_sse_open(self, response: httpx.Response) -> None:
        self._sse_response = response
        self.sse_connected = True
        if self._stop.is_set():
            self._interrupt_sse()

    def _interrupt_sse(self) -> None:
        """Unblock the listener thread's read now (closing the response from another thread does not)."""
        response = self._sse_response
        if response is None:
            return
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _sse_timeout(self) -> httpx.Timeout:
        connect = self.options.request_timeout.total_seconds()
        # The server sends keep-alive comments; a silent stream for this long is a dead connection.
        return httpx.Timeout(connect, read=self.options.sse_read_timeout.total_seconds())

    def debug_state(self) -> dict[str, Any]:
        """A snapshot of the provider's state, for logs and tests."""
        return {
            "url": self.url,
            "source": self.source,
            "etag": self._etag,
            "sse_connected": self.sse_connected,
            "last_error": None if self.last_error is None else str(self.last_error),
            "variables": sorted(self.compiled.names()) if self.compiled is not None else None,
        }
