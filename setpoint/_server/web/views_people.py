"""People (owners), a project's members and protected labels (admins), and the invite / reset links."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from setpoint._server.api.deps import server_state
from setpoint._server.services import audit
from setpoint._server.services.change_requests import service as review_service
from setpoint._server.services.errors import ServiceError
from setpoint._server.services.people import members as member_service
from setpoint._server.services.people import protected, roles
from setpoint._server.services.people import service as people
from setpoint._server.web import session as sessions
from setpoint._server.web.render import Page, field, page, templates, visible_projects
from setpoint._server.web.session import UiSession

router = APIRouter(include_in_schema=False)
Current = Annotated[Page, Depends(page)]
LINK_CSRF_COOKIE = "setpoint_link_csrf"


# --- a project's members and settings ------------------------------------------------------------------------


def _members_page(current: Page, error: str = "", status_code: int = 200) -> Response:
    found = member_service.list_members(current.ctx, current.project.id)
    everyone = people.list_people(current.ctx) if current.can(roles.ADMIN) else []
    member_ids = {m.person.id for m in found}
    candidates = [p for p in everyone if p.active and p.id not in member_ids and not p.is_owner]
    return current.render(
        "members.html",
        status_code,
        members=found,
        candidates=candidates,
        roles=roles.PROJECT_ROLES,
        role_help=roles.WHAT_ROLES_ALLOW,
        review=review_service.get_settings(current.ctx, current.project.id),
        error=error,
        nav="members",
    )


@router.get("/p/{project}/members")
async def members(current: Current) -> Response:
    """The project's members and roles (every member sees them; admins change them)."""
    return await run_in_threadpool(_members_page, current)


@router.post("/p/{project}/members")
async def set_member(current: Current) -> Response:
    """Add a person with a role, or change a member's role (admins)."""
    form = await current.form(roles.ADMIN)
    login, role = field(form, "email").strip(), field(form, "role")
    try:
        member = await run_in_threadpool(
            member_service.set_member, current.ctx, current.project.id, login, role, current.session.actor
        )
    except ServiceError as exc:
        return await run_in_threadpool(_members_page, current, exc.message, exc.status_code)
    return current.redirect("/members", f"{member.person.display_name} is now {member.role}.")


@router.post("/p/{project}/members/{user_id}/remove")
async def remove_member(current: Current, user_id: int) -> Response:
    """Take a person out of the project (admins)."""
    await current.form(roles.ADMIN)
    try:
        member = await run_in_threadpool(
            member_service.remove_member, current.ctx, current.project.id, f"#{user_id}", current.session.actor
        )
    except ServiceError as exc:
        return await run_in_threadpool(_members_page, current, exc.message, exc.status_code)
    return current.redirect("/members", f"Removed {member.person.display_name} from the project.")


@router.post("/p/{project}/protected-labels")
async def set_protected_labels(current: Current) -> Response:
    """Change which labels only admins may move (admins)."""
    form = await current.form(roles.ADMIN)
    try:
        labels = protected.parse(field(form, "labels"))
        await run_in_threadpool(protected.set_protected, current.ctx, current.project.id, labels, current.session.actor)
    except ServiceError as exc:
        return await run_in_threadpool(_members_page, current, exc.message, exc.status_code)
    return current.redirect("/members", "Protected labels: " + (", ".join(labels) or "none") + ".")


@router.get("/p/{project}/audit")
async def project_audit(current: Current) -> Response:
    """The project's audit history (admins), optionally one person's or one variable's."""
    current.require(roles.ADMIN)
    params = current.request.query_params
    person_id = params.get("person", "")
    variable = params.get("variable", "").strip()
    entries = await run_in_threadpool(
        lambda: audit.search(
            current.ctx,
            current.project.id,
            user_id=int(person_id) if person_id.isdigit() else None,
            variable=variable or None,
            limit=200,
        )
    )
    everyone = await run_in_threadpool(people.list_people, current.ctx)
    return current.render(
        "audit.html", entries=entries, people=everyone, person=person_id, variable=variable, nav="audit"
    )


