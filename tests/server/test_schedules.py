"""Scheduled changes and progressive rollouts through the services, on SQLite and PostgreSQL, with a fake clock
(``ServiceContext.clock``) driving ``runner.run_due``: no sleeps."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from setpoint._server.services import audit, editing, lifecycle
from setpoint._server.services.changes import ChangeSink
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
from setpoint._server.services.people import actors
from setpoint._server.services.schedules import rollouts, runner
from setpoint._server.services.schedules import service as schedules
from setpoint._server.storage import Storage
from setpoint._server.storage import schedules as store
from setpoint._server.storage import schema as t
from setpoint._server.storage.records import AuditEntry, LabelTarget
from setpoint._server.storage.sql import SqlStorage
from tests.server.conftest import BACKENDS

on_both = pytest.mark.parametrize("storage", BACKENDS, indirect=True)

T0 = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@dataclass
class FakeClock:
    """A clock the test moves by hand."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class World:
    """A project with an editor (Ed), an admin (Ada) and a variable ``feature``: labels ``stable`` (v1) and
    ``canary`` (v2), default rollout 100% stable."""

    ctx: ServiceContext
    clock: FakeClock
    project_id: int
    ed: str
    ed_id: int
    ada: str
    changes: list[str] = field(default_factory=list)

    def rollout(self, name: str = "feature") -> dict[str, float]:
        with self.ctx.storage.read() as tx:
            variable = tx.get_variable(self.project_id, name)
        assert variable is not None
        return dict(variable.fields.rollout["labels"])

    def entries(self, entity_type: str, action: str | None = None) -> list[AuditEntry]:
        found = audit.history(self.ctx, self.project_id, entity_type=entity_type, limit=500)
        return [e for e in reversed(found) if action is None or e.action == action]

    def set_role(self, role: str) -> None:
        with self.ctx.storage.write() as tx:
            tx.set_membership(self.project_id, self.ed_id, role)

    def run(self) -> list[store.Schedule]:
        return runner.run_due(self.ctx)


@pytest.fixture
def world(storage: Storage) -> Iterator[World]:
    clock = FakeClock()
    ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="tests"), clock=clock)
    suffix = uuid.uuid4().hex[:8]
    with storage.write() as tx:
        project = tx.create_project(f"sched-{suffix}")
        ed = tx.create_admin_user(f"ed-{suffix}@example.com", None, name="Ed")
        ada = tx.create_admin_user(f"ada-{suffix}@example.com", None, name="Ada")
        tx.set_membership(project.id, ed.id, "editor")
        tx.set_membership(project.id, ada.id, "admin")
    w = World(ctx, clock, project.id, actors.person(ed.id, "Ed"), ed.id, actors.person(ada.id, "Ada"))
    ctx.sink.subscribe(lambda change: w.changes.append(change.name))
    lifecycle.create_variable(ctx, project.id, "feature", w.ada)
    editing.create_version(ctx, project.id, "feature", '"one"', w.ada, label="stable")
    editing.create_version(ctx, project.id, "feature", '"two"', w.ada, label="canary")
    editing.set_targeting(ctx, project.id, "feature", {"labels": {"stable": 1.0}}, [], w.ada)
    try:
        yield w
    finally:  # the PostgreSQL database is shared by the session: leave no due work for other tests' clocks
        assert isinstance(storage, SqlStorage)
        with storage.engine.begin() as conn:
            c = t.schedules.c
            conn.execute(sa.update(t.schedules).where(c.project_id == project.id).values(state="cancelled"))


def test_reweigh_keeps_the_split_of_the_rest_and_puts_a_new_label_first() -> None:
    assert rollouts.reweigh({"stable": 1.0}, "canary", 0.05) == {"canary": 0.05, "stable": 0.95}
    assert list(rollouts.reweigh({"stable": 1.0}, "canary", 0.05)) == ["canary", "stable"]
    # a remainder (code default) keeps its share too
    assert rollouts.reweigh({"a": 0.5}, "b", 0.5) == {"b": 0.5, "a": 0.25}
    # a label already in the rollout keeps its place
    assert list(rollouts.reweigh({"a": 0.5, "b": 0.5}, "b", 0.75)) == ["a", "b"]
    assert rollouts.reweigh({"a": 0.5, "b": 0.5}, "b", 0.75) == {"a": 0.25, "b": 0.75}
    # lowering a label that had everything: the freed traffic goes to the code default
    assert rollouts.reweigh({"a": 1.0}, "a", 0.25) == {"a": 0.25}


