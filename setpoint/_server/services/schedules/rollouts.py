"""Progressive rollouts: raise (or lower) one label's weight in a variable's default rollout from ``start`` to
``target`` in ``steps`` steps, one every ``interval``.

Step 0 sets the start weight (when the rollout starts, or at ``start_at``); step k sets
``start + (target - start) * k / steps``; the last step completes the rollout. Each step is a schedule row
(kind ``rollout_step``) run by the runner as an ordinary variable change (``editing.set_targeting``: validation,
protected labels and the audit apply), made by "<who started it> via schedule <id>" with their role at that
moment. The next step is due one interval after the previous one ran (so a step that ran late after a
downtime does not make the following ones run in a burst).

**Other labels.** Only the default rollout changes (override rules keep their own rollouts). The traffic not
on the label keeps its split: the other labels and the code-default remainder are scaled by
``(1 - new) / (1 - old)``. A label not yet in the rollout is put first, so the users it gets keep it as its
weight rises (its bucket range ``[0, weight)`` only grows). When the label had all the traffic and is lowered,
the freed traffic goes to the code default.

**Edits in between.** Someone else may edit the variable during a rollout: a step keeps their changes to
other labels and rules and sets only its label's weight. If the label's own weight is no longer the one the
previous step set (someone moved it by hand), the rollout pauses with a note instead of overwriting it;
resuming continues the plan from that weight.

**Failures.** A step that cannot apply (its author demoted below editor or deactivated, a protected label and
no admin role, the label deleted, the variable deleted) is recorded as failed, nothing is applied, and the
rollout pauses with the reason. Pause cancels the pending step; resume schedules the next step one interval
later; abort cancels it and leaves the weights as they are (edit the targeting to revert). At most one
rollout per variable is active or paused at a time.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from setpoint._server.services import audit, editing
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import ConflictError, InvalidError, NotFoundError
from setpoint._server.services.schedules import service as schedules
from setpoint._server.storage import WriteTx
from setpoint._server.storage import schedules as store
from setpoint._server.storage.records import Label
from setpoint._server.storage.schedules import ProgressiveRollout, Schedule

MAX_STEPS = 100
MIN_INTERVAL = timedelta(seconds=1)
MAX_INTERVAL = timedelta(days=90)
_EPSILON = 1e-9


def planned_weight(rollout: ProgressiveRollout, step: int) -> float:
    """The weight step ``step`` sets (0: the start weight)."""
    span = rollout.target_weight - rollout.start_weight
    return round(rollout.start_weight + span * step / rollout.steps, 9)


def reweigh(labels: dict[str, float], label: str, weight: float) -> dict[str, float]:
    """``labels`` with ``label`` at ``weight``; the other labels (and the remainder) keep their split of the rest."""
    old = float(labels.get(label, 0.0))
    others = {k: float(v) for k, v in labels.items() if k != label}
    if old < 1 - _EPSILON:
        factor = (1 - weight) / (1 - old)
        others = {k: round(v * factor, 9) for k, v in others.items()}
        excess = sum(others.values()) + weight - 1
        if excess > 0 and others:  # rounding must never push the sum over 100%
            largest = max(others, key=lambda k: others[k])
            others[largest] = max(0.0, round(others[largest] - excess, 12))
    if label in labels and old > 0:
        return {k: (weight if k == label else others[k]) for k in labels}
    return {label: weight, **others}


def rollout_json(rollout: ProgressiveRollout, pending: Schedule | None = None) -> dict[str, Any]:
    """A progressive rollout as the API returns it (``step``: the last step applied, None before the first)."""
    return {
        "id": rollout.id,
        "variable": rollout.variable,
        "label": rollout.label,
        "state": rollout.state,
        "start_weight": rollout.start_weight,
        "target_weight": rollout.target_weight,
        "steps": rollout.steps,
        "interval_seconds": rollout.interval_seconds,
        "step": rollout.next_step - 1 if rollout.next_step > 0 else None,
        "weight": rollout.weight,
        "next_step": rollout.next_step if rollout.next_step <= rollout.steps else None,
        "next_weight": planned_weight(rollout, rollout.next_step) if rollout.next_step <= rollout.steps else None,
        "next_due_at": None if pending is None else pending.due_at.isoformat(),
        "note": rollout.note,
        "created_by": rollout.created_by,
        "created_at": rollout.created_at.isoformat(),
        "updated_at": rollout.updated_at.isoformat(),
    }


def _event(rollout: ProgressiveRollout, pending: Schedule | None = None, **extra: Any) -> dict[str, Any]:
    return {**rollout_json(rollout, pending), "late": False, **extra}


def _labels(ctx: ServiceContext, variable_id: int) -> list[Label]:
    with ctx.storage.read() as tx:
        return tx.list_labels(variable_id)


def _pending(tx: WriteTx, rollout: ProgressiveRollout) -> Schedule | None:
    found = store.list_schedules(tx, rollout.project_id, states=(store.PENDING,), rollout_id=rollout.id, limit=1)
    return found[0] if found else None


def _reload(tx: WriteTx, rollout: ProgressiveRollout) -> ProgressiveRollout:
    found = store.get_rollout(tx, rollout.project_id, rollout.id)
    assert found is not None
    return found


def _schedule_step(tx: WriteTx, rollout: ProgressiveRollout, step: int, due: datetime, now: datetime) -> Schedule:
    return store.add_schedule(
        tx,
        rollout.project_id,
        rollout.variable,
        schedules.ROLLOUT_STEP,
        {"rollout_id": rollout.id, "step": step},
        due,
        rollout.created_by,
        now,
        rollout_id=rollout.id,
    )


def _check_weight(name: str, value: float) -> float:
    if not math.isfinite(value) or value < 0 or value > 1:
        raise InvalidError(f"{name} must be between 0 and 1 (0% and 100%); got {value}")
    return round(value, 9)


def describe(rollout: ProgressiveRollout) -> str:
    """One line: the plan and where it stands."""
    return (
        f"#{rollout.id}: label {rollout.label!r} of {rollout.variable} from {rollout.start_weight * 100:.4g}% to "
        f"{rollout.target_weight * 100:.4g}% in {rollout.steps} step(s) ({rollout.state})"
    )


def start(
    ctx: ServiceContext,
    project_id: int,
    variable: str,
    label: str,
    start_weight: float,
    target_weight: float,
    steps: int,
    interval: timedelta,
    actor: str,
    *,
    start_at: datetime | None = None,
) -> ProgressiveRollout:
    """Start a progressive rollout; 409 naming the rollout already running on the variable."""
    start_weight = _check_weight("start_weight", start_weight)
    target_weight = _check_weight("target_weight", target_weight)
    if not 1 <= steps <= MAX_STEPS:
        raise InvalidError(f"steps must be between 1 and {MAX_STEPS}; got {steps}")
    if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        raise InvalidError("the interval between steps must be between 1 second and 90 days")
    if start_weight == target_weight:
        raise InvalidError("start_weight and target_weight are equal: there is nothing to roll out")
    now = ctx.clock()
    due = now if start_at is None else schedules.check_due(ctx, start_at)
    with ctx.storage.read() as rtx:
        found = rtx.get_variable(project_id, variable)
    if found is not None and label in {lb.name for lb in _labels(ctx, found.id)}:
        # Step 0 made now in a transaction that is rolled back: protected labels and review are refused at once.
        labels = dict(found.fields.rollout.get("labels") or {})
        first = {**found.fields.rollout, "labels": reweigh(labels, label, start_weight)}
        payload = {"rollout": first, "overrides": list(found.fields.overrides)}
        schedules.dry_run(ctx, project_id, variable, "set_targeting", payload, actor)
    with ctx.storage.write() as tx:
        current = editing.require(tx, project_id, variable)  # locks the variable: one start at a time per variable
        if label not in {lb.name for lb in tx.list_labels(current.id)}:
            raise InvalidError(
                f"label {label!r} of {variable!r} does not exist; create it (move it onto a version) first"
            )
        running = store.list_rollouts(tx, project_id, variable=variable, states=store.UNFINISHED, limit=1)
        if running:
            raise ConflictError(
                f"variable {variable!r} already has progressive rollout {describe(running[0])}; abort it or let it "
                "complete before starting another"
            )
        rollout = store.add_rollout(
            tx,
            project_id,
            variable,
            label,
            start_weight,
            target_weight,
            steps,
            int(interval.total_seconds()),
            actor,
            now,
        )
        pending = _schedule_step(tx, rollout, 0, due, now)
        audit.record(tx, project_id, actor, "started", "rollout", variable, None, _event(rollout, pending))
    return rollout


def get(ctx: ServiceContext, project_id: int, rollout_id: int) -> tuple[ProgressiveRollout, Schedule | None]:
    """A progressive rollout of the project and its pending step; 404 otherwise."""
    with ctx.storage.read() as tx:
        found = store.get_rollout(tx, project_id, rollout_id)
        if found is None:
            raise NotFoundError(f"progressive rollout {rollout_id} does not exist in this project")
        pending = store.list_schedules(tx, project_id, states=(store.PENDING,), rollout_id=rollout_id, limit=1)
    return found, (pending[0] if pending else None)


def current(ctx: ServiceContext, project_id: int, variable: str) -> tuple[ProgressiveRollout, Schedule | None] | None:
    """The variable's latest progressive rollout (any state) and its pending step, or None."""
    with ctx.storage.read() as tx:
        found = store.list_rollouts(tx, project_id, variable=variable, limit=1)
        if not found:
            return None
        pending = store.list_schedules(tx, project_id, states=(store.PENDING,), rollout_id=found[0].id, limit=1)
    return found[0], (pending[0] if pending else None)