# --- people (owners) -----------------------------------------------------------------------------------------


def _owner(request: Request) -> UiSession:
    ui = sessions.require(request, server_state(request).ctx)
    roles.require(roles.OWNER if ui.user.is_owner else None, roles.OWNER)
    return ui


def _people_page(request: Request, ui: UiSession, status_code: int = 200, **extra: Any) -> Response:
    ctx = server_state(request).ctx
    context = {
        "people": people.list_people(ctx),
        "instance_audit": audit.search(ctx, None, limit=50),
        "projects": visible_projects(ctx, ui),
        "session": ui,
        "csrf_token": ui.csrf_token,
        "role_help": roles.WHAT_ROLES_ALLOW,
        "error": "",
        "link": "",
        "notice": request.query_params.get("notice", "")[:300],
        **extra,
    }
    return templates.TemplateResponse(request, "people.html", context, status_code=status_code)


async def _owner_form(request: Request) -> tuple[UiSession, Any]:
    ui = await run_in_threadpool(_owner, request)
    form = await request.form()
    token = form.get("csrf_token")
    sessions.check_csrf(ui, token if isinstance(token, str) else None)
    return ui, form


@router.get("/people")
async def people_page(request: Request) -> Response:
    """Everyone on this Setpoint (owners): invite, reset passwords, deactivate; the instance events."""
    ui = await run_in_threadpool(_owner, request)
    return await run_in_threadpool(_people_page, request, ui)


