"""Scheduled changes and progressive rollouts over HTTP against real ``setpoint serve`` processes (SQLite and
PostgreSQL): roles, projects, bad input and the background runner."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from setpoint._server.services import editing, lifecycle
from setpoint._server.services.context import ServiceContext
from setpoint._server.storage import schedules as store
from tests.server.conftest import BACKENDS
from tests.server.people_support import make_person
from tests.server.support import Project, ServerProcess, make_project

pytestmark = pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")


def _variable(ctx: ServiceContext, project: Project, name: str = "feature") -> None:
    lifecycle.create_variable(ctx, project.id, name, "tests")
    editing.create_version(ctx, project.id, name, '"one"', "tests", label="stable")
    editing.create_version(ctx, project.id, name, '"two"', "tests", label="canary")
    editing.set_targeting(ctx, project.id, name, {"labels": {"stable": 1.0}}, [], "tests")


def _later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def _wait(check: object, timeout: float = 60.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("the runner did not finish in time")


def test_schedule_over_the_api_runs_in_the_background(server: ServerProcess, server_ctx: ServiceContext) -> None:
    project = make_project(server_ctx)
    _variable(server_ctx, project)
    editor = make_person(server_ctx, "Eve", project=project.name, role="editor")
    with httpx.Client(base_url=server.url, headers=editor.headers(), timeout=10) as client:
        body = {
            "variable": "feature",
            "kind": "set_weights",
            "payload": {"weights": {"stable": 0.25, "canary": 0.75}},
            "due_at": _later(1.5),
        }
        created = client.post("/v1/schedules/", json=body)
        assert created.status_code == 201, created.text
        schedule = created.json()
        assert schedule["state"] == "pending" and schedule["who"] == "key Eve key of Eve"
        assert [s["id"] for s in client.get("/v1/schedules/", params={"state": "pending"}).json()] == [schedule["id"]]

        def ran() -> bool:
            return bool(client.get(f"/v1/schedules/{schedule['id']}/").json()["state"] == "done")

        _wait(ran)
        after = client.get(f"/v1/schedules/{schedule['id']}/").json()
        assert after["ran_at"] is not None and after["late"] is False
        variable = client.get("/v1/variables/feature/").json()
        assert variable["rollout"]["labels"] == {"stable": 0.25, "canary": 0.75}
        history = client.get("/v1/audit/", params={"variable": "feature"}, headers=project.headers()).json()
        assert any(e["who"] == "key Eve key of Eve via schedule" for e in history)


def test_roles_bad_input_and_other_projects(server: ServerProcess, server_ctx: ServiceContext) -> None:
    project = make_project(server_ctx)
    other = make_project(server_ctx)
    _variable(server_ctx, project)
    viewer = make_person(server_ctx, "Vic", project=project.name, role="viewer")
    body = {
        "variable": "feature",
        "kind": "move_label",
        "payload": {"label": "stable", "target": {"target_type": "version", "version": 2}},
        "due_at": _later(3600),
    }
    with httpx.Client(base_url=server.url, timeout=10) as http:
        refused = http.post("/v1/schedules/", json=body, headers=viewer.headers())
        assert refused.status_code == 403 and "editor role" in refused.json()["detail"]
        rollout = {"label": "canary", "start_weight": 0.1, "target_weight": 1, "steps": 2, "interval_seconds": 3600}
        refused = http.post("/v1/variables/feature/progressive-rollout/", json=rollout, headers=viewer.headers())
        assert refused.status_code == 403
        past = http.post("/v1/schedules/", json={**body, "due_at": _later(-60)}, headers=project.headers())
        assert past.status_code == 422 and "in the past" in past.json()["detail"]
        created = http.post("/v1/schedules/", json=body, headers=project.headers()).json()
        # the other project's key sees nothing of it
        assert http.get(f"/v1/schedules/{created['id']}/", headers=other.headers()).status_code == 404
        assert http.get("/v1/schedules/", headers=other.headers()).json() == []
        assert http.post(f"/v1/schedules/{created['id']}/cancel/", headers=other.headers()).status_code == 404
        # a viewer reads the project's schedules but cannot cancel
        assert [s["id"] for s in http.get("/v1/schedules/", headers=viewer.headers()).json()] == [created["id"]]
        assert http.post(f"/v1/schedules/{created['id']}/cancel/", headers=viewer.headers()).status_code == 403
        cancelled = http.post(f"/v1/schedules/{created['id']}/cancel/", headers=project.headers())
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        again = http.post(f"/v1/schedules/{created['id']}/cancel/", headers=project.headers())
        assert again.status_code == 409 and "cancelled" in again.json()["detail"]
        # progressive rollouts: overlap refused with the existing one named; pause, resume, abort
        long = {**rollout, "start_at": _later(3600)}
        started = http.post("/v1/variables/feature/progressive-rollout/", json=long, headers=project.headers())
        assert started.status_code == 201, started.text
        rid = started.json()["id"]
        overlap = http.post("/v1/variables/feature/progressive-rollout/", json=long, headers=project.headers())
        assert overlap.status_code == 409 and f"#{rid}" in overlap.json()["detail"]
        assert http.get("/v1/variables/feature/progressive-rollout/", headers=other.headers()).status_code == 404
        for action, state in (("pause", "paused"), ("resume", "active"), ("abort", "aborted")):
            answer = http.post(f"/v1/variables/feature/progressive-rollout/{action}/", headers=project.headers())
            assert answer.status_code == 200 and answer.json()["state"] == state
        gone = http.post("/v1/variables/feature/progressive-rollout/pause/", headers=project.headers())
        assert gone.status_code == 404
        bad = http.post(
            "/v1/variables/feature/progressive-rollout/", json={**rollout, "steps": 0}, headers=project.headers()
        )
        assert bad.status_code == 422


def test_work_due_while_the_server_was_down_runs_when_it_is_back_marked_late(
    server: ServerProcess, server_ctx: ServiceContext
) -> None:
    project = make_project(server_ctx)
    _variable(server_ctx, project)
    server.stop()
    try:  # while no server runs, a change comes due (written as the server would have stored it an hour ago)
        with server_ctx.storage.write() as tx:
            missed = store.add_schedule(
                tx,
                project.id,
                "feature",
                "move_label",
                {"label": "stable", "target": {"target_type": "version", "version": 2}},
                datetime.now(UTC) - timedelta(minutes=5),
                "tests",
                datetime.now(UTC) - timedelta(hours=1),
            )
    finally:
        server.start()
    with server.client(project) as client:

        def ran() -> bool:
            return bool(client.get(f"/v1/schedules/{missed.id}/").json()["state"] != "pending")

        _wait(ran)
        after = client.get(f"/v1/schedules/{missed.id}/").json()
        assert after["state"] == "done" and after["late"] is True and after["late_seconds"] >= 300
        labels = client.get("/v1/variables/feature/").json()["labels"]
        assert labels["stable"]["version"] == 2
        [entry] = [
            e for e in client.get("/v1/audit/").json() if e["entity_type"] == "schedule" and e["action"] == "ran"
        ]
        assert entry["after"]["late"] is True and entry["after"]["id"] == missed.id
