"""Storage of webhooks and their deliveries (SQLite and PostgreSQL, one implementation).

A delivery row is the outbox entry and the log line at once. Rows are inserted by :func:`insert_deliveries`
inside the write transaction of the change that caused them (``audit.record``), so a rolled-back change sends
nothing and a committed one is never lost. Delivery workers :meth:`WebhookStore.claim` due rows: the claim
marks them ``sending`` with a lease (``next_attempt_at`` in the future) in one short transaction that selects
with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite's writers are serialised by ``BEGIN IMMEDIATE``), so two
server processes never claim one row twice; a process that dies while sending leaves the row to be claimed
again when its lease ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from setpoint._server.storage import schema as t

if TYPE_CHECKING:
    from setpoint._server.storage.base import ReadTx

PENDING = "pending"
SENDING = "sending"
RETRYING = "retrying"
DELIVERED = "delivered"
FAILED = "failed"
OPEN_STATES = (PENDING, SENDING, RETRYING)
"""States of a delivery that a worker may still claim (``sending`` only once its lease ran out)."""
FINAL_STATES = (DELIVERED, FAILED)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


@dataclass(frozen=True)
class Webhook:
    """One webhook of a project."""

    id: int
    project_id: int
    url: str
    description: str
    events: tuple[str, ...]
    secret: str
    format: str
    enabled: bool
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Delivery:
    """One delivery of one event to one webhook: its state and the last attempt's outcome."""

    id: int
    webhook_id: int
    event_id: str
    event_type: str
    body: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    response_status: int | None
    response_ms: int | None
    response_body: str | None
    error: str | None
    redelivery_of: int | None


@dataclass(frozen=True)
class Subscription:
    """What the outbox needs to know about one enabled webhook of the project being changed."""

    webhook_id: int
    events: frozenset[str]
    format: str
    project_name: str


def _webhook(row: Any) -> Webhook:
    return Webhook(
        id=row.id,
        project_id=row.project_id,
        url=row.url,
        description=row.description,
        events=tuple(json.loads(row.events)),
        secret=row.secret,
        format=row.format,
        enabled=bool(row.enabled),
        created_by=row.created_by,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )


def _delivery(row: Any) -> Delivery:
    d = t.webhook_deliveries.c
    m = row._mapping  # by column: a claim selects the webhook's columns too (same names: id, created_at)
    return Delivery(
        id=m[d.id],
        webhook_id=m[d.webhook_id],
        event_id=m[d.event_id],
        event_type=m[d.event_type],
        body=m[d.body],
        status=m[d.status],
        attempts=m[d.attempts],
        created_at=_utc(m[d.created_at]),
        next_attempt_at=_opt_utc(m[d.next_attempt_at]),
        last_attempt_at=_opt_utc(m[d.last_attempt_at]),
        response_status=m[d.response_status],
        response_ms=m[d.response_ms],
        response_body=m[d.response_body],
        error=m[d.error],
        redelivery_of=m[d.redelivery_of],
    )


def connection(tx: ReadTx) -> Connection:
    """The SQLAlchemy connection under a storage transaction (webhook storage runs inside the caller's)."""
    from setpoint._server.storage.sql_read import SqlReadTx

    if not isinstance(tx, SqlReadTx):  # pragma: no cover - there is one storage implementation
        raise TypeError(f"webhooks need the SQL storage, not {type(tx).__name__}")
    return tx.conn


# --- configuration (inside the caller's transaction, so changes are audited atomically) ----------------------


def list_webhooks(conn: Connection, project_id: int) -> list[Webhook]:
    """A project's webhooks, oldest first."""
    w = t.webhooks.c
    rows = conn.execute(sa.select(t.webhooks).where(w.project_id == project_id).order_by(w.id))
    return [_webhook(r) for r in rows]


