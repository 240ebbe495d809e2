"""Segments: the list, creating one, a segment's page (details, included/excluded keys, rules), deleting it
and its history. Every write goes through the segments service (validation of the whole project config,
reference checks, audit, revision check)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from setpoint._server.services import audit
from setpoint._server.services.errors import InvalidError, ServiceError
from setpoint._server.services.segments import service as segments
from setpoint._server.services.wire import project_wire
from setpoint._server.web import segments_form
from setpoint._server.web.render import Page, field, page, revision
from setpoint.config import Segment, VariablesConfig

router = APIRouter(include_in_schema=False)
Current = Annotated[Page, Depends(page)]


def _ui_status(exc: ServiceError) -> int:
    return 409 if exc.status_code == 412 else exc.status_code


@dataclass(frozen=True)
class SegmentRow:
    """One line of the segments list."""

    segment: Segment
    included: int
    excluded: int
    rules: int
    variables: list[str]
    segments: list[str]


def _count(segment: Segment, which: str) -> int:
    plain: list[str] = getattr(segment, which)
    contexts: list[Any] = getattr(segment, f"{which}_contexts")
    return len(plain) + sum(len(t.values) for t in contexts)


def _users(current: Page) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Per segment key, the variables (override conditions) and the segments that refer to it."""
    with current.ctx.storage.read() as tx:
        config = VariablesConfig.model_validate(project_wire(tx.load_project_state(current.project.id)))
    variables: dict[str, list[str]] = {}
    users: dict[str, list[str]] = {}
    for variable in sorted(config.variables.values(), key=lambda v: v.name):
        for key in variable.segment_references():
            variables.setdefault(key, []).append(variable.name)
    for segment in sorted(config.segments.values(), key=lambda s: s.key):
        for key in segment.referenced_segments():
            if key != segment.key:
                users.setdefault(key, []).append(segment.key)
    return variables, users


def _rows(current: Page, query: str = "") -> list[SegmentRow]:
    views = segments.list_segments(current.ctx, current.project.id, query)
    variables, users = _users(current)
    return [
        SegmentRow(
            segment=v.segment,
            included=_count(v.segment, "included"),
            excluded=_count(v.segment, "excluded"),
            rules=len(v.segment.rules),
            variables=variables.get(v.segment.key, []),
            segments=users.get(v.segment.key, []),
        )
        for v in views
    ]


@router.get("/p/{project}/segments")
async def segment_list(current: Current, q: str = "") -> Response:
    """Every segment (or those matching the search ``q``): key, name, description, tags, key counts, rule count
    and who uses it."""
    rows = await run_in_threadpool(_rows, current, q)
    return current.render("segments.html", rows=rows, q=q, nav="segments")


def _new_form(current: Page, values: dict[str, str], error: str = "", status_code: int = 200) -> Response:
    return current.render("segments_new.html", status_code, values=values, error=error, nav="segments")


@router.get("/p/{project}/segments/new")
async def new_segment(current: Current) -> Response:
    """The create-segment form."""
    return _new_form(current, {})


@router.post("/p/{project}/segments/new")
async def create_segment(current: Current) -> Response:
    """Create the segment (key, name, description, tags) and open its page."""
    form = await current.form()
    values = {k: field(form, k) for k in ("key", "name", "description", "tags")}
    data = segments_form.new_segment_data(values["key"], values["name"], values["description"], values["tags"])
    try:
        view = await run_in_threadpool(
            segments.create_segment, current.ctx, current.project.id, data, current.session.actor
        )
    except ServiceError as exc:
        return _new_form(current, values, exc.message, exc.status_code)
    key = view.segment.key
    return current.redirect(f"/segments/{key}", "Segment created. Add keys and rules below.")


def _segment_page(
    current: Page,
    key: str,
    error: str = "",
    status_code: int = 200,
    draft: segments_form.Draft | None = None,
    delete_error: str = "",
) -> Response:
    view = segments.get_segment(current.ctx, current.project.id, key)
    variables, users = _users(current)
    with current.ctx.storage.read() as tx:
        others = [s.key for s in tx.list_segments(current.project.id) if s.key != key]
    return current.render(
        "segments_edit.html",
        status_code,
        view=view,
        segment=view.segment,
        draft=draft if draft is not None else segments_form.from_segment(view.segment),
        ops=segments_form.OP_LABELS,
        shown=segments_form.SHOWN_KEYS,
        used_by_variables=variables.get(key, []),
        used_by_segments=users.get(key, []),
        other_segments=others,
        error=error,
        delete_error=delete_error,
        tab="edit",
        nav="segments",
    )