def test_actor_via_schedule_parses_and_displays_as_the_person() -> None:
    actor = actors.via_schedule(actors.person(7, "Alice"), 42)
    assert actor == "user:7:Alice via schedule 42"
    found = actors.parse(actor)
    assert (found.user_id, found.user_name, found.schedule_id) == (7, "Alice", 42)
    assert actors.display(actor) == "Alice via schedule"
    keyed = actors.via_schedule(actors.key(3, "ci", 7, "Alice"), 5)
    assert actors.parse(keyed).key_id == 3 and actors.parse(keyed).user_id == 7
    assert actors.display(keyed) == "key ci of Alice via schedule"
    # A change request applied by a schedule: the person and the schedule are parsed, the note is kept.
    applying = f"{actor} applying change request #3 by Bob, approved by Carol"
    found = actors.parse(applying)
    assert (found.user_id, found.user_name, found.schedule_id) == (7, "Alice", 42)
    assert actors.display(applying) == "Alice via schedule applying change request #3 by Bob, approved by Carol"
    assert (
        actors.parse(f"{actors.person(8, 'Ed')} applying change request #4 by Bob, approved by Carol").user_name == "Ed"
    )
    assert actors.parse("user:7:Alice").schedule_id is None


@on_both
def test_a_progressive_rollout_advances_through_its_steps(world: World) -> None:
    w = world
    started = rollouts.start(w.ctx, w.project_id, "feature", "canary", 0.1, 1.0, 3, HOUR, w.ed)
    assert w.rollout() == {"stable": 1.0}  # nothing applied until the runner runs step 0
    [step0] = w.run()
    assert step0.state == "done" and step0.kind == "rollout_step"
    assert w.rollout() == {"canary": 0.1, "stable": 0.9}
    assert "feature" in w.changes  # the change reached this process's listeners after the commit
    w.clock.advance(HOUR - timedelta(seconds=1))
    assert w.run() == []  # not due yet
    w.clock.advance(timedelta(seconds=1))
    assert len(w.run()) == 1
    assert w.rollout() == {"canary": 0.4, "stable": 0.6}
    rollout, pending = rollouts.get(w.ctx, w.project_id, started.id)
    assert rollout.state == "active" and rollout.weight == 0.4 and pending is not None
    assert pending.due_at == T0 + 2 * HOUR
    view = rollouts.rollout_json(rollout, pending)
    assert (view["step"], view["steps"], view["next_step"], view["next_weight"]) == (1, 3, 2, 0.7)
    for _ in range(2):
        w.clock.advance(HOUR)
        assert len(w.run()) == 1
    assert w.rollout() == {"canary": 1.0, "stable": 0.0}
    rollout, pending = rollouts.get(w.ctx, w.project_id, started.id)
    assert rollout.state == "completed" and pending is None
    w.clock.advance(10 * HOUR)
    assert w.run() == []
    steps = w.entries("rollout", "step")
    assert [e.after["step"] for e in steps] == [0, 1, 2, 3]
    assert [e.after["weight"] for e in steps] == [0.1, 0.4, 0.7, 1.0]
    assert all(e.actor.startswith(f"{w.ed} via schedule ") and not e.after["late"] for e in steps)
    assert [e.action for e in w.entries("rollout")] == ["started", "step", "step", "step", "step", "completed"]
    # every step is an ordinary variable change, audited as Ed via schedule (with Ed's user id)
    changes = [e for e in w.entries("variable") if e.action == "set_targeting" and "via schedule" in e.actor]
    assert len(changes) == 4 and all(e.user_id == w.ed_id for e in changes)
    assert actors.display(changes[0].actor) == "Ed via schedule"


