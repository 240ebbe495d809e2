"""Resolution semantics: override rules, explicit labels, context overrides, types, errors, caching."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ValidationError, field_validator
from typing_extensions import TypedDict

import setpoint
from setpoint._sdk.resolved import Resolved
from setpoint.config import (
    KeyIsPresent,
    LabeledValue,
    LabelRef,
    Rollout,
    RolloutOverride,
    ValueEquals,
    ValueIsIn,
    VariableConfig,
    VariablesConfig,
)
from tests.sdk.helpers import PREMIUM, STANDARD, config_of, rollout_config, support_agent_config, value


class AgentConfig(BaseModel):
    """Configuration for a customer support agent."""

    instructions: str
    model: str
    temperature: float


DEFAULT_AGENT = AgentConfig(instructions="You are a helpful assistant.", model="openai:gpt-4o-mini", temperature=0.7)


def _agent() -> setpoint.Variable[AgentConfig]:
    return setpoint.var("support_agent_config", type=AgentConfig, default=DEFAULT_AGENT)


# --- no configuration ------------------------------------------------------------------------------------


def test_unconfigured_serves_the_code_default() -> None:
    agent = _agent()
    resolved = agent.get(targeting_key="user-1", attributes={"plan": "enterprise"})
    assert resolved.value is DEFAULT_AGENT
    assert (resolved.reason, resolved.label, resolved.version, resolved.exception) == ("code_default", None, None, None)
    assert "not configured" in resolved.explain()


def test_variable_missing_from_the_config_serves_the_code_default() -> None:
    setpoint.configure(config=support_agent_config())
    flag = setpoint.var("feature_enabled", type=bool, default=False)
    resolved = flag.get()
    assert (resolved.value, resolved.reason) == (False, "code_default")
    assert "not in the configuration" in resolved.explain()


# --- seed 000: override rules with labels and versions -----------------------------------------------------


def test_enterprise_plan_gets_premium_through_the_override() -> None:
    setpoint.configure(config=support_agent_config())
    agent = _agent()
    with agent.get(targeting_key="user-1", attributes={"plan": "enterprise"}) as config:
        assert config.label == "premium"
        assert config.version == 2
        assert config.value == AgentConfig(**PREMIUM)
        assert config.reason == "resolved"
        assert config.override_index == 0
        assert config.rule is not None and "plan" in config.rule
        assert "override #1 matched" in config.explain()
    with agent.get(targeting_key="user-1", attributes={"plan": "free"}) as config:
        assert (config.label, config.version, config.value) == ("standard", 1, AgentConfig(**STANDARD))
        assert config.override_index is None


def test_resolved_is_usable_without_with() -> None:
    setpoint.configure(config=support_agent_config())
    resolved = _agent().get(targeting_key="user-1")
    assert isinstance(resolved, Resolved)
    assert resolved.label == "standard"


def _beta_config() -> VariablesConfig:
    """Seed 001's override example: beta users in US/UK -> experimental; custom_config present -> custom."""
    labels = {
        name: LabeledValue(version=i + 1, serialized_value=value(name))
        for i, name in enumerate(["default", "experimental", "custom"])
    }
    return config_of(
        VariableConfig(
            name="prompt",
            labels=labels,
            rollout=Rollout(labels={"default": 1.0}),
            overrides=[
                RolloutOverride(
                    conditions=[
                        ValueEquals(attribute="is_beta", value=True),
                        ValueIsIn(attribute="country", values=["US", "UK"]),
                    ],
                    rollout=Rollout(labels={"experimental": 1.0}),
                ),
                RolloutOverride(
                    conditions=[KeyIsPresent(attribute="custom_config")], rollout=Rollout(labels={"custom": 1.0})
                ),
            ],
        )
    )


@pytest.mark.parametrize(
    ("attributes", "label", "override_index"),
    [
        ({"is_beta": True, "country": "US"}, "experimental", 0),
        ({"is_beta": True, "country": "UK"}, "experimental", 0),
        ({"is_beta": True, "country": "FR"}, "default", None),
        ({"is_beta": False, "country": "US"}, "default", None),
        ({"is_beta": 1, "country": "US"}, "default", None),  # compared by type: 1 is not True
        ({"country": "US"}, "default", None),
        ({"custom_config": "anything"}, "custom", 1),
        ({"is_beta": True, "country": "US", "custom_config": "x"}, "experimental", 0),  # first match wins
        ({}, "default", None),
    ],
)
def test_beta_and_custom_config_overrides(attributes: dict[str, Any], label: str, override_index: int | None) -> None:
    setpoint.configure(config=_beta_config())
    prompt = setpoint.var("prompt", type=str, default="code")
    resolved = prompt.get(targeting_key="user-1", attributes=attributes)
    assert (resolved.label, resolved.value, resolved.override_index) == (label, label, override_index)


