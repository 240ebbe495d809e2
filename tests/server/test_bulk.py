"""``POST /v1/variables/bulk/``: the upsert Logfire documents (its ``external.md`` example, verbatim), on a real
server over SQLite and PostgreSQL: all or nothing, an audit entry per variable, optimistic concurrency."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

from tests.server.conftest import BACKENDS
from tests.server.support import Project, ServerProcess

pytestmark = pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")

SCHEMA = {"type": "object", "properties": {"model": {"type": "string"}}, "required": ["model"]}


def item(name: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": name, "json_schema": SCHEMA, "rollout": {"labels": {}}, "overrides": []}
    data.update(extra)
    return data


def prod(value: dict[str, Any]) -> dict[str, Any]:
    return {"prod": {"target_type": "version", "serialized_value": json.dumps(value)}}


def served(client: httpx.Client) -> dict[str, Any]:
    variables: dict[str, Any] = client.get("/v1/variables/").json()["variables"]
    return variables


def test_the_logfire_documented_call(server: ServerProcess, project: Project) -> None:
    # docs/reference/advanced/managed-variables/external.md in pydantic/logfire, with our URL and key.
    response = httpx.post(
        f"{server.url}/v1/variables/bulk/",
        headers={"Authorization": f"Bearer {project.rw_key}"},
        json=[
            {
                "name": "feature_flag",
                "json_schema": {"type": "boolean"},
                "rollout": {"labels": {}},
                "overrides": [],
                "external": True,
            },
        ],
    )
    assert response.status_code == 200, response.text
    assert [v["name"] for v in response.json()] == ["feature_flag"]
    with server.client(project) as client:
        flag = served(client)["feature_flag"]
    assert flag["external"] is True and flag["json_schema"] == {"type": "boolean"} and flag["labels"] == {}


def test_creates_and_replaces_with_an_audit_entry_per_variable(server: ServerProcess, project: Project) -> None:
    with server.client(project) as client:
        first = client.post("/v1/variables/bulk/", json=[item("agent", labels=prod({"model": "a"}),
                                                               rollout={"labels": {"prod": 1.0}})])  # fmt: skip
        assert first.status_code == 200
        answer = client.post(
            "/v1/variables/bulk/",
            json=[
                item("agent", description="now described", rollout={"labels": {"prod": 0.5}}),  # no labels: kept
                item("router", labels=prod({"model": "r"}), rollout={"labels": {"prod": 1.0}}, external=True),
            ],
        )
        assert answer.status_code == 200, answer.text
        assert [v["name"] for v in answer.json()] == ["agent", "router"]
        config = served(client)
        agent, router = config["agent"], config["router"]
        assert agent["description"] == "now described" and agent["rollout"] == {"labels": {"prod": 0.5}}
        assert agent["labels"]["prod"] == {"version": 1, "serialized_value": '{"model": "a"}'}
        assert router["external"] is True and router["latest_version"]["version"] == 1
        assert [c["action"] for c in client.get("/v1/variables/agent/history/").json()["changes"]] == [
            "update",
            "create",
        ]
        router_history = client.get("/v1/variables/router/history/").json()["changes"]
        assert [c["action"] for c in router_history] == ["create"]
        assert router_history[0]["actor"].startswith("api_key:")
        # Explicit empty labels remove them (the rollout no longer names any).
        cleared = client.post("/v1/variables/bulk/", json=[item("agent", labels={})])
        assert cleared.status_code == 200 and served(client)["agent"]["labels"] == {}


def test_all_or_nothing(server: ServerProcess, project: Project) -> None:
    with server.client(project) as client:
        client.post("/v1/variables/bulk/", json=[item("kept", description="before")]).raise_for_status()
        before = client.get("/v1/variables/")
        cases: list[tuple[list[dict[str, Any]], int, list[str]]] = [
            (  # a rollout naming a label that does not exist, in the last item
                [item("kept", description="after"), item("fresh"), item("broken", rollout={"labels": {"x": 1.0}})],
                422,
                ["variables[2]", "'broken'", "x"],
            ),
            (  # a value that does not match the schema
                [item("fresh"), item("bad_value", labels=prod({"model": 3}), rollout={"labels": {"prod": 1.0}})],
                422,
                ["variables[1]", "'bad_value'"],
            ),
            ([item("fresh"), item("fresh")], 422, ["variables[1]", "send each variable once"]),
            ([item("fresh", type_name="NoSuchType", json_schema=None)], 422, ["variables[0]", "NoSuchType"]),
            ([{"name": "fresh", "rollout": {"labels": {}}, "overrides": [], "colour": "red"}], 422, ["colour"]),
            ([item("fresh", rollout={"labels": {}}, external="sometimes")], 422, ["external"]),
        ]
        for payload, status, words in cases:
            response = client.post("/v1/variables/bulk/", json=payload)
            assert response.status_code == status, response.text
            for word in words:
                assert word in response.text, (word, response.text)
        assert client.post("/v1/variables/bulk/", json={"name": "not a list"}).status_code == 422
        too_many = client.post("/v1/variables/bulk/", json=[{"name": f"v{i}"} for i in range(1001)])
        assert too_many.status_code == 422 and "at most 1000" in too_many.text
        after = client.get("/v1/variables/")
        assert after.headers["etag"] == before.headers["etag"]
        assert set(served(client)) == {"kept"} and served(client)["kept"]["description"] == "before"
        assert [c["action"] for c in client.get("/v1/variables/kept/history/").json()["changes"]] == ["create"]


def test_revisions_guard_against_lost_updates(server: ServerProcess, project: Project) -> None:
    with server.client(project) as client:
        client.post("/v1/variables/bulk/", json=[item("a"), item("b")]).raise_for_status()
        revision = int(client.get("/v1/variables/a/").headers["etag"].strip('"'))
        client.patch("/v1/variables/a/", json={"description": "someone else"}).raise_for_status()
        stale = client.post("/v1/variables/bulk/", json=[item("b", description="mine"), item("a", revision=revision)])
        assert stale.status_code == 412 and "variables[1] ('a')" in stale.text
        assert served(client)["b"]["description"] is None and served(client)["a"]["description"] == "someone else"
        gone = client.post("/v1/variables/bulk/", json=[item("never_made", revision=1)])
        assert gone.status_code == 412 and "does not exist" in gone.text
        current = int(client.get("/v1/variables/a/").headers["etag"].strip('"'))
        fresh = client.post("/v1/variables/bulk/", json=[item("a", description="mine", revision=current)])
        assert fresh.status_code == 200 and served(client)["a"]["description"] == "mine"


def test_needs_the_write_scope(server: ServerProcess, project: Project) -> None:
    with server.client(project, project.ro_key) as client:
        refused = client.post("/v1/variables/bulk/", json=[item("x")])
    assert refused.status_code == 403 and "'write'" in refused.text
    assert httpx.post(f"{server.url}/v1/variables/bulk/", json=[item("x")]).status_code == 401


def test_concurrent_bulk_writes_in_opposite_orders_all_apply(server: ServerProcess, project: Project) -> None:
    with server.client(project) as client:
        client.post("/v1/variables/bulk/", json=[item("left"), item("right")]).raise_for_status()
    statuses: list[int] = []

    def writer(order: list[str], tag: str) -> None:
        with server.client(project) as client:
            for round_ in range(5):
                payload = [item(name, description=f"{tag}{round_}") for name in order]
                statuses.append(client.post("/v1/variables/bulk/", json=payload).status_code)

    threads = [
        threading.Thread(target=writer, args=(["left", "right"], "a")),
        threading.Thread(target=writer, args=(["right", "left"], "b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert statuses == [200] * 10
    with server.client(project) as client:
        config = served(client)
        # Each request is atomic: both variables carry the description of the same (last) request.
        assert config["left"]["description"] == config["right"]["description"]
        assert len(client.get("/v1/variables/left/history/").json()["changes"]) == 11
