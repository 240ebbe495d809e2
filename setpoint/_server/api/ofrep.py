"""OFREP endpoints: ``POST /ofrep/v1/evaluate/flags/{key}``, bulk ``POST /ofrep/v1/evaluate/flags`` (ETag /
``If-None-Match`` -> 304) and ``GET /ofrep/v1/configuration``, each also served under ``/v1/ofrep/v1/...`` (the
paths Logfire documents). Evaluated on the server from the project's in-memory config snapshot (see
`setpoint._server.services.ofrep` for the mapping).

Auth: ``Authorization: Bearer <api key>`` (or the bare key), or ``X-API-Key: <api key>``; scope ``read`` (every
variable) or ``read_external`` (only variables marked external: the others answer as if they did not exist).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from setpoint._core.evaluator import CompiledConfig
from setpoint._server.api.deps import server_state
from setpoint._server.auth import (
    AuthError,
    Principal,
    authenticate_hash,
    require_role,
    require_scope,
    token_from_header,
)
from setpoint._server.security import hash_token
from setpoint._server.services import ofrep
from setpoint._server.services.keys import READ_EXTERNAL
from setpoint._server.services.people.roles import VIEWER

_routes = APIRouter()

_CONTEXT_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "context": {
                            "type": ["object", "null"],
                            "description": "targetingKey plus attributes",
                            "properties": {"targetingKey": {"type": ["string", "null"]}},
                            "additionalProperties": True,
                        }
                    },
                },
                "example": {"context": {"targetingKey": "user-123", "plan": "pro"}},
            }
        }
    }
}


async def _caller(request: Request) -> Principal:
    api_key = request.headers.get("x-api-key")
    token = api_key.strip() if api_key else token_from_header(request.headers.get("authorization"))
    keys = server_state(request).keys
    token_hash = hash_token(token)
    found = keys.cached(token_hash)
    if found is None:
        found = await run_in_threadpool(authenticate_hash, keys, token_hash)
    if READ_EXTERNAL not in found.scopes:
        require_scope(found, "read")
    require_role(found, VIEWER)  # a key of someone who left the project evaluates nothing
    return found


async def _compiled_for(request: Request) -> tuple[CompiledConfig, bool]:
    """The caller's compiled config, and whether the caller may see only external variables."""
    caller = await _caller(request)
    state = server_state(request)
    snapshot = state.snapshots.cached(caller.project_id)
    if snapshot is None:
        snapshot = await run_in_threadpool(state.snapshots.get, caller.project_id)
    compiled = snapshot.compiled_ready()
    if compiled is None:  # the first evaluation of this snapshot compiles what changed since the last one
        compiled = await run_in_threadpool(snapshot.compiled)
    return compiled, "read" not in caller.scopes


def _auth_error(exc: AuthError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse({"errorDetails": exc.message}, status_code=exc.status_code, headers=headers)


@_routes.post("/evaluate/flags/{key}", summary="OFREP single flag evaluation", openapi_extra=_CONTEXT_BODY)
async def evaluate_flag(request: Request, key: str) -> Response:
    """Evaluate one variable for ``{"context": {"targetingKey": ..., ...attributes}}``."""
    try:
        compiled, external_only = await _compiled_for(request)
    except AuthError as exc:
        return _auth_error(exc)
    try:
        context = ofrep.parse(await request.body())
    except ofrep.ContextError as exc:
        return JSONResponse({"key": key, "errorCode": exc.code, "errorDetails": exc.details}, status_code=400)
    status_code, body = await run_in_threadpool(
        ofrep.evaluate_flag, compiled, key, context, external_only=external_only
    )
    return JSONResponse(body, status_code=status_code)


def _etag_matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    return any(c.strip().removeprefix("W/") in (etag, "*") for c in header.split(","))


def _bulk_body(compiled: CompiledConfig, context: ofrep.Context, external_only: bool) -> bytes:
    answer: dict[str, Any] = ofrep.evaluate_all(compiled, context, external_only=external_only)
    return json.dumps(answer, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


@_routes.post(
    "/evaluate/flags",
    summary="OFREP bulk evaluation (ETag / If-None-Match)",
    openapi_extra=_CONTEXT_BODY,
    responses={304: {"description": "Not modified: the answer's ETag is in If-None-Match"}},
)
async def evaluate_flags(request: Request, if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """Evaluate every variable of the project; 304 when ``If-None-Match`` has the answer's ETag."""
    try:
        compiled, external_only = await _compiled_for(request)
    except AuthError as exc:
        return _auth_error(exc)
    try:
        context = ofrep.parse(await request.body())
    except ofrep.ContextError as exc:
        return JSONResponse({"errorCode": exc.code, "errorDetails": exc.details}, status_code=400)
    body = await run_in_threadpool(_bulk_body, compiled, context, external_only)
    etag = ofrep.bulk_etag(body)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if _etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@_routes.get("/configuration", summary="OFREP provider configuration")
async def configuration() -> dict[str, Any]:
    """What this server supports (OFREP extension): every flag type, bulk polling."""
    return {
        "name": "Setpoint",
        "capabilities": {
            "cacheInvalidation": {"polling": {"enabled": True, "minPollingIntervalMs": 1000}},
            "flagEvaluation": {"supportedTypes": ["int", "float", "string", "boolean", "object"]},
        },
    }


router = APIRouter()
router.include_router(_routes, prefix="/ofrep/v1", tags=["OFREP"])
router.include_router(_routes, prefix="/v1/ofrep/v1", tags=["OFREP"])
