"""Scheduled changes: any change of a variable, made at a time (UTC) on behalf of the person who scheduled it.

Kinds and their payloads:

- ``move_label``: ``{"label", "target": {"target_type": "version"|"latest"|"code_default"|"label", "version"?,
  "target_label"?}}``, as ``editing.set_label``;
- ``set_weights``: ``{"weights": {label: weight}}``: the default rollout's weights (override rules unchanged);
- ``set_targeting``: ``{"rollout", "overrides"}``, as ``editing.set_targeting`` (the targeting PUT);
- ``apply_change_request``: ``{"request_id"}``: applies an approved change request
  (``services/change_requests``);
- ``rollout_step``: one step of a progressive rollout (made by ``rollouts.py``, not through the API).

A schedule is checked when it is made (by making its change in a transaction that is rolled back: unknown
labels, bad weights, protected labels are refused then) and again when it runs, with the role its author has
at that moment: someone demoted below editor, or deactivated, makes the run fail (recorded, nothing applied).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from setpoint._server.services import audit, editing
from setpoint._server.services.change_requests.review import ReviewRequired
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import ConflictError, InvalidError, NotFoundError, ServiceError
from setpoint._server.services.people import actors
from setpoint._server.services.people.roles import EDITOR, require
from setpoint._server.services.schedules.intx import in_transaction
from setpoint._server.storage import WriteTx
from setpoint._server.storage import schedules as store
from setpoint._server.storage.records import LabelTarget
from setpoint._server.storage.schedules import Schedule

KINDS = ("move_label", "set_weights", "set_targeting", "apply_change_request")
"""The kinds a person can schedule (``rollout_step`` is made by progressive rollouts)."""
ROLLOUT_STEP = "rollout_step"
LATE_AFTER = timedelta(seconds=30)
"""Work that runs this much after its time is marked late (the runner polls every second)."""
MAX_AHEAD = timedelta(days=3660)


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_type: str = Field(pattern="^(version|latest|code_default|label)$")
    version: int | None = Field(default=None, ge=1, le=2_147_483_647)
    target_label: str | None = Field(default=None, max_length=200)


class MoveLabel(BaseModel):
    """Payload of ``move_label``."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(max_length=200)
    target: _Target


class SetWeights(BaseModel):
    """Payload of ``set_weights``."""

    model_config = ConfigDict(extra="forbid")

    weights: dict[str, float]


class SetTargeting(BaseModel):
    """Payload of ``set_targeting``."""

    model_config = ConfigDict(extra="forbid")

    rollout: dict[str, Any] = Field(default_factory=lambda: {"labels": {}})
    overrides: list[dict[str, Any]] = Field(default_factory=list)


class ApplyChangeRequest(BaseModel):
    """Payload of ``apply_change_request``."""

    model_config = ConfigDict(extra="forbid")

    request_id: int = Field(ge=1, le=2_147_483_647)


_PAYLOADS: dict[str, type[BaseModel]] = {
    "move_label": MoveLabel,
    "set_weights": SetWeights,
    "set_targeting": SetTargeting,
    "apply_change_request": ApplyChangeRequest,
}


def check_payload(kind: str, payload: Any) -> dict[str, Any]:
    """The payload of ``kind`` normalised; 422 naming what is wrong."""
    model = _PAYLOADS.get(kind)
    if model is None:
        raise InvalidError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    try:
        return model.model_validate(payload).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in exc.errors())
        raise InvalidError(f"payload of {kind!r} is invalid: {problems}") from None


def check_due(ctx: ServiceContext, due_at: datetime) -> datetime:
    """``due_at`` in UTC; 422 when it has no time zone, is not in the future, or is absurdly far ahead."""
    if due_at.tzinfo is None:
        raise InvalidError("give the time with its zone (UTC, e.g. 2026-12-01T08:00:00Z, or an offset)")
    now = ctx.clock()
    if due_at <= now:
        raise InvalidError(
            f"the time {due_at.isoformat()} is in the past (it is now {now.isoformat(timespec='seconds')} UTC); "
            "choose a time in the future"
        )
    if due_at - now > MAX_AHEAD:
        raise InvalidError("the time is more than ten years ahead; choose an earlier time")
    return due_at.astimezone(now.tzinfo)


def late_seconds(due_at: datetime, now: datetime) -> int:
    """How many whole seconds after its time work runs (0 when on time)."""
    return max(0, int((now - due_at).total_seconds()))


