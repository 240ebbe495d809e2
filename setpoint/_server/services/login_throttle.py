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

The counts live in the database (``storage/login_failures.py``: a row per account and per address, expiring),
so every server process on one database (``--workers N``, several servers behind a load balancer) throttles
together: an attacker gets the same number of attempts whichever process answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from setpoint._server.services.context import ServiceContext
from setpoint._server.storage.login_failures import LoginFailureStore

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


def _now() -> datetime:
    return datetime.now(UTC)


def _keys(account: str, address: str) -> tuple[str, str]:
    """The account's key and the address's key, in the order every process counts them."""
    return f"account:{account.strip().casefold()}"[:300], f"address:{address}"[:300]


def _delay(key: str, failures: int) -> timedelta:
    """The wait ``failures`` failures of ``key`` impose: none while free, then doubling up to `MAX_DELAY`."""
    free = ACCOUNT_FREE_FAILURES if key.startswith("account:") else ADDRESS_FREE_FAILURES
    if failures < free:
        return timedelta(0)
    return timedelta(seconds=min(MAX_DELAY, BASE_DELAY * 2 ** min(failures - free, 32)))


class LoginThrottle:
    """Failure counts shared through the database by every server process (blocking: call from a worker)."""

    def __init__(self, store: LoginFailureStore, clock: Callable[[], datetime] = _now) -> None:
        self._store = store
        self._clock = clock

    def retry_after(self, account: str, address: str) -> float:
        """Seconds until ``account`` may try again from ``address`` (0: now)."""
        now = self._clock()
        blocked = self._store.blocked_until(_keys(account, address), now)
        return max(0.0, (blocked - now).total_seconds()) if blocked is not None else 0.0

    def announce(self, account: str, address: str) -> bool:
        """Whether a throttled attempt is the first of its delay in any process (so worth one audit entry)."""
        return self._store.announce(_keys(account, address), self._clock())

    def failure(self, account: str, address: str) -> tuple[float, int, int]:
        """Count a failed login; the delay it imposes now, and the account's and address's failure counts."""
        now = self._clock()
        counted = self._store.fail(_keys(account, address), now, timedelta(seconds=FORGET_AFTER), _delay)
        delay = max(0.0, *((c.blocked_until - now).total_seconds() for c in counted))
        return delay, counted[0].failures, counted[1].failures

    def success(self, account: str, address: str) -> None:
        """Forget the account's failures."""
        self._store.forget(_keys(account, address)[0])


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
    """A right password: the account's failures are forgotten. Blocking."""
    throttle.success(account, address)
