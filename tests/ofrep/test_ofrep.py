"""OFREP: the generic ``openfeature-provider-ofrep`` client (through the OpenFeature SDK) evaluating Setpoint
variables on a running server, and the protocol details over plain HTTP (errors, bulk ETag / 304)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from setpoint._core.evaluator import compile_config
from tests.segments.support import App, create_variable, ld_create, served_config
from tests.server.support import Project

PLAN_PRO = [{"kind": "value-equals", "attribute": "plan", "value": "pro"}]
IN_BETA = [{"kind": "in-segment", "segment": "beta"}]


def _setup(app: App, project: Project) -> None:
    assert ld_create(app, project, "beta", included=["u9"]).status_code == 201
    orgs = {"includedContexts": [{"contextKind": "organization", "values": ["o1"]}]}
    assert ld_create(app, project, "orgs", **orgs).status_code == 201
    org_rule = [{"kind": "in-segment", "segment": "orgs"}]
    overrides = [(PLAN_PRO, {"on": 1.0}), (IN_BETA, {"on": 1.0}), (org_rule, {"on": 1.0})]
    create_variable(app, project, "checkout_enabled", {"on": True, "off": False}, {"off": 1.0}, overrides)
    create_variable(app, project, "greeting", {"hello": "Hello!"}, {"hello": 1.0})
    create_variable(app, project, "max_items", {"few": 3, "many": 30}, {"few": 0.5, "many": 0.5})
    create_variable(app, project, "ratio", {"half": 0.5}, {"half": 1.0})
    create_variable(app, project, "agent_config", {"v1": {"model": "m1", "tools": ["search"]}}, {"v1": 1.0})
    create_variable(app, project, "dark_launch", {"new": "new-flow"}, {}, [(PLAN_PRO, {"new": 1.0})])


@pytest.fixture
def client(app: App, project: Project) -> Iterator[OpenFeatureClient]:
    """An OpenFeature client whose provider is the generic OFREP provider pointed at the server."""
    _setup(app, project)
    provider = OFREPProvider(app.url, headers_factory=lambda: {"Authorization": f"Bearer {project.ro_key}"})
    api.set_provider(provider, domain="setpoint-ofrep")
    try:
        yield api.get_client(domain="setpoint-ofrep")
    finally:
        api.clear_providers()
        provider.session.close()


def test_boolean_override_segment_and_default_rollout(client: OpenFeatureClient) -> None:
    pro = client.get_boolean_details("checkout_enabled", False, EvaluationContext("u1", {"plan": "pro"}))
    assert (pro.value, pro.reason, pro.variant, pro.error_code) == (True, Reason.TARGETING_MATCH, "on", None)
    assert pro.flag_metadata["version"] == 1 and pro.flag_metadata["override"] == 0
    free = client.get_boolean_details("checkout_enabled", True, EvaluationContext("u1", {"plan": "free"}))
    assert (free.value, free.reason, free.variant) == (False, Reason.DEFAULT, "off")
    beta = client.get_boolean_details("checkout_enabled", False, EvaluationContext("u9"))
    assert (beta.value, beta.reason, beta.flag_metadata["override"]) == (True, Reason.TARGETING_MATCH, 1)
    org = client.get_boolean_details(
        "checkout_enabled", False, EvaluationContext("u2", {"organization": {"key": "o1"}})
    )
    assert (org.value, org.flag_metadata["override"]) == (True, 2)


def test_every_flag_type(client: OpenFeatureClient, app: App, project: Project) -> None:
    greeting = client.get_string_details("greeting", "hi", EvaluationContext("u1"))
    assert (greeting.value, greeting.reason, greeting.variant) == ("Hello!", Reason.STATIC, "hello")
    ratio = client.get_float_details("ratio", 0.0)
    assert (ratio.value, ratio.reason) == (0.5, Reason.STATIC)
    agent = client.get_object_details("agent_config", {})
    assert agent.value == {"model": "m1", "tools": ["search"]} and agent.variant == "v1"
    compiled = compile_config(served_config(app, project))
    for key in ("u1", "u2", "u3", "u4", "u5", "u6"):
        items = client.get_integer_details("max_items", 0, EvaluationContext(key))
        expected = compiled.evaluate("max_items", key)
        assert (items.value, items.variant, items.reason) == ({"few": 3, "many": 30}[str(expected.label)],
                                                              expected.label, Reason.SPLIT)  # fmt: skip


def test_code_default_returns_the_callers_default_without_an_error(client: OpenFeatureClient) -> None:
    dark = client.get_string_details("dark_launch", "old-flow", EvaluationContext("u1", {"plan": "free"}))
    assert (dark.value, dark.reason, dark.error_code, dark.variant) == (
        "old-flow",
        Reason.DEFAULT,
        None,
        "code_default",
    )
    lit = client.get_string_details("dark_launch", "old-flow", EvaluationContext("u1", {"plan": "pro"}))
    assert (lit.value, lit.reason) == ("new-flow", Reason.TARGETING_MATCH)


def test_errors_reach_the_caller_as_openfeature_error_codes(client: OpenFeatureClient) -> None:
    missing = client.get_boolean_details("no_such_flag", True)
    assert (missing.value, missing.error_code, missing.reason) == (True, ErrorCode.FLAG_NOT_FOUND, Reason.ERROR)
    no_key = client.get_integer_details("max_items", 7)
    assert (no_key.value, no_key.error_code) == (7, ErrorCode.TARGETING_KEY_MISSING)
    assert "targetingKey" in str(no_key.error_message)
    mismatch = client.get_string_details("checkout_enabled", "x", EvaluationContext("u1"))
    assert (mismatch.value, mismatch.error_code) == ("x", ErrorCode.TYPE_MISMATCH)


def _post(app: App, path: str, project: Project, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
    headers = {**project.headers(project.ro_key), **(headers or {})}
    return app.client.post(f"/ofrep/v1/evaluate/{path}", headers=headers, **kwargs)


def test_protocol_errors_over_http(app: App, project: Project) -> None:
    _setup(app, project)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"content": b"{not json"}, "PARSE_ERROR"),
        ({"json": [1, 2]}, "PARSE_ERROR"),
        ({"json": {"context": "u1"}}, "INVALID_CONTEXT"),
        ({"json": {"context": {"targetingKey": 5}}}, "INVALID_CONTEXT"),
        ({"json": {"context": {}}}, "TARGETING_KEY_MISSING"),
    ]
    for kwargs, code in cases:
        response = _post(app, "flags/max_items", project, **kwargs)
        assert response.status_code == 400, (kwargs, response.text)
        assert response.json()["errorCode"] == code and response.json()["key"] == "max_items"
    assert _post(app, "flags", project, content=b"[]").json()["errorCode"] == "PARSE_ERROR"
    missing = _post(app, "flags/nope", project, json={})
    assert missing.status_code == 404 and missing.json()["errorCode"] == "FLAG_NOT_FOUND"
    assert app.client.post("/ofrep/v1/evaluate/flags/greeting", json={}).status_code == 401
    x_api_key = app.client.post("/ofrep/v1/evaluate/flags/greeting", json={}, headers={"X-API-Key": project.ro_key})
    assert x_api_key.status_code == 200 and x_api_key.json()["value"] == "Hello!"
    other = app.other_project()
    assert _post(app, "flags/greeting", other, json={}).status_code == 404  # another project's key


def test_bulk_evaluation_with_etag(app: App, project: Project) -> None:
    _setup(app, project)
    context = {"context": {"targetingKey": "u1", "plan": "pro"}}
    first = _post(app, "flags", project, json=context)
    assert first.status_code == 200
    flags = {f["key"]: f for f in first.json()["flags"]}
    assert sorted(flags) == ["agent_config", "checkout_enabled", "dark_launch", "greeting", "max_items", "ratio"]
    assert flags["checkout_enabled"]["value"] is True and flags["dark_launch"]["value"] == "new-flow"
    etag = first.headers["etag"]
    again = _post(app, "flags", project, json=context, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag
    assert _post(app, "flags", project, json={"context": {"targetingKey": "u2"}}).headers["etag"] != etag
    keyless = {f["key"]: f for f in _post(app, "flags", project, json={}).json()["flags"]}
    assert keyless["max_items"]["errorCode"] == "TARGETING_KEY_MISSING" and keyless["greeting"]["value"] == "Hello!"
    create_variable(app, project, "zzz_new", {"a": 1}, {"a": 1.0})
    changed = _post(app, "flags", project, json=context, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["flags"][-1]["key"] == "zzz_new"


def test_configuration_endpoint(app: App) -> None:
    body = app.client.get("/ofrep/v1/configuration").json()
    assert body["name"] == "Setpoint" and "boolean" in body["capabilities"]["flagEvaluation"]["supportedTypes"]
