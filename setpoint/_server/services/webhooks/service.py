"""Webhook configuration, the delivery log, redelivery and test events; and :func:`enqueue`, the outbox.

Roles are checked by the callers (API: ``project_admin`` for changes, ``reader`` for reading; UI: the same
through ``Page``); the secret is only put in JSON for admins (:func:`webhook_json`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from setpoint._server.services import audit
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import InvalidError, NotFoundError
from setpoint._server.services.webhooks import events, signing, targets
from setpoint._server.storage import WriteTx
from setpoint._server.storage import webhooks as store
from setpoint._server.storage.webhooks import Delivery, Webhook

MAX_WEBHOOKS = 20
"""Webhooks per project."""
MAX_DESCRIPTION = 200
MAX_LOG_PAGE = 200


def new_event_id() -> str:
    """A message id (``webhook-id``): the same for every delivery and redelivery of one event."""
    return f"msg_{uuid.uuid4().hex}"


def webhook_json(webhook: Webhook, *, with_secret: bool) -> dict[str, Any]:
    """A webhook as JSON; the signing secret only when ``with_secret`` (admins)."""
    data: dict[str, Any] = {
        "id": webhook.id,
        "url": webhook.url,
        "description": webhook.description,
        "events": list(webhook.events),
        "format": webhook.format,
        "enabled": webhook.enabled,
        "created_by": webhook.created_by,
        "created_at": webhook.created_at.isoformat(),
        "updated_at": webhook.updated_at.isoformat(),
    }
    if with_secret:
        data["secret"] = webhook.secret
    return data


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    """A delivery log line as JSON (``request_body``: what was sent; ``response_body``: truncated)."""

    def when(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "created_at": when(delivery.created_at),
        "last_attempt_at": when(delivery.last_attempt_at),
        "next_attempt_at": when(delivery.next_attempt_at) if delivery.status in store.OPEN_STATES else None,
        "response_status": delivery.response_status,
        "response_ms": delivery.response_ms,
        "response_body": delivery.response_body,
        "error": delivery.error,
        "request_body": delivery.body,
        "redelivery_of": delivery.redelivery_of,
    }


def _audit_json(webhook: Webhook) -> dict[str, Any]:
    return webhook_json(webhook, with_secret=False)


def _audit_name(webhook: Webhook) -> str:
    return f"#{webhook.id} {webhook.url}"


def check_events(wanted: Sequence[str]) -> tuple[str, ...]:
    """The event types asked for, in the canonical order; 422 naming unknown ones."""
    unknown = [e for e in wanted if e not in events.EVENT_TYPES]
    if unknown:
        raise InvalidError(
            f"unknown event type(s) {', '.join(map(repr, unknown))}; choose from {', '.join(events.EVENT_TYPES)}"
        )
    if not wanted:
        raise InvalidError(f"choose at least one event type: {', '.join(events.EVENT_TYPES)}")
    return tuple(e for e in events.EVENT_TYPES if e in set(wanted))


def check_format(value: str) -> str:
    """``standard`` or ``slack``; 422 otherwise."""
    if value not in events.FORMATS:
        raise InvalidError(f"unknown webhook format {value!r}; use one of {', '.join(events.FORMATS)}")
    return value


def check_description(value: str) -> str:
    """A short description (at most 200 characters)."""
    if len(value) > MAX_DESCRIPTION:
        raise InvalidError(f"the description is longer than {MAX_DESCRIPTION} characters")
    return value.strip()


def _require(tx: WriteTx, project_id: int, webhook_id: int, *, lock: bool = False) -> Webhook:
    found = store.get_webhook(store.connection(tx), project_id, webhook_id, lock=lock)
    if found is None:
        raise NotFoundError(f"webhook {webhook_id} does not exist in this project")
    return found


def list_webhooks(ctx: ServiceContext, project_id: int) -> list[Webhook]:
    """A project's webhooks, oldest first."""
    with ctx.storage.read() as tx:
        return store.list_webhooks(store.connection(tx), project_id)


