"""Configs shared by the SDK tests (the seeds' examples, rewritten for Setpoint)."""

from __future__ import annotations

import json
from typing import Any

from setpoint.config import (
    LabeledValue,
    LabelRef,
    LatestVersion,
    Rollout,
    RolloutOverride,
    ValueEquals,
    VariableConfig,
    VariablesConfig,
)


def value(data: Any) -> str:
    return json.dumps(data)


def rollout_config(name: str, weights: dict[str, float], values: dict[str, Any] | None = None) -> VariableConfig:
    """A variable whose labels serve ``values`` (label -> value; default: the label name) with ``weights``."""
    values = values if values is not None else {label: label for label in weights}
    return VariableConfig(
        name=name,
        labels={
            label: LabeledValue(version=index + 1, serialized_value=value(v))
            for index, (label, v) in enumerate(values.items())
        },
        rollout=Rollout(labels=weights),
    )


def config_of(*variables: VariableConfig) -> VariablesConfig:
    return VariablesConfig(variables={variable.name: variable for variable in variables})


STANDARD = {"instructions": "Be helpful and concise.", "model": "openai:gpt-4o-mini", "temperature": 0.7}
PREMIUM = {"instructions": "Provide detailed, thorough responses...", "model": "openai:gpt-4o", "temperature": 0.3}


def support_agent_config() -> VariablesConfig:
    """Seed 000: 'standard' for everyone, enterprise plan -> 'premium' (a ref to latest, version 2)."""
    return config_of(
        VariableConfig(
            name="support_agent_config",
            latest_version=LatestVersion(version=2, serialized_value=value(PREMIUM)),
            labels={
                "standard": LabeledValue(version=1, serialized_value=value(STANDARD)),
                "premium": LabelRef(version=2, ref="latest"),
            },
            rollout=Rollout(labels={"standard": 1.0}),
            overrides=[
                RolloutOverride(
                    conditions=[ValueEquals(attribute="plan", value="enterprise")],
                    rollout=Rollout(labels={"premium": 1.0}),
                )
            ],
            json_schema={"type": "object"},
        )
    )
