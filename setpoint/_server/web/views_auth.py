"""Login, logout, the landing redirect and the project switcher."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from setpoint._server.api.deps import server_state
from setpoint._server.services import keys as key_service
from setpoint._server.services.errors import ServiceError
from setpoint._server.services.people import roles
from setpoint._server.web import session as sessions
from setpoint._server.web.render import Page, field, page, templates, visible_projects

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "setpoint_login_csrf"


def _login_page(request: Request, next_url: str, error: str = "", status_code: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    context = {"next": next_url, "error": error, "login_csrf": token}
    response = templates.TemplateResponse(request, "login.html", context, status_code=status_code)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login")
    return response


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
    ctx = server_state(request).ctx
    lifetime = sessions.policy(request)[0]
    token = await run_in_threadpool(lambda: sessions.login(ctx, username, password, lifetime=lifetime))
    if token is None:
        return _login_page(request, next_url, "Wrong username or password.", 401)
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
    ui = sessions.require(request, ctx)
    projects = visible_projects(ctx, ui)
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
    found = await run_in_threadpool(visible_projects, ctx, ui)
    context = {"projects": found, "csrf_token": ui.csrf_token, "session": ui, "error": ""}
    return templates.TemplateResponse(request, "projects.html", context)


@router.post("/projects")
async def create_project(request: Request) -> Response:
    """Create a project and open it (owners)."""
    ctx = server_state(request).ctx
    ui = await run_in_threadpool(sessions.require, request, ctx)
    form = await request.form()
    token = form.get("csrf_token")
    sessions.check_csrf(ui, token if isinstance(token, str) else None)
    name = field(form, "name").strip()
    try:
        roles.require(roles.OWNER if ui.user.is_owner else None, roles.OWNER)
        await run_in_threadpool(key_service.ensure_project, ctx, name, ui.actor)
    except ServiceError as exc:
        found = await run_in_threadpool(visible_projects, ctx, ui)
        context = {"projects": found, "csrf_token": ui.csrf_token, "session": ui, "error": exc.message}
        return templates.TemplateResponse(request, "projects.html", context, status_code=exc.status_code)
    return RedirectResponse(f"/p/{quote(name, safe='')}/variables", status_code=303)


@router.get("/p/{project}")
async def project_home(current: Annotated[Page, Depends(page)]) -> Response:
    """A project's landing page is its variables list."""
    return current.redirect("/variables")