def get_webhook(ctx: ServiceContext, project_id: int, webhook_id: int) -> Webhook:
    """One webhook of the project; 404 when it is not one of the project's."""
    with ctx.storage.read() as tx:
        found = store.get_webhook(store.connection(tx), project_id, webhook_id)
    if found is None:
        raise NotFoundError(f"webhook {webhook_id} does not exist in this project")
    return found


def create_webhook(
    ctx: ServiceContext,
    project_id: int,
    actor: str,
    *,
    url: str,
    events_wanted: Sequence[str],
    format: str = "standard",
    enabled: bool = True,
    description: str = "",
    allow_private: bool = False,
) -> Webhook:
    """Create a webhook with a new signing secret (audited); 422 for a URL that is not allowed."""
    target = targets.check(url, allow_private=allow_private)
    wanted = check_events(events_wanted)
    check_format(format)
    description = check_description(description)
    with ctx.storage.write() as tx:
        conn = store.connection(tx)
        if len(store.list_webhooks(conn, project_id)) >= MAX_WEBHOOKS:
            raise InvalidError(f"a project has at most {MAX_WEBHOOKS} webhooks; delete one first")
        webhook = store.insert_webhook(
            conn,
            project_id,
            url=target.url,
            description=description,
            events=wanted,
            secret=signing.generate_secret(),
            format=format,
            enabled=enabled,
            created_by=actor[: audit.MAX_NAME],
            now=ctx.clock(),
        )
        audit.record(tx, project_id, actor, "create", "webhook", _audit_name(webhook), None, _audit_json(webhook))
    return webhook


def update_webhook(
    ctx: ServiceContext,
    project_id: int,
    webhook_id: int,
    actor: str,
    *,
    url: str | None = None,
    events_wanted: Sequence[str] | None = None,
    format: str | None = None,
    enabled: bool | None = None,
    description: str | None = None,
    allow_private: bool = False,
) -> Webhook:
    """Change some settings of a webhook (audited); fields left None stay as they are."""
    changes: dict[str, Any] = {}
    if url is not None:
        changes["url"] = targets.check(url, allow_private=allow_private).url
    if events_wanted is not None:
        changes["events"] = check_events(events_wanted)
    if format is not None:
        changes["format"] = check_format(format)
    if enabled is not None:
        changes["enabled"] = enabled
    if description is not None:
        changes["description"] = check_description(description)
    with ctx.storage.write() as tx:
        current = _require(tx, project_id, webhook_id, lock=True)
        if not changes:
            return current
        webhook = store.update_webhook(store.connection(tx), current, ctx.clock(), **changes)
        audit.record(
            tx, project_id, actor, "update", "webhook", _audit_name(webhook), _audit_json(current), _audit_json(webhook)
        )
    return webhook


def delete_webhook(ctx: ServiceContext, project_id: int, webhook_id: int, actor: str) -> Webhook:
    """Delete a webhook and its delivery log (audited); pending deliveries are dropped."""
    with ctx.storage.write() as tx:
        current = _require(tx, project_id, webhook_id, lock=True)
        store.delete_webhook(store.connection(tx), current)
        audit.record(tx, project_id, actor, "delete", "webhook", _audit_name(current), _audit_json(current), None)
    return current


def rotate_secret(ctx: ServiceContext, project_id: int, webhook_id: int, actor: str) -> Webhook:
    """Replace the signing secret (audited, without the secret); deliveries from now on use the new one."""
    with ctx.storage.write() as tx:
        current = _require(tx, project_id, webhook_id, lock=True)
        webhook = store.update_webhook(store.connection(tx), current, ctx.clock(), secret=signing.generate_secret())
        audit.record(tx, project_id, actor, "rotate_secret", "webhook", _audit_name(webhook), None, None)
    return webhook


def deliveries(
    ctx: ServiceContext, project_id: int, webhook_id: int, *, limit: int = 50, before_id: int | None = None
) -> list[Delivery]:
    """A webhook's delivery log, newest first."""
    limit = max(1, min(limit, MAX_LOG_PAGE))
    with ctx.storage.read() as tx:
        conn = store.connection(tx)
        if store.get_webhook(conn, project_id, webhook_id) is None:
            raise NotFoundError(f"webhook {webhook_id} does not exist in this project")
        return store.list_deliveries(conn, webhook_id, limit=limit, before_id=before_id)