@on_both
def test_pause_resume_and_abort(world: World) -> None:
    w = world
    started = rollouts.start(w.ctx, w.project_id, "feature", "canary", 0.2, 1.0, 4, HOUR, w.ed)
    w.run()
    rollouts.pause(w.ctx, w.project_id, started.id, w.ada)
    w.clock.advance(5 * HOUR)
    assert w.run() == []  # the pending step was cancelled
    assert w.rollout() == {"canary": 0.2, "stable": 0.8}
    with pytest.raises(ConflictError, match="is paused"):
        rollouts.pause(w.ctx, w.project_id, started.id, w.ada)
    rollouts.resume(w.ctx, w.project_id, started.id, w.ada)
    assert w.run() == []  # due one interval after the resume
    w.clock.advance(HOUR)
    assert len(w.run()) == 1
    assert w.rollout() == {"canary": 0.4, "stable": 0.6}
    rollouts.abort(w.ctx, w.project_id, started.id, w.ada)
    w.clock.advance(10 * HOUR)
    assert w.run() == []
    assert w.rollout() == {"canary": 0.4, "stable": 0.6}  # abort leaves the weights as they are
    with pytest.raises(ConflictError, match="is aborted"):
        rollouts.resume(w.ctx, w.project_id, started.id, w.ada)
    actions = [e.action for e in w.entries("rollout")]
    assert actions == ["started", "step", "paused", "resumed", "step", "aborted"]


@on_both
def test_overlapping_rollouts_are_refused_naming_the_existing_one(world: World) -> None:
    w = world
    first = rollouts.start(w.ctx, w.project_id, "feature", "canary", 0.1, 0.5, 2, HOUR, w.ed)
    with pytest.raises(ConflictError, match=f"already has progressive rollout #{first.id}: label 'canary'"):
        rollouts.start(w.ctx, w.project_id, "feature", "canary", 0.1, 0.9, 2, HOUR, w.ada)
    rollouts.pause(w.ctx, w.project_id, first.id, w.ed)
    with pytest.raises(ConflictError, match="paused"):  # a paused rollout still holds the variable
        rollouts.start(w.ctx, w.project_id, "feature", "stable", 1.0, 0.5, 2, HOUR, w.ada)
    rollouts.abort(w.ctx, w.project_id, first.id, w.ed)
    rollouts.start(w.ctx, w.project_id, "feature", "canary", 0.1, 0.9, 2, HOUR, w.ada)
    with pytest.raises(InvalidError, match="label 'nope' of 'feature' does not exist"):
        rollouts.start(w.ctx, w.project_id, "feature", "nope", 0.1, 0.9, 2, HOUR, w.ada)


@on_both
def test_a_schedule_in_the_past_is_refused(world: World) -> None:
    w = world
    payload = {"label": "stable", "target": {"target_type": "version", "version": 2}}
    with pytest.raises(InvalidError, match="is in the past"):
        schedules.create(w.ctx, w.project_id, "feature", "move_label", payload, T0 - timedelta(seconds=1), w.ed)
    with pytest.raises(InvalidError, match="is in the past"):
        schedules.create(w.ctx, w.project_id, "feature", "move_label", payload, T0, w.ed)
    with pytest.raises(InvalidError, match="with its zone"):
        schedules.create(w.ctx, w.project_id, "feature", "move_label", payload, datetime(2040, 1, 1), w.ed)
    with pytest.raises(InvalidError, match="payload of 'move_label' is invalid: target"):
        schedules.create(w.ctx, w.project_id, "feature", "move_label", {"label": "x"}, T0 + HOUR, w.ed)
    bad = {"label": "stable", "target": {"target_type": "version", "version": 9}}
    with pytest.raises(InvalidError, match="version 9 of 'feature' does not exist"):  # checked now, by a dry run
        schedules.create(w.ctx, w.project_id, "feature", "move_label", bad, T0 + HOUR, w.ed)
    prod = {"label": "production", "target": {"target_type": "version", "version": 1}}
    with pytest.raises(ForbiddenError, match="protected"):  # an editor cannot schedule a protected label's move
        schedules.create(w.ctx, w.project_id, "feature", "move_label", prod, T0 + HOUR, w.ed)
    assert schedules.list_for(w.ctx, w.project_id) == []
    assert w.rollout() == {"stable": 1.0}  # the dry runs left nothing behind
    assert [e.action for e in w.entries("variable")][-1] == "set_targeting"


