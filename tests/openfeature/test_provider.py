"""`setpoint.openfeature.SetpointProvider` through the OpenFeature SDK's client: every flag type, reasons,
variants, metadata, error codes, hooks, evaluation contexts, and the SDK's own context features."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagValueType, Reason
from openfeature.hook import Hook, HookContext, HookHints
from pydantic import BaseModel

import setpoint
from setpoint._core.evaluator import compile_config
from setpoint.config import VariablesConfig
from setpoint.openfeature import SetpointProvider


class AgentConfig(BaseModel):
    """A structured variable type defined by the application."""

    model: str
    temperature: float = 0.0


agent = setpoint.var("of_agent", type=AgentConfig, default=AgentConfig(model="code-default"))


def _variable(
    name: str, values: dict[str, Any], rollout: dict[str, float], overrides: list[Any] | None = None
) -> dict[str, Any]:
    labels = {
        label: {"version": i + 1, "serialized_value": json.dumps(v)} for i, (label, v) in enumerate(values.items())
    }
    return {"name": name, "labels": labels, "rollout": {"labels": rollout}, "overrides": overrides or []}


PLAN_PRO = {
    "conditions": [{"kind": "value-equals", "attribute": "plan", "value": "pro"}],
    "rollout": {"labels": {"on": 1.0}},
}
IN_ORGS = {"conditions": [{"kind": "in-segment", "segment": "orgs"}], "rollout": {"labels": {"on": 1.0}}}

CONFIG = VariablesConfig.model_validate(
    {
        "variables": {
            v["name"]: v
            for v in [
                _variable("of_checkout", {"on": True, "off": False}, {"off": 1.0}, [PLAN_PRO, IN_ORGS]),
                _variable("of_greeting", {"hello": "Hello!"}, {"hello": 1.0}),
                _variable("of_items", {"few": 3, "many": 30}, {"few": 0.5, "many": 0.5}),
                _variable("of_ratio", {"two": 2}, {"two": 1.0}),
                _variable("of_options", {"v1": {"a": [1, 2]}}, {"v1": 1.0}),
                _variable("of_dark", {"new": "x"}, {}),
                _variable("of_agent", {"good": {"model": "m1"}, "bad": {"temperature": "hot"}}, {"good": 1.0},
                          [{"conditions": [{"kind": "value-equals", "attribute": "broken", "value": True}],
                            "rollout": {"labels": {"bad": 1.0}}}]),
            ]
        },
        "segments": {"orgs": {"key": "orgs", "name": "Orgs", "included_contexts": [
            {"context_kind": "organization", "values": ["o1"]}]}},
    }
)  # fmt: skip


class Recorder(Hook):
    """Records the hook stages it sees; its ``before`` can add attributes to the context."""

    def __init__(self, extra: dict[str, Any] | None = None) -> None:
        self.extra = extra
        self.seen: list[tuple[str, str, Any]] = []

    def before(self, hook_context: HookContext, hints: HookHints) -> EvaluationContext | None:
        self.seen.append(("before", hook_context.flag_key, None))
        return EvaluationContext(attributes=self.extra) if self.extra else None

    def after(self, hook_context: HookContext, details: FlagEvaluationDetails[FlagValueType], hints: HookHints) -> None:
        self.seen.append(("after", hook_context.flag_key, details.value))

    def error(self, hook_context: HookContext, exception: Exception, hints: HookHints) -> None:
        self.seen.append(("error", hook_context.flag_key, type(exception).__name__))

    def finally_after(
        self, hook_context: HookContext, details: FlagEvaluationDetails[FlagValueType], hints: HookHints
    ) -> None:
        self.seen.append(("finally", hook_context.flag_key, details.reason))


@pytest.fixture
def client() -> Iterator[OpenFeatureClient]:
    """An OpenFeature client backed by `SetpointProvider`, Setpoint configured with ``CONFIG``."""
    setpoint.configure(config=CONFIG, instrument=False)
    api.set_provider(SetpointProvider(), domain="setpoint-local")
    try:
        yield api.get_client(domain="setpoint-local")
    finally:
        api.clear_providers()
        setpoint.shutdown()


def test_metadata_name() -> None:
    assert SetpointProvider().get_metadata().name == "setpoint"


def test_boolean_reasons_variants_and_metadata(client: OpenFeatureClient) -> None:
    pro = client.get_boolean_details("of_checkout", False, EvaluationContext("u1", {"plan": "pro"}))
    assert (pro.value, pro.reason, pro.variant, pro.error_code) == (True, Reason.TARGETING_MATCH, "on", None)
    assert pro.flag_metadata == {"version": 1, "detail": "override"}
    free = client.get_boolean_details("of_checkout", True, EvaluationContext("u1", {"plan": "free"}))
    assert (free.value, free.reason, free.variant) == (False, Reason.DEFAULT, "off")
    org = client.get_boolean_details("of_checkout", False, EvaluationContext("u2", {"organization": {"key": "o1"}}))
    assert (org.value, org.reason) == (True, Reason.TARGETING_MATCH)


def test_every_flag_type(client: OpenFeatureClient) -> None:
    greeting = client.get_string_details("of_greeting", "hi")
    assert (greeting.value, greeting.reason, greeting.variant) == ("Hello!", Reason.STATIC, "hello")
    ratio = client.get_float_details("of_ratio", 0.0)
    assert ratio.value == 2.0 and isinstance(ratio.value, float) and ratio.error_code is None
    assert client.get_integer_value("of_ratio", 0) == 2
    assert client.get_object_value("of_options", {}) == {"a": [1, 2]}
    compiled = compile_config(CONFIG)
    for key in [f"user-{i}" for i in range(8)]:
        items = client.get_integer_details("of_items", 0, EvaluationContext(key))
        label = compiled.evaluate("of_items", key).label
        assert (items.variant, items.value, items.reason) == (label, {"few": 3, "many": 30}[str(label)], Reason.SPLIT)


def test_a_registered_variable_is_resolved_with_its_own_type(client: OpenFeatureClient) -> None:
    details = client.get_object_details("of_agent", {})
    assert (details.value, details.variant) == ({"model": "m1", "temperature": 0.0}, "good")
    invalid = client.get_object_details("of_agent", {"fallback": True}, EvaluationContext("u", {"broken": True}))
    assert (invalid.value, invalid.error_code, invalid.reason) == (
        {"fallback": True},
        ErrorCode.PARSE_ERROR,
        Reason.ERROR,
    )
    with agent.override(AgentConfig(model="pinned")):
        pinned = client.get_object_details("of_agent", {})
    assert (pinned.value, pinned.reason) == ({"model": "pinned", "temperature": 0.0}, Reason.STATIC)


def test_code_default_and_errors(client: OpenFeatureClient) -> None:
    dark = client.get_string_details("of_dark", "old-flow")
    assert (dark.value, dark.reason, dark.error_code) == ("old-flow", Reason.DEFAULT, None)
    for key in ("of_unknown", "new-feature"):
        missing = client.get_boolean_details(key, True)
        assert (missing.value, missing.error_code, missing.reason) == (True, ErrorCode.FLAG_NOT_FOUND, Reason.ERROR)
    as_string = client.get_string_details("of_checkout", "x", EvaluationContext("u1"))
    assert (as_string.value, as_string.error_code) == ("x", ErrorCode.TYPE_MISMATCH)
    as_bool = client.get_boolean_details("of_items", False, EvaluationContext("u1"))
    assert (as_bool.value, as_bool.error_code) == (False, ErrorCode.TYPE_MISMATCH)
    as_int = client.get_integer_details("of_greeting", 5)
    assert (as_int.value, as_int.error_code) == (5, ErrorCode.TYPE_MISMATCH)
    setpoint.shutdown()
    unconfigured = client.get_boolean_details("of_checkout", True)
    assert (unconfigured.value, unconfigured.error_code) == (True, ErrorCode.PROVIDER_NOT_READY)


def test_hooks_see_results_and_errors_and_can_add_context(client: OpenFeatureClient) -> None:
    recorder = Recorder()
    client.add_hooks([recorder])
    assert client.get_boolean_value("of_checkout", False, EvaluationContext("u1", {"plan": "pro"})) is True
    assert client.get_boolean_value("of_unknown", False) is False
    assert recorder.seen == [
        ("before", "of_checkout", None),
        ("after", "of_checkout", True),
        ("finally", "of_checkout", Reason.TARGETING_MATCH),
        ("before", "of_unknown", None),
        ("error", "of_unknown", "FlagNotFoundError"),
        ("finally", "of_unknown", Reason.ERROR),
    ]
    enricher = Recorder(extra={"plan": "pro"})
    client.add_hooks([enricher])
    assert client.get_boolean_value("of_checkout", False, EvaluationContext("u1")) is True  # the hook's plan
    # OpenFeature merges a before hook's context over the invocation's: the hook wins.
    assert client.get_boolean_value("of_checkout", False, EvaluationContext("u1", {"plan": "free"})) is True


def test_api_and_client_contexts_are_merged(client: OpenFeatureClient) -> None:
    api.set_evaluation_context(EvaluationContext(attributes={"plan": "pro"}))
    try:
        assert client.get_boolean_value("of_checkout", False, EvaluationContext("u1")) is True
        client.context = EvaluationContext(attributes={"plan": "free"})
        assert client.get_boolean_value("of_checkout", False, EvaluationContext("u1")) is False
    finally:
        api.set_evaluation_context(EvaluationContext())
        client.context = EvaluationContext()


def test_setpoint_targeting_context_supplies_a_missing_targeting_key(client: OpenFeatureClient) -> None:
    compiled = compile_config(CONFIG)
    for key in ("alice", "bob", "carol", "dave"):
        with setpoint.targeting_context(key):
            assert client.get_integer_details("of_items", 0).variant == compiled.evaluate("of_items", key).label


def test_async_evaluation(client: OpenFeatureClient) -> None:
    async def evaluate() -> bool:
        return await client.get_boolean_value_async("of_checkout", False, EvaluationContext("u", {"plan": "pro"}))

    assert asyncio.run(evaluate()) is True
