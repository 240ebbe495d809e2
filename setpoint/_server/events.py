"""Live updates: an in-process hub feeding SSE streams, and a PostgreSQL LISTEN thread that delivers the
changes made by other server processes (their snapshots and SSE clients then behave as one).

Fan-out is built to reach thousands of streams per process within a second: an event's bytes and ASGI message
are made once and shared by every stream; each stream's task writes them with the server's own ``send``
(`RAW_SEND`, skipping the middleware wrappers, which only look at a response's start); keep-alive comments are
sent to every stream by one timer, not a timeout per stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable

import psycopg
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from setpoint._server.services.changes import Change
from setpoint._server.storage import Storage
from setpoint._server.storage.records import AuditEntry
from setpoint._server.storage.sql import NOTIFY_CHANNEL

log = logging.getLogger("setpoint.server")

QUEUE_SIZE = 256
RAW_SEND = "setpoint.raw_send"
"""The scope key under which the app keeps the ASGI server's ``send`` (before any middleware wraps it)."""

StreamItem = Message | None
"""What a stream's queue carries: an ASGI body message to write, or None: end the stream."""


def _body(chunk: bytes) -> Message:
    return {"type": "http.response.body", "body": chunk, "more_body": True}


CONNECTED = _body(b": connected\n\n")
KEEPALIVE = _body(b": keep-alive\n\n")


def event_message(change: Change) -> Message:
    """The SSE message of a change (``data: {"event", "name", "entity"}``), built once for every stream."""
    payload = json.dumps({"event": change.event, "name": change.name, "entity": change.entity})
    return _body(f"data: {payload}\n\n".encode())


class EventHub:
    """SSE subscriber queues per project, each remembering the API key that opened it (so revoking a key
    ends its streams). ``publish``, ``end_key_streams`` and ``close`` may be called from any thread."""

    def __init__(self, keepalive: float = 15.0) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: dict[int, set[asyncio.Queue[StreamItem]]] = {}
        self._keys: dict[asyncio.Queue[StreamItem], tuple[int, str]] = {}  # queue -> (key id, key hash)
        self._keys_lock = threading.Lock()
        self._keepalive = keepalive
        self._keepalive_timer: asyncio.TimerHandle | None = None
        self.closed = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the server's event loop (at startup; call it on that loop) and start the keep-alives."""
        self._loop = loop
        self.closed = False
        if self._keepalive_timer is not None:
            self._keepalive_timer.cancel()
        self._keepalive_timer = loop.call_later(self._keepalive, self._send_keepalives)

    def _send_keepalives(self) -> None:
        """One timer for every stream: a keep-alive comment to each, every ``keepalive`` seconds."""
        for queues in self._subscribers.values():
            for queue in queues:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(KEEPALIVE)
        if not self.closed and self._loop is not None:
            self._keepalive_timer = self._loop.call_later(self._keepalive, self._send_keepalives)

    def subscribe(self, project_id: int, key_id: int = 0, key_hash: str = "") -> asyncio.Queue[StreamItem]:
        """A queue receiving the project's event messages (None means: the stream must end, because the
        server is stopping or the key that opened it was revoked)."""
        queue: asyncio.Queue[StreamItem] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.setdefault(project_id, set()).add(queue)
        with self._keys_lock:
            self._keys[queue] = (key_id, key_hash)
        return queue

    def unsubscribe(self, project_id: int, queue: asyncio.Queue[StreamItem]) -> None:
        """Stop delivering to ``queue``."""
        with self._keys_lock:
            self._keys.pop(queue, None)
        queues = self._subscribers.get(project_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._subscribers[project_id]

    def subscriber_count(self, project_id: int | None = None) -> int:
        """How many SSE streams are open (for one project, or in all)."""
        if project_id is not None:
            return len(self._subscribers.get(project_id, ()))
        return sum(len(q) for q in self._subscribers.values())

    def key_hashes(self) -> set[str]:
        """The hashes of the keys that opened the open streams (any thread)."""
        with self._keys_lock:
            return {key_hash for _, key_hash in self._keys.values() if key_hash}

    def _deliver(self, project_id: int, message: Message) -> None:
        for queue in self._subscribers.get(project_id, ()):
            # A client this far behind is nudged enough: every event means "refetch".
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(message)

    @staticmethod
    def end(queue: asyncio.Queue[StreamItem]) -> None:
        """Make ``queue`` end its stream, even when it is full (on the event loop)."""
        while True:
            try:
                queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()

    def publish(self, change: Change) -> None:
        """Send a config change to the project's SSE streams."""
        if not change.affects_config or self._loop is None or self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._deliver, change.project_id, event_message(change))

    def end_key_streams(self, *, key_id: int | None = None, key_hash: str | None = None) -> None:
        """End the streams opened with a key (by id or by hash): it was revoked."""
        if self._loop is None or self._loop.is_closed():
            return

        def _end_matching() -> None:
            with self._keys_lock:
                matching = [
                    queue
                    for queue, (kid, khash) in self._keys.items()
                    if (key_id is not None and kid == key_id) or (key_hash and khash == key_hash)
                ]
            for queue in matching:
                self.end(queue)

        self._loop.call_soon_threadsafe(_end_matching)

    def close(self) -> None:
        """End every stream (so a shutdown does not wait on open SSE connections)."""
        self.closed = True
        if self._loop is None or self._loop.is_closed():
            return

        def _close_all() -> None:
            if self._keepalive_timer is not None:
                self._keepalive_timer.cancel()
                self._keepalive_timer = None
            for queues in list(self._subscribers.values()):
                for queue in list(queues):
                    self.end(queue)

        self._loop.call_soon_threadsafe(_close_all)