@on_both
def test_scheduled_changes_run_once_at_their_time_and_can_be_cancelled(world: World) -> None:
    w = world
    move = {"label": "stable", "target": {"target_type": "version", "version": 2}}
    moved = schedules.create(w.ctx, w.project_id, "feature", "move_label", move, T0 + HOUR, w.ed)
    weights = schedules.create(
        w.ctx, w.project_id, "feature", "set_weights", {"weights": {"stable": 0.5, "canary": 0.5}}, T0 + 2 * HOUR, w.ed
    )
    targeting = {
        "rollout": {"labels": {"canary": 1.0}},
        "overrides": [
            {
                "conditions": [{"kind": "value-equals", "attribute": "plan", "value": "free"}],
                "rollout": {"labels": {"stable": 1.0}},
            }
        ],
    }
    replaced = schedules.create(w.ctx, w.project_id, "feature", "set_targeting", targeting, T0 + 3 * HOUR, w.ed)
    dropped = schedules.create(w.ctx, w.project_id, "feature", "set_weights", {"weights": {}}, T0 + 4 * HOUR, w.ed)
    assert [s.id for s in schedules.list_for(w.ctx, w.project_id, states=("pending",))] == [
        moved.id,
        weights.id,
        replaced.id,
        dropped.id,
    ]
    schedules.cancel(w.ctx, w.project_id, dropped.id, w.ada)
    with pytest.raises(ConflictError, match="is cancelled"):
        schedules.cancel(w.ctx, w.project_id, dropped.id, w.ada)
    w.clock.advance(HOUR)
    assert [s.id for s in w.run()] == [moved.id]
    with w.ctx.storage.read() as tx:
        variable = tx.get_variable(w.project_id, "feature")
        assert variable is not None
        stable = next(lb for lb in tx.list_labels(variable.id) if lb.name == "stable")
    assert stable.target == LabelTarget("version", version=2)
    w.clock.advance(HOUR)
    w.run()
    assert w.rollout() == {"stable": 0.5, "canary": 0.5}
    w.clock.advance(5 * HOUR)
    w.run()
    with w.ctx.storage.read() as tx:
        variable = tx.get_variable(w.project_id, "feature")
    assert variable is not None and variable.fields.rollout["labels"] == {"canary": 1.0}
    assert len(variable.fields.overrides) == 1
    states = {s.id: s.state for s in schedules.list_for(w.ctx, w.project_id)}
    assert states == {moved.id: "done", weights.id: "done", replaced.id: "done", dropped.id: "cancelled"}
    ran = w.entries("schedule", "ran")
    assert [e.after["id"] for e in ran] == [moved.id, weights.id, replaced.id]
    assert ran[2].after["late"] is True  # it ran 4 hours after its time
    assert not ran[0].after["late"]
    assert [e.action for e in w.entries("schedule")].count("scheduled") == 4
    assert w.run() == []


@on_both
def test_work_due_during_a_downtime_runs_when_the_server_is_back_and_says_it_was_late(world: World) -> None:
    w = world
    move = {"label": "canary", "target": {"target_type": "version", "version": 1}}
    schedule = schedules.create(w.ctx, w.project_id, "feature", "move_label", move, T0 + HOUR, w.ed)
    rollout = rollouts.start(w.ctx, w.project_id, "feature", "canary", 0.5, 1.0, 1, HOUR, w.ed, start_at=T0 + HOUR)
    w.clock.advance(3 * HOUR + timedelta(seconds=5))  # "down" from T0 to T0+3h
    done = w.run()
    assert {s.id for s in done if s.kind == "move_label"} == {schedule.id}
    first = schedules.get(w.ctx, w.project_id, schedule.id)
    assert first.state == "done" and first.late_seconds == 2 * 3600 + 5
    assert schedules.schedule_json(first)["late"] is True
    [ran] = w.entries("schedule", "ran")
    assert ran.after["late"] is True and ran.after["late_seconds"] == 7205
    [step] = w.entries("rollout", "step")
    assert step.after["late"] is True and step.after["late_seconds"] == 7205
    # the next step is due one interval after the late one ran, not at once
    _, pending = rollouts.get(w.ctx, w.project_id, rollout.id)
    assert pending is not None and pending.due_at == w.clock.now + HOUR