@router.post("/people/invite")
async def invite(request: Request) -> Response:
    """Invite a person: the page shows their one-time link this once."""
    ui, form = await _owner_form(request)
    ctx = server_state(request).ctx
    try:
        link = await run_in_threadpool(people.invite, ctx, field(form, "email"), field(form, "name"), ui.actor)
    except ServiceError as exc:
        return await run_in_threadpool(_people_page, request, ui, exc.status_code, error=exc.message)
    url = str(request.base_url).rstrip("/") + link.path
    response = await run_in_threadpool(
        _people_page, request, ui, link=url, link_for=link.person.username, link_expires=link.expires_at
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/people/{user_id}/{action}")
async def person_action(request: Request, user_id: int, action: str) -> Response:
    """``deactivate``, ``reactivate``, ``reset`` (a new password link), ``owner`` / ``not-owner``."""
    ui, _form = await _owner_form(request)
    ctx = server_state(request).ctx
    login = f"#{user_id}"
    try:
        if action == "reset":
            link = await run_in_threadpool(people.reset_password, ctx, login, ui.actor)
            url = str(request.base_url).rstrip("/") + link.path
            response = await run_in_threadpool(
                _people_page, request, ui, link=url, link_for=link.person.username, link_expires=link.expires_at
            )
            response.headers["Cache-Control"] = "no-store"
            return response
        if action == "deactivate":
            person = await run_in_threadpool(people.deactivate, ctx, login, ui.actor)
            notice = f"Deactivated {person.display_name}: their sessions and API keys ended."
        elif action == "reactivate":
            person = await run_in_threadpool(people.reactivate, ctx, login, ui.actor)
            notice = f"Reactivated {person.display_name}."
        elif action in ("owner", "not-owner"):
            person = await run_in_threadpool(people.set_owner, ctx, login, action == "owner", ui.actor)
            notice = f"{person.display_name} is {'now' if person.is_owner else 'no longer'} an owner."
        else:
            return await run_in_threadpool(_people_page, request, ui, 404, error=f"unknown action {action!r}")
    except ServiceError as exc:
        return await run_in_threadpool(_people_page, request, ui, exc.status_code, error=exc.message)
    return RedirectResponse("/people?notice=" + notice.replace(" ", "+"), status_code=303)


# --- your own sessions -------------------------------------------------------------------------------------


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hour(s)"
    return f"{seconds // 60} minute(s)" if seconds % 60 == 0 else f"{seconds} seconds"


def _sessions_page(request: Request, ui: UiSession, notice: str = "") -> Response:
    ctx = server_state(request).ctx
    absolute, idle = sessions.policy(request)
    context = {
        "sessions": sessions.list_own(ctx, ui),
        "current_id": ui.session_id,
        "session": ui,
        "csrf_token": ui.csrf_token,
        "idle": _duration(idle),
        "absolute": _duration(absolute),
        "notice": notice or request.query_params.get("notice", "")[:300],
    }
    return templates.TemplateResponse(request, "sessions.html", context)


@router.get("/sessions")
async def my_sessions(request: Request) -> Response:
    """Your sessions (where you are logged in), with a button to end each."""
    ctx = server_state(request).ctx
    ui = await run_in_threadpool(sessions.require, request, ctx)
    return await run_in_threadpool(_sessions_page, request, ui)


@router.post("/sessions/{which}/revoke")
async def revoke_session(request: Request, which: str) -> Response:
    """End one of your sessions (``others``: every one but this)."""
    ctx = server_state(request).ctx
    ui = await run_in_threadpool(sessions.require, request, ctx)
    form = await request.form()
    token = form.get("csrf_token")
    sessions.check_csrf(ui, token if isinstance(token, str) else None)
    target = None if which == "others" else int(which) if which.isdigit() else -1
    count = await run_in_threadpool(sessions.revoke_own, ctx, ui, target)
    if target == ui.session_id:
        response = RedirectResponse("/login", status_code=303)
        sessions.clear_cookie(response)
        return response
    return RedirectResponse(f"/sessions?notice=Ended+{count}+session(s).", status_code=303)


# --- invite and reset links (no login) -----------------------------------------------------------------------


def _link_page(request: Request, token: str, error: str = "", status_code: int = 200) -> Response:
    ctx = server_state(request).ctx
    try:
        invite_row, person = people.open_link(ctx, token)
    except ServiceError as exc:
        context = {"message": exc.message, "status": exc.status_code}
        return templates.TemplateResponse(request, "error.html", context, status_code=exc.status_code)
    csrf = secrets.token_urlsafe(24)
    context = {"person": person, "purpose": invite_row.purpose, "error": error, "link_csrf": csrf, "token": token}
    response = templates.TemplateResponse(request, "invite.html", context, status_code=status_code)
    response.set_cookie(LINK_CSRF_COOKIE, csrf, httponly=True, samesite="strict", path="/invite")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.get("/invite/{token}")
async def open_link(request: Request, token: str) -> Response:
    """The page where an invited person (or one resetting) chooses their password."""
    return await run_in_threadpool(_link_page, request, token)


@router.post("/invite/{token}")
async def accept_link(
    request: Request,
    token: str,
    password: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    link_csrf: Annotated[str, Form()] = "",
) -> Response:
    """Set the password, use up the link and log the person in."""
    expected = request.cookies.get(LINK_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), link_csrf.encode()):
        return await run_in_threadpool(_link_page, request, token, "This form expired; please try again.", 400)
    if password != confirm:
        return await run_in_threadpool(_link_page, request, token, "The two passwords differ.", 422)
    ctx = server_state(request).ctx
    try:
        person = await run_in_threadpool(people.accept_link, ctx, token, password, name)
    except ServiceError as exc:
        if exc.status_code == 422:
            return await run_in_threadpool(_link_page, request, token, exc.message, 422)
        context = {"message": exc.message, "status": exc.status_code}
        return templates.TemplateResponse(request, "error.html", context, status_code=exc.status_code)
    lifetime = sessions.policy(request)[0]
    session_token = await run_in_threadpool(lambda: sessions.start_session(ctx, person.id, lifetime=lifetime))
    response = RedirectResponse("/", status_code=303)
    sessions.set_cookie(request, response, session_token)
    response.delete_cookie(LINK_CSRF_COOKIE, path="/invite")
    return response
