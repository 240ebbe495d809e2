"""Setpoint's native segment endpoints (``/v1/segments/``), beside the variables, with ``bearer`` API keys.

Bodies and answers are the `setpoint.config.Segment` JSON shape (as in the served config), plus
``revision``, ``created_at`` and ``updated_at`` on the way out; the revision is the ``ETag`` to send as
``If-Match`` when replacing, patching or deleting (412 when stale).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from setpoint._server.api.deps import IfMatch, parse_if_match, reader, server_state, writer
from setpoint._server.auth import Principal
from setpoint._server.services import audit
from setpoint._server.services.segments import service

router = APIRouter(prefix="/v1", tags=["segments"])

Reader = Annotated[Principal, Depends(reader)]
Writer = Annotated[Principal, Depends(writer)]
SegmentBody = Annotated[dict[str, Any], Body(description="A segment in the `setpoint.config.Segment` JSON shape")]
_SEGMENT_DOC = {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Segment"}}}}}
_REPLACEMENT_DOC = {
    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/SegmentReplacement"}}}}
}


def _json(view: service.SegmentView) -> dict[str, Any]:
    return {
        **view.wire,
        "revision": view.revision,
        "created_at": view.created_at.isoformat(),
        "updated_at": view.updated_at.isoformat(),
    }


def _response(view: service.SegmentView, status_code: int = 200) -> Response:
    return JSONResponse(_json(view), status_code=status_code, headers={"ETag": f'"{view.revision}"'})


@router.get("/segments/", summary="The project's segments")
async def list_segments(request: Request, caller: Reader) -> list[dict[str, Any]]:
    """Every segment, by key."""
    views = await run_in_threadpool(service.list_segments, server_state(request).ctx, caller.project_id)
    return [_json(v) for v in views]


@router.post("/segments/", status_code=201, summary="Create a segment", openapi_extra=_SEGMENT_DOC)
async def create_segment(request: Request, body: SegmentBody, caller: Writer) -> Response:
    """Create a segment; 409 when the key is taken, 400 naming an invalid clause, reference or cycle."""
    ctx = server_state(request).ctx
    view = await run_in_threadpool(service.create_segment, ctx, caller.project_id, body, caller.actor)
    return _response(view, 201)


@router.get("/segments/{key}/", summary="One segment, with its revision as ETag")
async def get_segment(request: Request, key: str, caller: Reader) -> Response:
    """A segment; 404 when missing."""
    view = await run_in_threadpool(service.get_segment, server_state(request).ctx, caller.project_id, key)
    return _response(view)


@router.put("/segments/{key}/", summary="Replace a segment", openapi_extra=_REPLACEMENT_DOC)
async def put_segment(
    request: Request, key: str, body: SegmentBody, caller: Writer, if_match: IfMatch = None
) -> Response:
    """Replace the whole segment document."""
    ctx = server_state(request).ctx
    revision = parse_if_match(if_match)
    view = await run_in_threadpool(service.replace_segment, ctx, caller.project_id, key, body, caller.actor, revision)
    return _response(view)


@router.patch("/segments/{key}/", summary="Change a segment with semantic-patch instructions")
async def patch_segment(
    request: Request,
    key: str,
    body: Annotated[dict[str, Any], Body(description='{"instructions": [{"kind": "addRule", ...}, ...]}')],
    caller: Writer,
    if_match: IfMatch = None,
) -> Response:
    """The instructions of the LaunchDarkly-compatible API (``addRule``, ``addIncludedTargets``, ...)."""
    ctx = server_state(request).ctx
    revision = parse_if_match(if_match)
    view = await run_in_threadpool(
        service.patch_segment, ctx, caller.project_id, key, body.get("instructions"), caller.actor, revision
    )
    return _response(view)


@router.delete("/segments/{key}/", status_code=204, summary="Delete a segment")
async def delete_segment(request: Request, key: str, caller: Writer, if_match: IfMatch = None) -> Response:
    """204; 409 naming the variables and segments that still use it."""
    ctx = server_state(request).ctx
    revision = parse_if_match(if_match)
    await run_in_threadpool(service.delete_segment, ctx, caller.project_id, key, caller.actor, revision)
    return Response(status_code=204)


@router.get("/segments/{key}/history/", summary="A segment's audit history")
async def segment_history(
    request: Request, key: str, caller: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """Who changed the segment and when, with its JSON before and after; newest first."""
    ctx = server_state(request).ctx
    entries = await run_in_threadpool(service.segment_history, ctx, caller.project_id, key, limit)
    return [audit.entry_json(e) for e in entries]


@router.post("/segments/{key}/restore/", summary="Restore a segment as it was after a change in its history")
async def restore_segment(
    request: Request,
    key: str,
    body: Annotated[dict[str, Any], Body(description='{"entry_id": <id of an entry of GET .../history/>}')],
    caller: Writer,
    if_match: IfMatch = None,
) -> Response:
    """The segment becomes what it was right after that history entry (audited as ``restore``)."""
    entry_id = body.get("entry_id")
    if not isinstance(entry_id, int) or isinstance(entry_id, bool):
        raise service.SegmentInvalidError('send {"entry_id": n}, the id of an entry of the segment\'s history')
    ctx = server_state(request).ctx
    revision = parse_if_match(if_match)
    view = await run_in_threadpool(
        service.restore_segment, ctx, caller.project_id, key, entry_id, caller.actor, revision
    )
    return _response(view)