@on_both
def test_a_demoted_schedulers_step_fails_is_recorded_and_pauses_the_rollout(world: World) -> None:
    w = world
    started = rollouts.start(w.ctx, w.project_id, "feature", "canary", 0.1, 0.5, 2, HOUR, w.ed)
    w.run()
    move = {"label": "stable", "target": {"target_type": "version", "version": 2}}
    moved = schedules.create(w.ctx, w.project_id, "feature", "move_label", move, T0 + HOUR, w.ed)
    w.set_role("viewer")
    w.clock.advance(HOUR)
    finished = {s.kind: s for s in w.run()}
    assert finished["rollout_step"].state == "failed"
    assert "editor role" in (finished["rollout_step"].error or "") and "Ed has the viewer role" in (
        finished["rollout_step"].error or ""
    )
    assert finished["move_label"].state == "failed" and finished["move_label"].id == moved.id
    assert w.rollout() == {"canary": 0.1, "stable": 0.9}  # not applied
    rollout, pending = rollouts.get(w.ctx, w.project_id, started.id)
    assert rollout.state == "paused" and pending is None and "step 1 failed" in (rollout.note or "")
    [failed] = w.entries("schedule", "failed")
    assert failed.after["id"] == moved.id and "viewer" in failed.after["error"]
    assert w.entries("rollout")[-1].action == "paused"
    # promoted again and resumed: the plan continues from step 1
    w.set_role("editor")
    rollouts.resume(w.ctx, w.project_id, started.id, w.ed)
    w.clock.advance(HOUR)
    w.run()
    assert w.rollout() == {"canary": 0.3, "stable": 0.7}
    # a deactivated person's work fails the same way
    with w.ctx.storage.write() as tx:
        tx.set_person(w.ed_id, deactivated=True)
    w.clock.advance(HOUR)
    [last] = w.run()
    assert last.state == "failed" and "no role" in (last.error or "")


@on_both
def test_a_step_keeps_other_edits_but_pauses_when_its_own_label_was_moved_by_hand(world: World) -> None:
    w = world
    started = rollouts.start(w.ctx, w.project_id, "feature", "canary", 0.1, 0.5, 2, HOUR, w.ed)
    w.run()
    # someone else adds an override rule: the next step keeps it
    rule = {
        "conditions": [{"kind": "value-equals", "attribute": "plan", "value": "free"}],
        "rollout": {"labels": {"stable": 1.0}},
    }
    editing.set_targeting(w.ctx, w.project_id, "feature", {"labels": {"canary": 0.1, "stable": 0.9}}, [rule], w.ada)
    w.clock.advance(HOUR)
    w.run()
    with w.ctx.storage.read() as tx:
        variable = tx.get_variable(w.project_id, "feature")
    assert variable is not None and len(variable.fields.overrides) == 1
    assert variable.fields.rollout["labels"] == {"canary": 0.3, "stable": 0.7}
    # someone moves the rollout's own label by hand: the next step pauses instead of overwriting it
    editing.set_targeting(w.ctx, w.project_id, "feature", {"labels": {"canary": 0.05, "stable": 0.95}}, [rule], w.ada)
    w.clock.advance(HOUR)
    [step] = w.run()
    assert step.state == "failed" and "changed by someone else to 5%" in (step.error or "")
    rollout, _ = rollouts.get(w.ctx, w.project_id, started.id)
    assert rollout.state == "paused"
    assert w.rollout() == {"canary": 0.05, "stable": 0.95}
    rollouts.resume(w.ctx, w.project_id, started.id, w.ada)
    w.clock.advance(HOUR)
    w.run()
    assert w.rollout() == {"canary": 0.5, "stable": 0.5}
    assert rollouts.get(w.ctx, w.project_id, started.id)[0].state == "completed"


@on_both
def test_another_projects_schedules_and_rollouts_are_not_visible(world: World) -> None:
    w = world
    move = {"label": "stable", "target": {"target_type": "version", "version": 2}}
    schedule = schedules.create(w.ctx, w.project_id, "feature", "move_label", move, T0 + HOUR, w.ed)
    rollout = rollouts.start(w.ctx, w.project_id, "feature", "canary", 0.1, 0.5, 2, HOUR, w.ed)
    with w.ctx.storage.write() as tx:
        other = tx.create_project(f"other-{uuid.uuid4().hex[:8]}")
    assert schedules.list_for(w.ctx, other.id) == []
    with pytest.raises(NotFoundError):
        schedules.get(w.ctx, other.id, schedule.id)
    with pytest.raises(NotFoundError):
        schedules.cancel(w.ctx, other.id, schedule.id, w.ada)
    with pytest.raises(NotFoundError):
        rollouts.abort(w.ctx, other.id, rollout.id, w.ada)
    assert rollouts.list_for(w.ctx, other.id) == []
    assert json.loads(json.dumps(schedules.schedule_json(schedule)))["state"] == "pending"


