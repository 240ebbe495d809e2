"""Change requests over the API: ``/v1/change-requests/`` (list, get, create, approve, reject, apply, withdraw,
refresh, comments) and ``/v1/review-settings/``. The key's project only; roles are checked by the service at
the moment of the call. A write that needs review answers 202 with the request it opened (the handlers below,
installed by ``app.py``)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse, Response

from setpoint._server.api.deps import project_admin, reader, server_state, writer
from setpoint._server.auth import Principal
from setpoint._server.services.change_requests import review
from setpoint._server.services.change_requests import service as cr
from setpoint._server.services.errors import ServiceError
from setpoint._server.services.input_limits import DB_INT_MAX
from setpoint._server.storage.change_requests import ReviewSettings

router = APIRouter(prefix="/v1", tags=["change requests"])

Reader = Annotated[Principal, Depends(reader)]
Writer = Annotated[Principal, Depends(writer)]
Admin = Annotated[Principal, Depends(project_admin)]
RequestId = Annotated[int, Path(ge=1, le=DB_INT_MAX, description="The number of a change request")]


class SettingsIn(BaseModel):
    """When changes need review, and who approves them."""

    model_config = ConfigDict(extra="forbid", strict=True)

    review_protected_labels: bool = False
    """Changes touching a protected label (moving it, or targeting that serves it) need review."""
    review_all_targeting: bool = False
    """Every change of labels, rollouts and override rules needs review."""
    approver_role: str = Field(default="editor", pattern="^(editor|admin)$")
    admins_may_bypass: bool = True
    """Admins' changes apply at once (recorded as an applied request marked ``bypassed``)."""


class ChangeRequestIn(BaseModel):
    """A proposed targeting change of one variable: only the parts sent change."""

    model_config = ConfigDict(extra="forbid")

    variable: str = Field(max_length=200)
    title: str = Field(default="", max_length=200)
    rollout: dict[str, Any] | None = None
    overrides: list[dict[str, Any]] | None = None
    labels: dict[str, dict[str, Any] | None] | None = None
    """Per label: ``{"version": N}``, ``{"serialized_value": "..."}`` (a new version), ``{"ref": "latest"}``,
    or ``null`` to remove it."""


class RefreshIn(BaseModel):
    """A refresh may replace the proposal (only the parts sent); otherwise the same proposal is re-based."""

    model_config = ConfigDict(extra="forbid")

    rollout: dict[str, Any] | None = None
    overrides: list[dict[str, Any]] | None = None
    labels: dict[str, dict[str, Any] | None] | None = None


class ReviewIn(BaseModel):
    """An approval or a rejection, with an optional comment; ``apply``: apply at once after approving."""

    model_config = ConfigDict(extra="forbid", strict=True)

    comment: str = Field(default="", max_length=cr.MAX_COMMENT)
    apply: bool = False


class CommentIn(BaseModel):
    """A comment."""

    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=cr.MAX_COMMENT)


def _ctx(request: Request) -> Any:
    return server_state(request).ctx


@router.get("/review-settings/", summary="When changes need review, and who approves")
def get_review_settings(request: Request, caller: Reader) -> dict[str, Any]:
    """The project's review settings (off until an admin turns them on)."""
    return cr.settings_json(cr.get_settings(_ctx(request), caller.project_id))


@router.put("/review-settings/", summary="Change the review settings (admin)")
def put_review_settings(request: Request, body: SettingsIn, caller: Admin) -> dict[str, Any]:
    """Replace the review settings."""
    settings = ReviewSettings(
        protected_labels=body.review_protected_labels,
        all_targeting=body.review_all_targeting,
        approver_role=body.approver_role,
        admins_bypass=body.admins_may_bypass,
    )
    return cr.settings_json(cr.set_settings(_ctx(request), caller.project_id, settings, caller.actor))


@router.get("/change-requests/", summary="The project's change requests, newest first")
def list_change_requests(
    request: Request,
    caller: Reader,
    state: Annotated[str | None, Query(max_length=100, description="Comma-separated, e.g. open,approved")] = None,
    variable: Annotated[str | None, Query(max_length=200)] = None,
) -> list[dict[str, Any]]:
    """Requests with their diffs (comments: on each request's own URL)."""
    found = cr.list_requests(_ctx(request), caller.project_id, cr.parse_state(state), variable)
    return [cr.request_json(r) for r in found]


@router.post("/change-requests/", status_code=201, summary="Open a change request explicitly")
def create_change_request(request: Request, body: ChangeRequestIn, caller: Writer) -> JSONResponse:
    """Propose a targeting change; it applies once another person approved it."""
    found = cr.create(
        _ctx(request),
        caller.project_id,
        caller.actor,
        body.variable,
        title=body.title,
        rollout=body.rollout,
        overrides=body.overrides,
        labels=body.labels,
    )
    data = cr.request_json(found, [])
    return JSONResponse(data, status_code=201, headers={"Location": data["url"]})


