"""The HTTP API of a real server process, on SQLite and on PostgreSQL."""

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


def variable_body(name: str = "agent", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "description": "the agent",
        "json_schema": SCHEMA,
        "rollout": {"labels": {}},
        "overrides": [],
    }
    body.update(extra)
    return body


def test_health_readiness_and_openapi(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").json()["status"] == "ok"
    document = httpx.get(f"{server.url}/openapi.json").json()
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert document["paths"]["/v1/variables/"]["get"]["security"] == [{"apiKey": []}]
    paths = document["paths"]
    for path in ("/v1/variables/", "/v1/variables/{name}/", "/v1/variable-types/", "/v1/variable-updates/"):
        assert path in paths


def test_create_then_read_config_with_labels_and_versions(server: ServerProcess, project: Project) -> None:
    labels = {
        "prod": {"target_type": "version", "version": 1, "serialized_value": '{"model": "a"}'},
        "canary": {"target_type": "version", "serialized_value": '{"model": "b"}'},
        "edge": {"target_type": "latest"},
        "off": {"target_type": "code_default"},
        "alias": {"target_type": "label", "target_label": "prod"},
    }
    with server.client(project) as client:
        created = client.post("/v1/variables/", json=variable_body(labels=labels, rollout={"labels": {"prod": 1}}))
        assert created.status_code == 201, created.text
        config = client.get("/v1/variables/").json()
    variable = config["variables"]["agent"]
    assert variable["labels"] == {
        "prod": {"version": 1, "serialized_value": '{"model": "a"}'},
        "canary": {"version": 2, "serialized_value": '{"model": "b"}'},
        "edge": {"version": 2, "ref": "latest"},
        "off": {"version": None, "ref": "code_default"},
        "alias": {"version": None, "ref": "prod"},
    }
    assert variable["latest_version"] == {"version": 2, "serialized_value": '{"model": "b"}'}
    assert variable["rollout"] == {"labels": {"prod": 1.0}}
    assert variable["json_schema"] == SCHEMA


def test_etag_and_304_change_exactly_when_content_changes(server: ServerProcess, project: Project) -> None:
    with server.client(project) as client:
        client.post("/v1/variables/", json=variable_body()).raise_for_status()
        first = client.get("/v1/variables/")
        etag = first.headers["etag"]
        not_modified = client.get("/v1/variables/", headers={"If-None-Match": etag})
        assert not_modified.status_code == 304 and not_modified.content == b""
        assert not_modified.headers["etag"] == etag
        # A PUT that changes nothing leaves the content, and so the ETag, alone.
        client.put("/v1/variables/agent/", json=variable_body()).raise_for_status()
        assert client.get("/v1/variables/", headers={"If-None-Match": etag}).status_code == 304
        client.put("/v1/variables/agent/", json=variable_body(description="changed")).raise_for_status()
        changed = client.get("/v1/variables/", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["variables"]["agent"]["description"] == "changed"


def test_put_replaces_labels_and_keeps_versions(server: ServerProcess, project: Project) -> None:
    with server.client(project) as client:
        labels = {"prod": {"target_type": "version", "serialized_value": '{"model": "a"}'}}
        client.post("/v1/variables/", json=variable_body(labels=labels)).raise_for_status()
        same_value = {"prod": {"target_type": "version", "version": 1, "serialized_value": '{"model": "a"}'}}
        client.put("/v1/variables/agent/", json=variable_body(labels=same_value)).raise_for_status()
        new_value = {
            "prod": {"target_type": "version", "version": 1, "serialized_value": '{"model": "z"}'},
            "pinned": {"target_type": "version", "version": 1},
        }
        client.put("/v1/variables/agent/", json=variable_body(labels=new_value)).raise_for_status()
        variable = client.get("/v1/variables/").json()["variables"]["agent"]
    assert variable["latest_version"] == {"version": 2, "serialized_value": '{"model": "z"}'}
    assert variable["labels"]["prod"] == {"version": 2, "serialized_value": '{"model": "z"}'}
    assert variable["labels"]["pinned"] == {"version": 1, "serialized_value": '{"model": "a"}'}


def test_delete_and_not_found(server: ServerProcess, project: Project) -> None:
    with server.client(project) as client:
        client.post("/v1/variables/", json=variable_body()).raise_for_status()
        assert client.delete("/v1/variables/agent/").status_code == 204
        assert client.get("/v1/variables/").json()["variables"] == {}
        missing = client.delete("/v1/variables/agent/")
        assert missing.status_code == 404 and "does not exist" in missing.json()["detail"]
        assert client.put("/v1/variables/agent/", json=variable_body()).status_code == 404


def test_duplicate_create_is_409(server: ServerProcess, project: Project) -> None:
    with server.client(project) as client:
        client.post("/v1/variables/", json=variable_body()).raise_for_status()
        again = client.post("/v1/variables/", json=variable_body())
    assert again.status_code == 409 and "PUT /v1/variables/agent/" in again.json()["detail"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (variable_body(name="1bad"), "name"),
        (variable_body(rollout={"labels": {"nope": 1}}), "'nope'"),
        (
            variable_body(rollout={"labels": {}}, overrides=[{"conditions": [{"kind": "value-is-cool"}]}]),
            "value-is-cool",
        ),
        (variable_body(labels={"prod": {"target_type": "version", "serialized_value": '{"model": 3}'}}), "schema"),
        (variable_body(labels={"prod": {"target_type": "version", "serialized_value": "{not json"}}), "not valid JSON"),
        (variable_body(labels={"latest": {"target_type": "latest"}}), "reserved"),
        (variable_body(labels={"a": {"target_type": "label", "target_label": "b"}}), "'b'"),
        (variable_body(labels={"a": {"target_type": "version", "version": 7}}), "does not exist"),
        (variable_body(json_schema={"type": "nonsense"}), "not a valid JSON schema"),
        (variable_body(type_name="Unknown"), "variable type"),
        (variable_body(surprise=1), "surprise"),
    ],
)
def test_invalid_writes_are_422_and_say_what_to_fix(
    server: ServerProcess, project: Project, body: dict[str, Any], fragment: str
) -> None:
    with server.client(project) as client:
        response = client.post("/v1/variables/", json=body)
        assert response.status_code == 422, response.text
        assert fragment in response.json()["detail"]
        assert client.get("/v1/variables/").json()["variables"] == {}


def test_malformed_json_body_is_422(server: ServerProcess, project: Project) -> None:
    with server.client(project) as client:
        response = client.post("/v1/variables/", content=b"{", headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "invalid request" in response.json()["detail"]


def test_request_body_size_limit(server: ServerProcess, project: Project) -> None:
    huge = variable_body(description="x" * (1024 * 1024 + 1))
    with server.client(project) as client:
        response = client.post("/v1/variables/", json=huge)
    assert response.status_code == 413 and "limit" in response.json()["detail"]


def test_if_match_refuses_a_stale_write(server: ServerProcess, project: Project) -> None:
    with server.client(project) as client:
        client.post("/v1/variables/", json=variable_body()).raise_for_status()
        etag = client.get("/v1/variables/agent/").headers["etag"]
        ok = client.put("/v1/variables/agent/", json=variable_body(description="mine"), headers={"If-Match": etag})
        assert ok.status_code == 200
        stale = client.put("/v1/variables/agent/", json=variable_body(description="lost"), headers={"If-Match": etag})
        assert stale.status_code == 412 and "fetch it again" in stale.json()["detail"]
        stale_delete = client.delete("/v1/variables/agent/", headers={"If-Match": etag})
        assert stale_delete.status_code == 412
        assert client.get("/v1/variables/agent/").json()["description"] == "mine"


def _add_version(client: httpx.Client, value: str, label: str = "tmp") -> int:
    """Create a version through the Logfire-compatible PUT (a label target with a new value)."""
    current = client.get("/v1/variables/agent/").json()
    labels = {
        name: {"target_type": "version", "version": target["version"]}
        for name, target in current["labels"].items()
        if "serialized_value" in target and name != label
    }
    labels[label] = {"target_type": "version", "serialized_value": value}
    body = variable_body(labels=labels)
    response = client.put("/v1/variables/agent/", json=body)
    assert response.status_code == 200, response.text
    return int(response.json()["labels"][label]["version"])


def test_label_moves_history_and_audit(server: ServerProcess, project: Project) -> None:
    with server.client(project) as client:
        client.post("/v1/variables/", json=variable_body()).raise_for_status()
        assert _add_version(client, '{"model": "a"}', "prod") == 1
        assert _add_version(client, '{"model": "b"}', "tmp") == 2
        moved = client.put("/v1/variables/agent/labels/prod/", json={"target_type": "version", "version": 2})
        assert moved.status_code == 200 and moved.json()["labels"]["prod"]["version"] == 2
        etag = moved.headers["etag"]
        new_value = {"target_type": "version", "serialized_value": '{"model": "c"}'}
        created = client.put("/v1/variables/agent/labels/beta/", json=new_value, headers={"If-Match": etag})
        assert created.status_code == 200 and created.json()["labels"]["beta"]["version"] == 3
        stale = client.put(
            "/v1/variables/agent/labels/prod/", json={"target_type": "latest"}, headers={"If-Match": etag}
        )
        assert stale.status_code == 412
        bad = client.put("/v1/variables/agent/labels/prod/", json={"target_type": "version", "serialized_value": "1"})
        assert bad.status_code == 422 and "schema" in bad.json()["detail"]
        reserved = client.put("/v1/variables/agent/labels/latest/", json={"target_type": "latest"})
        assert reserved.status_code == 422 and "reserved" in reserved.json()["detail"]
        history = client.get("/v1/variables/agent/label-history/", params={"label": "prod"}).json()
        audit = client.get("/v1/audit/", params={"entity_type": "variable", "name": "agent"}).json()
    assert [h["target"]["version"] for h in history] == [1, 2]
    assert [a["action"] for a in audit] == ["move_label", "move_label", "update", "update", "create"]
    assert audit[0]["actor"].startswith("api_key:")
    assert "beta" not in audit[0]["before"]["labels"]
    assert audit[0]["after"]["labels"]["beta"]["version"] == 3


def test_variable_types_upsert(server: ServerProcess, project: Project) -> None:
    with server.client(project) as client:
        body = {"name": "Cfg", "json_schema": {"type": "object"}, "description": "d", "source_hint": "app.Cfg"}
        assert client.post("/v1/variable-types/", json=body).status_code == 201
        assert client.post("/v1/variable-types/", json={**body, "description": "e"}).status_code == 200
        bad = client.post("/v1/variable-types/", json={"name": "X", "json_schema": {"type": 12}})
        assert bad.status_code == 422
        types = client.get("/v1/variable-types/").json()
        # a variable using the type is validated against its schema
        uses = variable_body(
            json_schema=None, type_name="Cfg", labels={"p": {"target_type": "version", "serialized_value": "1"}}
        )
        refused = client.post("/v1/variables/", json=uses)
    assert [(t["name"], t["description"], t["source_hint"]) for t in types] == [("Cfg", "e", "app.Cfg")]
    assert refused.status_code == 422 and "schema" in refused.json()["detail"]


def test_concurrent_version_creation_over_http(server: ServerProcess, project: Project) -> None:
    """20 writers each create a version (a label with a new value): all stored, numbered 1..20."""
    with server.client(project) as client:
        client.post("/v1/variables/", json=variable_body()).raise_for_status()
    results: list[int] = []
    barrier = threading.Barrier(20)

    def create(i: int) -> None:
        value = json.dumps({"model": str(i)})
        with server.client(project) as client:
            barrier.wait()
            label = {"target_type": "version", "serialized_value": value}
            response = client.put(f"/v1/variables/agent/labels/w{i}/", json=label)
            assert response.status_code == 200, response.text
            results.append(response.json()["labels"][f"w{i}"]["version"])

    threads = [threading.Thread(target=create, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(1, 21))
    with server.client(project) as client:
        variable = client.get("/v1/variables/agent/").json()
    assert variable["latest_version"]["version"] == 20
    values = {json.loads(lb["serialized_value"])["model"]: lb["version"] for lb in variable["labels"].values()}
    assert sorted(values) == sorted(str(i) for i in range(20))
    assert sorted(values.values()) == list(range(1, 21))


def test_cross_variable_references_are_checked(server: ServerProcess, project: Project) -> None:
    with server.client(project) as client:
        client.post("/v1/variables/", json=variable_body(name="new_name", aliases=["old_name"])).raise_for_status()
        clash = client.post("/v1/variables/", json=variable_body(name="other", aliases=["new_name"]))
        assert clash.status_code == 422 and "name of another variable" in clash.json()["detail"]
        taken = client.post("/v1/variables/", json=variable_body(name="other", aliases=["old_name"]))
        assert taken.status_code == 422 and "already an alias" in taken.json()["detail"]
        shadow = client.post("/v1/variables/", json=variable_body(name="old_name"))
        assert shadow.status_code == 422 and "is an alias of" in shadow.json()["detail"]
        in_segment = {"conditions": [{"kind": "in-segment", "segment": "nobody"}], "rollout": {"labels": {}}}
        unknown = client.post("/v1/variables/", json=variable_body(name="seg", overrides=[in_segment]))
        assert unknown.status_code == 422 and "unknown segment" in unknown.json()["detail"]
        # aliases resolve for SDKs: the served config still validates
        assert client.get("/v1/variables/").json()["variables"]["new_name"]["aliases"] == ["old_name"]


def test_concurrent_edits_with_if_match_never_lose_an_update(server: ServerProcess, project: Project) -> None:
    """10 editors read the same revision and write at once: one wins, the others get 412, none is lost silently."""
    with server.client(project) as client:
        client.post("/v1/variables/", json=variable_body()).raise_for_status()
        etag = client.get("/v1/variables/agent/").headers["etag"]
    statuses: dict[int, int] = {}
    barrier = threading.Barrier(10)

    def edit(i: int) -> None:
        with server.client(project) as client:
            barrier.wait()
            body = variable_body(description=f"editor {i}")
            statuses[i] = client.put("/v1/variables/agent/", json=body, headers={"If-Match": etag}).status_code

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [i for i, status in statuses.items() if status == 200]
    assert len(winners) == 1 and sorted(statuses.values()) == [200] + [412] * 9
    with server.client(project) as client:
        assert client.get("/v1/variables/agent/").json()["description"] == f"editor {winners[0]}"
