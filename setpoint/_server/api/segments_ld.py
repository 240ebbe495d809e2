"""The segments API of LaunchDarkly (``/api/v2/segments/{project}/{environment}[/{key}]``), so code written
for it works against Setpoint by changing only the base URL and the token.

* Auth: ``Authorization: <api key>`` (no scheme, as LaunchDarkly) or ``Authorization: bearer <api key>``.
  ``{project}`` must be the project of the key (else 404: one project never sees another's data).
* ``{environment}``: a Setpoint project has one environment, so any environment key is accepted and names
  the same segments (``production``, ``test``, ...).
* ``POST`` creates (201; 409 when the key exists), ``GET`` lists (``{"items": [...], "totalCount": n}``,
  ``limit``/``offset``) or reads one, ``DELETE`` answers 204 (409 while a variable or segment uses it),
  ``PATCH`` takes ``Content-Type: application/json; domain-model=launchdarkly.semanticpatch`` with
  ``{"environmentKey": ..., "instructions": [...]}`` (see `setpoint._server.services.segments.patch`), or a
  JSON Patch of the representation with plain ``application/json``.
* Errors are LaunchDarkly-shaped: ``{"code": "invalid_request", "message": "..."}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from setpoint._server.api.deps import principal
from setpoint._server.auth import AuthError, Principal
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import PreconditionFailedError, ServiceError
from setpoint._server.services.segments import service
from setpoint._server.services.segments.jsonpatch import EDITABLE_FIELDS, apply_json_patch, edited_fields
from setpoint._server.services.segments.patch import PatchError
from setpoint._server.services.segments.wire import doc_from_ld, ld_segment, select

router = APIRouter(prefix="/api/v2/segments", tags=["segments (LaunchDarkly-compatible)"])

SEMANTIC_PATCH = "domain-model=launchdarkly.semanticpatch"
_CREATE_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/json": {
                "example": {"key": "beta-testers", "name": "Beta Testers", "description": "...", "tags": ["beta"]}
            }
        }
    }
}
_PATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/json; domain-model=launchdarkly.semanticpatch": {
                "example": {
                    "environmentKey": "production",
                    "instructions": [
                        {"kind": "addRule", "clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}]},
                        {"kind": "addIncludedTargets", "contextKind": "user", "values": ["user-123"]},
                    ],
                }
            },
            "application/json": {"example": [{"op": "replace", "path": "/name", "value": "New name"}]},
        }
    }
}
_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict"}


class _LdError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def _error(status_code: int, message: str) -> JSONResponse:
    code = _CODES.get(status_code, "invalid_request" if status_code < 500 else "internal_server_error")
    return JSONResponse({"code": code, "message": message}, status_code=status_code)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise _LdError(400, f"the request body is not valid JSON: {exc}") from None


async def _run(request: Request, project: str, scope: str, work: Callable[[Principal, Any], Response]) -> Response:
    """Authenticate, check the project, parse the body, run ``work(caller, body)`` in a thread; every failure
    becomes a LaunchDarkly-shaped error."""
    try:
        caller = await principal(request, scope)
        if caller.project_name != project:
            raise _LdError(
                404, f"project {project!r} not found: this API key belongs to project {caller.project_name!r}"
            )
        body = await _json_body(request) if scope == "write" else None
        return await run_in_threadpool(work, caller, body)
    except (_LdError, AuthError) as exc:
        return _error(exc.status_code, exc.message)
    except ServiceError as exc:
        return _error(400 if exc.status_code == 422 else exc.status_code, exc.message)
    except PatchError as exc:
        return _error(400, str(exc))


def _json(data: Any, status_code: int = 200) -> Response:
    return JSONResponse(data, status_code=status_code)


@router.get("/{project}/{environment}", summary="List segments")
async def list_segments(
    request: Request,
    project: str,
    environment: str,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    filter_: Annotated[str | None, Query(alias="filter", description="query:<text>, tags:<a+b>, keys:<k1+k2>")] = None,
    sort: Annotated[str | None, Query(description="key, name, creationDate or lastModifiedDate; - to reverse")] = None,
) -> Response:
    """``{"items": [...], "totalCount": n}``: the project's segments (by key unless ``sort``), ``filter``-ed."""

    def work(caller: Principal, _body: Any) -> Response:
        views = select(service.list_segments(request.app.state.setpoint.ctx, caller.project_id), filter_, sort)
        items = [ld_segment(v, project, environment) for v in views[offset : offset + limit]]
        links = {"self": {"href": f"/api/v2/segments/{project}/{environment}", "type": "application/json"}}
        return _json({"items": items, "totalCount": len(views), "_links": links})

    return await _run(request, project, "read", work)