def list_for(ctx: ServiceContext, project_id: int, *, variable: str | None = None) -> list[ProgressiveRollout]:
    """A project's progressive rollouts, newest first."""
    with ctx.storage.read() as tx:
        return store.list_rollouts(tx, project_id, variable=variable)


def _control(ctx: ServiceContext, project_id: int, rollout_id: int, actor: str, action: str) -> ProgressiveRollout:
    now = ctx.clock()
    with ctx.storage.write() as tx:
        store.lock_pending_of_rollout(tx, rollout_id)  # first, as the runner: schedule, rollout, variable
        rollout = store.get_rollout(tx, project_id, rollout_id, lock=True)
        if rollout is None:
            raise NotFoundError(f"progressive rollout {rollout_id} does not exist in this project")
        variable = tx.lock_variable(project_id, rollout.variable)  # serializes with a step running on it
        rollout = _reload(tx, rollout)
        allowed = {"paused": (store.ACTIVE,), "resumed": (store.PAUSED,), "aborted": store.UNFINISHED}[action]
        if rollout.state not in allowed:
            which = {"paused": "an active one", "resumed": "a paused one", "aborted": "an active or paused one"}[action]
            raise ConflictError(f"progressive rollout #{rollout_id} is {rollout.state}; only {which} can be {action}")
        before = rollout_json(rollout, _pending(tx, rollout))
        store.cancel_pending_of_rollout(tx, rollout.id)
        if action == "resumed":
            if variable is None:
                raise ConflictError(f"variable {rollout.variable!r} no longer exists; abort this rollout")
            weight = float(variable.fields.rollout.get("labels", {}).get(rollout.label, 0.0))
            store.update_rollout(tx, rollout.id, now, state=store.ACTIVE, weight=weight, note=None)
            _schedule_step(
                tx, _reload(tx, rollout), rollout.next_step, now + timedelta(seconds=rollout.interval_seconds), now
            )
        else:
            state = store.PAUSED if action == "paused" else store.ABORTED
            store.update_rollout(tx, rollout.id, now, state=state)
        rollout = _reload(tx, rollout)
        pending = _pending(tx, rollout)
        audit.record(tx, project_id, actor, action, "rollout", rollout.variable, before, _event(rollout, pending))
    return rollout


