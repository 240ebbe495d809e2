"""Webhooks over the API (the key's project): admins configure them; viewers read the configuration (no
secret) and the delivery log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from setpoint._server.api.deps import project_admin, reader, server_state
from setpoint._server.auth import Principal
from setpoint._server.services.input_limits import DB_INT_MAX
from setpoint._server.services.people import roles
from setpoint._server.services.webhooks import service
from setpoint._server.services.webhooks.events import EVENT_TYPES

router = APIRouter(prefix="/v1", tags=["webhooks"])

Reader = Annotated[Principal, Depends(reader)]
Admin = Annotated[Principal, Depends(project_admin)]
WebhookId = Annotated[int, Path(ge=1, le=DB_INT_MAX, description="The id of a webhook of the project")]
DeliveryId = Annotated[int, Path(ge=1, le=DB_INT_MAX, description="The id of a delivery of the webhook")]
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]


class WebhookIn(BaseModel):
    """A new webhook."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="Where to POST events: an http(s) URL on a public address")
    events: list[EventType] = Field(min_length=1, max_length=len(EVENT_TYPES), description="The event types sent")
    format: Literal["standard", "slack"] = Field(
        default="standard", description="`standard`: Standard Webhooks JSON; `slack`: a Slack incoming-webhook payload"
    )
    enabled: bool = True
    description: str = Field(default="", max_length=200)


class WebhookPatch(BaseModel):
    """Changes to a webhook (fields left out stay as they are)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2000)
    events: list[EventType] | None = Field(default=None, min_length=1, max_length=len(EVENT_TYPES))
    format: Literal["standard", "slack"] | None = None
    enabled: bool | None = None
    description: str | None = Field(default=None, max_length=200)


def _allow_private(request: Request) -> bool:
    return server_state(request).settings.webhooks_allow_private


def _is_admin(caller: Principal) -> bool:
    return roles.allows(caller.role, roles.ADMIN)


@router.get("/webhooks/", summary="The project's webhooks (secrets only for admins)")
def list_webhooks(request: Request, caller: Reader) -> list[dict[str, Any]]:
    """Every webhook of the key's project, oldest first."""
    found = service.list_webhooks(server_state(request).ctx, caller.project_id)
    return [service.webhook_json(w, with_secret=_is_admin(caller)) for w in found]


@router.post("/webhooks/", status_code=201, summary="Create a webhook (admin)")
def create_webhook(request: Request, body: WebhookIn, caller: Admin) -> dict[str, Any]:
    """The answer holds the signing secret (`whsec_...`): verify deliveries with it."""
    webhook = service.create_webhook(
        server_state(request).ctx,
        caller.project_id,
        caller.actor,
        url=body.url,
        events_wanted=body.events,
        format=body.format,
        enabled=body.enabled,
        description=body.description,
        allow_private=_allow_private(request),
    )
    return service.webhook_json(webhook, with_secret=True)


@router.get("/webhooks/{webhook_id}/", summary="One webhook (the secret only for admins)")
def get_webhook(request: Request, webhook_id: WebhookId, caller: Reader) -> dict[str, Any]:
    """A webhook of the key's project."""
    webhook = service.get_webhook(server_state(request).ctx, caller.project_id, webhook_id)
    return service.webhook_json(webhook, with_secret=_is_admin(caller))


@router.patch("/webhooks/{webhook_id}/", summary="Change a webhook (admin)")
def patch_webhook(request: Request, webhook_id: WebhookId, body: WebhookPatch, caller: Admin) -> dict[str, Any]:
    """Change its URL, events, format, description or turn it on and off."""
    webhook = service.update_webhook(
        server_state(request).ctx,
        caller.project_id,
        webhook_id,
        caller.actor,
        url=body.url,
        events_wanted=body.events,
        format=body.format,
        enabled=body.enabled,
        description=body.description,
        allow_private=_allow_private(request),
    )
    return service.webhook_json(webhook, with_secret=True)


@router.delete("/webhooks/{webhook_id}/", status_code=204, summary="Delete a webhook and its delivery log (admin)")
def delete_webhook(request: Request, webhook_id: WebhookId, caller: Admin) -> None:
    """Deliveries not made yet are dropped."""
    service.delete_webhook(server_state(request).ctx, caller.project_id, webhook_id, caller.actor)


@router.post("/webhooks/{webhook_id}/rotate-secret/", summary="Replace the signing secret (admin)")
def rotate_secret(request: Request, webhook_id: WebhookId, caller: Admin) -> dict[str, Any]:
    """The answer holds the new secret; every delivery attempt from now on is signed with it."""
    webhook = service.rotate_secret(server_state(request).ctx, caller.project_id, webhook_id, caller.actor)
    return service.webhook_json(webhook, with_secret=True)


@router.get("/webhooks/{webhook_id}/deliveries/", summary="A webhook's delivery log, newest first")
def list_deliveries(
    request: Request,
    webhook_id: WebhookId,
    caller: Reader,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LOG_PAGE)] = 50,
    before: Annotated[int | None, Query(ge=1, le=DB_INT_MAX, description="Deliveries older than this id")] = None,
) -> list[dict[str, Any]]:
    """Status (pending, sending, retrying, delivered, failed), attempts, the last answer and what was sent."""
    found = service.deliveries(server_state(request).ctx, caller.project_id, webhook_id, limit=limit, before_id=before)
    return [service.delivery_json(d) for d in found]


@router.get("/webhooks/{webhook_id}/deliveries/{delivery_id}/", summary="One delivery")
def get_delivery(request: Request, webhook_id: WebhookId, delivery_id: DeliveryId, caller: Reader) -> dict[str, Any]:
    """A delivery of a webhook of the key's project."""
    found = service.get_delivery(server_state(request).ctx, caller.project_id, webhook_id, delivery_id)
    return service.delivery_json(found)


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver/",
    status_code=201,
    summary="Send an event again (admin)",
)
def redeliver(request: Request, webhook_id: WebhookId, delivery_id: DeliveryId, caller: Admin) -> dict[str, Any]:
    """A new delivery of the same event (same `webhook-id` and body), sent at once."""
    found = service.redeliver(server_state(request).ctx, caller.project_id, webhook_id, delivery_id, caller.actor)
    return service.delivery_json(found)


@router.post("/webhooks/{webhook_id}/test/", status_code=201, summary="Send a test event (admin)")
def send_test(request: Request, webhook_id: WebhookId, caller: Admin) -> dict[str, Any]:
    """Queues a `webhook.test` event for this webhook (also when it is disabled)."""
    found = service.send_test(server_state(request).ctx, caller.project_id, webhook_id, caller.actor)
    return service.delivery_json(found)