@router.post("/{project}/{environment}", status_code=201, summary="Create a segment", openapi_extra=_CREATE_BODY)
async def create_segment(request: Request, project: str, environment: str) -> Response:
    """Body ``{"key", "name", "description"?, "tags"?}`` (and optionally ``included``, ``excluded``,
    ``includedContexts``, ``excludedContexts``, ``rules``); 201 with the segment, 409 if the key exists."""

    def work(caller: Principal, body: Any) -> Response:
        doc = doc_from_ld(body)
        view = service.create_segment(request.app.state.setpoint.ctx, caller.project_id, doc, caller.actor)
        return _json(ld_segment(view, project, environment), 201)

    return await _run(request, project, "write", work)


@router.get("/{project}/{environment}/{key}", summary="Get a segment")
async def get_segment(request: Request, project: str, environment: str, key: str) -> Response:
    """One segment; 404 when it does not exist."""

    def work(caller: Principal, _body: Any) -> Response:
        view = service.get_segment(request.app.state.setpoint.ctx, caller.project_id, key)
        return _json(ld_segment(view, project, environment))

    return await _run(request, project, "read", work)


def _instructions(body: Any, environment: str) -> Any:
    if not isinstance(body, dict) or "instructions" not in body:
        raise _LdError(400, 'a semantic patch body is {"environmentKey": ..., "instructions": [...]}')
    env = body.get("environmentKey")
    if env is not None and env != environment:
        raise _LdError(400, f"environmentKey {env!r} does not match the environment in the URL ({environment!r})")
    return body["instructions"]


def _json_patch(ctx: ServiceContext, caller: Principal, key: str, body: Any, project: str, environment: str) -> Any:
    """Apply a JSON Patch to the segment's LaunchDarkly representation and store the result."""
    current = service.get_segment(ctx, caller.project_id, key)
    before = ld_segment(current, project, environment)
    after = apply_json_patch(before, body)
    edited_fields(before, after)
    doc = doc_from_ld({k: v for k, v in after.items() if k in EDITABLE_FIELDS or k == "key"})
    try:
        return service.replace_segment(ctx, caller.project_id, key, doc, caller.actor, current.revision)
    except PreconditionFailedError:
        raise _LdError(409, f"segment {key!r} was changed by someone else meanwhile; fetch it and retry") from None


@router.patch(
    "/{project}/{environment}/{key}",
    summary="Update a segment (semantic patch or JSON Patch)",
    openapi_extra=_PATCH_BODY,
)
async def patch_segment(request: Request, project: str, environment: str, key: str) -> Response:
    """``Content-Type: application/json; domain-model=launchdarkly.semanticpatch`` and
    ``{"environmentKey", "instructions": [{"kind": "addRule", ...}, ...]}`` (all instructions or none apply);
    or, with plain ``application/json``, a JSON Patch of the representation (``[{"op", "path", "value"}]``)."""
    content_type = request.headers.get("content-type", "").replace(" ", "").lower()

    def work(caller: Principal, body: Any) -> Response:
        ctx = request.app.state.setpoint.ctx
        if SEMANTIC_PATCH in content_type:
            instructions = _instructions(body, environment)
            view = service.patch_segment(ctx, caller.project_id, key, instructions, caller.actor)
        else:
            view = _json_patch(ctx, caller, key, body, project, environment)
        return _json(ld_segment(view, project, environment))

    return await _run(request, project, "write", work)


@router.delete("/{project}/{environment}/{key}", status_code=204, summary="Delete a segment")
async def delete_segment(request: Request, project: str, environment: str, key: str) -> Response:
    """204; 409 naming the variables and segments that still use it."""

    def work(caller: Principal, _body: Any) -> Response:
        service.delete_segment(request.app.state.setpoint.ctx, caller.project_id, key, caller.actor)
        return Response(status_code=204)

    return await _run(request, project, "write", work)