def is_late(seconds: int | None) -> bool:
    """Whether work that ran ``seconds`` after its time counts as late."""
    return seconds is not None and seconds >= LATE_AFTER.total_seconds()


def schedule_json(schedule: Schedule) -> dict[str, Any]:
    """A schedule as the API returns it (times in UTC, ISO 8601)."""
    return {
        "id": schedule.id,
        "kind": schedule.kind,
        "variable": schedule.variable,
        "payload": schedule.payload,
        "due_at": schedule.due_at.isoformat(),
        "state": schedule.state,
        "created_by": schedule.created_by,
        "who": actors.display(schedule.created_by),
        "created_at": schedule.created_at.isoformat(),
        "ran_at": None if schedule.ran_at is None else schedule.ran_at.isoformat(),
        "late": is_late(schedule.late_seconds),
        "late_seconds": schedule.late_seconds,
        "error": schedule.error,
        "rollout_id": schedule.rollout_id,
    }


def describe(schedule: Schedule) -> str:
    """One line saying what the schedule does."""
    p = schedule.payload
    if schedule.kind == "move_label":
        target = p.get("target", {})
        where = {
            "version": f"version {target.get('version')}",
            "label": f"label {target.get('target_label')!r}",
        }.get(target.get("target_type", ""), str(target.get("target_type")))
        return f"move label {p.get('label')!r} of {schedule.variable} to {where}"
    if schedule.kind == "set_weights":
        weights = ", ".join(f"{k} {v * 100:.4g}%" for k, v in (p.get("weights") or {}).items())
        return f"set the rollout of {schedule.variable} to {weights or 'nothing (all code default)'}"
    if schedule.kind == "set_targeting":
        return f"replace the targeting of {schedule.variable} ({len(p.get('overrides') or [])} override rule(s))"
    if schedule.kind == "apply_change_request":
        return f"apply change request #{p.get('request_id')}"
    if schedule.kind == ROLLOUT_STEP:
        return f"progressive rollout #{schedule.rollout_id} of {schedule.variable}: step {p.get('step')}"
    return schedule.kind


# --- running one schedule's change ----------------------------------------------------------------------------


def require_author_role(tx: WriteTx, project_id: int, author: str) -> None:
    """403 unless whoever scheduled the work is (still) at least an editor of the project."""
    from setpoint._server.services.people.service import actor_role

    require(actor_role(tx, project_id, author), EDITOR, who=actors.display(author), where="")


def _weights(ctx: ServiceContext, project_id: int, variable: str, weights: dict[str, float], actor: str) -> None:
    with ctx.storage.write() as tx:
        current = editing.require(tx, project_id, variable)
    rollout = {**current.fields.rollout, "labels": weights}
    editing.set_targeting(ctx, project_id, variable, rollout, list(current.fields.overrides), actor)


def apply_kind(
    ctx: ServiceContext, project_id: int, variable: str, kind: str, payload: dict[str, Any], actor: str
) -> None:
    """Make the change a schedule describes, as ``actor`` (inside the caller's transaction when ``ctx`` comes
    from :func:`intx.in_transaction`)."""
    if kind == "move_label":
        target = payload["target"]
        label_target = LabelTarget(target["target_type"], target.get("version"), target.get("target_label"))
        editing.set_label(ctx, project_id, variable, payload["label"], label_target, actor)
    elif kind == "set_weights":
        _weights(ctx, project_id, variable, payload["weights"], actor)
    elif kind == "set_targeting":
        editing.set_targeting(ctx, project_id, variable, payload["rollout"], payload["overrides"], actor)
    elif kind == "apply_change_request":
        from setpoint._server.services.change_requests import service as change_requests

        change_requests.apply_request(ctx, project_id, int(payload["request_id"]), actor)
    else:
        raise InvalidError(f"unknown kind {kind!r}")


class _DryRunError(Exception):
    pass


NOT_REVIEWED = (
    "scheduled changes are not reviewed: make the change now to open a change request, and once it is approved "
    "schedule its apply (kind apply_change_request)"
)


def dry_run(
    ctx: ServiceContext, project_id: int, variable: str, kind: str, payload: dict[str, Any], actor: str
) -> None:
    """Make the change in a transaction that is rolled back: what would be refused now is refused at once
    (a change that needs review: 409 saying how to schedule it through a change request)."""
    try:
        with in_transaction(ctx) as (_tx, inner, sink):
            apply_kind(inner, project_id, variable, kind, payload, actor)
            sink.discard()
            raise _DryRunError
    except _DryRunError:
        pass
    except ReviewRequired as signal:
        raise ConflictError(f"{signal}; {NOT_REVIEWED}") from None


