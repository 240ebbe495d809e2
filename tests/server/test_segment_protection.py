"""Segments that decide who gets a protected label, over the real server on SQLite and PostgreSQL: an editor's
change of who is in such a segment (directly used by a variable's override, or included by a segment that is)
is refused on every write path with the data unchanged (403, or 409 when the project reviews protected changes),
an admin's goes through, and segments that serve no protected label stay editable by editors."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from setpoint._server.services.context import ServiceContext
from tests.server.conftest import BACKENDS
from tests.server.people_support import PASSWORD, Person, make_person, ui_login
from tests.server.support import Project, ServerProcess, make_project

pytestmark = pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")

SEMANTIC_PATCH = "application/json; domain-model=launchdarkly.semanticpatch"


@dataclass(frozen=True)
class Team:
    """A project with an editor and an admin (each with a read,write key)."""

    project: Project
    editor: Person
    admin: Person


def _team(server_ctx: ServiceContext) -> Team:
    project = make_project(server_ctx)
    return Team(
        project=project,
        editor=make_person(server_ctx, "Eddie Editor", project=project.name, role="editor"),
        admin=make_person(server_ctx, "Ada Admin", project=project.name, role="admin"),
    )


@pytest.fixture(scope="module")
def team(server: ServerProcess, server_ctx: ServiceContext) -> Team:
    return _team(server_ctx)


@pytest.fixture(scope="module")
def reviewed(server: ServerProcess, server_ctx: ServiceContext) -> Team:
    """A project that reviews changes touching protected labels."""
    team = _team(server_ctx)
    review = {"review_protected_labels": True, "approver_role": "editor", "admins_may_bypass": True}
    with server.client(team.project, team.admin.key) as client:
        client.put("/v1/review-settings/", json=review).raise_for_status()
    return team


@dataclass(frozen=True)
class Setup:
    """``inner`` (keys u1) is included by ``outer`` (a ``segmentMatch`` rule); ``variable`` serves its override
    to whoever is in the segment it names."""

    inner: str
    outer: str
    variable: str


def _setup(server: ServerProcess, team: Team, *, label: str = "production", nested: bool = False) -> Setup:
    """Two segments and a variable whose override (to ``label``) uses ``outer`` (``nested``) or ``inner``."""
    suffix = uuid.uuid4().hex[:8]
    setup = Setup(inner=f"inner_{suffix}", outer=f"outer_{suffix}", variable=f"v_{suffix}")
    match = {"attribute": "key", "op": "segmentMatch", "values": [setup.inner]}
    used = setup.outer if nested else setup.inner
    variable = {
        "name": setup.variable,
        "labels": {
            "production": {"target_type": "version", "serialized_value": "1"},
            "beta": {"target_type": "version", "serialized_value": "2"},
        },
        "rollout": {"labels": {}},
        "overrides": [{"conditions": [{"kind": "in-segment", "segment": used}], "rollout": {"labels": {label: 1.0}}}],
    }
    with server.client(team.project) as client:  # the operator's key
        client.post("/v1/segments/", json={"key": setup.inner, "name": "Inner", "included": ["u1"]}).raise_for_status()
        outer = {"key": setup.outer, "name": "Outer", "rules": [{"clauses": [match]}]}
        client.post("/v1/segments/", json=outer).raise_for_status()
        client.post("/v1/variables/", json=variable).raise_for_status()
    return setup


def _segment(server: ServerProcess, team: Team, key: str) -> dict[str, Any]:
    with server.client(team.project) as client:
        response = client.get(f"/v1/segments/{key}/")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


def _client(server: ServerProcess, person: Person) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=person.headers(), timeout=10)


Write = Callable[[httpx.Client, Team, str], httpx.Response]


def _ld_url(team: Team, key: str) -> str:
    return f"/api/v2/segments/{team.project.name}/production/{key}"


WRITES: dict[str, Write] = {
    "replace": lambda c, t, k: c.put(f"/v1/segments/{k}/", json={"name": "Inner", "included": ["u1", "u2"]}),
    "semantic patch": lambda c, t, k: c.patch(
        f"/v1/segments/{k}/",
        json={"instructions": [{"kind": "addIncludedTargets", "contextKind": "user", "values": ["u2"]}]},
    ),
    "LaunchDarkly semantic patch": lambda c, t, k: c.patch(
        _ld_url(t, k),
        content=json.dumps(
            {
                "environmentKey": "production",
                "instructions": [{"kind": "removeIncludedTargets", "contextKind": "user", "values": ["u1"]}],
            }
        ),
        headers={"Content-Type": SEMANTIC_PATCH},
    ),
    "LaunchDarkly JSON Patch": lambda c, t, k: c.patch(
        _ld_url(t, k), json=[{"op": "add", "path": "/excluded/-", "value": "u9"}]
    ),
}


def _message(response: httpx.Response) -> str:
    body = response.json()
    return str(body.get("detail") or body.get("message"))


@pytest.mark.parametrize("write", list(WRITES))
@pytest.mark.parametrize("nested", [False, True], ids=["direct", "nested"])
def test_an_editor_cannot_change_who_is_in_a_segment_serving_a_protected_label(
    server: ServerProcess, team: Team, write: str, nested: bool
) -> None:
    setup = _setup(server, team, nested=nested)
    before = _segment(server, team, setup.inner)
    with _client(server, team.editor) as client:
        refused = WRITES[write](client, team, setup.inner)
    assert refused.status_code == 403, refused.text
    message = _message(refused)
    assert f"segment {setup.inner!r}" in message and f"variable(s) {setup.variable!r}" in message
    assert "'production'" in message and "needs the admin role" in message and "has the editor role" in message
    assert _segment(server, team, setup.inner) == before
    # An admin may, on the same path.
    with _client(server, team.admin) as client:
        allowed = WRITES[write](client, team, setup.inner)
    assert allowed.status_code == 200, allowed.text
    assert _segment(server, team, setup.inner)["revision"] == before["revision"] + 1


def test_an_editor_cannot_restore_an_earlier_audience(server: ServerProcess, team: Team) -> None:
    setup = _setup(server, team)
    with _client(server, team.admin) as client:
        client.put(f"/v1/segments/{setup.inner}/", json={"name": "Inner", "included": ["u2"]}).raise_for_status()
        first = client.get(f"/v1/segments/{setup.inner}/history/").json()[-1]["id"]
    before = _segment(server, team, setup.inner)
    with _client(server, team.editor) as client:
        refused = client.post(f"/v1/segments/{setup.inner}/restore/", json={"entry_id": first})
    assert refused.status_code == 403 and "needs the admin role" in _message(refused), refused.text
    assert _segment(server, team, setup.inner) == before
    with _client(server, team.admin) as client:
        assert client.post(f"/v1/segments/{setup.inner}/restore/", json={"entry_id": first}).status_code == 200
    assert _segment(server, team, setup.inner)["included"] == ["u1"]


def test_an_editor_changing_the_including_segment_is_refused_too(server: ServerProcess, team: Team) -> None:
    setup = _setup(server, team, nested=True)
    before = _segment(server, team, setup.outer)
    with _client(server, team.editor) as client:
        refused = client.patch(
            f"/v1/segments/{setup.outer}/",
            json={"instructions": [{"kind": "addIncludedTargets", "contextKind": "user", "values": ["u5"]}]},
        )
    assert refused.status_code == 403 and f"segment {setup.outer!r}" in _message(refused), refused.text
    assert _segment(server, team, setup.outer) == before


def test_segments_serving_no_protected_label_stay_editable_by_editors(server: ServerProcess, team: Team) -> None:
    setup = _setup(server, team, label="beta", nested=True)
    unused = f"unused_{uuid.uuid4().hex[:8]}"
    with _client(server, team.editor) as client:
        assert client.post("/v1/segments/", json={"key": unused, "name": "Unused"}).status_code == 201
        for key in (setup.inner, setup.outer, unused):
            for write in WRITES.values():
                response = write(client, team, key)
                assert response.status_code == 200, (key, response.text)


def test_an_editor_may_rename_or_describe_a_protected_segment(server: ServerProcess, team: Team) -> None:
    setup = _setup(server, team)
    with _client(server, team.editor) as client:
        response = client.put(
            f"/v1/segments/{setup.inner}/",
            json={"name": "Renamed", "description": "who tries it first", "tags": ["t"], "included": ["u1"]},
        )
    assert response.status_code == 200, response.text
    assert _segment(server, team, setup.inner)["name"] == "Renamed"


def test_deleting_or_renaming_a_used_segment_stays_refused_for_everyone(server: ServerProcess, team: Team) -> None:
    setup = _setup(server, team, nested=True)
    with _client(server, team.admin) as client:
        for key, user in ((setup.inner, setup.outer), (setup.outer, setup.variable)):
            refused = client.delete(f"/v1/segments/{key}/")
            assert refused.status_code == 409 and user in _message(refused), refused.text
            refused = client.delete(_ld_url(team, key))
            assert refused.status_code == 409 and user in _message(refused), refused.text
        # A segment's key never changes (there is no rename): a body or a JSON Patch naming another key is refused.
        renamed = client.put(f"/v1/segments/{setup.inner}/", json={"key": "elsewhere", "name": "Inner"})
        assert renamed.status_code == 400 and "'elsewhere'" in _message(renamed), renamed.text
        patched = client.patch(_ld_url(team, setup.inner), json=[{"op": "replace", "path": "/key", "value": "x"}])
        assert patched.status_code == 400, patched.text
    assert _segment(server, team, setup.inner)["included"] == ["u1"]


def test_with_review_on_an_editor_gets_a_409_saying_an_admin_must_make_it(
    server: ServerProcess, reviewed: Team
) -> None:
    setup = _setup(server, reviewed, nested=True)
    before = _segment(server, reviewed, setup.inner)
    with _client(server, reviewed.editor) as client:
        for write in WRITES.values():
            refused = write(client, reviewed, setup.inner)
            assert refused.status_code == 409, refused.text
            message = _message(refused)
            assert f"variable(s) {setup.variable!r}" in message and "touches protected targeting" in message
            assert "no change requests" in message and "needs an admin" in message
        assert client.get("/v1/change-requests/").json() == []  # nothing was queued for review
    assert _segment(server, reviewed, setup.inner) == before
    with _client(server, reviewed.admin) as client:
        assert WRITES["replace"](client, reviewed, setup.inner).status_code == 200


def test_the_web_form_shows_the_refusal(server: ServerProcess, team: Team) -> None:
    setup = _setup(server, team)
    before = _segment(server, team, setup.inner)
    page_url = f"/p/{team.project.name}/segments/{setup.inner}"
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        assert ui_login(browser, team.editor.email, PASSWORD).status_code == 303
        page = browser.get(page_url)
        assert page.status_code == 200
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        form = {
            "csrf_token": csrf,
            "revision": str(before["revision"]),
            "name": "Inner",
            "description": "",
            "tags": "",
            "target_kind": "user",
            "included": "u1\nu2",
            "excluded": "",
        }
        refused = browser.post(page_url, data=form)
    assert refused.status_code == 403, refused.text[:500]
    assert "needs the admin role" in refused.text and setup.variable in refused.text
    assert _segment(server, team, setup.inner) == before
