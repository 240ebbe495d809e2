"""The delivery worker: a thread per server process that claims due deliveries and sends them.

- Woken at once after a commit that queued deliveries (:func:`wake_all`, registered by ``enqueue`` with
  ``WriteTx.after_commit``), else it polls every ``poll_interval`` (deliveries queued by other processes,
  retries coming due).
- Sends on a small thread pool, so one hanging receiver (bounded by ``timeout``: connect 5 s, the whole
  attempt ``timeout`` s) does not hold up the others; the claim's lease outlasts the attempt.
- Each attempt checks the URL again (every resolved address public, unless allowed) and connects to the
  address it checked; redirects are not followed (a 3xx is a failed attempt).
- A failed attempt is retried with exponential backoff and jitter (``retry_base`` * 2^(attempt-1), at most
  ``max_delay``, times 0.75-1.25) until ``retry_window`` after the event, then the delivery is ``failed``.
- Finished log rows older than ``log_days`` are pruned about once an hour.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from setpoint._server.services.webhooks import events, signing, targets
from setpoint._server.storage import Storage
from setpoint._server.storage import webhooks as store
from setpoint._server.storage.webhooks import Claimed, Finished

log = logging.getLogger("setpoint.webhooks")

MAX_RESPONSE_BODY = 2000
"""Characters of a receiver's answer kept in the log."""
USER_AGENT = "Setpoint-Webhooks/1"

_workers: weakref.WeakSet[DeliveryWorker] = weakref.WeakSet()
_workers_lock = threading.Lock()


def wake_all() -> None:
    """Wake every delivery worker of this process (called after a commit that queued deliveries)."""
    with _workers_lock:
        workers = list(_workers)
    for worker in workers:
        worker.wake()


@dataclass(frozen=True)
class WorkerOptions:
    """How deliveries are made (``Settings`` fills these from ``SETPOINT_WEBHOOKS_*``)."""

    allow_private: bool = False
    timeout: float = 10.0
    connect_timeout: float = 5.0
    retry_base: float = 5.0
    max_delay: float = 3600.0
    retry_window: float = 24 * 3600.0
    log_days: int = 30
    poll_interval: float = 1.0
    concurrency: int = 4


@dataclass(frozen=True)
class Outcome:
    """What one attempt got."""

    ok: bool
    status: int | None
    ms: int | None
    body: str | None
    error: str | None
    permanent: bool = False