@router.get("/change-requests/{request_id}/", summary="One change request with its comments")
def get_change_request(request: Request, request_id: RequestId, caller: Reader) -> dict[str, Any]:
    """The request, its diff and its comments."""
    found, comments = cr.get_request(_ctx(request), caller.project_id, request_id)
    return cr.request_json(found, comments)


@router.post("/change-requests/{request_id}/approve/", summary="Approve (another person with the approver role)")
def approve(request: Request, request_id: RequestId, caller: Writer, body: ReviewIn | None = None) -> dict[str, Any]:
    """Approve an open request; ``apply``: apply it at once. 403 for its author; 409 when stale."""
    body = body or ReviewIn()
    found = cr.approve(
        _ctx(request), caller.project_id, request_id, caller.actor, comment=body.comment, apply=body.apply
    )
    return cr.request_json(found)


@router.post("/change-requests/{request_id}/reject/", summary="Reject (a person with the approver role)")
def reject(request: Request, request_id: RequestId, caller: Writer, body: ReviewIn | None = None) -> dict[str, Any]:
    """Reject a request that was not applied."""
    body = body or ReviewIn()
    return cr.request_json(cr.reject(_ctx(request), caller.project_id, request_id, caller.actor, comment=body.comment))


@router.post("/change-requests/{request_id}/apply/", summary="Apply an approved request")
def apply(request: Request, request_id: RequestId, caller: Writer) -> dict[str, Any]:
    """Apply exactly the request's diff, at its base revision (409 and marked stale when the variable changed)."""
    return cr.request_json(cr.apply_request(_ctx(request), caller.project_id, request_id, caller.actor))


@router.post("/change-requests/{request_id}/withdraw/", summary="Withdraw your request")
def withdraw(request: Request, request_id: RequestId, caller: Writer) -> dict[str, Any]:
    """The author takes the request back."""
    return cr.request_json(cr.withdraw(_ctx(request), caller.project_id, request_id, caller.actor))


@router.post("/change-requests/{request_id}/refresh/", summary="Re-base your request on the current state")
def refresh(request: Request, request_id: RequestId, caller: Writer, body: RefreshIn | None = None) -> dict[str, Any]:
    """The author re-bases a (stale) request; it must be approved again."""
    body = body or RefreshIn()
    found = cr.refresh(
        _ctx(request),
        caller.project_id,
        request_id,
        caller.actor,
        rollout=body.rollout,
        overrides=body.overrides,
        labels=body.labels,
    )
    return cr.request_json(found)


@router.get("/change-requests/{request_id}/comments/", summary="A request's comments")
def list_comments(request: Request, request_id: RequestId, caller: Reader) -> list[dict[str, Any]]:
    """Oldest first."""
    _found, comments = cr.get_request(_ctx(request), caller.project_id, request_id)
    return [cr.comment_json(c) for c in comments]


@router.post("/change-requests/{request_id}/comments/", status_code=201, summary="Comment on a request")
def add_comment(request: Request, request_id: RequestId, body: CommentIn, caller: Reader) -> dict[str, Any]:
    """Any member of the project may comment (a read-only key too)."""
    return cr.comment_json(cr.add_comment(_ctx(request), caller.project_id, request_id, caller.actor, body.body))


def _opened_response(request: Request, opened: review.RequestOpened) -> Response:
    project = request.path_params.get("project")
    if not request.url.path.startswith("/v1/") and isinstance(project, str):
        url = f"/p/{quote(project)}/change-requests/{opened.request['id']}?notice={quote(opened.message)}"
        return RedirectResponse(url, status_code=303)
    body = {**opened.request, "detail": opened.message}
    return JSONResponse(body, status_code=202, headers={"Location": opened.request["url"]})


async def review_required_handler(request: Request, exc: Exception) -> Response:
    """A change that needs review (rolled back): store it as a request, answer 202 (web UI: its page)."""
    assert isinstance(exc, review.ReviewRequired)
    try:
        opened = await run_in_threadpool(cr.open_from, server_state(request).ctx, exc)
    except ServiceError as error:  # the variable changed or vanished meanwhile: nothing was saved
        project = request.path_params.get("project")
        if not request.url.path.startswith("/v1/") and isinstance(project, str):
            url = f"/p/{quote(project)}/variables/{quote(exc.variable)}/targeting?notice={quote(error.message)}"
            return RedirectResponse(url, status_code=303)
        return JSONResponse({"detail": error.message}, status_code=error.status_code)
    return _opened_response(request, opened)


async def request_opened_handler(request: Request, exc: Exception) -> Response:
    """A request opened by a service (a version created, its label move awaiting review): answer 202."""
    assert isinstance(exc, review.RequestOpened)
    return _opened_response(request, exc)
