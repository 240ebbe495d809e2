"""The web UI (server-rendered Jinja2 pages, a small JS file of our own, no build step) and the management
API routers it shares its service functions with. :func:`install` adds both to the server app."""

from __future__ import annotations

import inspect
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse, RedirectResponse, Response

from setpoint._server.api import api_keys
from setpoint._server.api import editing as editing_api
from setpoint._server.services.errors import ServiceError
from setpoint._server.web import (
    views_auth,
    views_change_requests,
    views_people,
    views_project,
    views_schedules,
    views_segments,
    views_targeting,
    views_usage,
    views_variables,
    views_webhooks,
)
from setpoint._server.web.headers import UiSecurityHeaders
from setpoint._server.web.messages import for_ui
from setpoint._server.web.render import templates
from setpoint._server.web.session import CsrfError, LoginRequiredError

STATIC_DIR = Path(__file__).parent / "static"
_INSTALLED = "setpoint_web_installed"


def _is_ui(request: Request) -> bool:
    path = request.url.path
    return not (path.startswith("/v1/") or path.startswith("/ofrep/") or path.startswith("/api/"))


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequiredError)
    return RedirectResponse("/login?next=" + quote(exc.next_url), status_code=303)


async def _csrf_failed(request: Request, exc: Exception) -> Response:
    message = "This form was sent without a valid security token (CSRF). Reload the page and try again."
    return templates.TemplateResponse(request, "error.html", {"message": message, "status": 403}, status_code=403)


async def _favicon() -> Response:
    """The tab icon (our own SVG; browsers ask for /favicon.ico whatever the page links), public and cached."""
    return FileResponse(
        STATIC_DIR / "favicon.svg", media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )


def _serves(app: FastAPI, router: APIRouter) -> bool:
    """Whether ``app`` already includes ``router`` (as an included router, or as copies of its routes)."""
    served = {getattr(route, "endpoint", None) for route in app.router.routes}
    included = {id(getattr(route, "original_router", None)) for route in app.router.routes}
    return id(router) in included or any(getattr(route, "endpoint", None) in served for route in router.routes)


def install(app: FastAPI) -> None:
    """Add the web UI to ``app``, and the management API routers if the app does not serve them yet
    (idempotent)."""
    if getattr(app.state, _INSTALLED, False):
        return
    setattr(app.state, _INSTALLED, True)
    for api_router in (editing_api.router, api_keys.router):
        if not _serves(app, api_router):
            app.include_router(api_router)
    for router in (
        views_auth.router,
        views_variables.router,
        views_targeting.router,
        views_segments.router,
        views_project.router,
        views_usage.router,
        views_people.router,
        views_change_requests.router,
        views_webhooks.router,
        views_schedules.router,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.add_api_route("/favicon.ico", _favicon, methods=["GET", "HEAD"], include_in_schema=False)
    json_handler = app.exception_handlers.get(ServiceError)

    async def service_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        if _is_ui(request) or json_handler is None:
            context = {"message": for_ui(exc.message), "status": exc.status_code}
            return templates.TemplateResponse(request, "error.html", context, status_code=exc.status_code)
        result = json_handler(request, exc)
        if inspect.isawaitable(result):
            result = await result
        assert isinstance(result, Response)
        return result

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(LoginRequiredError, _login_required)
    app.add_exception_handler(CsrfError, _csrf_failed)
    app.add_middleware(UiSecurityHeaders)
