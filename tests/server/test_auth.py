"""Authentication and isolation: no key, wrong key, read-only key writing, other projects, revoked keys."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from setpoint._server.services import keys
from setpoint._server.services.context import ServiceContext
from tests.server.conftest import BACKENDS
from tests.server.support import Project, ServerProcess, make_project

pytestmark = pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")

BODY: dict[str, Any] = {"name": "secret_flag", "description": None, "rollout": {"labels": {}}, "overrides": []}
ENDPOINTS = [
    ("GET", "/v1/variables/"),
    ("POST", "/v1/variables/"),
    ("GET", "/v1/variables/secret_flag/"),
    ("PUT", "/v1/variables/secret_flag/"),
    ("DELETE", "/v1/variables/secret_flag/"),
    ("GET", "/v1/variable-types/"),
    ("POST", "/v1/variable-types/"),
    ("GET", "/v1/variable-updates/"),
    ("GET", "/v1/audit/"),
]


def _request(server: ServerProcess, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    body = {"name": "T", "json_schema": {}} if "types" in path else BODY
    kwargs = {"json": body} if method in ("POST", "PUT") else {}
    return httpx.request(method, server.url + path, headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_no_key_is_401_with_how_to_fix(server: ServerProcess, method: str, path: str) -> None:
    response = _request(server, method, path, {})
    assert response.status_code == 401
    assert "Authorization: bearer" in response.json()["detail"]
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_wrong_key_is_401(server: ServerProcess, method: str, path: str) -> None:
    response = _request(server, method, path, {"Authorization": "bearer sp_not-a-real-key-0000000000000"})
    assert response.status_code == 401 and "invalid or revoked" in response.json()["detail"]


def test_other_schemes_are_refused(server: ServerProcess, project: Project) -> None:
    response = httpx.get(f"{server.url}/v1/variables/", headers={"Authorization": f"Basic {project.rw_key}"})
    assert response.status_code == 401 and "bearer" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path"), [e for e in ENDPOINTS if e[0] != "GET"])
def test_read_only_key_cannot_write(server: ServerProcess, project: Project, method: str, path: str) -> None:
    response = _request(server, method, path, project.headers(project.ro_key))
    assert response.status_code == 403
    assert "needs 'write'" in response.json()["detail"]


def test_read_only_key_can_read(server: ServerProcess, project: Project) -> None:
    response = httpx.get(f"{server.url}/v1/variables/", headers=project.headers(project.ro_key))
    assert response.status_code == 200 and response.json() == {"variables": {}}


def test_a_key_never_sees_or_changes_another_project(
    server: ServerProcess, project: Project, server_ctx: ServiceContext
) -> None:
    other = make_project(server_ctx)
    with server.client(project) as mine:
        mine.post("/v1/variables/", json=BODY).raise_for_status()
        mine.post("/v1/variable-types/", json={"name": "Mine", "json_schema": {}}).raise_for_status()
    with server.client(other) as theirs:
        assert theirs.get("/v1/variables/").json() == {"variables": {}}
        assert theirs.get("/v1/variable-types/").json() == []
        assert theirs.get("/v1/variables/secret_flag/").status_code == 404
        assert theirs.put("/v1/variables/secret_flag/", json=BODY).status_code == 404
        assert theirs.delete("/v1/variables/secret_flag/").status_code == 404
        assert theirs.get("/v1/audit/").json() == [] or all(
            e["entity_name"] != "secret_flag" for e in theirs.get("/v1/audit/").json()
        )
        # the same name in their own project is independent
        assert theirs.post("/v1/variables/", json=BODY).status_code == 201
    with server.client(project) as mine:
        assert "secret_flag" in mine.get("/v1/variables/").json()["variables"]


def test_revoked_key_stops_working(server: ServerProcess, server_ctx: ServiceContext) -> None:
    created = keys.create_key(server_ctx, "revocation", frozenset({"read"}), "tests")
    headers = {"Authorization": f"bearer {created.token}"}
    assert httpx.get(f"{server.url}/v1/variables/", headers=headers).status_code == 200  # now cached by the server
    # Revoked from another process (as `setpoint keys revoke` does): the server learns within about a second.
    keys.revoke_key(server_ctx, created.project.id, created.key.id, "tests")
    deadline = time.monotonic() + 5
    status = 200
    while time.monotonic() < deadline and status == 200:
        status = httpx.get(f"{server.url}/v1/variables/", headers=headers).status_code
        time.sleep(0.1)
    assert status == 401


def test_keys_are_stored_hashed(server_ctx: ServiceContext) -> None:
    created = keys.create_key(server_ctx, "hashing", frozenset({"read", "write"}), "tests")
    assert created.token.startswith("sp_") and len(created.token) > 40
    with server_ctx.storage.read() as tx:
        stored = tx.list_api_keys(created.project.id)
    assert [k.key_hash for k in stored] != [created.token]
    assert all(created.token not in (k.key_hash, k.prefix, k.name) for k in stored)
