"""Scheduled changes in the UI: the project's Scheduled page, scheduling a targeting change from the Targeting
tab (a ``datetime-local`` input; app.js sends it as UTC, without JS it is read as UTC), and the progressive
rollout panel of the Targeting tab. Times are shown as ``<time>`` elements that app.js localises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from setpoint._server.services.errors import InvalidError, ServiceError
from setpoint._server.services.input_limits import check_db_int
from setpoint._server.services.schedules import rollouts
from setpoint._server.services.schedules import service as schedules
from setpoint._server.storage import schedules as store
from setpoint._server.web import targeting_form
from setpoint._server.web.render import Page, field, page, templates

router = APIRouter(include_in_schema=False)
Current = Annotated[Page, Depends(page)]

UNITS = {"minutes": 60, "hours": 3600, "days": 86400}


def duration(seconds: int) -> str:
    """``90`` -> ``1 min 30 s``, ``3600`` -> ``1 h``, ``172800`` -> ``2 days``."""
    parts = []
    for name, size in (("days", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {'day' if name == 'days' and count == 1 else name}")
    return " ".join(parts) or "0 s"


templates.env.filters["duration"] = duration


def parse_when(form: FormData, name: str) -> datetime:
    """The time of a form: ``<name>`` (ISO 8601 with a zone, filled in by app.js from the browser's time zone) or,
    without JavaScript, ``<name>_local`` read as UTC; 422 when neither is a time."""
    text = field(form, name).strip() or field(form, f"{name}_local").strip()
    if not text:
        raise InvalidError("choose a date and time")
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidError(f"{text!r} is not a date and time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _number(form: FormData, name: str, what: str) -> float:
    text = field(form, name).strip()
    try:
        return float(text)
    except ValueError:
        raise InvalidError(f"{what}: enter a number") from None


def panel(current: Page, name: str) -> dict[str, Any]:
    """What the Targeting tab shows about schedules: the latest progressive rollout and pending changes."""
    found = rollouts.current(current.ctx, current.project.id, name)
    pending = schedules.list_for(current.ctx, current.project.id, states=(store.PENDING,), variable=name)
    return {
        "progressive": None if found is None else rollouts.rollout_json(*found),
        "pending_changes": [(s, schedules.describe(s)) for s in pending if s.kind != schedules.ROLLOUT_STEP],
    }


def _scheduled_page(current: Page, error: str = "", status_code: int = 200) -> Response:
    found = schedules.list_for(current.ctx, current.project.id)
    rows = [(s, schedules.describe(s), schedules.is_late(s.late_seconds)) for s in found]
    active = [
        rollouts.rollout_json(*rollouts.get(current.ctx, current.project.id, r.id))
        for r in rollouts.list_for(current.ctx, current.project.id)
        if r.state in store.UNFINISHED
    ]
    return current.render(
        "scheduled.html",
        status_code,
        pending=[r for r in rows if r[0].state == store.PENDING],
        finished=[r for r in rows if r[0].state != store.PENDING],
        rollouts=active,
        error=error,
        nav="scheduled",
    )


@router.get("/p/{project}/scheduled")
async def scheduled(current: Current) -> Response:
    """Pending scheduled changes (soonest first), then what ran, failed or was cancelled."""
    return await run_in_threadpool(_scheduled_page, current)


@router.post("/p/{project}/scheduled/{schedule_id}/cancel")
async def cancel(current: Current, schedule_id: int) -> Response:
    """Cancel a pending scheduled change."""
    await current.form()
    try:
        check_db_int(schedule_id, "schedule")
        await run_in_threadpool(schedules.cancel, current.ctx, current.project.id, schedule_id, current.session.actor)
    except ServiceError as exc:
        return await run_in_threadpool(_scheduled_page, current, exc.message, exc.status_code)
    return current.redirect("/scheduled", f"Scheduled change #{schedule_id} cancelled.")


def _targeting_error(
    current: Page, name: str, exc: ServiceError, draft: tuple[dict[str, Any], list[dict[str, Any]]] | None = None
) -> Response:
    from setpoint._server.web.views_targeting import targeting_page

    return targeting_page(current, name, exc.message, exc.status_code, draft=draft)


@router.post("/p/{project}/variables/{name}/targeting/schedule")
async def schedule_targeting(current: Current, name: str) -> Response:
    """Schedule the targeting form as it is (rollout and rules) for the chosen time instead of saving it now."""
    form = await current.form()
    draft: tuple[dict[str, Any], list[dict[str, Any]]] | None = None
    try:
        draft = targeting_form.parse(form.multi_items())
        rollout, overrides = draft
        when = parse_when(form, "schedule_at")
        created = await run_in_threadpool(
            schedules.create,
            current.ctx,
            current.project.id,
            name,
            "set_targeting",
            {"rollout": rollout, "overrides": overrides},
            when,
            current.session.actor,
        )
    except ServiceError as exc:
        return await run_in_threadpool(_targeting_error, current, name, exc, draft)
    wake(current)
    return current.redirect(
        f"/variables/{name}/targeting", f"Targeting change scheduled (#{created.id}); nothing changed yet."
    )


def schedule_apply(current: Page, form: FormData, request_id: int) -> None:
    """Schedule the apply of an approved change request for the form's ``apply_at`` (the request page's form)."""
    when = parse_when(form, "apply_at")
    payload = {"request_id": request_id}
    schedules.create(current.ctx, current.project.id, "", "apply_change_request", payload, when, current.session.actor)
    wake(current)


def wake(current: Page) -> None:
    """Wake the server's schedule runner (work due soon runs without waiting for its next poll)."""
    from setpoint._server.api.deps import server_state

    server_state(current.request).wake_runner()