def pause(ctx: ServiceContext, project_id: int, rollout_id: int, actor: str) -> ProgressiveRollout:
    """Pause an active rollout (its pending step is cancelled)."""
    return _control(ctx, project_id, rollout_id, actor, "paused")


def resume(ctx: ServiceContext, project_id: int, rollout_id: int, actor: str) -> ProgressiveRollout:
    """Resume a paused rollout: its next step is due one interval from now (from the label's current weight)."""
    return _control(ctx, project_id, rollout_id, actor, "resumed")


def abort(ctx: ServiceContext, project_id: int, rollout_id: int, actor: str) -> ProgressiveRollout:
    """Abort an active or paused rollout; the weights stay as they are."""
    return _control(ctx, project_id, rollout_id, actor, "aborted")


# --- a step, run by the runner inside its transaction -------------------------------------------------------


class StepSkippedError(Exception):
    """The step's rollout is no longer active (it was paused or aborted as the step was claimed)."""


def run_step(ctx: ServiceContext, tx: WriteTx, schedule: Schedule, actor: str, now: datetime) -> None:
    """Apply one step (``ctx`` runs in ``tx``); raises a ServiceError when it cannot (the caller then calls
    :func:`step_failed` after rolling the step back)."""
    rollout = store.get_rollout(tx, schedule.project_id, int(schedule.payload["rollout_id"]), lock=True)
    if rollout is None or rollout.state != store.ACTIVE:
        raise StepSkippedError
    step = int(schedule.payload["step"])
    variable = editing.require(tx, schedule.project_id, rollout.variable)
    schedules.require_author_role(tx, schedule.project_id, schedule.created_by)
    labels = dict(variable.fields.rollout.get("labels") or {})
    have = float(labels.get(rollout.label, 0.0))
    if rollout.weight is not None and abs(have - rollout.weight) > 1e-6:
        raise ConflictError(
            f"the weight of label {rollout.label!r} was changed by someone else to {have * 100:.4g}% (this rollout "
            f"had set {rollout.weight * 100:.4g}%); paused so as not to overwrite it: resume to continue the plan"
        )
    weight = planned_weight(rollout, step)
    new_rollout = {**variable.fields.rollout, "labels": reweigh(labels, rollout.label, weight)}
    editing.set_targeting(
        ctx, schedule.project_id, rollout.variable, new_rollout, list(variable.fields.overrides), actor
    )
    done = step >= rollout.steps
    store.update_rollout(
        tx, rollout.id, now, next_step=step + 1, weight=weight, state=store.COMPLETED if done else store.ACTIVE
    )
    rollout = _reload(tx, rollout)
    pending = (
        None if done else _schedule_step(tx, rollout, step + 1, now + timedelta(seconds=rollout.interval_seconds), now)
    )
    late = schedules.late_seconds(schedule.due_at, now)
    event = _event(rollout, pending, step=step, weight=weight, late=schedules.is_late(late), late_seconds=late)
    audit.record(tx, schedule.project_id, actor, "step", "rollout", rollout.variable, None, event)
    if done:
        audit.record(tx, schedule.project_id, actor, "completed", "rollout", rollout.variable, None, event)


def step_failed(tx: WriteTx, schedule: Schedule, actor: str, error: str, now: datetime) -> None:
    """Pause the rollout of a step that could not apply, with the reason."""
    rollout = store.get_rollout(tx, schedule.project_id, int(schedule.payload["rollout_id"]), lock=True)
    if rollout is None:
        return
    store.update_rollout(
        tx, rollout.id, now, state=store.PAUSED, note=f"step {schedule.payload['step']} failed: {error}"
    )
    rollout = _reload(tx, rollout)
    late = schedules.late_seconds(schedule.due_at, now)
    event = _event(rollout, None, failed_step=schedule.payload["step"], error=error, late=schedules.is_late(late))
    audit.record(tx, schedule.project_id, actor, "paused", "rollout", rollout.variable, None, event)
