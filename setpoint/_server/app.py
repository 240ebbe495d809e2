"""The ASGI application factory."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from setpoint._server import api
from setpoint._server.api import change_requests as change_requests_api
from setpoint._server.api._openapi import finish as finish_openapi
from setpoint._server.auth import AuthError
from setpoint._server.events import RAW_SEND
from setpoint._server.middleware import AllowHeader, BodySizeLimit, InputGuard
from setpoint._server.services.change_requests import review
from setpoint._server.services.errors import ServiceError
from setpoint._server.settings import Settings
from setpoint._server.state import ServerState
from setpoint._server.storage import AlreadyExistsError, StaleRevisionError, Storage, open_storage


def _error(
    status_code: int, detail: str, errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status_code, headers=headers)


async def _service_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return _error(exc.status_code, exc.message, exc.errors)


async def _storage_conflict(_request: Request, exc: Exception) -> JSONResponse:
    return _error(409, f"{exc}: someone changed it at the same time; fetch it again and retry")


async def _auth_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    if exc.status_code == 401:
        return _error(401, exc.message, headers={"WWW-Authenticate": "Bearer"})
    return _error(exc.status_code, exc.message)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": ".".join(str(p) for p in err.get("loc", ())), "msg": str(err.get("msg", ""))} for err in exc.errors()
    ]
    summary = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:10])
    message = f"invalid request: {summary}"
    # Each API family answers in its own error shape (see api/_openapi.py).
    if request.url.path.startswith("/api/"):
        return JSONResponse({"code": "invalid_request", "message": message}, status_code=400)
    if request.url.path.startswith(("/ofrep/", "/v1/ofrep/")):
        return JSONResponse({"errorCode": "INVALID_CONTEXT", "errorDetails": message}, status_code=400)
    return _error(422, message, errors)


_FIRST_ROUTERS = ("health", "logfire", "manage")


def api_routers() -> list[APIRouter]:
    """Every ``router`` of the modules in ``setpoint._server.api`` (the core ones first, then by name), so a
    new API module is served by adding its file."""
    names = sorted(m.name for m in pkgutil.iter_modules(api.__path__) if not m.name.startswith("_"))
    ordered = [n for n in _FIRST_ROUTERS if n in names] + [n for n in names if n not in _FIRST_ROUTERS]
    routers: list[APIRouter] = []
    for name in ordered:
        router = getattr(importlib.import_module(f"{api.__name__}.{name}"), "router", None)
        if isinstance(router, APIRouter):
            routers.append(router)
    return routers


def _document_bearer_auth(app: FastAPI) -> None:
    """Declare ``Authorization: bearer <api key>`` in the OpenAPI document (checked in ``api/deps.py``)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes["apiKey"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key of one project (`setpoint keys create --project NAME --scopes read,write`)",
            }
            for path, operations in schema.get("paths", {}).items():
                if path.startswith(("/v1/", "/api/", "/ofrep/v1/evaluate/")) and not path.endswith("/configuration"):
                    for operation in operations.values():
                        operation.setdefault("security", [{"apiKey": []}])
            app.openapi_schema = finish_openapi(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _install_web_ui(app: FastAPI) -> None:
    """Add the server-rendered web UI (``setpoint._server.web``), which shares the port with the API."""
    from setpoint._server.web import install

    install(app)


class SetpointApp(FastAPI):
    """FastAPI, keeping the ASGI server's own ``send`` in the scope (`events.RAW_SEND`): SSE streams write
    their events with it, past the middleware wrappers (thousands of streams per event)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[RAW_SEND] = send
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, storage: Storage | None = None) -> FastAPI:
    """The Setpoint server app. Opens (and, unless told not to, migrates) the database."""
    settings = settings or Settings()
    from setpoint._server.services.people.sso import OidcConfig

    OidcConfig.from_settings(settings)  # a half or malformed SSO configuration fails at start, saying what to fix
    if storage is None:
        storage = open_storage(settings.effective_database_url)
    if settings.migrate_on_start:
        storage.migrate()
    state = ServerState.create(settings, storage)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.hub.bind(asyncio.get_running_loop())
        await asyncio.to_thread(state.start)
        try:
            yield
        finally:
            await asyncio.to_thread(state.stop)

    app = SetpointApp(
        title="Setpoint",
        summary="Managed variables: typed, versioned runtime configuration (Logfire-compatible API)",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.setpoint = state
    _document_bearer_auth(app)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(AuthError, _auth_error)
    app.add_exception_handler(StaleRevisionError, _storage_conflict)
    app.add_exception_handler(AlreadyExistsError, _storage_conflict)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(review.ReviewRequired, change_requests_api.review_required_handler)
    app.add_exception_handler(review.RequestOpened, change_requests_api.request_opened_handler)
    for router in api_routers():
        app.include_router(router)
    _install_web_ui(app)
    app.add_middleware(AllowHeader)
    app.add_middleware(InputGuard)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)  # outermost: before InputGuard buffers
    return app
