"""Roles over the real server, on SQLite and PostgreSQL: every role x endpoint family, keys capped by their
maker's current role, deactivation, protected labels, the audit naming the person, cross-project isolation."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import ConflictError, InvalidError
from setpoint._server.services.people import members
from setpoint._server.services.people import service as people
from tests.server.conftest import BACKENDS
from tests.server.people_support import PASSWORD, Person, make_person, ui_login
from tests.server.sse_support import SSEReader
from tests.server.support import Project, ServerProcess, make_project

pytestmark = pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")

CHANGE_SEEN_WITHIN = 3.0
"""Seconds for a role change made by another process to reach the server (NOTIFY, or the 1 s audit poll)."""


@dataclass(frozen=True)
class Team:
    """One project with a viewer, an editor and an admin (each with a read,write key) and a bystander."""

    project: Project
    viewer: Person
    editor: Person
    admin: Person
    bystander: Person


@pytest.fixture(scope="module")
def team(server: ServerProcess, server_ctx: ServiceContext) -> Team:
    project = make_project(server_ctx)
    return Team(
        project=project,
        viewer=make_person(server_ctx, "Vera Viewer", project=project.name, role="viewer"),
        editor=make_person(server_ctx, "Eddie Editor", project=project.name, role="editor"),
        admin=make_person(server_ctx, "Ada Admin", project=project.name, role="admin"),
        bystander=make_person(server_ctx, "Bo Bystander"),
    )


def _variable(server: ServerProcess, team: Team) -> str:
    """A fresh variable with versions 1 and 2, ``production`` on 1 and ``staging`` on 2, no rollout."""
    name = f"v_{uuid.uuid4().hex[:8]}"
    labels = {
        "production": {"target_type": "version", "serialized_value": "1"},
        "staging": {"target_type": "version", "serialized_value": "2"},
    }
    with server.client(team.project) as client:
        client.post("/v1/variables/", json={"name": name, "labels": labels}).raise_for_status()
    return name


Call = Callable[[httpx.Client, str, Team], httpx.Response]


def _u() -> str:
    return uuid.uuid4().hex[:8]


FAMILIES: dict[str, tuple[str, Call]] = {
    "read config": ("viewer", lambda c, v, t: c.get("/v1/variables/")),
    "history": ("viewer", lambda c, v, t: c.get(f"/v1/variables/{v}/history/")),
    "resolve": ("viewer", lambda c, v, t: c.post("/v1/resolve/", json={"targeting_key": "u1"})),
    "members list": ("viewer", lambda c, v, t: c.get("/v1/members/")),
    "create version": ("editor", lambda c, v, t: c.post(f"/v1/variables/{v}/versions/", json={"value": 3})),
    "move unprotected label": (
        "editor",
        lambda c, v, t: c.put(f"/v1/variables/{v}/labels/staging/", json={"target_type": "latest"}),
    ),
    "targeting": (
        "editor",
        lambda c, v, t: c.put(f"/v1/variables/{v}/targeting/", json={"rollout": {"labels": {"staging": 0.5}}}),
    ),
    "segments": (
        "editor",
        lambda c, v, t: c.post("/v1/segments/", json={"key": f"s{_u()}", "name": "S", "included": ["a"]}),
    ),
    "types": (
        "editor",
        lambda c, v, t: c.post("/v1/variable-types/", json={"name": f"T{_u()}", "json_schema": {"type": "integer"}}),
    ),
    "move protected label": (
        "admin",
        lambda c, v, t: c.put(f"/v1/variables/{v}/labels/production/", json={"target_type": "version", "version": 2}),
    ),
    "targeting serving a protected label": (
        "admin",
        lambda c, v, t: c.put(f"/v1/variables/{v}/targeting/", json={"rollout": {"labels": {"production": 1.0}}}),
    ),
    "replace (Logfire PUT) moving a protected label": (
        "admin",
        lambda c, v, t: c.put(
            f"/v1/variables/{v}/", json={"name": v, "labels": {"production": {"target_type": "latest"}}}
        ),
    ),
    "api keys": ("admin", lambda c, v, t: c.post("/v1/api-keys/", json={"scopes": ["read"], "name": "k"})),
    "members change": (
        "admin",
        lambda c, v, t: c.put("/v1/members/", json={"email": t.bystander.email, "role": "viewer"}),
    ),
    "settings": ("admin", lambda c, v, t: c.put("/v1/project-settings/", json={"protected_labels": ["production"]})),
    "audit": ("admin", lambda c, v, t: c.get("/v1/audit/")),
    "delete variable": ("admin", lambda c, v, t: c.delete(f"/v1/variables/{v}/")),
}
RANK = {"viewer": 1, "editor": 2, "admin": 3}
ADMIN_ENDPOINTS = {"api keys", "members change", "settings", "audit", "delete variable"}
"""Families whose endpoint itself needs an admin: a refusal names the admin role whatever the caller has."""


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_role_on_every_endpoint_family(server: ServerProcess, team: Team, family: str) -> None:
    need, call = FAMILIES[family]
    for role in ("viewer", "editor", "admin"):
        person: Person = getattr(team, role)
        name = _variable(server, team)
        with httpx.Client(base_url=server.url, headers=person.headers(), timeout=10) as client:
            response = call(client, name, team)
        if RANK[role] >= RANK[need]:
            assert response.status_code < 300, (family, role, response.text)
        else:
            assert response.status_code == 403, (family, role, response.text)
            detail = response.json()["detail"]
            # The first role gate the request meets is named: editor (any change) or admin.
            named = (
                ["admin"]
                if family in ADMIN_ENDPOINTS
                else [r for r in ("editor", "admin") if RANK[role] < RANK[r] <= RANK[need]]
            )
            assert any(f"needs the {r} role" in detail for r in named), detail
            assert f"has the {role} role" in detail
    # The refused changes changed nothing: the protected label still points at version 1.
    if family in ("move protected label", "replace (Logfire PUT) moving a protected label"):
        with server.client(team.project) as client:
            config = client.get("/v1/variables/").json()["variables"]
        untouched = [v for v in config.values() if v["labels"].get("production", {}).get("version") == 1]
        assert untouched


def test_a_key_never_carries_more_than_its_makers_role(
    server: ServerProcess, server_ctx: ServiceContext, team: Team
) -> None:
    name = _variable(server, team)
    # A read-only key of an admin is a viewer.
    ro = make_person(server_ctx, "Rita Readonly", project=team.project.name, role="admin", scopes="read")
    refused = httpx.get(f"{server.url}/v1/audit/", headers=ro.headers())
    assert refused.status_code == 403 and "has the viewer role" in refused.json()["detail"]
    assert httpx.get(f"{server.url}/v1/variables/", headers=ro.headers()).status_code == 200
    # Demoting a person limits their existing keys at once (another process makes the change).
    person = make_person(server_ctx, "Dora Demoted", project=team.project.name, role="editor")
    url = f"{server.url}/v1/variables/{name}/versions/"
    assert httpx.post(url, json={"value": 6}, headers=person.headers()).status_code == 201
    members.set_member(server_ctx, team.project.id, person.email, "viewer", "tests")
    deadline = time.monotonic() + CHANGE_SEEN_WITHIN
    while httpx.post(url, json={"value": 7}, headers=person.headers()).status_code != 403:
        assert time.monotonic() < deadline, "the demoted person's key still writes"
        time.sleep(0.1)
    # Removing them from the project ends their key there, and the SSE stream it opened.
    with SSEReader(server.url, person.key) as stream:
        assert stream.status_code == 200
        members.remove_member(server_ctx, team.project.id, person.email, "tests")
        assert stream.closed.wait(CHANGE_SEEN_WITHIN), "the removed member's SSE stream is still open"
    deadline = time.monotonic() + CHANGE_SEEN_WITHIN
    while httpx.get(f"{server.url}/v1/variables/", headers=person.headers()).status_code != 403:
        assert time.monotonic() < deadline, "the removed person's key still reads"
        time.sleep(0.1)
    # A key made through the API belongs to the same person and is capped the same way.
    with httpx.Client(base_url=server.url, headers=team.admin.headers(), timeout=10) as client:
        made = client.post("/v1/api-keys/", json={"scopes": ["read", "write"], "name": "child"}).json()
    assert made["user_id"] == team.admin.id


def test_deactivating_a_person_ends_their_keys_streams_and_sessions(
    server: ServerProcess, server_ctx: ServiceContext, team: Team
) -> None:
    person = make_person(server_ctx, "Gus Gone", project=team.project.name, role="editor")
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        assert ui_login(browser, person.email, PASSWORD).status_code == 303
        assert browser.get(f"/p/{team.project.name}/variables").status_code == 200
        with SSEReader(server.url, person.key) as stream:
            assert stream.status_code == 200
            people.deactivate(server_ctx, person.email, "tests")
            assert stream.closed.wait(CHANGE_SEEN_WITHIN), "their SSE stream is still open"
        assert httpx.get(f"{server.url}/v1/variables/", headers=person.headers()).status_code == 401
        old_cookie = browser.get(f"/p/{team.project.name}/variables")
        assert old_cookie.status_code == 303 and old_cookie.headers["location"].startswith("/login")
        assert ui_login(browser, person.email, PASSWORD).status_code == 401
    with pytest.raises(ConflictError):
        people.deactivate(server_ctx, person.email, "tests")


def test_the_audit_names_the_person_and_filters(server: ServerProcess, server_ctx: ServiceContext, team: Team) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    name = _variable(server, team)
    with httpx.Client(base_url=server.url, headers=team.editor.headers(), timeout=10) as client:
        client.post(f"/v1/variables/{name}/versions/", json={"value": 9}).raise_for_status()
    with httpx.Client(base_url=server.url, headers=team.admin.headers(), timeout=10) as client:
        mine = client.get("/v1/audit/", params={"person": team.editor.email, "variable": name}).json()
        assert [e["action"] for e in mine] == ["create_version"]
        assert mine[0]["who"] == "key Eddie Editor key of Eddie Editor"
        assert mine[0]["user_id"] == team.editor.id
        later = client.get("/v1/audit/", params={"variable": name, "since": (start + timedelta(hours=1)).isoformat()})
        assert later.json() == []
        window = client.get(
            "/v1/audit/", params={"variable": name, "since": start.isoformat(), "until": datetime.now(UTC).isoformat()}
        ).json()
        assert {e["action"] for e in window} == {"create", "create_version"}
        assert client.get("/v1/audit/", params={"person": "nobody@example.com"}).status_code == 404
        assert client.get("/v1/audit/", params={"since": "2026-01-01T00:00:00"}).status_code == 422
        # Instance events (logins, people) are for owners only.
        refused = client.get("/v1/audit/", params={"instance": "true"})
        assert refused.status_code == 403 and "needs the owner role" in refused.json()["detail"]
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        assert ui_login(browser, team.viewer.email, "wrong password").status_code == 401
        assert ui_login(browser, team.viewer.email, PASSWORD).status_code == 303
    with server.client(team.project) as operator:  # a key made with `setpoint keys create`: the operator
        events = operator.get("/v1/audit/", params={"instance": "true", "person": team.viewer.email}).json()
    assert [e["action"] for e in events[:2]] == ["login", "login_failed"]
    assert events[0]["who"] == "Vera Viewer" and events[0]["entity_type"] == "session"


def test_one_projects_admin_never_sees_another_projects_members_or_audit(
    server: ServerProcess, server_ctx: ServiceContext, team: Team
) -> None:
    other = make_project(server_ctx)
    outsider = make_person(server_ctx, "Olga Other", project=other.name, role="admin")
    with httpx.Client(base_url=server.url, headers=outsider.headers(), timeout=10) as client:
        listed = {m["email"] for m in client.get("/v1/members/").json()}
        assert listed == {outsider.email}
        audit = client.get("/v1/audit/").json()
        assert audit and all(e["entity_name"] != team.admin.email for e in audit)
        assert not any(e["entity_type"] == "variable" for e in audit)
        # Naming a member of the other project changes only this project.
        client.put("/v1/members/", json={"email": team.editor.email, "role": "viewer"}).raise_for_status()
    with httpx.Client(base_url=server.url, headers=team.editor.headers(), timeout=10) as client:
        assert {m["email"]: m["role"] for m in client.get("/v1/members/").json()}[team.editor.email] == "editor"
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        assert ui_login(browser, outsider.email, PASSWORD).status_code == 303
        assert browser.get(f"/p/{other.name}/members").status_code == 200
        hidden = browser.get(f"/p/{team.project.name}/members")
        assert hidden.status_code == 404 and team.editor.email not in hidden.text
        assert team.project.name not in browser.get("/projects").text


def test_bad_input_is_refused_and_changes_nothing(
    server: ServerProcess, server_ctx: ServiceContext, team: Team
) -> None:
    with httpx.Client(base_url=server.url, headers=team.admin.headers(), timeout=10) as client:
        unknown = client.put("/v1/members/", json={"email": team.bystander.email, "role": "superuser"})
        assert unknown.status_code == 422 and "use one of viewer, editor, admin" in unknown.json()["detail"]
        missing = client.put("/v1/members/", json={"email": "ghost@example.com", "role": "viewer"})
        assert missing.status_code == 404 and "invite them first" in missing.json()["detail"]
        assert client.delete("/v1/members/ghost@example.com/").status_code == 404
        bad_label = client.put("/v1/project-settings/", json={"protected_labels": ["latest"]})
        assert bad_label.status_code == 422
        assert client.get("/v1/project-settings/").json()["protected_labels"] == ["production"]
    with pytest.raises(ConflictError, match="already exists"):
        people.invite(server_ctx, team.editor.email.upper(), "Again", "tests")
    with pytest.raises(InvalidError, match="not an email address"):
        people.invite(server_ctx, "not-an-email", "X", "tests")
    # The last owner can be neither deactivated nor demoted.
    owners = [p for p in people.list_people(server_ctx) if p.is_owner and p.active]
    if len(owners) == 1:
        with pytest.raises(ConflictError, match="last owner"):
            people.deactivate(server_ctx, owners[0].username, "tests")
        with pytest.raises(ConflictError, match="last owner"):
            people.set_owner(server_ctx, owners[0].username, False, "tests")


def test_invite_links_work_once_and_expire(server: ServerProcess, server_ctx: ServiceContext) -> None:
    email = f"new.{uuid.uuid4().hex[:6]}@example.com"
    link = people.invite(server_ctx, email, "New Person", "tests")
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        assert ui_login(browser, email, "").status_code == 401  # no password before the link is used
        page = browser.get(link.path)
        assert page.status_code == 200 and email in page.text
        csrf = page.text.split('name="link_csrf" value="')[1].split('"')[0]
        short = browser.post(link.path, data={"password": "short", "confirm": "short", "link_csrf": csrf})
        assert short.status_code == 422 and "at least 8 characters" in short.text
        csrf = short.text.split('name="link_csrf" value="')[1].split('"')[0]
        form = {"password": PASSWORD, "confirm": PASSWORD, "name": "New Person", "link_csrf": csrf}
        accepted = browser.post(link.path, data=form)
        assert accepted.status_code == 303
        again = browser.get(link.path)
        assert again.status_code == 410 and "already used" in again.text
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        assert ui_login(browser, email, PASSWORD).status_code == 303
    # An expired link.
    expired_email = f"late.{uuid.uuid4().hex[:6]}@example.com"
    late = people.invite(server_ctx, expired_email, "Late", "tests")
    from setpoint._server.security import hash_token

    with server_ctx.storage.write() as tx:
        invite_row = tx.get_invite(hash_token(late.token))
        assert invite_row is not None
        tx.create_invite(invite_row.user_id, hash_token(late.token + "x"), "invite", "tests", datetime.now(UTC))
    gone = httpx.get(f"{server.url}{late.path}x", timeout=10)
    assert gone.status_code == 410 and "expired" in gone.text
    assert httpx.get(f"{server.url}/invite/not-a-token", timeout=10).status_code == 404


def test_a_password_reset_link_ends_the_old_sessions(server: ServerProcess, server_ctx: ServiceContext) -> None:
    person = make_person(server_ctx, "Rex Reset")
    with httpx.Client(base_url=server.url, timeout=10) as old, httpx.Client(base_url=server.url, timeout=10) as new:
        assert ui_login(old, person.email, PASSWORD).status_code == 303
        link = people.reset_password(server_ctx, person.email, "tests")
        assert ui_login(new, person.email, PASSWORD).status_code == 303  # the old password works until then
        people.accept_link(server_ctx, link.token, "a brand new password")
        assert old.get("/projects").status_code == 303 and new.get("/projects").status_code == 303
        assert ui_login(new, person.email, PASSWORD).status_code == 401
        assert ui_login(new, person.email, "a brand new password").status_code == 303
        # Someone who is not an owner creates no project.
        form = new.get("/projects").text
        assert "Owners create projects" in form
        csrf = form.split('name="csrf_token" value="')[1].split('"')[0]
        refused = new.post("/projects", data={"name": f"mine-{uuid.uuid4().hex[:6]}", "csrf_token": csrf})
        assert refused.status_code == 403 and "needs the owner role" in refused.text