def test_ab_test_splits_by_targeting_key() -> None:
    """Seed 001's 50/50 A/B test: both labels are served, each user always gets the same one."""
    setpoint.configure(
        config=config_of(
            rollout_config(
                "support_agent_config",
                {"v1_concise": 0.5, "v2_detailed": 0.5},
                {"v1_concise": {**STANDARD, "temperature": 0.7}, "v2_detailed": {**PREMIUM, "temperature": 0.3}},
            )
        )
    )
    agent = _agent()
    labels = {agent.get(targeting_key=f"user-{i}").label for i in range(100)}
    assert labels == {"v1_concise", "v2_detailed"}
    for i in range(20):
        assert agent.get(targeting_key=f"user-{i}").label == agent.get(targeting_key=f"user-{i}").label


def test_rollout_remainder_serves_the_code_default() -> None:
    setpoint.configure(config=config_of(rollout_config("tiny", {"a": 0.0})))
    tiny = setpoint.var("tiny", type=str, default="code")
    resolved = tiny.get(targeting_key="user-1")
    assert (resolved.value, resolved.reason, resolved.label, resolved.version) == ("code", "code_default", None, None)


def test_label_pointing_at_code_default() -> None:
    config = config_of(
        VariableConfig(name="flag", labels={"off": LabelRef(ref="code_default")}, rollout=Rollout(labels={"off": 1.0}))
    )
    setpoint.configure(config=config)
    flag = setpoint.var("flag", type=bool, default=False)
    resolved = flag.get()
    assert (resolved.value, resolved.reason, resolved.label) == (False, "code_default", None)


# --- explicit label -----------------------------------------------------------------------------------------


def test_explicit_label_wins_over_rules() -> None:
    setpoint.configure(config=support_agent_config())
    agent = _agent()
    resolved = agent.get(targeting_key="user-1", attributes={"plan": "free"}, label="premium")
    assert (resolved.label, resolved.version, resolved.value) == ("premium", 2, AgentConfig(**PREMIUM))
    assert "explicitly" in resolved.explain()


def test_unknown_explicit_label_falls_back_to_the_rules() -> None:
    setpoint.configure(config=support_agent_config())
    resolved = _agent().get(targeting_key="user-1", label="nope")
    assert resolved.label == "standard"


# --- context overrides --------------------------------------------------------------------------------------


def test_override_with_a_value_wins_and_is_scoped() -> None:
    setpoint.configure(config=support_agent_config())
    agent = _agent()
    premium_config = AgentConfig(instructions="Premium instructions...", model="openai:gpt-4o", temperature=0.3)
    with agent.override(premium_config), agent.get(attributes={"plan": "enterprise"}, label="premium") as config:
        assert config.value.model == "openai:gpt-4o"
        assert config.value is premium_config
        assert (config.reason, config.label, config.version) == ("context_override", None, None)
        assert "override" in config.explain()
    assert agent.get().label == "standard"


def test_override_with_a_function_gets_key_and_merged_attributes() -> None:
    agent = _agent()
    seen: list[tuple[str | None, dict[str, Any]]] = []

    def get_config_for_context(targeting_key: str | None, attributes: Mapping[str, Any]) -> AgentConfig:
        seen.append((targeting_key, dict(attributes)))
        if attributes.get("mode") == "creative":
            return AgentConfig(instructions="Be creative...", model="openai:gpt-4o", temperature=1.0)
        return AgentConfig(instructions="Be precise...", model="openai:gpt-4o-mini", temperature=0.2)

    setpoint.configure(config=support_agent_config(), include_resource_attributes_in_context=False)
    with agent.override(get_config_for_context):
        with agent.get(attributes={"mode": "creative"}) as config:
            assert config.value.temperature == 1.0
            assert config.reason == "context_override"
        with setpoint.targeting_context("user-7"):
            assert agent.get().value.temperature == 0.2
    assert seen == [(None, {"mode": "creative"}), ("user-7", {})]


