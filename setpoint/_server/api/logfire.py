"""The Logfire-compatible endpoints, shaped exactly as the Logfire SDK calls them."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from setpoint._server.api.deps import (
    IfMatch,
    is_logfire_client,
    parse_if_match,
    principal,
    project_admin,
    reader,
    server_state,
    writer,
)
from setpoint._server.auth import AuthError, Principal
from setpoint._server.events import EventStream
from setpoint._server.services import types as type_service
from setpoint._server.services import variables as var_service
from setpoint._server.services.models import BulkVariableIn, VariableIn, VariableTypeIn
from setpoint._server.snapshot import MIN_COMPRESSED_SIZE, Encoding, Snapshot

router = APIRouter(prefix="/v1", tags=["logfire-compatible"])

Reader = Annotated[Principal, Depends(reader)]
Writer = Annotated[Principal, Depends(writer)]
Admin = Annotated[Principal, Depends(project_admin)]


def _without_encoding(etag: str) -> str:
    """An ETag as sent with a compressed body (``"...-gzip"``, ``"...-br"``) back to the body's own."""
    for suffix in ('-gzip"', '-br"'):
        if etag.endswith(suffix):
            return etag[: -len(suffix)] + '"'
    return etag


def _etag_matches(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (also with a ``-gzip`` / ``-br`` suffix, as sent compressed)."""
    if header is None:
        return False
    candidates = {c.strip().removeprefix("W/") for c in header.split(",")}
    base = etag[:-1]
    return bool({"*", etag, f'{base}-gzip"', f'{base}-br"'} & candidates)


_IF_NONE_MATCH_DOC = {
    "parameters": [
        {
            "name": "If-None-Match",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "The ETag of the config you hold: 304 and no body when it is still current",
        },
        {
            "name": "since",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "The ETag of the config you hold (Setpoint form): answer with only what changed since "
            '(`{"delta": {"since": ...}, "variables": {...}, "removed": [...], "segments": {...}, '
            '"removed_segments": [...]}`), or with the whole config when that ETag is too old or unknown',
        },
    ]
}


# The hottest endpoint: no FastAPI parameter parsing, the caller is checked by hand (memory only).
@router.get(
    "/variables/",
    summary="The project's variables config (ETag / 304)",
    responses={200: {"description": "A VariablesConfig"}, 304: {"description": "Not modified"}},
    openapi_extra=_IF_NONE_MATCH_DOC,
)
async def get_variables(request: Request) -> Response:
    """Served from the in-memory snapshot; Logfire SDK clients get the Logfire-compatible form. Compressed
    (brotli, else gzip) when the client accepts it; each compressed body is built once per snapshot. With
    ``?since=<ETag>`` (Setpoint SDK) only what changed since that config, when the server still knows it."""
    caller = await principal(request, "read")
    if_none_match = request.headers.get("if-none-match")
    state = server_state(request)
    snapshot: Snapshot | None = state.snapshots.cached(caller.project_id)
    if snapshot is None:
        snapshot = await run_in_threadpool(state.snapshots.get, caller.project_id)
    logfire_client = is_logfire_client(request)
    variant = snapshot.logfire if logfire_client else snapshot.native
    since = None if logfire_client else request.query_params.get("since")
    if since:
        if _etag_matches(since, variant.etag) or _etag_matches(if_none_match, variant.etag):
            return Response(status_code=304, headers={"ETag": variant.etag, "Cache-Control": "no-cache"})
        delta = snapshot.delta(_without_encoding(since.strip().removeprefix("W/")))
        if delta is not None:
            headers = {"ETag": variant.etag, "Cache-Control": "no-cache", "Vary": "User-Agent, Authorization"}
            return Response(content=delta, media_type="application/json", headers=headers)
    plain = variant.ready()
    if plain is None:  # the first full fetch of this snapshot joins its body from the parts
        plain = await run_in_threadpool(variant.build)
    encoding = None
    if len(plain) >= MIN_COMPRESSED_SIZE:
        encoding = choose_encoding(request.headers.get("accept-encoding"))
    etag = variant.etag if encoding is None else f'{variant.etag[:-1]}-{encoding}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "User-Agent, Authorization, Accept-Encoding"}
    if variant.warnings:
        headers["X-Logfire-Warning"] = " | ".join(variant.warnings).encode("ascii", "replace").decode()
    if _etag_matches(if_none_match, variant.etag):
        return Response(status_code=304, headers=headers)
    if encoding is None:
        return Response(content=plain, media_type="application/json", headers=headers)
    body = variant.encoded(encoding)
    if body is None:
        body = await run_in_threadpool(variant.encode, encoding)
    headers["Content-Encoding"] = encoding
    return Response(content=body, media_type="application/json", headers=headers)


def choose_encoding(accept_encoding: str | None) -> Encoding | None:
    """The compression to use for a client's ``Accept-Encoding``: brotli, else gzip, else none."""
    if not accept_encoding:
        return None
    accepted: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        accepted[name.strip().lower()] = quality
    wildcard = accepted.get("*", 0.0)
    if accepted.get("br", wildcard) > 0:
        return "br"
    if accepted.get("gzip", wildcard) > 0:
        return "gzip"
    return None


def _variable_response(view: var_service.VariableView, status_code: int = 200) -> Response:
    return Response(
        content=json.dumps(view.wire),
        status_code=status_code,
        media_type="application/json",
        headers={"ETag": f'"{view.revision}"'},
    )


@router.post("/variables/", status_code=201, summary="Create a variable")
def create_variable(request: Request, body: VariableIn, caller: Writer) -> Response:
    """Create a variable; labels with ``target_type`` version and a value create versions. 409 if it exists."""
    view = var_service.create_variable(server_state(request).ctx, caller.project_id, body, caller.actor)
    return _variable_response(view, 201)


@router.post("/variables/bulk/", summary="Create or replace many variables at once (all or nothing)")
def bulk_upsert_variables(request: Request, body: list[BulkVariableIn], caller: Writer) -> Response:
    """Each item is a ``POST /v1/variables/`` body (``external`` included): absent variables are created,
    present ones replaced, in one transaction. An item without ``labels`` keeps the variable's labels; an item
    with ``revision`` fails the whole request with 412 if the variable changed since. Answers the variables in
    request order."""
    ctx, logfire = server_state(request).ctx, is_logfire_client(request)
    results = var_service.bulk_upsert(ctx, caller.project_id, body, caller.actor, logfire_client=logfire)
    return Response(content=json.dumps([view.wire for view, _ in results]), media_type="application/json")


@router.get("/variables/{name}/", summary="One variable, with its revision as ETag")
def get_variable(request: Request, name: str, caller: Reader) -> Response:
    """A variable's config; its ``ETag`` is the revision to send as ``If-Match`` when changing it."""
    return _variable_response(var_service.get_variable(server_state(request).ctx, caller.project_id, name))


@router.put("/variables/{name}/", summary="Replace a variable")
def put_variable(request: Request, name: str, body: VariableIn, caller: Writer, if_match: IfMatch = None) -> Response:
    """Replace a variable's fields and labels (versions are immutable and kept)."""
    ctx = server_state(request).ctx
    view = var_service.replace_variable(
        ctx,
        caller.project_id,
        name,
        body,
        caller.actor,
        parse_if_match(if_match),
        logfire_client=is_logfire_client(request),
    )
    return _variable_response(view)


@router.delete("/variables/{name}/", status_code=204, summary="Delete a variable")
def delete_variable(request: Request, name: str, caller: Admin, if_match: IfMatch = None) -> Response:
    """Delete a variable with its versions and labels."""
    ctx = server_state(request).ctx
    var_service.delete_variable(ctx, caller.project_id, name, caller.actor, parse_if_match(if_match))
    return Response(status_code=204)


@router.get("/variable-types/", summary="The project's variable types")
def list_variable_types(request: Request, caller: Reader) -> list[dict[str, Any]]:
    """Every variable type (named JSON schema) of the project."""
    types = type_service.list_types(server_state(request).ctx, caller.project_id)
    return [type_service.type_json(t) for t in types]


@router.post(
    "/variable-types/",
    summary="Create or replace a variable type by name",
    responses={201: {"description": "Created"}, 200: {"description": "Replaced"}},
)
def upsert_variable_type(request: Request, response: Response, body: VariableTypeIn, caller: Writer) -> dict[str, Any]:
    """An upsert: 201 when the type was created, 200 when replaced."""
    vtype, created = type_service.upsert_type(server_state(request).ctx, caller.project_id, body, caller.actor)
    response.status_code = 201 if created else 200
    return type_service.type_json(vtype)


@router.get(
    "/variable-updates/",
    summary="Server-Sent Events: one event per change of the project's config",
    response_class=EventStream,
    status_code=200,
)
async def variable_updates(request: Request, caller: Reader) -> EventStream:
    """``data: {"event": "created"|"updated"|"deleted", "name": ...}`` per change; keep-alive comments between.
    The stream ends when the server stops or the key is revoked."""
    state = server_state(request)
    queue = state.hub.subscribe(caller.project_id, caller.key_id, caller.key_hash)
    # Revoked between the authentication and the subscription? (Later revocations end the stream.)
    if not state.keys.is_cached(caller.key_hash) and await run_in_threadpool(state.keys.load, caller.key_hash) is None:
        state.hub.unsubscribe(caller.project_id, queue)
        raise AuthError(401, "invalid or revoked API key; check the key or create a new one")
    # Which server process holds the stream (several share a port with `setpoint serve --workers N`).
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "X-Setpoint-Process": str(os.getpid())}
    return EventStream(state.hub, caller.project_id, queue, headers)
