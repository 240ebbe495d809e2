"""Members and protected labels over the API (the key's project; roles checked as in the UI). The audit is
``GET /v1/audit/`` in ``manage.py``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from setpoint._server.api.deps import project_admin, reader, server_state
from setpoint._server.auth import Principal
from setpoint._server.services.people import members as member_service
from setpoint._server.services.people import protected

router = APIRouter(prefix="/v1", tags=["people"])

Reader = Annotated[Principal, Depends(reader)]
Admin = Annotated[Principal, Depends(project_admin)]


class MemberIn(BaseModel):
    """A person (email or ``#id``) and their role in the project."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=200)
    role: str


class ProtectedIn(BaseModel):
    """The labels only admins may move."""

    model_config = ConfigDict(extra="forbid")

    protected_labels: list[str]


@router.get("/members/", summary="The project's members and their roles")
def list_members(request: Request, caller: Reader) -> list[dict[str, Any]]:
    """Every member of the key's project (owners are admins of every project and are not listed)."""
    found = member_service.list_members(server_state(request).ctx, caller.project_id)
    return [member_service.member_json(m) for m in found]


@router.put("/members/", summary="Add a member or change their role (admin)")
def put_member(request: Request, body: MemberIn, caller: Admin) -> dict[str, Any]:
    """``role``: viewer, editor or admin."""
    member = member_service.set_member(
        server_state(request).ctx, caller.project_id, body.email, body.role, caller.actor
    )
    return member_service.member_json(member)


@router.delete("/members/{email}/", summary="Remove a member (admin)")
def delete_member(request: Request, email: str, caller: Admin) -> dict[str, Any]:
    """Their keys of this project stop working at once."""
    member = member_service.remove_member(server_state(request).ctx, caller.project_id, email, caller.actor)
    return member_service.member_json(member)


@router.get("/project-settings/", summary="The project's settings (protected labels)")
def get_settings(request: Request, caller: Reader) -> dict[str, Any]:
    """``protected_labels``: only admins move them or change the targeting that serves them."""
    with server_state(request).ctx.storage.read() as tx:
        project = tx.get_project_by_id(caller.project_id)
    return {"project": caller.project_name, "protected_labels": list(project.protected_labels) if project else []}


@router.put("/project-settings/", summary="Change the project's settings (admin)")
def put_settings(request: Request, body: ProtectedIn, caller: Admin) -> dict[str, Any]:
    """Replace the protected labels (``[]``: none)."""
    labels = protected.parse(body.protected_labels)
    protected.set_protected(server_state(request).ctx, caller.project_id, labels, caller.actor)
    return {"project": caller.project_name, "protected_labels": list(labels)}
