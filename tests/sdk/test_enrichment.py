"""Context enrichment (seed 000): resource attributes, then baggage, then call attributes; each switchable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from opentelemetry import baggage, context
from opentelemetry.sdk.trace import TracerProvider

import setpoint
from setpoint.config import (
    InSegment,
    LabeledValue,
    Rollout,
    RolloutOverride,
    Segment,
    SegmentClause,
    SegmentRule,
    ValueEquals,
    VariableConfig,
    VariablesConfig,
)
from tests.sdk.helpers import config_of, support_agent_config


def _staging_config() -> VariablesConfig:
    """deployment.environment == staging -> the 'staging' label; everyone else -> 'production'."""
    return config_of(
        VariableConfig(
            name="prompt",
            labels={
                "production": LabeledValue(version=1, serialized_value='"prod prompt"'),
                "staging": LabeledValue(version=2, serialized_value='"experimental prompt"'),
            },
            rollout=Rollout(labels={"production": 1.0}),
            overrides=[
                RolloutOverride(
                    conditions=[ValueEquals(attribute="deployment.environment", value="staging")],
                    rollout=Rollout(labels={"staging": 1.0}),
                )
            ],
        )
    )


class _Baggage:
    def __init__(self, **entries: str) -> None:
        self.entries = entries

    def __enter__(self) -> None:
        ctx = context.get_current()
        for key, value in self.entries.items():
            ctx = baggage.set_baggage(key, value, context=ctx)
        self.token = context.attach(ctx)

    def __exit__(self, *exc: object) -> None:
        context.detach(self.token)


def test_resource_attributes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    setpoint.configure(config=_staging_config())
    prompt = setpoint.var("prompt", type=str, default="code")
    assert prompt.get(targeting_key="user-1").label == "staging"
    assert prompt.get(targeting_key="user-1", attributes={"deployment.environment": "prod"}).label == "production"


def test_resource_attributes_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    setpoint.configure(config=_staging_config(), include_resource_attributes_in_context=False)
    prompt = setpoint.var("prompt", type=str, default="code")
    assert prompt.get(targeting_key="user-1").label == "production"


def test_resource_of_the_installed_sdk_tracer_provider(tracer_provider: TracerProvider) -> None:
    config = _staging_config()
    config.variables["prompt"].overrides[0].conditions[0] = ValueEquals(
        attribute="deployment.environment", value="test"
    )
    setpoint.configure(config=VariablesConfig.model_validate(config.to_dict()))
    prompt = setpoint.var("prompt", type=str, default="code")
    assert prompt.get(targeting_key="user-1").label == "staging"


def test_resource_attributes_are_computed_once_per_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    setpoint.configure(config=_staging_config())
    prompt = setpoint.var("prompt", type=str, default="code")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    assert prompt.get(targeting_key="user-1").label == "production"
    setpoint.configure(config=_staging_config())
    assert prompt.get(targeting_key="user-1").label == "staging"


def test_baggage_is_seen_by_the_rules() -> None:
    """Seed 000: the plan set once as baggage routes enterprise users without passing it to get()."""
    setpoint.configure(config=support_agent_config())
    agent = setpoint.var("support_agent_config", type=dict, default={})
    with _Baggage(plan="enterprise"):
        assert agent.get(targeting_key="user-1").label == "premium"
        # call attributes win over baggage
        assert agent.get(targeting_key="user-1", attributes={"plan": "free"}).label == "standard"
    assert agent.get(targeting_key="user-1").label == "standard"


def test_baggage_switched_off() -> None:
    setpoint.configure(config=support_agent_config(), include_baggage_in_context=False)
    agent = setpoint.var("support_agent_config", type=dict, default={})
    with _Baggage(plan="enterprise"):
        assert agent.get(targeting_key="user-1").label == "standard"


def test_baggage_wins_over_resource_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    setpoint.configure(config=_staging_config())
    prompt = setpoint.var("prompt", type=str, default="code")
    with _Baggage(**{"deployment.environment": "prod"}):
        assert prompt.get(targeting_key="user-1").label == "production"


def test_functions_see_all_merged_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging,region=eu")
    setpoint.configure(config=VariablesConfig())
    seen: list[Mapping[str, Any]] = []

    def default(key: str | None, attributes: Mapping[str, Any]) -> str:
        seen.append(dict(attributes))
        return "x"

    echo = setpoint.var("echo", type=str, default=default)
    with _Baggage(region="us", plan="pro"):
        echo.get(attributes={"plan": "enterprise"})
    assert seen[0]["deployment.environment"] == "staging"
    assert (seen[0]["region"], seen[0]["plan"]) == ("us", "enterprise")


def test_segment_rules_see_resource_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "tier=gold")
    segment = Segment(
        key="gold",
        name="Gold",
        rules=[SegmentRule(clauses=[SegmentClause(attribute="tier", op="in", values=["gold"])])],
    )
    config = VariablesConfig(
        variables={
            "prompt": VariableConfig(
                name="prompt",
                labels={"gold": LabeledValue(version=1, serialized_value='"gold"')},
                overrides=[
                    RolloutOverride(conditions=[InSegment(segment="gold")], rollout=Rollout(labels={"gold": 1.0}))
                ],
            )
        },
        segments={"gold": segment},
    )
    setpoint.configure(config=config)
    prompt = setpoint.var("prompt", type=str, default="code")
    assert prompt.get(targeting_key="user-1").value == "gold"
    setpoint.configure(config=config, include_resource_attributes_in_context=False)
    assert prompt.get(targeting_key="user-1").value == "code"