def test_overrides_nest_and_are_per_variable() -> None:
    a = setpoint.var("a", type=int, default=0)
    b = setpoint.var("b", type=int, default=0)
    with a.override(1):
        with a.override(2), b.override(3):
            assert (a.get().value, b.get().value) == (2, 3)
        assert (a.get().value, b.get().value) == (1, 0)
    assert a.get().value == 0


def test_override_function_that_raises_serves_the_code_default() -> None:
    flag = setpoint.var("flag", type=bool, default=False)

    def broken(key: str | None, attributes: Mapping[str, Any]) -> bool:
        raise KeyError("oops")

    with flag.override(broken):
        resolved = flag.get()
    assert (resolved.value, resolved.reason) == (False, "other_error")
    assert isinstance(resolved.exception, KeyError)


# --- types ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Limits:
    max_requests: int
    burst: int = 1


class Settings(TypedDict):
    theme: str
    size: int


@pytest.mark.parametrize(
    ("type_", "default", "serialized", "expected"),
    [
        (str, "a", '"b"', "b"),
        (int, 1, "42", 42),
        (float, 0.5, "1.5", 1.5),
        (bool, False, "true", True),
        (int | str, 0, '"text"', "text"),
        (int | str, 0, "7", 7),
        (Literal["x", "y"], "x", '"y"', "y"),
        (list[int], [], "[1, 2]", [1, 2]),
        (Limits, Limits(10), '{"max_requests": 5, "burst": 2}', Limits(5, 2)),
        (Settings, {"theme": "dark", "size": 1}, '{"theme": "light", "size": 2}', {"theme": "light", "size": 2}),
        (AgentConfig, DEFAULT_AGENT, value(PREMIUM), AgentConfig(**PREMIUM)),
    ],
)
def test_structured_and_primitive_types(type_: Any, default: Any, serialized: str, expected: Any) -> None:
    setpoint.configure(
        config=config_of(
            VariableConfig(
                name="v",
                labels={"x": LabeledValue(version=3, serialized_value=serialized)},
                rollout=Rollout(labels={"x": 1.0}),
            )
        )
    )
    variable = setpoint.var("v", type=type_, default=default)
    resolved = variable.get()
    assert resolved.value == expected
    assert (resolved.reason, resolved.label, resolved.version) == ("resolved", "x", 3)


def test_default_function_is_called_with_key_and_attributes() -> None:
    setpoint.configure(config=VariablesConfig(), include_resource_attributes_in_context=False)
    greeting = setpoint.var("greeting", type=str, default=lambda key, attributes: f"{key}:{attributes.get('lang')}")
    assert greeting.get("u1", {"lang": "fr"}).value == "u1:fr"
    assert greeting.get().reason == "code_default"


def test_default_function_that_raises_propagates() -> None:
    def broken(key: str | None, attributes: Mapping[str, Any]) -> str:
        raise ZeroDivisionError("the application's own bug")

    greeting = setpoint.var("greeting", type=str, default=broken)
    with pytest.raises(ZeroDivisionError, match="own bug"):
        greeting.get()


# --- invalid values -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("serialized", ['{"instructions": 1}', "not json", '"just a string"', ""])
def test_invalid_remote_value_serves_default_with_validation_error(serialized: str) -> None:
    setpoint.configure(
        config=config_of(
            VariableConfig(
                name="support_agent_config",
                labels={"bad": LabeledValue(version=4, serialized_value=serialized)},
                rollout=Rollout(labels={"bad": 1.0}),
            )
        )
    )
    resolved = _agent().get(targeting_key="user-1")
    assert resolved.value is DEFAULT_AGENT
    assert resolved.reason == "validation_error"
    assert isinstance(resolved.exception, ValidationError)
    assert (resolved.label, resolved.version) == (None, None)
    assert "not valid" in resolved.explain()


def test_unexpected_error_serves_default_with_other_error(monkeypatch: pytest.MonkeyPatch) -> None:
    setpoint.configure(config=config_of(rollout_config("ab", {"a": 0.5, "b": 0.5})))
    ab = setpoint.var("ab", type=str, default="code")
    compiled = setpoint._sdk.state.CURRENT.provider.compiled
    assert compiled is not None
    variable = compiled.get("ab")

    def explode(*args: Any) -> None:
        raise RuntimeError("core bug")

    monkeypatch.setattr(type(variable), "evaluate", explode)
    resolved = ab.get("user-1")
    assert (resolved.value, resolved.reason) == ("code", "other_error")
    assert isinstance(resolved.exception, RuntimeError)
    assert "failed unexpectedly" in resolved.explain()


