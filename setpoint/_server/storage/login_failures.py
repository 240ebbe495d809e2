"""Failed-login counts in the database (SQLite and PostgreSQL, one implementation), so that login throttling
holds across every process on one database (``--workers N``, several servers behind a load balancer).

One row per key (``account:<name>`` or ``address:<ip>``), read by primary key; a row expires
``forget_after`` after its last failure (index on ``expires_at``: expired rows are deleted after the next
failure). A failure is counted with one upsert that returns the new count, so concurrent failures in several
processes all count; the block it imposes is written in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from setpoint._server.storage import schema as t


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class FailureCount:
    """A key's failures after one more, and until when it is blocked (maybe the past: not blocked)."""

    key: str
    failures: int
    blocked_until: datetime


class LoginFailureStore:
    """Failed-login rows over the server's SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    def _insert(self) -> Any:
        table = t.login_failures
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)

    def blocked_until(self, keys: Sequence[str], now: datetime) -> datetime | None:
        """The latest block of the live rows of ``keys`` (None: no live row)."""
        c = t.login_failures.c
        query = sa.select(sa.func.max(c.blocked_until)).where(c.key.in_(list(keys)), c.expires_at > _utc(now))
        with self.engine.connect() as conn:
            found = conn.execute(query).scalar_one_or_none()
        return _utc(found) if found is not None else None

    def announce(self, keys: Sequence[str], now: datetime) -> bool:
        """Mark the current blocks of ``keys`` as announced; whether any was not yet (in any process)."""
        c = t.login_failures.c
        statement = (
            sa.update(t.login_failures)
            .where(c.key.in_(list(keys)), c.expires_at > _utc(now), c.blocked_until > _utc(now))
            .where(c.announced_until < c.blocked_until)
            .values(announced_until=c.blocked_until)
        )
        with self.engine.connect() as conn:
            conn.execution_options(setpoint_write=True)
            with conn.begin():
                return (conn.execute(statement).rowcount or 0) > 0

    def fail(
        self, keys: Sequence[str], now: datetime, forget_after: timedelta, block: Callable[[str, int], timedelta]
    ) -> list[FailureCount]:
        """Count one failure for each of ``keys`` (a row past its expiry starts again from 1); ``block(key,
        failures)`` is the delay the new count imposes from ``now`` (a block never shortens). Then expired rows
        of any key are deleted."""
        c = t.login_failures.c
        now = _utc(now)
        expired = c.expires_at <= now
        found: list[FailureCount] = []
        with self.engine.connect() as conn:
            conn.execution_options(setpoint_write=True)
            with conn.begin():
                for key in keys:  # always in the callers' order (account, then address): no lock cycles
                    insert = self._insert().values(
                        key=key,
                        failures=1,
                        last_failure=now,
                        blocked_until=now,
                        announced_until=now,
                        expires_at=now + forget_after,
                    )
                    upsert = insert.on_conflict_do_update(
                        index_elements=["key"],
                        set_={
                            "failures": sa.case((expired, 1), else_=c.failures + 1),
                            "blocked_until": sa.case((expired, now), else_=c.blocked_until),
                            "announced_until": sa.case((expired, now), else_=c.announced_until),
                            "last_failure": now,
                            "expires_at": now + forget_after,
                        },
                    ).returning(c.failures, c.blocked_until)
                    row = conn.execute(upsert).one()
                    failures, blocked = int(row[0]), _utc(row[1])
                    wait = block(key, failures)
                    if wait > timedelta(0) and now + wait > blocked:
                        blocked = now + wait
                        conn.execute(
                            sa.update(t.login_failures)
                            .where(c.key == key)
                            .values(blocked_until=blocked, expires_at=max(now + forget_after, blocked))
                        )
                    found.append(FailureCount(key, failures, blocked))
            # Expired rows of other keys, in a transaction of its own that waits for no other: rows another
            # process is counting are skipped (PostgreSQL; SQLite runs one write at a time).
            with conn.begin():
                stale = sa.select(c.key).where(c.expires_at <= now).with_for_update(skip_locked=True)
                conn.execute(sa.delete(t.login_failures).where(c.key.in_(stale)))
        return found

    def forget(self, key: str) -> None:
        """Delete ``key``'s failures."""
        with self.engine.connect() as conn:
            conn.execution_options(setpoint_write=True)
            with conn.begin():
                conn.execute(sa.delete(t.login_failures).where(t.login_failures.c.key == key))
