"""API key management over the API: any member's key lists the keys of its project; creating and revoking
need the ``admin`` role and the ``write`` scope.

A new key's secret is in the create response only; a key can only create keys with scopes it has itself, and
the new key belongs to the same person as the key that made it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from setpoint._server.api.deps import KeyId, project_admin, reader, server_state
from setpoint._server.auth import AuthError, Principal
from setpoint._server.services import keys as key_service

router = APIRouter(prefix="/v1", tags=["api keys"])

Reader = Annotated[Principal, Depends(reader)]
Admin = Annotated[Principal, Depends(project_admin)]


Scope = Literal["read", "write", "read_external"]


class KeyIn(BaseModel):
    """A new key: a name to recognize it by and its scopes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200)
    scopes: list[Scope] = Field(default_factory=lambda: list[Scope](["read"]), min_length=1)


@router.get("/api-keys/", summary="The project's API keys (never their secrets)")
def list_keys(request: Request, caller: Reader) -> list[dict[str, Any]]:
    """Every key of the caller's project, revoked ones included (``revoked_at`` set)."""
    return [key_service.key_json(k) for k in key_service.list_keys(server_state(request).ctx, caller.project_id)]


@router.post("/api-keys/", status_code=201, summary="Create an API key (its secret is shown once)")
def create_key(request: Request, body: KeyIn, caller: Admin) -> dict[str, Any]:
    """The response's ``key`` is the only copy of the secret: store it now."""
    scopes = key_service.parse_scopes(list(body.scopes))
    missing = sorted(scopes - key_service.grantable(caller.scopes))
    if missing:
        raise AuthError(403, f"this API key cannot create a key with scope(s) {', '.join(missing)} that it lacks")
    created = key_service.create_key(
        server_state(request).ctx,
        caller.project_name,
        scopes,
        caller.actor,
        name=body.name,
        create_project=False,
        user_id=caller.user_id,
    )
    return {**key_service.key_json(created.key), "key": created.token}


@router.delete("/api-keys/{key_id}/", summary="Revoke an API key")
def revoke_key(request: Request, key_id: KeyId, caller: Admin) -> dict[str, Any]:
    """Every server process stops accepting the key at once."""
    key = key_service.revoke_key(server_state(request).ctx, caller.project_id, key_id, caller.actor)
    return key_service.key_json(key)
