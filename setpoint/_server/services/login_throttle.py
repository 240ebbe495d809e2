"""Login throttling: growing delays after failed logins, per account and per client address.

Callers (the login view; later every way a person logs in with a password) use three functions, keyed by
the account name as typed and the client address (the proxy's ``X-Forwarded-For`` when the request came
through a proxy in ``--forwarded-allow-ips``):

- :func:`retry_after` before checking a password: seconds to wait (0: go ahead). While it is positive
  the password is not checked at all, right or wrong.
- :func:`failed` after a wrong password: records the failure in the audit and returns the delay now
  imposed.
- :func:`succeeded` after a right one: clears the account's failures (not the address's).

An account gets :data:`ACCOUNT_FREE_FAILURES` failures, an address :data:`ADDRESS_FREE_FAILURES` (many
people may share one address), then each further failure doubles the delay from :data:`BASE_DELAY` up to
:data:`MAX_DELAY`. Failures are forgotten :data:`FORGET_AFTER` seconds after the last one. The audit
records every failed login and, once per delay, a throttled attempt (``entity_type`` ``login``, no project).

The counts live in the memory of each server process (bounded); with several processes behind a load
balancer each throttles on its own, so an attacker gets at most that many times the attempts.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from setpoint._server.services.context import ServiceContext

ACCOUNT_FREE_FAILURES = 5
"""Failed logins of one account before delays start."""
ADDRESS_FREE_FAILURES = 20
"""Failed logins from one client address (any accounts) before delays start."""
BASE_DELAY = 1.0
"""Seconds of the first delay; each further failure doubles it."""
MAX_DELAY = 15 * 60.0
"""The longest delay, in seconds."""
FORGET_AFTER = 60 * 60.0
"""Seconds after its last failure that an account's or address's failures are forgotten."""
MAX_TRACKED = 100_000
"""Accounts and addresses tracked at most (expired ones are dropped first, then the oldest)."""


@dataclass
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    blocked_until: float = 0.0
    announced_until: float = 0.0  # the delay whose throttled attempts are already in the audit


class LoginThrottle:
    """The failure counts of one server process (thread-safe, no I/O)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(account: str, address: str) -> tuple[tuple[str, int], tuple[str, int]]:
        return (f"account:{account.strip().casefold()}", ACCOUNT_FREE_FAILURES), (
            f"address:{address}",
            ADDRESS_FREE_FAILURES,
        )

    def _live(self, key: str, now: float) -> _Record | None:
        record = self._records.get(key)
        if record is not None and now - record.last_failure > FORGET_AFTER and now >= record.blocked_until:
            del self._records[key]
            return None
        return record

    def retry_after(self, account: str, address: str) -> float:
        """Seconds until ``account`` may try again from ``address`` (0: now)."""
        now = self._clock()
        with self._lock:
            waits = [r.blocked_until - now for k, _ in self._keys(account, address) if (r := self._live(k, now))]
        return max([0.0, *waits])

    def announce(self, account: str, address: str) -> bool:
        """Whether a throttled attempt is the first of its delay (so worth one audit entry)."""
        now = self._clock()
        first = False
        with self._lock:
            for key, _ in self._keys(account, address):
                record = self._live(key, now)
                if record is not None and record.blocked_until > now and record.announced_until < record.blocked_until:
                    record.announced_until = record.blocked_until
                    first = True
        return first

    def failure(self, account: str, address: str) -> tuple[float, int, int]:
        """Count a failed login; the delay it imposes now, and the account's and address's failure counts."""
        now = self._clock()
        delay = 0.0
        counts: list[int] = []
        with self._lock:
            if len(self._records) >= MAX_TRACKED:
                self._prune(now)
            for key, free in self._keys(account, address):
                record = self._live(key, now) or self._records.setdefault(key, _Record())
                record.failures += 1
                record.last_failure = now
                counts.append(record.failures)
                if record.failures >= free:
                    wait = min(MAX_DELAY, BASE_DELAY * 2 ** min(record.failures - free, 32))
                    record.blocked_until = max(record.blocked_until, now + wait)
                delay = max(delay, record.blocked_until - now)
        return delay, counts[0], counts[1]

    def success(self, account: str, address: str) -> None:
        """Forget the account's failures."""
        (account_key, _), _ = self._keys(account, address)
        with self._lock:
            self._records.pop(account_key, None)

    def _prune(self, now: float) -> None:
        for key in [k for k, r in self._records.items() if now - r.last_failure > FORGET_AFTER]:
            del self._records[key]
        if len(self._records) >= MAX_TRACKED:
            oldest = sorted(self._records, key=lambda k: self._records[k].last_failure)
            for key in oldest[: len(oldest) // 2]:
                del self._records[key]


def seconds(delay: float) -> int:
    """A delay as the whole seconds of a ``Retry-After`` header (rounded up, at least 1)."""
    return max(1, math.ceil(delay))


def _audit(ctx: ServiceContext, action: str, account: str, address: str, details: dict[str, object]) -> None:
    name = account.strip()[:200]
    with ctx.storage.write() as tx:
        person = tx.get_admin_user(name) or tx.get_admin_user(name.lower())  # so the person's audit shows it
        user_id = person.id if person is not None else None
        tx.add_audit(None, f"address:{address}"[:200], action, "login", name, None, details, user_id=user_id)


def retry_after(ctx: ServiceContext, throttle: LoginThrottle, account: str, address: str) -> float:
    """Seconds the caller must wait before a password is checked (0: check it). The first refused attempt
    of each delay is recorded in the audit (action ``login_throttled``). Blocking (database)."""
    wait = throttle.retry_after(account, address)
    if wait > 0 and throttle.announce(account, address):
        _audit(ctx, "login_throttled", account, address, {"address": address, "retry_after": seconds(wait)})
    return wait


def failed(ctx: ServiceContext, throttle: LoginThrottle, account: str, address: str) -> float:
    """Record a failed login (audit action ``login_failed``); the delay imposed from now. Blocking."""
    delay, account_failures, address_failures = throttle.failure(account, address)
    details: dict[str, object] = {
        "address": address,
        "account_failures": account_failures,
        "address_failures": address_failures,
        "retry_after": seconds(delay) if delay > 0 else 0,
    }
    _audit(ctx, "login_failed", account, address, details)
    return delay


def succeeded(throttle: LoginThrottle, account: str, address: str) -> None:
    """A right password: the account's failures are forgotten."""
    throttle.success(account, address)