@on_both
def test_a_crash_before_the_commit_applies_nothing_and_the_work_stays_pending(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    weights = {"weights": {"stable": 0.5, "canary": 0.5}}
    schedule = schedules.create(w.ctx, w.project_id, "feature", "set_weights", weights, T0 + HOUR, w.ed)
    w.clock.advance(HOUR)

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the process died here")  # after the change, before its schedule is marked done

    monkeypatch.setattr(store, "finish_schedule", crash)
    with pytest.raises(RuntimeError, match="died"):
        w.run()
    monkeypatch.undo()
    assert w.rollout() == {"stable": 1.0}
    assert schedules.get(w.ctx, w.project_id, schedule.id).state == "pending"
    assert len(w.changes) == 4  # the setup's: neither the dry run nor the rolled-back run announced a change
    [done] = w.run()
    assert done.state == "done" and w.rollout() == {"stable": 0.5, "canary": 0.5}
    assert len(w.changes) == 5
    scheduled = [e for e in w.entries("variable") if "via schedule" in e.actor]
    assert len(scheduled) == 1 and len(w.entries("schedule", "ran")) == 1


def _review_on(w: World, *, all_targeting: bool = False) -> str:
    """Review on (protected labels by default), ``production`` on version 1 (set by the admin) and a second
    editor, Rita; her actor."""
    from setpoint._server.services.change_requests import service as review
    from setpoint._server.storage.change_requests import ReviewSettings

    editing.set_label(w.ctx, w.project_id, "feature", "production", LabelTarget("version", version=1), w.ada)
    settings = ReviewSettings(protected_labels=not all_targeting, all_targeting=all_targeting)
    review.set_settings(w.ctx, w.project_id, settings, w.ada)
    with w.ctx.storage.write() as tx:
        rita = tx.create_admin_user(f"rita-{uuid.uuid4().hex[:8]}@example.com", None, name="Rita")
        tx.set_membership(w.project_id, rita.id, "editor")
    return actors.person(rita.id, "Rita")


def _production(w: World) -> int | None:
    with w.ctx.storage.read() as tx:
        variable = tx.get_variable(w.project_id, "feature")
        assert variable is not None
        return next(lb.target.version for lb in tx.list_labels(variable.id) if lb.name == "production")


@on_both
def test_an_approved_change_request_is_applied_by_its_schedule(world: World) -> None:
    from setpoint._server.services.change_requests import service as review

    w = world
    rita = _review_on(w)
    move = {"label": "production", "target": {"target_type": "version", "version": 2}}
    with pytest.raises(ConflictError, match=r"needs review.*scheduled changes are not reviewed"):
        schedules.create(w.ctx, w.project_id, "feature", "move_label", move, T0 + HOUR, w.ed)
    request = review.create(w.ctx, w.project_id, w.ed, "feature", labels={"production": {"version": 2}})
    apply = {"request_id": request.id}
    with pytest.raises(ConflictError, match=f"#{request.id} is open; schedule its apply once it is approved"):
        schedules.create(w.ctx, w.project_id, "", "apply_change_request", apply, T0 + HOUR, w.ed)
    with pytest.raises(NotFoundError):
        schedules.create(w.ctx, w.project_id, "", "apply_change_request", {"request_id": 99999}, T0 + HOUR, w.ed)
    review.approve(w.ctx, w.project_id, request.id, rita)
    scheduled = schedules.create(w.ctx, w.project_id, "", "apply_change_request", apply, T0 + HOUR, w.ed)
    assert scheduled.variable == "feature"
    assert review.get_request(w.ctx, w.project_id, request.id)[0].state == "approved"  # the dry run left it
    assert _production(w) == 1
    assert w.run() == []
    w.clock.advance(HOUR)
    [done] = w.run()
    assert done.state == "done", done.error
    assert _production(w) == 2
    assert review.get_request(w.ctx, w.project_id, request.id)[0].state == "applied"
    [change] = [e for e in w.entries("variable") if e.action == "apply_change_request"]
    assert change.actor.startswith(f"{w.ed} via schedule {scheduled.id} applying change request #{request.id}")
    assert change.user_id == w.ed_id


@on_both
def test_a_scheduled_apply_of_a_request_gone_stale_fails_and_the_request_is_marked_stale(world: World) -> None:
    from setpoint._server.services.change_requests import service as review

    w = world
    rita = _review_on(w)
    request = review.create(w.ctx, w.project_id, w.ed, "feature", labels={"production": {"version": 2}})
    review.approve(w.ctx, w.project_id, request.id, rita)
    schedules.create(w.ctx, w.project_id, "", "apply_change_request", {"request_id": request.id}, T0 + HOUR, w.ed)
    editing.set_targeting(w.ctx, w.project_id, "feature", {"labels": {"stable": 0.5}}, [], w.ada)  # meanwhile
    w.clock.advance(HOUR)
    [failed] = w.run()
    assert failed.state == "failed" and "stale" in (failed.error or "")
    assert _production(w) == 1  # never silently merged
    assert review.get_request(w.ctx, w.project_id, request.id)[0].state == "stale"  # kept, as a direct apply would
    assert len(w.entries("schedule", "failed")) == 1


@on_both
def test_review_turned_on_after_scheduling_makes_the_run_fail_with_how_to_proceed(world: World) -> None:
    w = world
    weights = {"weights": {"stable": 0.5, "canary": 0.5}}
    schedule = schedules.create(w.ctx, w.project_id, "feature", "set_weights", weights, T0 + HOUR, w.ed)
    rollout = rollouts.start(w.ctx, w.project_id, "feature", "canary", 0.1, 0.5, 2, HOUR, w.ed, start_at=T0 + HOUR)
    _review_on(w, all_targeting=True)
    w.clock.advance(HOUR)
    finished = {s.kind: s for s in w.run()}
    assert finished["set_weights"].id == schedule.id and finished["set_weights"].state == "failed"
    assert "needs review" in (finished["set_weights"].error or "")
    assert "apply_change_request" in (finished["set_weights"].error or "")
    assert finished["rollout_step"].state == "failed"
    assert rollouts.get(w.ctx, w.project_id, rollout.id)[0].state == "paused"
    assert w.rollout() == {"stable": 1.0}
    # and a rollout is refused when it starts, not at its first step
    rollouts.abort(w.ctx, w.project_id, rollout.id, w.ada)
    with pytest.raises(ConflictError, match="needs review"):
        rollouts.start(w.ctx, w.project_id, "feature", "canary", 0.1, 0.5, 2, HOUR, w.ed)


@on_both
def test_scheduled_work_reaches_webhooks_as_events_written_with_the_run(world: World) -> None:
    from setpoint._server.services.webhooks import service as webhooks

    w = world
    hook = webhooks.create_webhook(
        w.ctx,
        w.project_id,
        w.ada,
        url="http://127.0.0.1:9/hook",
        events_wanted=["rollout.started", "rollout.step", "rollout.completed", "schedule.ran", "schedule.failed"],
        allow_private=True,
    )
    rollouts.start(w.ctx, w.project_id, "feature", "canary", 0.5, 1.0, 1, HOUR, w.ed)
    move = {"label": "stable", "target": {"target_type": "version", "version": 2}}
    moved = schedules.create(w.ctx, w.project_id, "feature", "move_label", move, T0 + HOUR, w.ed)
    with w.ctx.storage.write() as tx:
        val = tx.create_admin_user(f"val-{uuid.uuid4().hex[:8]}@example.com", None, name="Val")
        tx.set_membership(w.project_id, val.id, "editor")
    half = {"weights": {"stable": 0.5}}
    gone = schedules.create(
        w.ctx, w.project_id, "feature", "set_weights", half, T0 + HOUR, actors.person(val.id, "Val")
    )
    with w.ctx.storage.write() as tx:
        tx.set_membership(w.project_id, val.id, "viewer")  # so her change fails when it runs
    w.run()
    w.clock.advance(HOUR)
    w.run()
    sent = list(reversed(webhooks.deliveries(w.ctx, w.project_id, hook.id)))
    assert [d.event_type for d in sent] == [
        "rollout.started",
        "rollout.step",
        "schedule.ran",  # the three due at T0 + 1h, in the order they were scheduled
        "schedule.failed",
        "rollout.step",
        "rollout.completed",
    ]
    ran = json.loads(sent[2].body)["data"]
    assert ran["after"]["id"] == moved.id and "via schedule" in json.dumps(ran)
    assert json.loads(sent[3].body)["data"]["after"]["id"] == gone.id
