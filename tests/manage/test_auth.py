"""Auth of every management endpoint: no key (401), a read-only key writing (403), another project's key."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.manage.helpers import add_version, create_variable
from tests.manage.live import LiveServer
from tests.server.support import Project, make_project

READS: list[tuple[str, str, Any]] = [
    ("GET", "/v1/variables/agent_config/versions/", None),
    ("GET", "/v1/variables/agent_config/diff/?from=1&to=1", None),
    ("POST", "/v1/variables/agent_config/validate/", {"serialized_value": "{}"}),
    ("GET", "/v1/variables/agent_config/targeting/", None),
    ("GET", "/v1/variables/agent_config/history/", None),
    ("POST", "/v1/resolve/", {"variables": ["agent_config"]}),
    ("GET", "/v1/api-keys/", None),
]
WRITES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/variables/agent_config/versions/", {"serialized_value": '{"instructions": "x"}'}),
    ("POST", "/v1/variables/agent_config/versions/1/restore/", None),
    ("DELETE", "/v1/variables/agent_config/labels/production/", None),
    ("PUT", "/v1/variables/agent_config/targeting/", {"rollout": {"labels": {}}}),
    ("PATCH", "/v1/variables/agent_config/", {"description": "x"}),
    ("POST", "/v1/variables/agent_config/rename/", {"new_name": "renamed"}),
    ("POST", "/v1/api-keys/", {"scopes": ["read"]}),
    ("DELETE", "/v1/api-keys/1/", None),
]
ALL = [pytest.param(*e, id=f"{e[0]} {e[1]}") for e in READS + WRITES]


def _call(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    return client.request(method, path, json=body) if body is not None else client.request(method, path)


@pytest.mark.parametrize(("method", "path", "body"), ALL)
def test_no_key_is_401(live: LiveServer, method: str, path: str, body: Any) -> None:
    with httpx.Client(base_url=live.url) as client:
        response = _call(client, method, path, body)
    assert response.status_code == 401
    assert "Authorization: bearer" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "body"), ALL)
def test_wrong_key_is_401(live: LiveServer, method: str, path: str, body: Any) -> None:
    with httpx.Client(base_url=live.url, headers={"Authorization": "bearer sp_nope"}) as client:
        assert _call(client, method, path, body).status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), [pytest.param(*e, id=f"{e[0]} {e[1]}") for e in WRITES])
def test_read_only_key_cannot_write(api: httpx.Client, ro_api: httpx.Client, method: str, path: str, body: Any) -> None:
    create_variable(api)
    add_version(api, {"instructions": "x"}, label="production")
    response = _call(ro_api, method, path, body)
    assert response.status_code == 403
    assert "needs 'write'" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "body"), [pytest.param(*e, id=f"{e[0]} {e[1]}") for e in READS + WRITES])
def test_other_projects_key_sees_nothing(
    live: LiveServer, api: httpx.Client, project: Project, method: str, path: str, body: Any
) -> None:
    create_variable(api)
    add_version(api, {"instructions": "x"}, label="production")
    other = make_project(live.ctx)
    with httpx.Client(base_url=live.url, headers=other.headers()) as client:
        response = _call(client, method, path, body)
    if "/api-keys/" in path:
        assert response.status_code in (200, 201, 404)  # only ever its own project's keys
        if method == "GET":
            assert all(k["created_by"] == "tests" for k in response.json())
        return
    assert response.status_code == 404, response.text
    assert api.get("/v1/variables/agent_config/versions/").json()[0]["version"] == 1
