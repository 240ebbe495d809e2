"""The change-request services on SQLite and PostgreSQL, with an injected clock: `apply_request` (what scheduled
applies call), review timestamps from `ServiceContext.clock`, the audit entries webhooks turn into events, and
a protected label proposed while review is off still needing an admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from setpoint._server.services import audit, editing
from setpoint._server.services.change_requests import review
from setpoint._server.services.change_requests import service as cr
from setpoint._server.services.changes import ChangeSink
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import ConflictError, ForbiddenError
from setpoint._server.services.models import VariableIn
from setpoint._server.services.variables import create_variable
from setpoint._server.storage import Storage
from setpoint._server.storage.change_requests import ReviewSettings
from setpoint._server.storage.records import LabelTarget
from tests.server.conftest import BACKENDS
from tests.server.people_support import make_person
from tests.server.support import make_project

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.parametrize("storage", BACKENDS, indirect=True)
def test_apply_request_with_a_driven_clock(storage: Storage) -> None:
    clock = Clock()
    ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="tests"), clock=clock)
    project = make_project(ctx)
    author = make_person(ctx, "Ann Author", project=project.name, role="editor")
    approver = make_person(ctx, "Bob Boss", project=project.name, role="admin")
    ann, bob = f"user:{author.id}:Ann Author", f"user:{approver.id}:Bob Boss"
    labels = {"production": {"target_type": "version", "serialized_value": "1"}}
    create_variable(ctx, project.id, VariableIn.model_validate({"name": "limit", "labels": labels}), "tests")
    editing.create_version(ctx, project.id, "limit", "2", "tests")

    # Review is off: the editor's move of the protected label is refused as before (admins only) ...
    with pytest.raises(ForbiddenError, match="protected"):
        editing.set_label(ctx, project.id, "limit", "production", LabelTarget("version", version=2), ann)
    # ... and proposing it explicitly needs an admin's approval, not another editor's.
    request = cr.create(ctx, project.id, ann, "limit", labels={"production": {"version": 2}})
    other_editor = make_person(ctx, "Eve Editor", project=project.name, role="editor")
    with pytest.raises(ForbiddenError, match="admin role"):
        cr.approve(ctx, project.id, request.id, f"user:{other_editor.id}:Eve Editor")

    clock.now = START + timedelta(minutes=5)
    approved = cr.approve(ctx, project.id, request.id, bob, comment="ok")
    assert (approved.state, approved.reviewed_by, approved.reviewed_at) == ("approved", bob, clock.now)
    clock.now = START + timedelta(hours=2)
    applied = cr.apply_request(ctx, project.id, request.id, ann)
    assert (applied.state, applied.applied_by, applied.applied_at) == ("applied", ann, clock.now)
    with pytest.raises(ConflictError, match="already applied"):
        cr.apply_request(ctx, project.id, request.id, bob)

    entries = audit.history(ctx, project.id)
    requests = [(e.action, e.after["state"]) for e in entries if e.entity_type == "change_request"]
    assert requests == [("applied", "applied"), ("approved", "approved"), ("commented", "open"), ("opened", "open")]
    change = next(e for e in entries if e.entity_type == "variable")
    assert change.action == "apply_change_request"
    assert change.actor == f"{ann} applying change request #{request.id} by Ann Author, approved by Bob Boss"
    assert change.user_id == author.id
    assert change.after["labels"]["production"]["version"] == 2


@pytest.mark.parametrize("storage", BACKENDS, indirect=True)
def test_review_signal_carries_the_diff_and_nothing_is_written(storage: Storage) -> None:
    ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="tests"))
    project = make_project(ctx)
    editor = make_person(ctx, "Ed", project=project.name, role="editor")
    admin = make_person(ctx, "Ad", project=project.name, role="admin")
    cr.set_settings(ctx, project.id, ReviewSettings(protected_labels=True), f"user:{admin.id}:Ad")
    labels = {"production": {"target_type": "version", "serialized_value": "1"}}
    view = create_variable(ctx, project.id, VariableIn.model_validate({"name": "rate", "labels": labels}), "tests")
    rollout = {"labels": {"production": 0.5}}
    with pytest.raises(review.ReviewRequired) as caught:
        editing.set_targeting(ctx, project.id, "rate", rollout, [], f"user:{editor.id}:Ed")
    assert caught.value.diff == {"rollout": {"before": {"labels": {}}, "after": rollout}}
    with storage.read() as tx:
        variable = tx.get_variable(project.id, "rate")
    assert variable is not None and variable.revision == view.revision  # rolled back
    opened = cr.open_from(ctx, caught.value)
    assert opened.request["state"] == "open" and opened.request["base_revision"] == view.revision
    with pytest.raises(ForbiddenError, match="you opened change request"):
        cr.approve(ctx, project.id, opened.request["id"], f"api_key:9:ci of user:{editor.id}:Ed")
