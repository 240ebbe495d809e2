"""Server-side resolve: the same answer as the evaluation core the SDK uses, with an explanation."""

from __future__ import annotations

import httpx

from setpoint._core.evaluator import compile_config
from setpoint.config import VariablesConfig
from tests.manage.helpers import add_version, create_variable


def _setup(api: httpx.Client) -> None:
    create_variable(api)
    add_version(api, {"instructions": "stable"}, label="production")
    add_version(api, {"instructions": "new"}, label="canary")
    rule = {
        "conditions": [{"kind": "value-equals", "attribute": "plan", "value": "enterprise"}],
        "rollout": {"labels": {"canary": 1.0}},
    }
    body = {"rollout": {"labels": {"production": 0.9, "canary": 0.1}}, "overrides": [rule]}
    assert api.put("/v1/variables/agent_config/targeting/", json=body).status_code == 200


def test_resolve_explains_an_override_match(api: httpx.Client) -> None:
    _setup(api)
    body = {"targeting_key": "user-1", "attributes": {"plan": "enterprise"}}
    result = api.post("/v1/resolve/", json=body).json()["results"][0]
    assert result["name"] == "agent_config"
    assert result["label"] == "canary"
    assert result["version"] == 2
    assert result["value"] == {"instructions": "new"}
    assert result["reason"] == "resolved"
    assert result["matched_override"] == 0
    assert "override #1 matched" in result["explanation"]
    assert "plan" in result["rule"]


def test_resolve_agrees_with_the_core_for_many_keys(api: httpx.Client) -> None:
    _setup(api)
    config = VariablesConfig.model_validate(api.get("/v1/variables/").json())
    compiled = compile_config(config)
    labels = set()
    for i in range(60):
        key = f"user-{i}"
        got = api.post("/v1/resolve/", json={"targeting_key": key, "variables": ["agent_config"]}).json()
        result = got["results"][0]
        expected = compiled.evaluate("agent_config", key, {})
        assert (result["label"], result["version"], result["reason"]) == (
            expected.label,
            expected.version,
            expected.reason,
        )
        labels.add(result["label"])
    assert labels == {"production", "canary"}


def test_resolve_code_default_and_errors(api: httpx.Client) -> None:
    create_variable(api, "empty_one")
    result = api.post("/v1/resolve/", json={"targeting_key": "k"}).json()["results"][0]
    assert result["reason"] == "code_default"
    assert result["value"] is None
    assert "code default" in result["explanation"]
    missing = api.post("/v1/resolve/", json={"variables": ["nope"]})
    assert missing.status_code == 404
    assert api.post("/v1/resolve/", json={"attributes": "not an object"}).status_code == 422


def test_resolve_with_an_explicit_label(api: httpx.Client) -> None:
    _setup(api)
    result = api.post("/v1/resolve/", json={"targeting_key": "k", "label": "canary"}).json()["results"][0]
    assert result["label"] == "canary"
    assert result["detail"] == "explicit_label"
