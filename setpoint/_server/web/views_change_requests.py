"""Change requests in the web UI: the project's request list, a request's page (its diff, comments and the
approve / reject / apply / withdraw / refresh buttons its viewer may use), and the review settings (admins,
on the Members page)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from setpoint._server.services import audit
from setpoint._server.services.change_requests import service as cr
from setpoint._server.services.errors import ServiceError
from setpoint._server.services.people import roles
from setpoint._server.storage.change_requests import (
    ACTIVE,
    APPROVED,
    OPEN,
    STALE,
    STATES,
    ChangeRequest,
    ReviewSettings,
)
from setpoint._server.web import views_schedules
from setpoint._server.web.render import Page, field, page

router = APIRouter(include_in_schema=False)
Current = Annotated[Page, Depends(page)]


def _list_page(current: Page, state: str) -> Response:
    states = (state,) if state in STATES else ACTIVE if state == "" else ()
    found = cr.list_requests(current.ctx, current.project.id, states)
    return current.render("change_requests.html", requests=found, state=state, states=STATES, nav="change_requests")


@router.get("/p/{project}/change-requests")
async def change_requests(current: Current) -> Response:
    """The project's requests: waiting ones first (open, approved, stale), any state on request."""
    state = current.request.query_params.get("state", "")
    return await run_in_threadpool(_list_page, current, state if state in (*STATES, "all") else "")


def diff_parts(request: ChangeRequest) -> list[tuple[str, list[str]]]:
    """The request's diff as the history pages show changes: one unified diff per part."""
    diff = request.diff
    parts: list[tuple[str, list[str]]] = []
    for name, change in (diff.get("labels") or {}).items():
        parts.append((f"Label {name}", audit.change_lines(change["before"], change["after"], context=3)))
    if "rollout" in diff:
        parts.append(("Default rollout", audit.change_lines(diff["rollout"]["before"], diff["rollout"]["after"], 3)))
    if "overrides" in diff:
        parts.append(("Override rules", audit.change_lines(diff["overrides"]["before"], diff["overrides"]["after"], 3)))
    return parts


def _request_page(current: Page, request_id: int, error: str = "", status_code: int = 200) -> Response:
    request, comments = cr.get_request(current.ctx, current.project.id, request_id)
    settings = cr.get_settings(current.ctx, current.project.id)
    with current.ctx.storage.read() as tx:
        need = cr.approver_role_for(tx, request)
    mine = cr.same_person(current.session.actor, request.author)
    reviewer = not mine and current.can(need) and current.can(roles.EDITOR)
    actions: dict[str, bool] = {
        "approve": reviewer and request.state == OPEN,
        "reject": reviewer and request.state in (OPEN, APPROVED, STALE),
        "apply": request.state == APPROVED and current.can(roles.EDITOR) and (mine or reviewer),
        "withdraw": mine and request.state in (OPEN, APPROVED, STALE),
        "refresh": mine and current.can(roles.EDITOR) and request.state in (OPEN, APPROVED, STALE),
    }
    return current.render(
        "change_request.html",
        status_code,
        req=request,
        comments=comments,
        parts=diff_parts(request),
        actions=actions,
        settings=settings,
        approver_role=need,
        mine=mine,
        error=error,
        nav="change_requests",
    )


@router.get("/p/{project}/change-requests/{request_id}")
async def change_request(current: Current, request_id: int) -> Response:
    """One request: what it changes, who reviewed it, comments, and the buttons for what you may do."""
    return await run_in_threadpool(_request_page, current, request_id)


_DONE = {
    "approve": "Approved.",
    "approve_apply": "Approved and applied.",
    "reject": "Rejected.",
    "apply": "Applied.",
    "withdraw": "Withdrawn.",
    "refresh": "Refreshed: based on the current state again; it needs a new approval.",
    "comment": "Comment added.",
    "schedule_apply": "Its apply is scheduled: it runs at the time you chose (see Scheduled).",
}


@router.post("/p/{project}/change-requests/{request_id}/{action}")
async def act(current: Current, request_id: int, action: str) -> Response:
    """Approve, reject, apply, withdraw, refresh, comment or schedule the apply (each checks the role and the
    state)."""
    form = await current.form(roles.VIEWER if action == "comment" else roles.EDITOR)
    comment = field(form, "comment")
    actor = current.session.actor
    ctx, pid = current.ctx, current.project.id
    calls: dict[str, Any] = {
        "approve": lambda: cr.approve(ctx, pid, request_id, actor, comment=comment),
        "approve_apply": lambda: cr.approve(ctx, pid, request_id, actor, comment=comment, apply=True),
        "reject": lambda: cr.reject(ctx, pid, request_id, actor, comment=comment),
        "apply": lambda: cr.apply_request(ctx, pid, request_id, actor),
        "withdraw": lambda: cr.withdraw(ctx, pid, request_id, actor),
        "refresh": lambda: cr.refresh(ctx, pid, request_id, actor),
        "comment": lambda: cr.add_comment(ctx, pid, request_id, actor, comment),
        "schedule_apply": lambda: views_schedules.schedule_apply(current, form, request_id),
    }
    call = calls.get(action)
    if call is None:
        return await run_in_threadpool(_request_page, current, request_id, f"unknown action {action!r}", 404)
    try:
        await run_in_threadpool(call)
    except ServiceError as exc:
        return await run_in_threadpool(_request_page, current, request_id, exc.message, exc.status_code)
    return current.redirect(f"/change-requests/{request_id}", _DONE[action])


@router.post("/p/{project}/review-settings")
async def set_review_settings(current: Current) -> Response:
    """When changes need review, who approves, whether admins may bypass (admins)."""
    form = await current.form(roles.ADMIN)
    settings = ReviewSettings(
        protected_labels=field(form, "review_protected_labels") == "yes",
        all_targeting=field(form, "review_all_targeting") == "yes",
        approver_role=field(form, "approver_role", "editor"),
        admins_bypass=field(form, "admins_may_bypass") == "yes",
    )
    try:
        await run_in_threadpool(cr.set_settings, current.ctx, current.project.id, settings, current.session.actor)
    except ServiceError as exc:
        from setpoint._server.web.views_people import _members_page

        return await run_in_threadpool(_members_page, current, exc.message, exc.status_code)
    summary = "off" if not settings.enabled else f"on; approved by: {settings.approver_role}s"
    return current.redirect("/members", f"Review of changes: {summary}.")