def get_webhook(conn: Connection, project_id: int, webhook_id: int, *, lock: bool = False) -> Webhook | None:
    """One webhook of a project (None when it does not exist there); ``lock``: FOR UPDATE on PostgreSQL."""
    w = t.webhooks.c
    query = sa.select(t.webhooks).where(w.project_id == project_id, w.id == webhook_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else _webhook(row)


def insert_webhook(
    conn: Connection,
    project_id: int,
    *,
    url: str,
    description: str,
    events: Sequence[str],
    secret: str,
    format: str,
    enabled: bool,
    created_by: str,
    now: datetime,
) -> Webhook:
    """Store a new webhook."""
    values = {
        "project_id": project_id,
        "url": url,
        "description": description,
        "events": json.dumps(list(events)),
        "secret": secret,
        "format": format,
        "enabled": enabled,
        "created_by": created_by,
        "created_at": now,
        "updated_at": now,
    }
    new_id = conn.execute(sa.insert(t.webhooks).values(**values).returning(t.webhooks.c.id)).scalar_one()
    found = get_webhook(conn, project_id, int(new_id))
    assert found is not None
    return found


def update_webhook(conn: Connection, webhook: Webhook, now: datetime, **changes: Any) -> Webhook:
    """Change some fields of a webhook (``events`` as a sequence)."""
    if "events" in changes:
        changes["events"] = json.dumps(list(changes["events"]))
    conn.execute(sa.update(t.webhooks).where(t.webhooks.c.id == webhook.id).values(**changes, updated_at=now))
    found = get_webhook(conn, webhook.project_id, webhook.id)
    assert found is not None
    return found


def delete_webhook(conn: Connection, webhook: Webhook) -> None:
    """Delete a webhook and its delivery log."""
    conn.execute(sa.delete(t.webhook_deliveries).where(t.webhook_deliveries.c.webhook_id == webhook.id))
    conn.execute(sa.delete(t.webhooks).where(t.webhooks.c.id == webhook.id))


# --- the outbox -------------------------------------------------------------------------------------------------


def subscriptions(conn: Connection, project_id: int) -> list[Subscription]:
    """The project's enabled webhooks (one indexed read; every write of a project makes it once)."""
    w = t.webhooks.c
    query = (
        sa.select(w.id, w.events, w.format, t.projects.c.name)
        .join(t.projects, t.projects.c.id == w.project_id)
        .where(w.project_id == project_id, w.enabled.is_(True))
    )
    return [Subscription(r.id, frozenset(json.loads(r.events)), r.format, r.name) for r in conn.execute(query)]


def insert_deliveries(conn: Connection, rows: Iterable[tuple[int, str, str, str]], now: datetime) -> int:
    """Queue deliveries ``(webhook id, event id, event type, body)``, due at once. Returns how many."""
    values = [
        {
            "webhook_id": webhook_id,
            "event_id": event_id,
            "event_type": event_type,
            "body": body,
            "status": PENDING,
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        }
        for webhook_id, event_id, event_type, body in rows
    ]
    if values:
        conn.execute(sa.insert(t.webhook_deliveries), values)
    return len(values)


def list_deliveries(
    conn: Connection, webhook_id: int, *, limit: int = 50, before_id: int | None = None
) -> list[Delivery]:
    """A webhook's deliveries, newest first (``before_id``: the page after that delivery)."""
    d = t.webhook_deliveries.c
    query = sa.select(t.webhook_deliveries).where(d.webhook_id == webhook_id)
    if before_id is not None:
        query = query.where(d.id < before_id)
    return [_delivery(r) for r in conn.execute(query.order_by(d.id.desc()).limit(limit))]


def get_delivery(conn: Connection, webhook_id: int, delivery_id: int) -> Delivery | None:
    """One delivery of a webhook."""
    d = t.webhook_deliveries.c
    row = conn.execute(sa.select(t.webhook_deliveries).where(d.webhook_id == webhook_id, d.id == delivery_id)).first()
    return None if row is None else _delivery(row)


def redeliver(conn: Connection, delivery: Delivery, now: datetime) -> Delivery:
    """A new delivery of the same event (same event id and body), due at once."""
    values = {
        "webhook_id": delivery.webhook_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "body": delivery.body,
        "status": PENDING,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
        "redelivery_of": delivery.id,
    }
    d = t.webhook_deliveries
    new_id = int(conn.execute(sa.insert(d).values(**values).returning(d.c.id)).scalar_one())
    found = get_delivery(conn, delivery.webhook_id, new_id)
    assert found is not None
    return found


# --- the delivery worker's side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for one attempt, with its webhook as it is now."""

    delivery: Delivery
    webhook: Webhook


@dataclass(frozen=True)
class Finished:
    """The outcome of one attempt, to record."""

    delivery_id: int
    status: str
    attempted_at: datetime
    next_attempt_at: datetime | None
    response_status: int | None
    response_ms: int | None
    response_body: str | None
    error: str | None


class WebhookStore:
    """What delivery workers do, each in its own short transaction over the server's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    def _write(self) -> Any:
        conn = self.engine.connect()
        conn.execution_options(setpoint_write=True)
        return conn

    def has_due(self, now: datetime) -> bool:
        """Whether any delivery is due (a read, so an idle poll takes no write lock)."""
        d = t.webhook_deliveries.c
        query = sa.select(d.id).where(d.status.in_(OPEN_STATES), d.next_attempt_at <= _utc(now)).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[Claimed]:
        """Claim up to ``limit`` due deliveries for one attempt each (``sending``, leased until
        ``lease_until``), oldest due first."""
        d = t.webhook_deliveries.c
        due = (
            sa.select(d.id)
            .where(d.status.in_(OPEN_STATES), d.next_attempt_at <= _utc(now))
            .order_by(d.next_attempt_at, d.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self._write() as conn, conn.begin():
            ids = [int(i) for i in conn.execute(due).scalars()]
            if not ids:
                return []
            conn.execute(
                sa.update(t.webhook_deliveries)
                .where(d.id.in_(ids))
                .values(status=SENDING, attempts=d.attempts + 1, next_attempt_at=_utc(lease_until))
            )
            rows = conn.execute(
                sa.select(t.webhook_deliveries, t.webhooks)
                .join(t.webhooks, t.webhooks.c.id == d.webhook_id)
                .where(d.id.in_(ids))
                .order_by(d.id)
            ).all()
        claimed = []
        for row in rows:
            delivery = _delivery(row)
            w = t.webhooks.c
            m = row._mapping
            webhook = Webhook(
                id=m[w.id],
                project_id=m[w.project_id],
                url=m[w.url],
                description=m[w.description],
                events=tuple(json.loads(m[w.events])),
                secret=m[w.secret],
                format=m[w.format],
                enabled=bool(m[w.enabled]),
                created_by=m[w.created_by],
                created_at=_utc(m[w.created_at]),
                updated_at=_utc(m[w.updated_at]),
            )
            claimed.append(Claimed(delivery, webhook))
        return claimed

    def finish(self, outcomes: Sequence[Finished]) -> None:
        """Record the outcomes of attempts (delivered, failed for good, or retrying at ``next_attempt_at``) in
        one transaction (a worker records what its senders finished together: one commit, not one each)."""
        if not outcomes:
            return
        d = t.webhook_deliveries.c
        stmt = (
            sa.update(t.webhook_deliveries)
            .where(d.id == sa.bindparam("b_id"))
            .values(
                status=sa.bindparam("b_status"),
                last_attempt_at=sa.bindparam("b_attempted_at"),
                next_attempt_at=sa.bindparam("b_next_attempt_at"),
                response_status=sa.bindparam("b_response_status"),
                response_ms=sa.bindparam("b_response_ms"),
                response_body=sa.bindparam("b_response_body"),
                error=sa.bindparam("b_error"),
            )
        )
        rows = [
            {
                "b_id": o.delivery_id,
                "b_status": o.status,
                "b_attempted_at": _utc(o.attempted_at),
                "b_next_attempt_at": None if o.next_attempt_at is None else _utc(o.next_attempt_at),
                "b_response_status": o.response_status,
                "b_response_ms": o.response_ms,
                "b_response_body": o.response_body,
                "b_error": None if o.error is None else o.error[:500],
            }
            for o in outcomes
        ]
        with self._write() as conn, conn.begin():
            conn.execute(stmt, rows)

    def prune(self, older_than: datetime) -> int:
        """Delete finished deliveries created before ``older_than``; returns how many."""
        d = t.webhook_deliveries.c
        with self._write() as conn, conn.begin():
            result = conn.execute(
                sa.delete(t.webhook_deliveries).where(d.status.in_(FINAL_STATES), d.created_at < _utc(older_than))
            )
            return int(result.rowcount or 0)
