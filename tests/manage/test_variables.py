"""Variable details, aliases, rename, history and delete."""

from __future__ import annotations

import json

import httpx

from tests.manage.helpers import add_version, create_variable, etag


def test_describe_and_alias(api: httpx.Client) -> None:
    create_variable(api)
    response = api.patch("/v1/variables/agent_config/", json={"description": "Support agent settings"})
    assert response.status_code == 200
    assert response.json()["description"] == "Support agent settings"
    response = api.patch("/v1/variables/agent_config/", json={"aliases": ["support_agent", "old_agent"]})
    assert response.json()["aliases"] == ["old_agent", "support_agent"]
    assert response.json()["description"] == "Support agent settings"
    assert api.patch("/v1/variables/agent_config/", json={"aliases": []}).json()["aliases"] is None


def test_invalid_aliases_are_refused(api: httpx.Client) -> None:
    create_variable(api)
    create_variable(api, "other")
    assert api.patch("/v1/variables/agent_config/", json={"aliases": ["not-an-identifier"]}).status_code == 422
    clash = api.patch("/v1/variables/agent_config/", json={"aliases": ["other"]})
    assert clash.status_code == 422
    assert "name of another variable" in clash.json()["detail"]
    assert api.patch("/v1/variables/agent_config/", json={"aliases": ["agent_config"]}).status_code == 422
    assert api.patch("/v1/variables/missing/", json={"description": "x"}).status_code == 404


def test_stale_patch_is_412(api: httpx.Client) -> None:
    create_variable(api)
    stale = etag(api)
    api.patch("/v1/variables/agent_config/", json={"description": "first"})
    response = api.patch("/v1/variables/agent_config/", json={"description": "second"}, headers={"If-Match": stale})
    assert response.status_code == 412


def test_rename_keeps_versions_labels_and_targeting(api: httpx.Client) -> None:
    create_variable(api)
    add_version(api, {"instructions": "one"}, label="production", description="first")
    add_version(api, {"instructions": "two"}, label="canary")
    api.put("/v1/variables/agent_config/targeting/", json={"rollout": {"labels": {"production": 0.9, "canary": 0.1}}})
    before_versions = api.get("/v1/variables/agent_config/versions/").json()
    response = api.post("/v1/variables/agent_config/rename/", json={"new_name": "support_agent"})
    assert response.status_code == 200, response.text
    renamed = response.json()
    assert renamed["name"] == "support_agent"
    assert renamed["aliases"] == ["agent_config"]
    assert renamed["rollout"] == {"labels": {"production": 0.9, "canary": 0.1}}
    assert renamed["labels"]["production"]["version"] == 1
    versions = api.get("/v1/variables/support_agent/versions/").json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["description"] == "first"
    assert [v["created_at"] for v in versions] == [v["created_at"] for v in before_versions]
    moves = api.get("/v1/variables/support_agent/history/").json()["label_moves"]
    assert {m["label"] for m in moves} == {"production", "canary"}
    assert api.get("/v1/variables/agent_config/").status_code == 404
    served = api.get("/v1/variables/").json()["variables"]
    assert set(served) == {"support_agent"}
    history = api.get("/v1/variables/support_agent/history/").json()["changes"]
    assert history[0]["action"] == "rename"


def test_rename_without_alias_and_errors(api: httpx.Client) -> None:
    create_variable(api)
    create_variable(api, "taken")
    assert api.post("/v1/variables/agent_config/rename/", json={"new_name": "taken"}).status_code == 409
    assert api.post("/v1/variables/agent_config/rename/", json={"new_name": "9lives"}).status_code == 422
    assert api.post("/v1/variables/agent_config/rename/", json={"new_name": "agent_config"}).status_code == 422
    assert api.post("/v1/variables/missing/rename/", json={"new_name": "x"}).status_code == 404
    response = api.post("/v1/variables/agent_config/rename/", json={"new_name": "fresh", "keep_alias": False})
    assert response.json()["aliases"] is None


def test_history_lists_every_change_with_who_and_when(api: httpx.Client) -> None:
    create_variable(api)
    add_version(api, {"instructions": "one"}, label="production")
    api.put("/v1/variables/agent_config/targeting/", json={"rollout": {"labels": {"production": 1}}})
    api.patch("/v1/variables/agent_config/", json={"description": "changed"})
    history = api.get("/v1/variables/agent_config/history/").json()
    actions = [c["action"] for c in history["changes"]]
    assert actions == ["update_details", "set_targeting", "create_version", "create"]
    assert all(c["actor"].startswith("api_key:") and c["at"] for c in history["changes"])
    assert history["changes"][1]["before"]["rollout"] == {"labels": {}}
    assert history["changes"][1]["after"]["rollout"] == {"labels": {"production": 1}}
    assert history["label_moves"][0]["label"] == "production"
    assert api.get("/v1/variables/missing/history/").status_code == 404


def test_delete_variable(api: httpx.Client) -> None:
    create_variable(api)
    add_version(api, {"instructions": "one"})
    assert api.delete("/v1/variables/agent_config/", headers={"If-Match": '"1"'}).status_code == 412
    assert api.delete("/v1/variables/agent_config/").status_code == 204
    assert api.get("/v1/variables/agent_config/").status_code == 404
    history = api.get("/v1/variables/agent_config/history/").json()["changes"]
    assert history[0]["action"] == "delete"
    assert json.dumps(history[0]["before"])
