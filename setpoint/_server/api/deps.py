"""Shared request helpers: the server state, the caller, ``If-Match`` parsing."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import Header, Path, Request
from pydantic import BeforeValidator
from starlette.concurrency import run_in_threadpool

from setpoint._server.auth import (
    KeyCache,
    Principal,
    authenticate_hash,
    require_role,
    require_scope,
    token_from_header,
)
from setpoint._server.security import hash_token
from setpoint._server.services.errors import InvalidError
from setpoint._server.services.input_limits import DB_INT_MAX
from setpoint._server.services.people.roles import ADMIN, EDITOR, VIEWER
from setpoint._server.state import ServerState

_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_datetime(value: object) -> object:
    if isinstance(value, str) and not _ISO_DATETIME.match(value):
        raise ValueError("give an ISO 8601 date and time with a zone, e.g. 2026-11-30T08:00:00Z")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_datetime)]
"""A time in a query: ISO 8601 text only (pydantic alone would also read a number as a Unix time)."""

VersionNumber = Annotated[int, Path(ge=1, le=DB_INT_MAX, description="A version number of the variable")]
"""A version number in a path (bounded like every stored integer: 422 beyond :data:`DB_INT_MAX`)."""
KeyId = Annotated[int, Path(ge=1, le=DB_INT_MAX, description="The id of an API key")]
"""An API key id in a path."""
IF_MATCH_PATTERN = r'^\s*(\*|(W/)?"?[0-9]{1,10}"?)\s*$'
"""What ``If-Match`` accepts: the ETag of the resource (``"3"``, ``W/"3"``, ``3``) or ``*``."""
IfMatch = Annotated[
    str | None,
    Header(
        pattern=IF_MATCH_PATTERN,
        description='The ETag (revision) you read, e.g. `"3"`: the write is refused with 412 when it is stale',
    ),
]
"""The optional ``If-Match`` header of every write (one definition, so the OpenAPI document is uniform)."""


def server_state(request: Request) -> ServerState:
    """The app's :class:`ServerState`."""
    state: ServerState = request.app.state.setpoint
    return state


async def principal(request: Request, scope: str, role: str | None = None) -> Principal:
    """The authenticated caller, checked for ``scope`` and ``role`` (default: editor to write, viewer to read);
    memory only unless the key is not cached yet."""
    keys: KeyCache = server_state(request).keys
    token_hash = hash_token(token_from_header(request.headers.get("authorization")))
    found = keys.cached(token_hash)
    if found is None:
        found = await run_in_threadpool(authenticate_hash, keys, token_hash)
    require_scope(found, scope)
    require_role(found, role or (EDITOR if scope == "write" else VIEWER))
    return found


async def reader(request: Request) -> Principal:
    """Dependency: a caller with the ``read`` scope."""
    return await principal(request, "read")


async def writer(request: Request) -> Principal:
    """Dependency: a caller with the ``write`` scope."""
    return await principal(request, "write")


async def project_admin(request: Request) -> Principal:
    """Dependency: a caller with the ``write`` scope whose role is ``admin`` (keys, members, settings, delete)."""
    return await principal(request, "write", ADMIN)


def parse_if_match(value: str | None) -> int | None:
    """The revision in an ``If-Match`` header (``"3"``, ``3`` or ``W/"3"``); None when absent or ``*``."""
    if value is None or value.strip() in ("", "*"):
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or not text.isascii() or int(text) > DB_INT_MAX:
        raise InvalidError(f"If-Match {value!r} is not a revision; send the ETag of GET /v1/variables/<name>/")
    return int(text)


def is_logfire_client(request: Request) -> bool:
    """Whether the caller is the Logfire SDK (its User-Agent starts with ``logfire/``)."""
    return request.headers.get("user-agent", "").lower().startswith("logfire/")