@router.post("/p/{project}/variables/{name}/progressive-rollout")
async def start_rollout(current: Current, name: str) -> Response:
    """Start a progressive rollout from the Targeting tab's panel."""
    form = await current.form()
    try:
        unit = UNITS.get(field(form, "unit"), 0)
        if not unit:
            raise InvalidError("choose minutes, hours or days")
        every = _number(form, "every", "Every")
        start_at = parse_when(form, "start_at") if (field(form, "start_at") or field(form, "start_at_local")) else None
        await run_in_threadpool(
            lambda: rollouts.start(
                current.ctx,
                current.project.id,
                name,
                field(form, "label"),
                _number(form, "from", "From") / 100,
                _number(form, "to", "To") / 100,
                int(_number(form, "steps", "Steps")),
                timedelta(seconds=every * unit),
                current.session.actor,
                start_at=start_at,
            )
        )
    except (ServiceError, OverflowError, ValueError) as exc:
        error = exc if isinstance(exc, ServiceError) else InvalidError(f"the interval is out of range ({exc})")
        return await run_in_threadpool(_targeting_error, current, name, error)
    wake(current)
    return current.redirect(f"/variables/{name}/targeting", "Progressive rollout started.")


@router.post("/p/{project}/variables/{name}/progressive-rollout/{action}")
async def control_rollout(current: Current, name: str, action: str) -> Response:
    """Pause, resume or abort the variable's progressive rollout."""
    await current.form()
    controls = {"pause": rollouts.pause, "resume": rollouts.resume, "abort": rollouts.abort}
    control = controls.get(action)
    try:
        if control is None:
            raise InvalidError(f"unknown action {action!r}")
        found = await run_in_threadpool(rollouts.current, current.ctx, current.project.id, name)
        if found is None:
            raise InvalidError(f"{name} has no progressive rollout")
        await run_in_threadpool(control, current.ctx, current.project.id, found[0].id, current.session.actor)
    except ServiceError as exc:
        return await run_in_threadpool(_targeting_error, current, name, exc)
    done = {"pause": "paused", "resume": "resumed", "abort": "aborted"}[action]
    return current.redirect(f"/variables/{name}/targeting", f"Progressive rollout {done}.")
