"""Setpoint's management endpoints beside the Logfire ones: label moves, label history, audit.

Versions, diffs, targeting and restores are in ``editing.py``."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from setpoint._server.api.deps import IfMatch, IsoDateTime, parse_if_match, reader, server_state, writer
from setpoint._server.auth import Principal, require_role
from setpoint._server.services import audit
from setpoint._server.services import variables as var_service
from setpoint._server.services.errors import InvalidError, NotFoundError
from setpoint._server.services.models import LabelTargetIn
from setpoint._server.services.people import roles
from setpoint._server.services.people import service as people
from setpoint._server.storage.records import LabelMove

router = APIRouter(prefix="/v1", tags=["management"])

Reader = Annotated[Principal, Depends(reader)]
Writer = Annotated[Principal, Depends(writer)]


def _move_json(move: LabelMove) -> dict[str, Any]:
    target = None
    if move.target is not None:
        target = {
            "target_type": move.target.target_type,
            "version": move.target.version,
            "target_label": move.target.target_label,
        }
    return {"label": move.label, "target": target, "moved_by": move.moved_by, "moved_at": move.moved_at.isoformat()}


@router.put("/variables/{name}/labels/{label}/", summary="Move a label")
def move_label(
    request: Request, name: str, label: str, body: LabelTargetIn, caller: Writer, if_match: IfMatch = None
) -> Response:
    """Point a label at a version, ``latest``, ``code_default`` or another label (recorded in its history)."""
    ctx = server_state(request).ctx
    view = var_service.move_label(ctx, caller.project_id, name, label, body, caller.actor, parse_if_match(if_match))
    return Response(json.dumps(view.wire), media_type="application/json", headers={"ETag": f'"{view.revision}"'})


@router.get("/variables/{name}/label-history/", summary="Label moves of a variable")
def label_history(
    request: Request, name: str, caller: Reader, label: Annotated[str | None, Query()] = None
) -> list[dict[str, Any]]:
    """Moves, oldest first; one label's with ``?label=``."""
    moves = var_service.label_history(server_state(request).ctx, caller.project_id, name, label)
    return [_move_json(m) for m in moves]


@router.get("/audit/", summary="The audit history (admin): filter by person, variable, entity and time")
def audit_history(
    request: Request,
    caller: Reader,
    entity_type: Annotated[str | None, Query()] = None,
    name: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    person: Annotated[str | None, Query(description="A person's email or id")] = None,
    variable: Annotated[str | None, Query(max_length=200, description="One variable's entries")] = None,
    since: Annotated[IsoDateTime | None, Query(description="ISO 8601 with a zone; entries at or after")] = None,
    until: Annotated[IsoDateTime | None, Query(description="ISO 8601 with a zone; entries before")] = None,
    instance: Annotated[bool, Query(description="The instance events (people, logins): owners only")] = False,
) -> list[dict[str, Any]]:
    """Who changed what and when (``who``: the person, or "key X of person Y"), with the JSON before and after;
    newest first. Needs the ``admin`` role (a key with the ``write`` scope of a project admin, or an
    operator key); ``instance=true`` needs an owner's key."""
    require_role(caller, roles.OWNER if instance else roles.ADMIN)
    ctx = server_state(request).ctx
    user_id = None
    if person:
        with ctx.storage.read() as tx:
            found = people.find(tx, person)
        if found is None:
            raise NotFoundError(f"no person {person!r}")
        user_id = found.id
    for label, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidError(f"{label} must carry a time zone, like 2026-11-30T08:00:00Z")
    if variable:
        entity_type, name = "variable", variable
    with ctx.storage.read() as tx:
        entries = tx.list_audit(
            None if instance else caller.project_id,
            entity_type=entity_type,
            entity_name=name,
            user_id=user_id,
            since=since,
            until=until,
            limit=limit,
        )
    return [audit.entry_json(e) for e in entries]
