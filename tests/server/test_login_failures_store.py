"""Login throttling's failure counts in the database, on SQLite and PostgreSQL: delays grow per account and per
address, a throttled attempt is announced once per delay whichever process sees it, failures are forgotten
after `FORGET_AFTER` (and their rows deleted), a success forgets the account only, and failures counted at
once by several processes (each its own engine) all count."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from setpoint._server.services import login_throttle
from setpoint._server.services.login_throttle import ACCOUNT_FREE_FAILURES, FORGET_AFTER, LoginThrottle
from setpoint._server.storage import Storage, open_storage
from setpoint._server.storage import schema as t
from setpoint._server.storage.sql import SqlStorage
from tests.server.conftest import BACKENDS

pytestmark = pytest.mark.parametrize("storage", BACKENDS, indirect=True)

START = datetime(2001, 1, 1, 12, 0, tzinfo=UTC)
"""Long ago: expiring this test's rows deletes no row of a real-time test on the shared database."""


class Clock:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def other_process(storage: Storage) -> Iterator[Storage]:
    """A second storage (its own engine and connections) on the same database, as another process has."""
    assert isinstance(storage, SqlStorage)
    other = open_storage(storage.engine.url.render_as_string(hide_password=False))
    try:
        yield other
    finally:
        other.dispose()


@pytest.fixture
def tag() -> str:
    """Makes this test's accounts and addresses its own (the PostgreSQL database is shared by the session)."""
    return uuid.uuid4().hex[:8]


def _rows(storage: Storage, tag: str) -> dict[str, int]:
    """The failure rows of this test's keys, without the tag."""
    assert isinstance(storage, SqlStorage)
    c = t.login_failures.c
    with storage.engine.connect() as conn:
        rows = conn.execute(sa.select(c.key, c.failures).where(c.key.contains(tag)))
        return {row.key.replace(tag, ""): row.failures for row in rows}


def test_delays_grow_and_every_process_sees_them(storage: Storage, other_process: Storage, tag: str) -> None:
    clock = Clock()
    first = LoginThrottle(storage.login_failures, clock)
    second = LoginThrottle(other_process.login_failures, clock)
    for attempt in range(1, ACCOUNT_FREE_FAILURES + 1):
        throttle = first if attempt % 2 else second  # alternating, as behind a load balancer
        delay, account_failures, address_failures = throttle.failure(f" Admin{tag} ", f"10.0.0.1{tag}")
        assert (account_failures, address_failures) == (attempt, attempt)
        assert delay == (1.0 if attempt == ACCOUNT_FREE_FAILURES else 0.0)
    assert (
        first.retry_after(f"admin{tag}", f"10.0.0.2{tag}") == second.retry_after(f"ADMIN{tag}", f"10.0.0.3{tag}") == 1.0
    )
    assert first.retry_after(f"someone{tag}", f"10.0.0.1{tag}") == 0.0  # the address has 15 free failures left
    # One audit-worthy throttled attempt per delay, whichever process refuses it.
    assert first.announce(f"admin{tag}", f"10.0.0.1{tag}") is True
    assert second.announce(f"admin{tag}", f"10.0.0.1{tag}") is False
    clock.advance(0.5)
    assert second.retry_after(f"admin{tag}", f"10.0.0.9{tag}") == 0.5
    clock.advance(0.6)
    assert first.retry_after(f"admin{tag}", f"10.0.0.1{tag}") == 0.0
    assert second.failure(f"admin{tag}", f"10.0.0.1{tag}")[0] == 2.0  # the delay doubles
    assert second.announce(f"admin{tag}", f"10.0.0.1{tag}") is True  # a new delay: announced again
    assert first.failure(f"admin{tag}", f"10.0.0.1{tag}")[0] == 4.0
    first.success(f"admin{tag}", f"10.0.0.1{tag}")  # the account is forgotten, the address is not
    assert second.retry_after(f"admin{tag}", f"10.0.0.2{tag}") == 0.0
    assert _rows(storage, tag) == {"address:10.0.0.1": ACCOUNT_FREE_FAILURES + 2}


def test_failures_are_forgotten_after_an_hour(storage: Storage, tag: str) -> None:
    clock = Clock()
    throttle = LoginThrottle(storage.login_failures, clock)
    for _ in range(ACCOUNT_FREE_FAILURES + 3):
        throttle.failure(f"ada{tag}", f"10.0.0.1{tag}")
    throttle.failure(f"bob{tag}", f"10.0.0.2{tag}")
    assert throttle.retry_after(f"ada{tag}", f"10.0.0.5{tag}") == 8.0
    clock.advance(FORGET_AFTER - 1)
    throttle.failure(f"bob{tag}", f"10.0.0.2{tag}")  # bob's rows are recent: they live on
    assert _rows(storage, tag)["account:ada"] == ACCOUNT_FREE_FAILURES + 3
    clock.advance(2)
    assert throttle.retry_after(f"ada{tag}", f"10.0.0.5{tag}") == 0.0
    assert throttle.failure(f"ada{tag}", f"10.0.0.3{tag}")[1] == 1  # counted again from 1
    # ada's old address row expired and was deleted by that failure; bob's rows were not.
    assert _rows(storage, tag) == {"account:ada": 1, "address:10.0.0.3": 1, "account:bob": 2, "address:10.0.0.2": 2}
    assert login_throttle.MAX_DELAY < FORGET_AFTER  # a block always ends before its row expires


def test_concurrent_failures_in_several_processes_all_count(storage: Storage, other_process: Storage, tag: str) -> None:
    throttles = [LoginThrottle(store.login_failures) for store in (storage, other_process)]
    counts: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def fail(throttle: LoginThrottle) -> None:
        try:
            for _ in range(10):
                _, account, address = throttle.failure(f"target{tag}", f"10.9.9.9{tag}")
                with lock:
                    counts.append((account, address))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=fail, args=(throttles[n % 2],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # Each failure saw its own count: none was lost or counted twice.
    assert sorted(account for account, _ in counts) == list(range(1, 41))
    assert sorted(address for _, address in counts) == list(range(1, 41))
