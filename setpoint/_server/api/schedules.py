"""Scheduled changes (``/v1/schedules/``) and progressive rollouts (``/v1/variables/{name}/progressive-rollout/``)
of the key's project. Times are ISO 8601 with a zone, stored and returned in UTC; weights are fractions (0-1)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from setpoint._server.api.deps import IsoDateTime, reader, server_state, writer
from setpoint._server.auth import Principal
from setpoint._server.services.errors import NotFoundError
from setpoint._server.services.input_limits import DB_INT_MAX
from setpoint._server.services.schedules import rollouts
from setpoint._server.services.schedules import service as schedules
from setpoint._server.storage import schedules as store

router = APIRouter(prefix="/v1", tags=["schedules"])

Reader = Annotated[Principal, Depends(reader)]
Writer = Annotated[Principal, Depends(writer)]
ScheduleId = Annotated[int, Path(ge=1, le=DB_INT_MAX, description="The id of a schedule")]


class ScheduleIn(BaseModel):
    """A change to make at ``due_at``: its ``kind`` and ``payload`` (see the kinds in the README)."""

    model_config = ConfigDict(extra="forbid")

    variable: str = Field(default="", max_length=200)
    """The variable changed (may be empty for ``apply_change_request``)."""
    kind: Literal["move_label", "set_weights", "set_targeting", "apply_change_request"]
    payload: dict[str, Any]
    due_at: IsoDateTime
    """When, with a zone (e.g. ``2026-12-01T08:00:00Z``); it must be in the future."""


class RolloutIn(BaseModel):
    """Raise (or lower) ``label``'s weight in the default rollout from ``start_weight`` to ``target_weight`` in
    ``steps`` steps, one every ``interval_seconds``; the first (the start weight) at ``start_at`` or now."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(max_length=200)
    start_weight: float = Field(ge=0, le=1)
    target_weight: float = Field(ge=0, le=1)
    steps: int = Field(ge=1, le=rollouts.MAX_STEPS)
    interval_seconds: int = Field(ge=1, le=int(rollouts.MAX_INTERVAL.total_seconds()))
    start_at: IsoDateTime | None = None


@router.get("/schedules/", summary="Scheduled changes: pending first, then done, failed and cancelled")
def list_schedules(
    request: Request,
    caller: Reader,
    state: Annotated[list[Literal["pending", "done", "failed", "cancelled"]] | None, Query()] = None,
    variable: Annotated[str | None, Query(max_length=200)] = None,
) -> list[dict[str, Any]]:
    """The project's schedules (at most 200), optionally only some states or one variable's."""
    found = schedules.list_for(
        server_state(request).ctx, caller.project_id, states=tuple(state or ()), variable=variable
    )
    return [schedules.schedule_json(s) for s in found]


@router.post("/schedules/", status_code=201, summary="Schedule a change")
async def create_schedule(request: Request, body: ScheduleIn, caller: Writer) -> dict[str, Any]:
    """Checked now (the change must be valid today: 422/403 otherwise) and again when it runs, as you, with
    your role at that time. A time in the past is refused (422)."""
    state = server_state(request)
    created = await run_in_threadpool(
        schedules.create,
        state.ctx,
        caller.project_id,
        body.variable,
        body.kind,
        body.payload,
        body.due_at,
        caller.actor,
    )
    state.wake_runner()
    return schedules.schedule_json(created)


@router.get("/schedules/{schedule_id}/", summary="One scheduled change")
def get_schedule(request: Request, schedule_id: ScheduleId, caller: Reader) -> dict[str, Any]:
    """Its state, when it ran, whether it was late and why it failed."""
    return schedules.schedule_json(schedules.get(server_state(request).ctx, caller.project_id, schedule_id))


@router.post("/schedules/{schedule_id}/cancel/", summary="Cancel a pending scheduled change")
def cancel_schedule(request: Request, schedule_id: ScheduleId, caller: Writer) -> dict[str, Any]:
    """409 once it ran, failed or was cancelled."""
    cancelled = schedules.cancel(server_state(request).ctx, caller.project_id, schedule_id, caller.actor)
    return schedules.schedule_json(cancelled)


def _current(request: Request, caller: Principal, name: str) -> dict[str, Any]:
    found = rollouts.current(server_state(request).ctx, caller.project_id, name)
    if found is None:
        raise NotFoundError(f"variable {name!r} has no progressive rollout")
    return rollouts.rollout_json(*found)


@router.get("/variables/{name}/progressive-rollout/", summary="The variable's latest progressive rollout")
def get_rollout(request: Request, name: str, caller: Reader) -> dict[str, Any]:
    """Its state (active, paused, aborted, completed), the last step applied and when the next is due."""
    return _current(request, caller, name)


@router.post("/variables/{name}/progressive-rollout/", status_code=201, summary="Start a progressive rollout")
async def start_rollout(request: Request, name: str, body: RolloutIn, caller: Writer) -> dict[str, Any]:
    """409 when the variable already has an active or paused progressive rollout (the message names it)."""
    state = server_state(request)
    await run_in_threadpool(
        rollouts.start,
        state.ctx,
        caller.project_id,
        name,
        body.label,
        body.start_weight,
        body.target_weight,
        body.steps,
        timedelta(seconds=body.interval_seconds),
        caller.actor,
        start_at=body.start_at,
    )
    state.wake_runner()
    return _current(request, caller, name)


def _unfinished(request: Request, caller: Principal, name: str) -> int:
    found = rollouts.current(server_state(request).ctx, caller.project_id, name)
    if found is None or found[0].state not in store.UNFINISHED:
        raise NotFoundError(f"variable {name!r} has no active or paused progressive rollout")
    return found[0].id


@router.post("/variables/{name}/progressive-rollout/pause/", summary="Pause the progressive rollout")
def pause_rollout(request: Request, name: str, caller: Writer) -> dict[str, Any]:
    """Its pending step is cancelled; the weights stay as they are."""
    rollouts.pause(server_state(request).ctx, caller.project_id, _unfinished(request, caller, name), caller.actor)
    return _current(request, caller, name)


@router.post("/variables/{name}/progressive-rollout/resume/", summary="Resume the progressive rollout")
def resume_rollout(request: Request, name: str, caller: Writer) -> dict[str, Any]:
    """The next step is due one interval from now."""
    rollouts.resume(server_state(request).ctx, caller.project_id, _unfinished(request, caller, name), caller.actor)
    return _current(request, caller, name)


@router.post("/variables/{name}/progressive-rollout/abort/", summary="Abort the progressive rollout")
def abort_rollout(request: Request, name: str, caller: Writer) -> dict[str, Any]:
    """No more steps; the weights stay as they are (change the targeting to revert)."""
    rollouts.abort(server_state(request).ctx, caller.project_id, _unfinished(request, caller, name), caller.actor)
    return _current(request, caller, name)