# --- caching ------------------------------------------------------------------------------------------------------


class Counted(BaseModel):
    parses: int = 0
    text: str

    @field_validator("text")
    @classmethod
    def _count(cls, text: str) -> str:
        PARSES.append(text)
        return text


PARSES: list[str] = []


def test_values_are_parsed_once_per_version() -> None:
    PARSES.clear()
    config = config_of(rollout_config("counted", {"a": 0.5, "b": 0.5}, {"a": {"text": "A"}, "b": {"text": "B"}}))
    provider = setpoint.LocalProvider(config)
    setpoint.configure(provider=provider)
    counted = setpoint.var("counted", type=Counted, default=Counted(text="default"))
    PARSES.clear()
    for i in range(300):
        counted.get(f"user-{i}")
        counted.get(f"user-{i}", label="a")
    assert sorted(PARSES) == ["A", "B"]
    # a new config where the values did not change: nothing is parsed again
    provider.update_variable("counted", description="new description")
    for i in range(50):
        counted.get(f"user-{i}")
    assert sorted(PARSES) == ["A", "B"]
    # a new version of "a" is parsed once
    provider.set_label("counted", "a", value({"text": "A2"}))
    for i in range(50):
        counted.get(f"user-{i}")
    assert sorted(PARSES) == ["A", "A2", "B"]


def test_resolved_is_immutable_and_shared_for_static_variables() -> None:
    setpoint.configure(config=config_of(rollout_config("s", {"a": 1.0})))
    s = setpoint.var("s", type=str, default="code")
    first = s.get()
    assert first is s.get()
    with pytest.raises(AttributeError):
        first.value = "changed"


# --- definition errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["agent-config", "1abc", "", "with space", "é", "a" * 129])
def test_invalid_names_are_rejected(name: str) -> None:
    with pytest.raises(setpoint.ConfigurationError, match="invalid variable name"):
        setpoint.var(name, type=str, default="x")


def test_duplicate_names_are_rejected() -> None:
    setpoint.var("dup", type=str, default="x")
    with pytest.raises(setpoint.ConfigurationError, match="already defined"):
        setpoint.var("dup", type=int, default=1)


def test_default_must_fit_the_type() -> None:
    with pytest.raises(setpoint.ConfigurationError, match="default does not fit"):
        setpoint.var("limit", type=int, default="many")


def test_variable_properties() -> None:
    agent = setpoint.var("agent", type=AgentConfig, default=DEFAULT_AGENT, description="the agent")
    assert (agent.name, agent.description, agent.default, agent.type) == (
        "agent",
        "the agent",
        DEFAULT_AGENT,
        AgentConfig,
    )
    assert agent.type_adapter.json_schema()["title"] == "AgentConfig"


def test_unknown_condition_kind_never_matches_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    from setpoint._sdk import variable as variable_module

    variable_module._warned_unknown_kinds.discard("value-from-the-future")
    data = {
        "variables": {
            "prompt": {
                "name": "prompt",
                "labels": {"new": {"version": 1, "serialized_value": '"new"'}},
                "overrides": [
                    {
                        "conditions": [{"kind": "value-from-the-future", "attribute": "x"}],
                        "rollout": {"labels": {"new": 1}},
                    },
                    {
                        "conditions": [{"kind": "key-is-not-present", "attribute": "x"}],
                        "rollout": {"labels": {"new": 1}},
                    },
                ],
            }
        }
    }
    config = VariablesConfig.model_validate(data, context={"allow_unknown_conditions": True})
    caplog.set_level("WARNING", logger="setpoint")
    setpoint.configure(config=config)
    prompt = setpoint.var("prompt", type=str, default="code")
    assert prompt.get(attributes={"x": 1}).value == "code"
    assert prompt.get().value == "new"
    setpoint.configure(config=config)
    prompt.get()
    messages = [r.getMessage() for r in caplog.records if "value-from-the-future" in r.getMessage()]
    assert len(messages) == 1
