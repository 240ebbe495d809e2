"""Versions: create (schema-validated, described, labelled), list, restore, diff, validate; label deletion."""

from __future__ import annotations

import json

import httpx

from tests.manage.helpers import add_version, create_variable, etag


def test_create_version_with_description_and_label(api: httpx.Client) -> None:
    create_variable(api)
    response = add_version(api, {"instructions": "Be concise."}, description="first cut", label="production")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["version"] == 1
    assert body["description"] == "first cut"
    assert body["created_by"].startswith("api_key:")
    assert response.headers["etag"]
    variable = api.get("/v1/variables/agent_config/").json()
    assert variable["labels"]["production"] == {"version": 1, "serialized_value": body["serialized_value"]}


def test_create_version_accepts_value_as_json(api: httpx.Client) -> None:
    create_variable(api)
    response = api.post("/v1/variables/agent_config/versions/", json={"value": {"instructions": "Hi"}})
    assert response.status_code == 201
    assert json.loads(response.json()["serialized_value"]) == {"instructions": "Hi"}


def test_create_version_needs_a_value(api: httpx.Client) -> None:
    create_variable(api)
    response = api.post("/v1/variables/agent_config/versions/", json={"description": "nothing"})
    assert response.status_code == 422
    assert "serialized_value" in response.json()["detail"]


def test_invalid_value_is_refused_with_the_schema_error(api: httpx.Client) -> None:
    create_variable(api)
    response = add_version(api, {"instructions": 5})
    assert response.status_code == 422
    assert "instructions" in response.json()["detail"]
    assert "is not of type 'string'" in response.json()["detail"]
    not_json = api.post("/v1/variables/agent_config/versions/", json={"serialized_value": "{nope"})
    assert not_json.status_code == 422
    assert "not valid JSON" in not_json.json()["detail"]
    assert api.get("/v1/variables/agent_config/versions/").json() == []


def test_create_version_of_unknown_variable_is_404(api: httpx.Client) -> None:
    assert add_version(api, {"instructions": "x"}, name="missing").status_code == 404


def test_reserved_label_is_refused(api: httpx.Client) -> None:
    create_variable(api)
    response = add_version(api, {"instructions": "x"}, label="latest")
    assert response.status_code == 422
    assert "reserved" in response.json()["detail"]


def test_stale_if_match_is_412_and_nothing_is_saved(api: httpx.Client) -> None:
    create_variable(api)
    stale = etag(api)
    assert add_version(api, {"instructions": "first"}).status_code == 201
    response = api.post(
        "/v1/variables/agent_config/versions/",
        json={"serialized_value": json.dumps({"instructions": "second"})},
        headers={"If-Match": stale},
    )
    assert response.status_code == 412
    assert "changed by someone else" in response.json()["detail"]
    assert len(api.get("/v1/variables/agent_config/versions/").json()) == 1


def test_list_versions_with_authors_times_descriptions_and_labels(api: httpx.Client) -> None:
    create_variable(api)
    add_version(api, {"instructions": "one"}, description="v1", label="production")
    add_version(api, {"instructions": "two"}, label="canary")
    versions = api.get("/v1/variables/agent_config/versions/").json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["description"] == "v1"
    assert versions[0]["description"] is None
    assert versions[1]["labels"] == ["production"]
    assert versions[0]["labels"] == ["canary"]
    assert all(v["created_by"].startswith("api_key:") and v["created_at"] for v in versions)


def test_restore_creates_a_new_version_with_the_old_value(api: httpx.Client) -> None:
    create_variable(api)
    add_version(api, {"instructions": "one"}, label="production")
    add_version(api, {"instructions": "two"}, label="production")
    response = api.post("/v1/variables/agent_config/versions/1/restore/", json={"label": "production"})
    assert response.status_code == 201, response.text
    assert response.json()["version"] == 3
    assert response.json()["restored_from"] == 1
    versions = api.get("/v1/variables/agent_config/versions/").json()
    assert json.loads(versions[0]["serialized_value"]) == {"instructions": "one"}
    assert versions[0]["description"] == "Restored from version 1"
    assert versions[0]["labels"] == ["production"]
    history = api.get("/v1/variables/agent_config/history/").json()["changes"]
    assert history[0]["action"] == "restore_version"
    assert "version 3" in history[0]["summary"]


