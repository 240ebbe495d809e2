"""Setpoint's management endpoints beside the Logfire ones: label moves, label history, audit.

Versions, diffs, targeting and restores are in ``editing.py``."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from setpoint._server.api.deps import IfMatch, parse_if_match, reader, server_state, writer
from setpoint._server.auth import Principal
from setpoint._server.services import audit
from setpoint._server.services import variables as var_service
from setpoint._server.services.models import LabelTargetIn
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


@router.get("/audit/", summary="The project's audit history")
def audit_history(
    request: Request,
    caller: Reader,
    entity_type: Annotated[str | None, Query()] = None,
    name: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Who changed what and when, with the JSON before and after; newest first."""
    entries = audit.history(
        server_state(request).ctx, caller.project_id, entity_type=entity_type, name=name, limit=limit
    )
    return [audit.entry_json(e) for e in entries]
