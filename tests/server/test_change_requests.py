"""Change requests (four-eyes review) over the real server, on SQLite and PostgreSQL: a change that needs review
becomes a request on every write path, a second person approves, applying it changes exactly its diff at its
base revision, stale/self-approved/rejected/withdrawn/applied requests refuse to apply, admins' bypasses are
recorded, other projects see nothing."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from setpoint import ConflictError, RemoteOptions
from setpoint._remote.client import RemoteClient
from setpoint._server.services.context import ServiceContext
from setpoint.config import VariableConfig
from tests.server.conftest import BACKENDS
from tests.server.people_support import PASSWORD, Person, make_person, ui_login
from tests.server.support import Project, ServerProcess, make_project

pytestmark = pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")

REVIEW_PROTECTED = {"review_protected_labels": True, "approver_role": "editor", "admins_may_bypass": True}


@dataclass(frozen=True)
class Team:
    """A project whose protected label ``production`` needs review, with two editors, an admin and a viewer."""

    project: Project
    editor: Person
    second: Person
    admin: Person
    viewer: Person


@pytest.fixture(scope="module")
def team(server: ServerProcess, server_ctx: ServiceContext) -> Team:
    project = make_project(server_ctx)
    team = Team(
        project=project,
        editor=make_person(server_ctx, "Eddie Editor", project=project.name, role="editor"),
        second=make_person(server_ctx, "Sam Second", project=project.name, role="editor"),
        admin=make_person(server_ctx, "Ada Admin", project=project.name, role="admin"),
        viewer=make_person(server_ctx, "Vera Viewer", project=project.name, role="viewer"),
    )
    with server.client(project, team.admin.key) as client:
        client.put("/v1/review-settings/", json=REVIEW_PROTECTED).raise_for_status()
    return team


def _client(server: ServerProcess, team: Team, person: Person) -> httpx.Client:
    return server.client(team.project, person.key)


def _variable(server: ServerProcess, team: Team) -> str:
    """A fresh variable: versions 1 and 2, ``production`` on 1, ``staging`` on 2, production served to all."""
    name = f"v_{uuid.uuid4().hex[:8]}"
    labels = {
        "production": {"target_type": "version", "serialized_value": "1"},
        "staging": {"target_type": "version", "serialized_value": "2"},
    }
    with server.client(team.project) as client:  # the operator's key: no review
        client.post("/v1/variables/", json={"name": name, "labels": labels}).raise_for_status()
        client.put(f"/v1/variables/{name}/targeting/", json={"rollout": {"labels": {"production": 1.0}}})
    return name


def _wire(server: ServerProcess, team: Team, name: str) -> dict[str, Any]:
    with server.client(team.project) as client:
        response = client.get(f"/v1/variables/{name}/")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


def _propose(server: ServerProcess, team: Team, name: str) -> dict[str, Any]:
    """The editor moves 20% of traffic to staging: a change of targeting that serves ``production``."""
    with _client(server, team, team.editor) as client:
        response = client.put(
            f"/v1/variables/{name}/targeting/", json={"rollout": {"labels": {"production": 0.8, "staging": 0.2}}}
        )
    assert response.status_code == 202, response.text
    data: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/v1/change-requests/{data['id']}/"
    return data


def test_settings_are_read_by_members_and_set_by_admins(server: ServerProcess, team: Team) -> None:
    with _client(server, team, team.viewer) as client:
        assert client.get("/v1/review-settings/").json() == REVIEW_PROTECTED | {"review_all_targeting": False}
    with _client(server, team, team.editor) as client:
        assert client.put("/v1/review-settings/", json=REVIEW_PROTECTED).status_code == 403
    with _client(server, team, team.admin) as client:
        bad = client.put("/v1/review-settings/", json={**REVIEW_PROTECTED, "approver_role": "viewer"})
        assert bad.status_code == 422
        assert client.get("/v1/review-settings/").json()["approver_role"] == "editor"


def test_an_approved_request_applies_exactly_its_diff(server: ServerProcess, team: Team) -> None:
    name = _variable(server, team)
    before = _wire(server, team, name)
    opened = _propose(server, team, name)
    assert opened["state"] == "open"
    assert opened["author_name"] == "key Eddie Editor key of Eddie Editor"
    assert opened["diff"] == {
        "rollout": {"before": {"labels": {"production": 1.0}}, "after": {"labels": {"production": 0.8, "staging": 0.2}}}
    }
    assert _wire(server, team, name) == before  # nothing applied
    rid = opened["id"]
    with _client(server, team, team.second) as client:
        approved = client.post(f"/v1/change-requests/{rid}/approve/", json={"comment": "looks right"})
        assert approved.status_code == 200, approved.text
        assert approved.json()["state"] == "approved"
    with _client(server, team, team.editor) as client:  # the author applies after approval
        applied = client.post(f"/v1/change-requests/{rid}/apply/")
        assert applied.status_code == 200, applied.text
        assert applied.json()["state"] == "applied"
    after = _wire(server, team, name)
    assert after["rollout"] == {"labels": {"production": 0.8, "staging": 0.2}}
    with server.client(team.project) as client:  # the served config (the snapshot) has it too
        served = client.get("/v1/variables/").json()["variables"][name]
    assert served["rollout"] == after["rollout"]
    assert {k: v for k, v in after.items() if k != "rollout"} == {k: v for k, v in before.items() if k != "rollout"}
    with server.client(team.project) as client:
        changes = client.get(f"/v1/variables/{name}/history/").json()["changes"]
        got = client.get(f"/v1/change-requests/{rid}/").json()
    assert changes[0]["action"] == "apply_change_request"
    assert (
        f"applying change request #{rid} by key Eddie Editor key of Eddie Editor, approved by key Sam"
        in (changes[0]["actor"])
    )
    assert [c["body"] for c in got["comments"]] == ["looks right"]


def test_a_stale_request_cannot_apply_until_refreshed(server: ServerProcess, team: Team) -> None:
    name = _variable(server, team)
    rid = _propose(server, team, name)["id"]
    with _client(server, team, team.second) as client:
        client.post(f"/v1/change-requests/{rid}/approve/").raise_for_status()
    with _client(server, team, team.editor) as client:  # someone changes the variable meanwhile
        client.put(f"/v1/variables/{name}/labels/staging/", json={"target_type": "latest"}).raise_for_status()
        refused = client.post(f"/v1/change-requests/{rid}/apply/")
        assert refused.status_code == 409
        assert "stale" in refused.json()["detail"] and "Refresh" in refused.json()["detail"]
        assert client.get(f"/v1/change-requests/{rid}/").json()["state"] == "stale"
        assert _wire(server, team, name)["rollout"] == {"labels": {"production": 1.0}}
        refreshed = client.post(f"/v1/change-requests/{rid}/refresh/")
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["state"] == "open"
        assert client.post(f"/v1/change-requests/{rid}/apply/").status_code == 409  # must be approved again
    with _client(server, team, team.second) as client:
        assert client.post(f"/v1/change-requests/{rid}/approve/", json={"apply": True}).json()["state"] == "applied"
    wire = _wire(server, team, name)
    assert wire["rollout"] == {"labels": {"production": 0.8, "staging": 0.2}}
    assert wire["labels"]["staging"]["ref"] == "latest"  # the change made in between survives


def test_self_approval_viewers_and_other_projects_are_refused(
    server: ServerProcess, server_ctx: ServiceContext, team: Team
) -> None:
    name = _variable(server, team)
    rid = _propose(server, team, name)["id"]
    with _client(server, team, team.editor) as client:
        own = client.post(f"/v1/change-requests/{rid}/approve/")
        assert own.status_code == 403
        assert "another person" in own.json()["detail"]
    with _client(server, team, team.viewer) as client:
        viewer = client.post(f"/v1/change-requests/{rid}/approve/")
        assert viewer.status_code == 403
        comment = client.post(f"/v1/change-requests/{rid}/comments/", json={"body": "why 20%?"})
        assert comment.status_code == 201
    other = make_project(server_ctx)
    with server.client(other) as client:
        assert client.get(f"/v1/change-requests/{rid}/").status_code == 404
        assert client.post(f"/v1/change-requests/{rid}/approve/").status_code == 404
        assert client.get("/v1/change-requests/").json() == []
    with server.client(team.project) as client:
        assert client.get(f"/v1/change-requests/{rid}/").json()["state"] == "open"
    with httpx.Client(base_url=server.url) as browser:  # the web pages: members only, huge numbers are a 404
        assert browser.get(f"/p/{team.project.name}/change-requests/{rid}", follow_redirects=False).status_code == 303
        assert ui_login(browser, team.editor.email, PASSWORD).status_code == 303
        assert browser.get(f"/p/{team.project.name}/change-requests/{rid}").status_code == 200
        assert browser.get(f"/p/{team.project.name}/change-requests/{2**40}").status_code == 404
        assert browser.get(f"/p/{other.name}/change-requests/{rid}").status_code == 404


def test_rejected_withdrawn_and_applied_requests_never_apply_again(server: ServerProcess, team: Team) -> None:
    name = _variable(server, team)
    rejected, withdrawn, once = (_propose(server, team, name)["id"] for _ in range(3))
    with _client(server, team, team.second) as client:
        assert client.post(f"/v1/change-requests/{rejected}/reject/", json={"comment": "no"}).status_code == 200
        assert client.post(f"/v1/change-requests/{withdrawn}/withdraw/").status_code == 403  # not the author
        client.post(f"/v1/change-requests/{once}/approve/").raise_for_status()
    with _client(server, team, team.editor) as client:
        assert client.post(f"/v1/change-requests/{withdrawn}/withdraw/").json()["state"] == "withdrawn"
        for rid in (rejected, withdrawn):
            refused = client.post(f"/v1/change-requests/{rid}/apply/")
            assert refused.status_code == 409, refused.text
        assert client.post(f"/v1/change-requests/{once}/apply/").status_code == 200
        again = client.post(f"/v1/change-requests/{once}/apply/")
        assert again.status_code == 409
        assert "already applied" in again.json()["detail"]
    with server.client(team.project) as client:
        changes = client.get(f"/v1/variables/{name}/history/").json()["changes"]
        found = client.get(f"/v1/change-requests/?variable={name}").json()
    states = {r["id"]: r["state"] for r in found if not r["bypassed"]}  # the setup's own change: a bypass
    assert [c["action"] for c in changes].count("apply_change_request") == 1
    assert states == {rejected: "rejected", withdrawn: "withdrawn", once: "applied"}


def test_admin_bypass_is_recorded(server: ServerProcess, team: Team) -> None:
    name = _variable(server, team)
    with _client(server, team, team.admin) as client:
        done = client.put(f"/v1/variables/{name}/targeting/", json={"rollout": {"labels": {"staging": 1.0}}})
        assert done.status_code == 200, done.text
        bypassed = client.get(f"/v1/change-requests/?variable={name}").json()[0]
        audit = client.get("/v1/audit/").json()
    assert (bypassed["state"], bypassed["bypassed"], bypassed["author_name"]) == (
        "applied",
        True,
        "key Ada Admin key of Ada Admin",
    )
    assert bypassed["diff"]["rollout"]["after"] == {"labels": {"staging": 1.0}}
    entry = next(e for e in audit if e["entity_type"] == "change_request" and e["entity_name"] == name)
    assert entry["action"] == "applied" and entry["after"]["bypassed"] is True


def test_every_write_path_opens_a_request(server: ServerProcess, team: Team) -> None:
    name = _variable(server, team)
    before = _wire(server, team, name)
    with _client(server, team, team.editor) as client:
        moved = client.put(f"/v1/variables/{name}/labels/production/", json={"target_type": "version", "version": 2})
        assert moved.status_code == 202
        logfire_put = client.put(
            f"/v1/variables/{name}/",
            json={
                "name": name,
                "labels": {
                    "production": {"target_type": "latest"},
                    "staging": {"target_type": "version", "serialized_value": "2"},
                },
                "rollout": before["rollout"],
            },
            headers={"User-Agent": "logfire/5.4.0"},
        )
        assert logfire_put.status_code == 202, logfire_put.text
        assert logfire_put.json()["diff"]["labels"]["production"]["after"] == {"ref": "latest"}
        bulk = client.post(
            "/v1/variables/bulk/",
            json=[{"name": name, "labels": {"production": {"target_type": "latest"}}}, {"name": f"{name}_other"}],
        )
        assert bulk.status_code == 409
        assert "needs review" in bulk.json()["detail"]
        created = client.post(f"/v1/variables/{name}/versions/", json={"value": 3, "label": "production"})
        assert created.status_code == 202, created.text
        assert "Version 3 was created" in created.json()["detail"]
        versions = [v["version"] for v in client.get(f"/v1/variables/{name}/versions/").json()]
        assert client.get(f"/v1/variables/{name}_other/").status_code == 404  # the refused bulk wrote nothing
    assert versions == [3, 2, 1]
    wire = _wire(server, team, name)
    assert wire["labels"] == before["labels"] and wire["rollout"] == before["rollout"]
    rid = created.json()["id"]
    with _client(server, team, team.second) as client:
        client.post(f"/v1/change-requests/{rid}/approve/", json={"apply": True}).raise_for_status()
    assert _wire(server, team, name)["labels"]["production"] == {"version": 3, "serialized_value": "3"}


def test_stricter_settings_and_explicit_requests(server: ServerProcess, team: Team) -> None:
    name = _variable(server, team)
    strict = {"review_all_targeting": True, "approver_role": "admin", "admins_may_bypass": False}
    with _client(server, team, team.admin) as admin:
        admin.put("/v1/review-settings/", json=strict).raise_for_status()
        try:
            own = admin.put(f"/v1/variables/{name}/labels/staging/", json={"target_type": "latest"})
            assert own.status_code == 202  # an unprotected label, and no bypass
            with _client(server, team, team.editor) as editor:
                bad = editor.post(
                    "/v1/change-requests/", json={"variable": name, "rollout": {"labels": {"production": 1.5}}}
                )
                assert bad.status_code == 422
                assert "between 0% and 100%" in bad.json()["detail"]
                same = editor.post(
                    "/v1/change-requests/", json={"variable": name, "rollout": {"labels": {"production": 1}}}
                )
                assert same.status_code == 422 and "change nothing" in same.json()["detail"]
                made = editor.post(
                    "/v1/change-requests/",
                    json={"variable": name, "title": "Pin staging", "labels": {"staging": {"version": 1}}},
                )
                assert made.status_code == 201, made.text
                rid = made.json()["id"]
                refused = editor.post(f"/v1/change-requests/{rid}/reject/")
                assert refused.status_code == 403  # the author cannot review
            with _client(server, team, team.second) as second:
                assert second.post(f"/v1/change-requests/{rid}/approve/").status_code == 403  # editors may not
            assert admin.post(f"/v1/change-requests/{rid}/approve/", json={"apply": True}).status_code == 200
        finally:
            admin.put("/v1/review-settings/", json=REVIEW_PROTECTED).raise_for_status()
    assert _wire(server, team, name)["labels"]["staging"] == {"version": 1, "serialized_value": "1"}


def test_listing_filters_by_state_and_counts(server: ServerProcess, team: Team) -> None:
    name = _variable(server, team)
    rid = _propose(server, team, name)["id"]
    with _client(server, team, team.viewer) as client:
        found = client.get("/v1/change-requests/?state=open,stale").json()
        assert rid in [r["id"] for r in found]
        assert all(r["state"] in ("open", "stale") for r in found)
        bad = client.get("/v1/change-requests/?state=merged")
        assert bad.status_code == 422
        assert "open" in bad.json()["detail"]


def test_the_sdk_client_says_a_write_needs_review(server: ServerProcess, team: Team) -> None:
    name = _variable(server, team)
    wire = _wire(server, team, name)
    wire["labels"]["production"] = {"ref": "latest"}
    options = RemoteOptions(url=server.url, api_key=team.editor.key)
    with RemoteClient(options) as client, pytest.raises(ConflictError, match="needs review") as caught:
        client.replace_variable(VariableConfig.model_validate(wire))
    assert caught.value.status_code == 202
    assert "/v1/change-requests/" in str(caught.value)
    assert _wire(server, team, name)["labels"]["production"]["version"] == 1


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_web_forms_check_role_state_and_input(server: ServerProcess, team: Team) -> None:
    name = _variable(server, team)
    rid = _propose(server, team, name)["id"]
    page = f"/p/{team.project.name}/change-requests/{rid}"
    with httpx.Client(base_url=server.url) as viewer:
        assert ui_login(viewer, team.viewer.email, PASSWORD).status_code == 303
        token = _csrf(viewer.get(page).text)
        forged = viewer.post(f"{page}/approve", data={"csrf_token": token})
        assert forged.status_code == 403 and "editor role" in forged.text
        too_long = viewer.post(f"{page}/comment", data={"csrf_token": token, "comment": "x" * 20_000})
        assert too_long.status_code == 422 and "keep it to 10000" in too_long.text
        said = viewer.post(f"{page}/comment", data={"csrf_token": token, "comment": "ok"}, follow_redirects=False)
        assert said.status_code == 303
    with httpx.Client(base_url=server.url) as author:
        assert ui_login(author, team.editor.email, PASSWORD).status_code == 303
        token = _csrf(author.get(page).text)
        own = author.post(f"{page}/approve", data={"csrf_token": token})
        assert own.status_code == 403 and "another person" in own.text
        assert author.post(f"{page}/merge", data={"csrf_token": token}).status_code == 404
        assert author.post(f"{page}/withdraw", data={"csrf_token": token}).status_code == 303
        again = author.post(f"{page}/withdraw", data={"csrf_token": token})
        assert again.status_code == 409 and "withdrawn" in again.text