# --- API ------------------------------------------------------------------------------------------------------


def create(
    ctx: ServiceContext,
    project_id: int,
    variable: str,
    kind: str,
    payload: Any,
    due_at: datetime,
    actor: str,
) -> Schedule:
    """Schedule a change of ``variable`` for ``due_at`` (in the future) on behalf of ``actor``."""
    if kind == ROLLOUT_STEP:
        raise InvalidError(
            "rollout steps are made by progressive rollouts; use /v1/variables/<name>/progressive-rollout/"
        )
    clean = check_payload(kind, payload)
    due = check_due(ctx, due_at)
    if kind == "apply_change_request":
        variable = _request_variable(ctx, project_id, int(clean["request_id"]), variable)
    with ctx.storage.read() as rtx:
        if rtx.get_variable(project_id, variable) is None:
            raise NotFoundError(f"variable {variable!r} does not exist in this project")
    dry_run(ctx, project_id, variable, kind, clean, actor)
    with ctx.storage.write() as tx:
        schedule = store.add_schedule(tx, project_id, variable, kind, clean, due, actor, ctx.clock())
        audit.record(tx, project_id, actor, "scheduled", "schedule", variable, None, schedule_json(schedule))
    return schedule


def _request_variable(ctx: ServiceContext, project_id: int, request_id: int, variable: str) -> str:
    """The variable of an approved change request (404 when it does not exist, 409 unless approved: its apply is
    scheduled once it is approved; it is checked again, approved and fresh, when it runs)."""
    from setpoint._server.services.change_requests import service as change_requests
    from setpoint._server.storage.change_requests import APPROVED

    request, _comments = change_requests.get_request(ctx, project_id, request_id)
    if variable and variable != request.variable:
        raise InvalidError(f"change request #{request_id} changes {request.variable!r}, not {variable!r}")
    if request.state != APPROVED:
        raise ConflictError(f"change request #{request_id} is {request.state}; schedule its apply once it is approved")
    return request.variable


def get(ctx: ServiceContext, project_id: int, schedule_id: int) -> Schedule:
    """A schedule of the project; 404 otherwise."""
    with ctx.storage.read() as tx:
        found = store.get_schedule(tx, project_id, schedule_id)
    if found is None:
        raise NotFoundError(f"schedule {schedule_id} does not exist in this project")
    return found


def list_for(
    ctx: ServiceContext, project_id: int, *, states: tuple[str, ...] = (), variable: str | None = None, limit: int = 200
) -> list[Schedule]:
    """A project's schedules: pending first (soonest first), then the rest (newest first)."""
    for state in states:
        if state not in store.SCHEDULE_STATES:
            raise InvalidError(f"unknown state {state!r}; use one of {', '.join(store.SCHEDULE_STATES)}")
    with ctx.storage.read() as tx:
        return store.list_schedules(tx, project_id, states=states, variable=variable, limit=limit)


def cancel(ctx: ServiceContext, project_id: int, schedule_id: int, actor: str) -> Schedule:
    """Cancel a pending schedule; 409 once it ran, failed or was cancelled (a rollout's step: pause or abort
    the rollout instead)."""
    with ctx.storage.write() as tx:
        found = store.get_schedule(tx, project_id, schedule_id, lock=True)
        if found is None:
            raise NotFoundError(f"schedule {schedule_id} does not exist in this project")
        if found.kind == ROLLOUT_STEP:
            raise ConflictError(
                f"schedule {schedule_id} is a step of progressive rollout #{found.rollout_id}; pause or abort the "
                "rollout instead"
            )
        if found.state != store.PENDING:
            raise ConflictError(f"schedule {schedule_id} is {found.state}; only pending work can be cancelled")
        store.finish_schedule(tx, schedule_id, store.CANCELLED, ran_at=None, late_seconds=None, error=None)
        after = store.get_schedule(tx, project_id, schedule_id)
        assert after is not None
        audit.record(
            tx, project_id, actor, "cancelled", "schedule", found.variable, schedule_json(found), schedule_json(after)
        )
    return after


def error_message(exc: BaseException) -> str:
    """What a failed run says."""
    if isinstance(exc, ServiceError):
        return exc.message
    if isinstance(exc, ReviewRequired):  # review was turned on (or the label protected) after it was scheduled
        return f"{exc}; {NOT_REVIEWED}"
    return f"internal error ({type(exc).__name__}); see the server log"
