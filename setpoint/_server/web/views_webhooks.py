"""The project's Webhooks pages: the list and a new-webhook form, and per webhook its settings, secret (admins),
"send test event" and the delivery log with "redeliver"."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from setpoint._server.api.deps import server_state
from setpoint._server.services.errors import ServiceError
from setpoint._server.services.input_limits import DB_INT_MAX
from setpoint._server.services.people import roles
from setpoint._server.services.webhooks import service
from setpoint._server.services.webhooks.events import EVENT_TYPES, FORMATS
from setpoint._server.web.render import Page, field, page

router = APIRouter(include_in_schema=False)
Current = Annotated[Page, Depends(page)]
WebhookId = Annotated[int, Path(ge=1, le=DB_INT_MAX)]
DeliveryId = Annotated[int, Path(ge=1, le=DB_INT_MAX)]

LOG_ROWS = 50


def _values(form: FormData | None = None) -> dict[str, Any]:
    """The webhook form's values: as typed, or the defaults of a new webhook."""
    if form is None:
        return {"url": "", "description": "", "events": list(EVENT_TYPES), "format": "standard", "enabled": True}
    return {
        "url": field(form, "url").strip(),
        "description": field(form, "description"),
        "events": [e for e in form.getlist("event") if isinstance(e, str)],
        "format": field(form, "format", "standard"),
        "enabled": field(form, "enabled") == "yes",
    }


def _context(**extra: Any) -> dict[str, Any]:
    return {"event_types": EVENT_TYPES, "formats": FORMATS, "nav": "webhooks", **extra}


def _list_page(
    current: Page, error: str = "", status_code: int = 200, values: dict[str, Any] | None = None
) -> Response:
    hooks = service.list_webhooks(current.ctx, current.project.id)
    return current.render(
        "webhooks.html", status_code, **_context(hooks=hooks, error=error, values=values or _values())
    )


def _detail_page(current: Page, webhook_id: int, error: str = "", status_code: int = 200) -> Response:
    hook = service.get_webhook(current.ctx, current.project.id, webhook_id)
    log = service.deliveries(current.ctx, current.project.id, webhook_id, limit=LOG_ROWS)
    values = {
        "url": hook.url,
        "description": hook.description,
        "events": list(hook.events),
        "format": hook.format,
        "enabled": hook.enabled,
    }
    return current.render("webhook.html", status_code, **_context(hook=hook, log=log, error=error, values=values))


def _allow_private(current: Page) -> bool:
    return server_state(current.request).settings.webhooks_allow_private


@router.get("/p/{project}/webhooks")
async def webhooks(current: Current) -> Response:
    """The project's webhooks (admins add them here)."""
    return await run_in_threadpool(_list_page, current)


@router.post("/p/{project}/webhooks")
async def create_webhook(current: Current) -> Response:
    """Create a webhook, then show its page (with its signing secret)."""
    form = await current.form(roles.ADMIN)
    values = _values(form)
    try:
        hook = await run_in_threadpool(
            lambda: service.create_webhook(
                current.ctx,
                current.project.id,
                current.session.actor,
                url=values["url"],
                events_wanted=values["events"],
                format=values["format"],
                enabled=values["enabled"],
                description=values["description"],
                allow_private=_allow_private(current),
            )
        )
    except ServiceError as exc:
        return await run_in_threadpool(_list_page, current, exc.message, exc.status_code, values)
    return current.redirect(f"/webhooks/{hook.id}", "Webhook created. Verify deliveries with its signing secret.")


@router.get("/p/{project}/webhooks/{webhook_id}")
async def webhook(current: Current, webhook_id: WebhookId) -> Response:
    """One webhook: its settings and its delivery log."""
    return await run_in_threadpool(_detail_page, current, webhook_id)


@router.post("/p/{project}/webhooks/{webhook_id}")
async def update_webhook(current: Current, webhook_id: WebhookId) -> Response:
    """Save a webhook's settings."""
    form = await current.form(roles.ADMIN)
    values = _values(form)
    try:
        await run_in_threadpool(
            lambda: service.update_webhook(
                current.ctx,
                current.project.id,
                webhook_id,
                current.session.actor,
                url=values["url"],
                events_wanted=values["events"],
                format=values["format"],
                enabled=values["enabled"],
                description=values["description"],
                allow_private=_allow_private(current),
            )
        )
    except ServiceError as exc:
        return await run_in_threadpool(_detail_page, current, webhook_id, exc.message, exc.status_code)
    return current.redirect(f"/webhooks/{webhook_id}", "Saved.")


async def _action(current: Current, webhook_id: int, action: Any, notice: str, path: str | None = None) -> Response:
    await current.form(roles.ADMIN)
    try:
        await run_in_threadpool(action)
    except ServiceError as exc:
        return await run_in_threadpool(_detail_page, current, webhook_id, exc.message, exc.status_code)
    return current.redirect(path or f"/webhooks/{webhook_id}", notice)


@router.post("/p/{project}/webhooks/{webhook_id}/test")
async def send_test(current: Current, webhook_id: WebhookId) -> Response:
    """Queue a test event for this webhook."""
    actor = current.session.actor
    return await _action(
        current,
        webhook_id,
        lambda: service.send_test(current.ctx, current.project.id, webhook_id, actor),
        "Test event queued.",
    )


@router.post("/p/{project}/webhooks/{webhook_id}/rotate-secret")
async def rotate_secret(current: Current, webhook_id: WebhookId) -> Response:
    """Replace the signing secret."""
    actor = current.session.actor
    return await _action(
        current,
        webhook_id,
        lambda: service.rotate_secret(current.ctx, current.project.id, webhook_id, actor),
        "New signing secret made: update your receiver.",
    )


@router.post("/p/{project}/webhooks/{webhook_id}/delete")
async def delete_webhook(current: Current, webhook_id: WebhookId) -> Response:
    """Delete the webhook and its log."""
    actor = current.session.actor
    return await _action(
        current,
        webhook_id,
        lambda: service.delete_webhook(current.ctx, current.project.id, webhook_id, actor),
        "Webhook deleted.",
        "/webhooks",
    )


@router.post("/p/{project}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
async def redeliver(current: Current, webhook_id: WebhookId, delivery_id: DeliveryId) -> Response:
    """Send an event again."""
    actor = current.session.actor
    return await _action(
        current,
        webhook_id,
        lambda: service.redeliver(current.ctx, current.project.id, webhook_id, delivery_id, actor),
        "Redelivery queued.",
    )
