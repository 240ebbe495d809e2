"""API keys over the API: list, create (shown once), revoke."""

from __future__ import annotations

import httpx

from tests.manage.live import LiveServer
from tests.server.support import Project


def test_create_list_and_revoke(live: LiveServer, api: httpx.Client) -> None:
    created = api.post("/v1/api-keys/", json={"name": "ci", "scopes": ["read"]})
    assert created.status_code == 201, created.text
    body = created.json()
    token = body["key"]
    assert token.startswith("sp_")
    assert body["scopes"] == ["read"]
    assert body["prefix"] == token[:10]
    listed = api.get("/v1/api-keys/").json()
    assert [k["name"] for k in listed][-1] == "ci"
    assert token not in str(listed)
    with httpx.Client(base_url=live.url, headers={"Authorization": f"bearer {token}"}) as new_client:
        assert new_client.get("/v1/variables/").status_code == 200
        revoked = api.delete(f"/v1/api-keys/{body['id']}/")
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"] is not None
        assert new_client.get("/v1/variables/").status_code == 401


def test_key_errors(api: httpx.Client, ro_api: httpx.Client) -> None:
    assert api.post("/v1/api-keys/", json={"scopes": ["admin"]}).status_code == 422
    assert api.post("/v1/api-keys/", json={"scopes": []}).status_code == 422
    assert api.delete("/v1/api-keys/999999/").status_code == 404
    assert ro_api.get("/v1/api-keys/").status_code == 200
    assert ro_api.post("/v1/api-keys/", json={"scopes": ["read"]}).status_code == 403


def test_another_projects_key_cannot_be_revoked(live: LiveServer, api: httpx.Client, project: Project) -> None:
    from tests.server.support import make_project

    other = make_project(live.ctx)
    with httpx.Client(base_url=live.url, headers=other.headers()) as other_api:
        their_key = other_api.get("/v1/api-keys/").json()[0]
    assert api.delete(f"/v1/api-keys/{their_key['id']}/").status_code == 404
    assert all(k["id"] != their_key["id"] for k in api.get("/v1/api-keys/").json())
