"""Login, logout, the landing redirect and the project switcher."""

from __future__ import annotations

import base64
import hmac
import json
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
from setpoint._server.services.people import roles, sso
from setpoint._server.web import session as sessions
from setpoint._server.web.render import Page, field, page, templates, visible_projects

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "setpoint_login_csrf"


def _sso(request: Request) -> sso.OidcConfig | None:
    return sso.OidcConfig.from_settings(server_state(request).settings)


def _password_login(request: Request) -> bool:
    """Password login is on unless turned off while single sign-on is configured."""
    return server_state(request).settings.password_login or _sso(request) is None


def _login_page(
    request: Request, next_url: str, error: str = "", status_code: int = 200, retry_after: float = 0.0
) -> Response:
    token = secrets.token_urlsafe(24)
    config = _sso(request)
    context: dict[str, object] = {
        "next": next_url,
        "error": error,
        "login_csrf": token,
        "sso_name": config.name if config else "",
        "password_login": _password_login(request),
    }
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
    if not _password_login(request):
        return _login_page(request, next_url, "Password login is turned off here: use single sign-on.", 403)
    state = server_state(request)
    ctx, throttle, address = state.ctx, state.login_throttle, client_address(request)
    wait = await run_in_threadpool(login_throttle.retry_after, ctx, throttle, username, address)
    if wait > 0:
        message = "Too many failed logins for this account or from your address."
        return _login_page(request, next_url, message, 429, retry_after=wait)
    lifetime = sessions.policy(request)[0]
    token = await run_in_threadpool(lambda: sessions.login(ctx, username, password, lifetime=lifetime))
    if token is None:
        delay = await run_in_threadpool(login_throttle.failed, ctx, throttle, username, address)
        return _login_page(request, next_url, "Wrong username or password.", 401, retry_after=delay)
    await run_in_threadpool(login_throttle.succeeded, throttle, username, address)
    response = RedirectResponse(sessions.safe_next(next_url), status_code=303)
    sessions.set_cookie(request, response, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


SSO_COOKIE = "setpoint_sso"
SSO_COOKIE_PATH = "/login/oidc"


@router.get("/login/oidc")
async def sso_begin(request: Request, next: str = "/") -> Response:
    """Send the browser to the identity provider (state, nonce and PKCE verifier kept in a short-lived cookie)."""
    config = _sso(request)
    if config is None:
        return _login_page(request, sessions.safe_next(next), "Single sign-on is not configured here.", 404)
    redirect_uri = str(request.url_for("sso_callback"))
    try:
        flow = await run_in_threadpool(sso.begin, config, redirect_uri)
    except ServiceError as exc:
        return _login_page(request, sessions.safe_next(next), exc.message, exc.status_code)
    response = RedirectResponse(flow.url, status_code=303)
    data = {"s": flow.state, "n": flow.nonce, "v": flow.verifier, "next": sessions.safe_next(next)}
    value = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
    response.set_cookie(
        SSO_COOKIE,
        value,
        max_age=600,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path=SSO_COOKIE_PATH,
    )
    return response


@router.get("/login/oidc/callback", name="sso_callback")
async def sso_callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    """Check what the provider sent back, log the person in (creating them at their first login if allowed)."""
    config = _sso(request)
    try:
        flow = json.loads(base64.urlsafe_b64decode(request.cookies.get(SSO_COOKIE, "")) or b"{}")
    except ValueError:
        flow = {}
    next_url = sessions.safe_next(flow.get("next") if isinstance(flow, dict) else "/")
    if config is None:
        return _login_page(request, next_url, "Single sign-on is not configured here.", 404)
    if error:
        return _login_page(request, next_url, f"The identity provider refused the sign-in: {error[:200]}", 400)
    if not isinstance(flow, dict) or not flow.get("s"):
        return _login_page(request, next_url, "This sign-in expired or was started elsewhere; start again.", 400)
    ctx = server_state(request).ctx
    redirect_uri = str(request.url_for("sso_callback"))

    def _finish() -> int:
        claims = sso.finish(
            config,
            redirect_uri,
            code=code,
            state=state,
            expected_state=str(flow["s"]),
            nonce=str(flow.get("n", "")),
            verifier=str(flow.get("v", "")),
        )
        return sso.login(ctx, config, claims).id

    try:
        person_id = await run_in_threadpool(_finish)
    except ServiceError as exc:
        response = _login_page(request, next_url, exc.message, exc.status_code)
        response.delete_cookie(SSO_COOKIE, path=SSO_COOKIE_PATH)
        return response
    lifetime = sessions.policy(request)[0]
    token = await run_in_threadpool(lambda: sessions.start_session(ctx, person_id, lifetime=lifetime))
    response = RedirectResponse(next_url, status_code=303)
    sessions.set_cookie(request, response, token)
    response.delete_cookie(SSO_COOKIE, path=SSO_COOKIE_PATH)
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