@router.get("/p/{project}/segments/{key}")
async def segment_page(current: Current, key: str) -> Response:
    """Details, included and excluded keys per context kind, and the rules of one segment."""
    return await run_in_threadpool(_segment_page, current, key)


@router.post("/p/{project}/segments/{key}")
async def save_segment(current: Current, key: str) -> Response:
    """Replace the segment with what the form holds; refused with a message when invalid or stale."""
    form = await current.form()
    saved = await run_in_threadpool(segments.get_segment, current.ctx, current.project.id, key)
    draft = segments_form.from_form(key, form.multi_items(), saved.segment)
    try:
        data = draft.to_data()
        await run_in_threadpool(
            lambda: segments.replace_segment(
                current.ctx,
                current.project.id,
                key,
                data,
                current.session.actor,
                if_match=revision(form),
            )
        )
    except ServiceError as exc:
        # A stale edit shows the current saved state (not the refused draft), so nothing is overwritten blindly.
        shown = None if exc.status_code == 412 else draft
        return await run_in_threadpool(_segment_page, current, key, exc.message, _ui_status(exc), shown)
    return current.redirect(f"/segments/{key}", "Segment saved.")


@router.post("/p/{project}/segments/{key}/delete")
async def delete_segment(current: Current, key: str) -> Response:
    """Delete the segment after the user typed its key (refused while a variable or segment uses it)."""
    form = await current.form()
    try:
        if field(form, "confirm").strip() != key:
            raise InvalidError(f"type the segment's key ({key}) to confirm that it should be deleted")
        await run_in_threadpool(
            segments.delete_segment, current.ctx, current.project.id, key, current.session.actor, revision(form)
        )
    except ServiceError as exc:
        status, message = _ui_status(exc), exc.message
        return await run_in_threadpool(_segment_page, current, key, "", status, None, message)
    return current.redirect("/segments", f"Deleted segment {key!r}.")


def _describe(action: str, before: Any, after: Any) -> str:
    if action == "create":
        return "created the segment"
    if action == "delete":
        return "deleted the segment"
    if not isinstance(before, dict) or not isinstance(after, dict):
        return action
    changed = [name for name in sorted(set(before) | set(after)) if before.get(name) != after.get(name)]
    what = "changed " + ", ".join(n.replace("_", " ") for n in changed) if changed else "saved without changes"
    return f"restored an earlier state ({what})" if action == "restore" else what


def _history_page(current: Page, key: str, error: str = "", status_code: int = 200) -> Response:
    view = segments.get_segment(current.ctx, current.project.id, key)
    entries = segments.segment_history(current.ctx, current.project.id, key)
    changes = [(e, _describe(e.action, e.before, e.after), audit.change_lines(e.before, e.after)) for e in entries]
    return current.render(
        "segments_history.html",
        status_code,
        view=view,
        segment=view.segment,
        changes=changes,
        error=error,
        tab="history",
        nav="segments",
    )


@router.get("/p/{project}/segments/{key}/history")
async def segment_history(current: Current, key: str) -> Response:
    """The segment's audit entries: who changed what, when, the change itself, and restore buttons."""
    return await run_in_threadpool(_history_page, current, key)


@router.post("/p/{project}/segments/{key}/history/{entry_id}/restore")
async def restore_segment(current: Current, key: str, entry_id: int) -> Response:
    """Make the segment what it was right after that change (through the segments service: audited, refused
    when someone saved it since the page was loaded)."""
    form = await current.form()
    try:
        await run_in_threadpool(
            lambda: segments.restore_segment(
                current.ctx, current.project.id, key, entry_id, current.session.actor, if_match=revision(form)
            )
        )
    except ServiceError as exc:
        return await run_in_threadpool(_history_page, current, key, exc.message, _ui_status(exc))
    return current.redirect(f"/segments/{key}/history", "Segment restored to that earlier state.")