async def _until_disconnected(receive: Receive) -> None:
    with contextlib.suppress(Exception):  # a server that fails receive() once the client is gone: gone too
        while (await receive())["type"] != "http.disconnect":
            pass


class EventStream(Response):
    """A ``text/event-stream`` response fed by a hub queue: ``: connected`` first, then the queue's messages
    until it yields None (server stopping, key revoked) or the client goes away. Unsubscribes at the end."""

    media_type = "text/event-stream"

    def __init__(
        self, hub: EventHub, project_id: int, queue: asyncio.Queue[StreamItem], headers: dict[str, str]
    ) -> None:
        # As StreamingResponse does: no ``body``, so no Content-Length (the body is chunked, open-ended).
        self.status_code = 200
        self.background = None
        self.init_headers(headers)
        self._hub = hub
        self._project_id = project_id
        self._queue = queue

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        queue = self._queue
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            # Body chunks go straight to the server (the middlewares' wrappers only act on the response's start).
            raw: Send = scope.get(RAW_SEND, send)
            await raw(CONNECTED)
            # The client leaving ends the stream (the server answers receive() with http.disconnect).
            watcher = asyncio.ensure_future(_until_disconnected(receive))
            watcher.add_done_callback(lambda _: self._hub.end(queue))
            try:
                while (message := await queue.get()) is not None:
                    await raw(message)
                await raw({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                watcher.cancel()
        finally:
            self._hub.unsubscribe(self._project_id, queue)


class PostgresListener:
    """A thread that LISTENs for changes from other processes and hands their payloads on.

    After a lost connection it reconnects and calls ``on_reconnect`` (notifications sent meanwhile are gone,
    so every snapshot must be rebuilt).
    """

    def __init__(self, conninfo: str, on_payload: Callable[[str], None], on_reconnect: Callable[[], None]) -> None:
        self._conninfo = conninfo
        self._on_payload = on_payload
        self._on_reconnect = on_reconnect
        self._stop = threading.Event()
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="setpoint-pg-listener", daemon=True)

    def start(self) -> None:
        """Start listening; returns once the first LISTEN is in place (or after 3 s: it keeps retrying)."""
        self._thread.start()
        self.ready.wait(3)

    def stop(self) -> None:
        """Stop listening and wait for the thread."""
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        first = True
        delay = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    if not first:
                        self._on_reconnect()
                    first, delay = False, 0.5
                    self.ready.set()
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=0.5):
                            self._handle(notify.payload)
            except psycopg.Error as exc:
                log.warning("PostgreSQL listener lost its connection (%s); reconnecting in %.1fs", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def _handle(self, payload: str) -> None:
        try:
            self._on_payload(payload)
        except Exception:  # a bad payload must not stop the listener
            log.exception("could not handle change notification %r", payload)


class AuditWatcher:
    """For SQLite, where there is no NOTIFY: a thread that polls about once a second for what other processes
    changed: the change notifications they committed (handed to ``on_payload``, which skips this process's own)
    and the audit history (``on_entry``: e.g. ``setpoint keys revoke`` from the command line)."""

    PRUNE_EVERY = 60
    """Polls between two prunings of the notifications table."""
    KEEP_NOTIFICATIONS = 10_000

    def __init__(
        self,
        storage: Storage,
        on_entry: Callable[[AuditEntry], None],
        interval: float = 1.0,
        on_payload: Callable[[str], None] | None = None,
    ) -> None:
        self._storage = storage
        self._on_entry = on_entry
        self._on_payload = on_payload
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="setpoint-audit-watcher", daemon=True)
        self._last = 0
        self._last_notification = 0

    def start(self) -> None:
        """Start polling from the current newest entry."""
        try:
            with self._storage.read() as tx:
                self._last = tx.last_audit_id()
                self._last_notification = tx.last_notification_id()
        except Exception as exc:  # e.g. not migrated yet: /readyz reports it, the server still answers
            log.warning("cannot read the audit history yet (%s); watching from the start", exc)
            self._last = self._last_notification = 0
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        failing = False
        polls = 0
        while not self._stop.wait(self._interval):
            try:
                with self._storage.read() as tx:
                    entries = tx.audit_since(self._last)
                    notifications = tx.notifications_since(self._last_notification) if self._on_payload else []
                polls += 1
                if polls % self.PRUNE_EVERY == 0:
                    with self._storage.write() as wtx:
                        wtx.prune_notifications(self.KEEP_NOTIFICATIONS)
            except Exception as exc:
                if not failing:
                    log.warning("could not poll the audit history (%s); retrying every %.1fs", exc, self._interval)
                failing = True
                continue
            failing = False
            for entry in entries:
                self._last = entry.id
                try:
                    self._on_entry(entry)
                except Exception:
                    log.exception("could not apply audit entry %s", entry.id)
            for notification_id, payload in notifications:
                self._last_notification = notification_id
                try:
                    assert self._on_payload is not None
                    self._on_payload(payload)
                except Exception:
                    log.exception("could not apply change notification %r", payload)
