"""Login, logout, the landing redirect and the project switcher."""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from setpoint._server.api.deps import server_state
from setpoint._server.services import keys as key_service
from setpoint._server.services import login_throttle
from setpoint._server.services.errors import ServiceError
from setpoint._server.web import session as sessions
from setpoint._server.web.render import Page, field, page, templates

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "setpoint_login_csrf"


def _login_page(
    request: Request, next_url: str, error: str = "", status_code: int = 200, retry_after: float = 0.0
) -> Response:
    token = secrets.token_urlsafe(24)
    context: dict[str, object] = {"next": next_url, "error": error, "login_csrf": token}
    headers: dict[str, str] = {}
    if retry_after > 0:
        wait = login_throttle.seconds(retry_after)
        at = datetime.now(UTC) + timedelta(seconds=wait)
        context["retry_after"] = wait
        context["retry_at"] = at.strftime("%H:%M:%S UTC")
        headers["Retry-After"] = str(wait)
    response = templates.TemplateResponse(request, "login.html", context, status_code=status_code, headers=headers)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login", secure=request.url.scheme == "https"
    )
    return response


def client_address(request: Request) -> str:
    """The caller's address: the proxy's ``X-Forwarded-For`` when the request came through a proxy in
    ``--forwarded-allow-ips`` (uvicorn applies it), else the peer's address."""
    return request.client.host if request.client is not None else "unknown"


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    """The login page."""
    return _login_page(request, sessions.safe_next(next))


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next_url: Annotated[str, Form(alias="next")] = "/",
    login_csrf: Annotated[str, Form()] = "",
) -> Response:
    """Check the credentials, start a session and go where the user was going."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), login_csrf.encode()):
        return _login_page(request, next_url, "Your login form expired; please try again.", 400)
    state = server_state(request)
    ctx, throttle, address = state.ctx, state.login_throttle, client_address(request)
    wait = await run_in_threadpool(login_throttle.retry_after, ctx, throttle, username, address)
    if wait > 0:
        message = "Too many failed logins for this account or from your address."
        return _login_page(request, next_url, message, 429, retry_after=wait)
    token = await run_in_threadpool(sessions.login, ctx, username, password)
    if token is None:
        delay = await run_in_threadpool(login_throttle.failed, ctx, throttle, username, address)
        return _login_page(request, next_url, "Wrong username or password.", 401, retry_after=delay)
    login_throttle.succeeded(throttle, username, address)
    response = RedirectResponse(sessions.safe_next(next_url), status_code=303)
    sessions.set_cookie(request, response, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (CSRF-checked) and go back to the login page."""
    ctx = server_state(request).ctx
    ui = await run_in_threadpool(sessions.require, request, ctx)
    form = await request.form()
    token = form.get("csrf_token")
    sessions.check_csrf(ui, token if isinstance(token, str) else None)
    await run_in_threadpool(sessions.logout, ctx, request.cookies.get(sessions.COOKIE))
    response = RedirectResponse("/login", status_code=303)
    sessions.clear_cookie(response)
    return response


def _first_project(request: Request) -> str | None:
    ctx = server_state(request).ctx
    sessions.require(request, ctx)
    with ctx.storage.read() as tx:
        projects = tx.list_projects()
    return projects[0].name if projects else None


@router.get("/")
async def home(request: Request) -> Response:
    """The first project's variables (or the project page when there is none)."""
    name = await run_in_threadpool(_first_project, request)
    target = f"/p/{quote(name, safe='')}/variables" if name else "/projects"
    return RedirectResponse(target, status_code=303)


@router.get("/projects")
async def projects(request: Request) -> Response:
    """Every project, and a form to create one."""
    ctx = server_state(request).ctx
    ui = await run_in_threadpool(sessions.require, request, ctx)
    chosen = request.query_params.get("project")
    if chosen:  # the project switcher without JavaScript
        return RedirectResponse(f"/p/{quote(chosen, safe='')}/variables", status_code=303)
    with ctx.storage.read() as tx:
        found = tx.list_projects()
    context = {"projects": found, "csrf_token": ui.csrf_token, "session": ui, "error": ""}
    return templates.TemplateResponse(request, "projects.html", context)


@router.post("/projects")
async def create_project(request: Request) -> Response:
    """Create a project and open it."""
    ctx = server_state(request).ctx
    ui = await run_in_threadpool(sessions.require, request, ctx)
    form = await request.form()
    token = form.get("csrf_token")
    sessions.check_csrf(ui, token if isinstance(token, str) else None)
    name = field(form, "name").strip()
    try:
        await run_in_threadpool(key_service.ensure_project, ctx, name, ui.actor)
    except ServiceError as exc:
        with ctx.storage.read() as tx:
            found = tx.list_projects()
        context = {"projects": found, "csrf_token": ui.csrf_token, "session": ui, "error": exc.message}
        return templates.TemplateResponse(request, "projects.html", context, status_code=exc.status_code)
    return RedirectResponse(f"/p/{quote(name, safe='')}/variables", status_code=303)


@router.get("/p/{project}")
async def project_home(current: Annotated[Page, Depends(page)]) -> Response:
    """A project's landing page is its variables list."""
    return current.redirect("/variables")