def get_delivery(ctx: ServiceContext, project_id: int, webhook_id: int, delivery_id: int) -> Delivery:
    """One delivery of one of the project's webhooks; 404 otherwise."""
    with ctx.storage.read() as tx:
        conn = store.connection(tx)
        found = None
        if store.get_webhook(conn, project_id, webhook_id) is not None:
            found = store.get_delivery(conn, webhook_id, delivery_id)
    if found is None:
        raise NotFoundError(f"delivery {delivery_id} of webhook {webhook_id} does not exist in this project")
    return found


def redeliver(ctx: ServiceContext, project_id: int, webhook_id: int, delivery_id: int, actor: str) -> Delivery:
    """A new delivery of the same event (same ``webhook-id`` and body), sent at once."""
    from setpoint._server.services.webhooks.worker import wake_all

    with ctx.storage.write() as tx:
        _require(tx, project_id, webhook_id)
        conn = store.connection(tx)
        original = store.get_delivery(conn, webhook_id, delivery_id)
        if original is None:
            raise NotFoundError(f"delivery {delivery_id} of webhook {webhook_id} does not exist in this project")
        delivery = store.redeliver(conn, original, ctx.clock())
        tx.after_commit(wake_all)
    return delivery


def send_test(ctx: ServiceContext, project_id: int, webhook_id: int, actor: str) -> Delivery:
    """Queue a ``webhook.test`` event for one webhook (whatever it subscribes to, even when disabled)."""
    from setpoint._server.services.people import actors
    from setpoint._server.services.webhooks.worker import wake_all

    with ctx.storage.write() as tx:
        webhook = _require(tx, project_id, webhook_id)
        conn = store.connection(tx)
        project = tx.get_project_by_id(project_id)
        now = ctx.clock()
        data = {"project": project.name if project else "", "webhook_id": webhook.id, "actor": actors.display(actor)}
        body = events.body(webhook.format, events.TEST_EVENT, now, data)
        event_id = new_event_id()
        store.insert_deliveries(conn, [(webhook.id, event_id, events.TEST_EVENT, body)], now)
        tx.after_commit(wake_all)
        found = store.list_deliveries(conn, webhook.id, limit=1)
    return found[0]


def enqueue(
    tx: WriteTx, project_id: int | None, actor: str, action: str, entity_type: str, name: str, before: Any, after: Any
) -> int:
    """The outbox: queue one delivery per enabled webhook subscribed to each event this audit entry stands
    for, inside the write transaction (``audit.record`` calls this). Returns how many were queued.

    Cost per write: nothing for entries that are no events; otherwise one indexed read of the project's
    enabled webhooks, and one multi-row insert when any is subscribed."""
    if project_id is None or entity_type not in events.ENTITY_TYPES:
        return 0
    found = events.events_for(entity_type, action, name, before, after)
    if not found:
        return 0
    conn = store.connection(tx)
    subscribed = store.subscriptions(conn, project_id)
    if not subscribed:
        return 0
    now = datetime.now(UTC)
    rows: list[tuple[int, str, str, str]] = []
    for event_type, extra in found:
        wanting = [s for s in subscribed if event_type in s.events]
        if not wanting:
            continue
        data = events.event_data(wanting[0].project_name, actor, action, entity_type, name, before, after, extra)
        event_id = new_event_id()
        bodies: dict[str, str] = {}
        for sub in wanting:
            if sub.format not in bodies:
                bodies[sub.format] = events.body(sub.format, event_type, now, data)
            rows.append((sub.webhook_id, event_id, event_type, bodies[sub.format]))
    if rows:
        from setpoint._server.services.webhooks.worker import wake_all

        store.insert_deliveries(conn, rows, now)
        tx.after_commit(wake_all)
    return len(rows)