def backoff(attempt: int, options: WorkerOptions, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): exponential, capped, jittered."""
    delay = min(options.retry_base * 2 ** min(attempt - 1, 40), options.max_delay)
    return float(delay * (0.75 + 0.5 * rand()))


def make_client(options: WorkerOptions) -> httpx.Client:
    """The HTTP client of a worker (one per worker: building TLS contexts per attempt would cost more than the
    attempt): no redirects, no proxies from the environment, short timeouts."""
    timeout = httpx.Timeout(options.timeout, connect=min(options.connect_timeout, options.timeout))
    return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)


def send(claimed: Claimed, options: WorkerOptions, now: datetime, client: httpx.Client | None = None) -> Outcome:
    """Make one attempt: check the target, sign, POST, read at most a bounded answer within the timeout."""
    webhook, delivery = claimed.webhook, claimed.delivery
    try:
        target = targets.check(webhook.url, allow_private=options.allow_private)
    except targets.RefusedTargetError as exc:
        return Outcome(False, None, None, None, f"refused: {exc.message}", permanent=True)
    timestamp = int(now.timestamp())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **signing.headers(webhook.secret, delivery.event_id, timestamp, delivery.body),
    }
    url = httpx.URL(target.url)
    extensions: dict[str, str] = {}
    if target.addresses:  # connect to the checked address; keep the name for Host and TLS
        headers["host"] = url.netloc.decode("ascii")
        # Pooled connections are kept per address: never let another host name's request ride on this one.
        headers["connection"] = "close"
        if target.scheme == "https":
            extensions["sni_hostname"] = target.host
        url = url.copy_with(host=target.addresses[0])
    own = client is None
    http = make_client(options) if client is None else client
    started = time.monotonic()
    deadline = started + options.timeout
    try:
        with http.stream("POST", url, content=delivery.body.encode(), headers=headers, extensions=extensions) as resp:
            chunks: list[bytes] = []
            size = 0
            for chunk in resp.iter_bytes():
                if size < MAX_RESPONSE_BODY * 4:
                    chunks.append(chunk)
                    size += len(chunk)
                if time.monotonic() > deadline:
                    break
            ms = int((time.monotonic() - started) * 1000)
            text = b"".join(chunks).decode("utf-8", "replace")[:MAX_RESPONSE_BODY]
            if time.monotonic() > deadline:
                return Outcome(False, resp.status_code, ms, text, f"timed out after {options.timeout:g} s")
            if 200 <= resp.status_code < 300:
                return Outcome(True, resp.status_code, ms, text, None)
            return Outcome(False, resp.status_code, ms, text, f"the receiver answered HTTP {resp.status_code}")
    except httpx.TimeoutException:
        ms = int((time.monotonic() - started) * 1000)
        return Outcome(False, None, ms, None, f"timed out after {options.timeout:g} s")
    except httpx.HTTPError as exc:
        ms = int((time.monotonic() - started) * 1000)
        return Outcome(False, None, ms, None, f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__)
    finally:
        if own:
            http.close()


class DeliveryWorker:
    """Delivers this process's share of the due webhook deliveries (see the module docstring)."""

    def __init__(
        self,
        storage: Storage,
        options: WorkerOptions,
        clock: Callable[[], datetime],
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._store = storage.webhooks
        self.options = options
        self._clock = clock
        self._rand = rand
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="setpoint-webhook")
        self._client = make_client(options)
        self._finished: list[Finished] = []
        self._finished_lock = threading.Lock()
        self._inflight: set[Future[None]] = set()
        self._thread = threading.Thread(target=self._run, name="setpoint-webhooks", daemon=True)
        self._next_prune = 0.0

    def start(self) -> None:
        """Start delivering (and listen for :func:`wake_all`)."""
        with _workers_lock:
            _workers.add(self)
        self._thread.start()

    def wake(self) -> None:
        """Look for due deliveries now."""
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; wait for the attempts under way (each bounded by the timeout)."""
        with _workers_lock:
            _workers.discard(self)
        self._stop.set()
        self._wake.set()
        self._thread.join(self.options.timeout + 5)
        self.close()
        try:
            self._record()
        except Exception as exc:  # their leases end and they are attempted again
            log.warning("could not record %d webhook attempts at shutdown (%s)", len(self._finished), exc)

    def close(self) -> None:
        """Finish the attempts under way and close the HTTP client (``stop`` does this too)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            self._wake.clear()
            self._inflight = {f for f in self._inflight if not f.done()}
            free = self.options.concurrency - len(self._inflight)
            claimed: list[Claimed] = []
            try:
                self._record()
                if free > 0:
                    claimed = self._claim(free)
                self._maybe_prune()
                failing = False
            except Exception as exc:  # the database is away: keep trying
                if not failing:
                    log.warning("webhook worker cannot reach the database (%s); retrying", exc)
                failing = True
            for item in claimed:
                future = self._pool.submit(self._attempt, item)
                future.add_done_callback(lambda _: self._wake.set())
                self._inflight.add(future)
            if claimed and len(claimed) == free:
                continue  # there may be more due
            self._wake.wait(self.options.poll_interval)

    def _claim(self, limit: int) -> list[Claimed]:
        now = self._clock()
        if not self._store.has_due(now):
            return []
        lease = now + timedelta(seconds=self.options.timeout + 60)
        return self._store.claim(now, lease, limit)

    def _maybe_prune(self) -> None:
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + 3600
        pruned = self._store.prune(self._clock() - timedelta(days=self.options.log_days))
        if pruned:
            log.info("pruned %d webhook deliveries older than %d days", pruned, self.options.log_days)

    def _attempt(self, claimed: Claimed) -> None:
        try:
            finished = self.outcome(claimed)
        except Exception:  # the lease ends and another attempt follows
            log.exception("webhook delivery %s failed unexpectedly", claimed.delivery.id)
            return
        with self._finished_lock:
            self._finished.append(finished)

    def _record(self) -> None:
        """Record the outcomes the senders finished since the last time, in one transaction."""
        with self._finished_lock:
            batch, self._finished = self._finished, []
        try:
            self._store.finish(batch)
        except Exception:
            with self._finished_lock:  # try again on the next round (the leases outlast a short outage)
                self._finished[:0] = batch
            raise

    def attempt(self, claimed: Claimed) -> str:
        """Make one attempt of a claimed delivery and record its outcome; returns the new status."""
        finished = self.outcome(claimed)
        self._store.finish([finished])
        return finished.status

    def outcome(self, claimed: Claimed) -> Finished:
        """Make one attempt of a claimed delivery; what to record (the new status, the next attempt's time)."""
        delivery, webhook = claimed.delivery, claimed.webhook
        now = self._clock()
        if not webhook.enabled and delivery.event_type != events.TEST_EVENT:
            outcome = Outcome(False, None, None, None, "the webhook is disabled", permanent=True)
        else:
            outcome = send(claimed, self.options, now, self._client)
        attempted = self._clock()
        next_at: datetime | None = None
        if outcome.ok:
            status = store.DELIVERED
        elif outcome.permanent:
            status = store.FAILED
        else:
            next_at = attempted + timedelta(seconds=backoff(delivery.attempts, self.options, self._rand))
            give_up = delivery.created_at + timedelta(seconds=self.options.retry_window)
            status = store.RETRYING if next_at <= give_up else store.FAILED
            if status == store.FAILED:
                next_at = None
        return Finished(
            delivery.id,
            status=status,
            attempted_at=attempted,
            next_attempt_at=next_at,
            response_status=outcome.status,
            response_ms=outcome.ms,
            response_body=outcome.body,
            error=outcome.error,
        )