def test_restore_errors(api: httpx.Client) -> None:
    create_variable(api)
    add_version(api, {"instructions": "one"})
    assert api.post("/v1/variables/agent_config/versions/9/restore/").status_code == 404
    stale = api.post("/v1/variables/agent_config/versions/1/restore/", headers={"If-Match": '"1"'})
    assert stale.status_code == 412


def test_diff_two_versions(api: httpx.Client) -> None:
    create_variable(api)
    add_version(api, {"instructions": "one", "temperature": 0.2})
    add_version(api, {"instructions": "two", "temperature": 0.2})
    body = api.get("/v1/variables/agent_config/diff/", params={"from": 1, "to": 2}).json()
    assert body["identical"] is False
    assert '-  "instructions": "one",' in body["diff"]
    assert '+  "instructions": "two",' in body["diff"]
    same = api.get("/v1/variables/agent_config/diff/", params={"from": 2, "to": 2}).json()
    assert same == {"from": 2, "to": 2, "identical": True, "diff": ""}
    assert api.get("/v1/variables/agent_config/diff/", params={"from": 1, "to": 7}).status_code == 404
    assert api.get("/v1/variables/agent_config/diff/", params={"from": 1}).status_code == 422


def test_validate_without_saving(api: httpx.Client) -> None:
    create_variable(api)
    good = api.post("/v1/variables/agent_config/validate/", json={"serialized_value": '{"instructions": "x"}'})
    assert good.json() == {"valid": True, "errors": []}
    bad = api.post("/v1/variables/agent_config/validate/", json={"serialized_value": "{}"}).json()
    assert bad["valid"] is False
    assert "'instructions' is a required property" in bad["errors"][0]["msg"]
    assert api.get("/v1/variables/agent_config/versions/").json() == []


def test_delete_label_with_history(api: httpx.Client) -> None:
    create_variable(api)
    add_version(api, {"instructions": "one"}, label="canary")
    response = api.delete("/v1/variables/agent_config/labels/canary/")
    assert response.status_code == 200
    assert "canary" not in response.json()["labels"]
    moves = api.get("/v1/variables/agent_config/history/").json()["label_moves"]
    assert moves[0]["label"] == "canary"
    assert moves[0]["target"] is None
    assert api.delete("/v1/variables/agent_config/labels/canary/").status_code == 404


def test_delete_label_in_use_is_refused(api: httpx.Client) -> None:
    create_variable(api)
    add_version(api, {"instructions": "one"}, label="production")
    api.put("/v1/variables/agent_config/targeting/", json={"rollout": {"labels": {"production": 1}}})
    response = api.delete("/v1/variables/agent_config/labels/production/")
    assert response.status_code == 422
    assert "the default rollout" in response.json()["detail"]


def test_move_label_bodies_as_documented(api: httpx.Client) -> None:
    """The bodies docs/MANAGEMENT.md shows for moving a label, and the 422 for the guessed {"version": 2}."""
    create_variable(api)
    add_version(api, {"instructions": "one"})
    add_version(api, {"instructions": "two"})
    guessed = api.put("/v1/variables/agent_config/labels/canary/", json={"version": 2})
    assert guessed.status_code == 422 and "target_type" in guessed.json()["detail"]
    bodies: list[tuple[str, dict[str, object], str | None]] = [
        ("canary", {"target_type": "version", "version": 2}, None),
        ("canary", {"target_type": "latest"}, "latest"),
        ("follower", {"target_type": "label", "target_label": "canary"}, "canary"),
        ("canary", {"target_type": "code_default"}, "code_default"),
    ]
    for label, body, ref in bodies:
        response = api.put(f"/v1/variables/agent_config/labels/{label}/", json=body)
        assert response.status_code == 200, response.text
        served = response.json()["labels"][label]
        if ref is None:
            assert served["version"] == 2 and json.loads(served["serialized_value"]) == {"instructions": "two"}
        else:
            assert served["ref"] == ref
