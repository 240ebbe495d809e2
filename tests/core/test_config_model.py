"""The config model: Logfire-compatible JSON, validation with clear messages, file I/O, merge."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from setpoint.config import (
    CONDITION_KINDS,
    InSegment,
    KeyIsPresent,
    LabeledValue,
    LabelRef,
    LatestVersion,
    Rollout,
    RolloutOverride,
    Segment,
    SegmentClause,
    SegmentRule,
    ValueEquals,
    ValueIsIn,
    VariableConfig,
    VariablesConfig,
)
from setpoint.exceptions import ConfigFileError

DESIGN_EXAMPLE = {
    "variables": {
        "support_agent_config": {
            "name": "support_agent_config",
            "description": None,
            "labels": {
                "standard": {"version": 1, "serialized_value": '{"instructions": "Be concise."}'},
                "premium": {"version": 2, "ref": "latest"},
            },
            "latest_version": {"version": 2, "serialized_value": '{"instructions": "Be thorough."}'},
            "rollout": {"labels": {"standard": 1.0}},
            "overrides": [
                {
                    "conditions": [{"kind": "value-equals", "attribute": "plan", "value": "enterprise"}],
                    "rollout": {"labels": {"premium": 1.0}},
                }
            ],
            "json_schema": {"type": "object"},
            "aliases": None,
            "example": None,
        }
    }
}


def _variable(**fields: Any) -> dict[str, Any]:
    return {"variables": {"v": {"name": "v", **fields}}}


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        VariablesConfig.model_validate(data)
    return str(info.value)


def test_design_example_parses_and_round_trips() -> None:
    config = VariablesConfig.model_validate(DESIGN_EXAMPLE)
    variable = config.variables["support_agent_config"]
    assert isinstance(variable.labels["premium"], LabelRef)
    assert variable.overrides[0].conditions[0] == ValueEquals(attribute="plan", value="enterprise")
    assert VariablesConfig.from_json(config.to_json()) == config
    assert VariablesConfig.from_yaml(config.to_yaml()) == config


def test_serialized_config_is_accepted_by_the_logfire_sdk() -> None:
    from logfire.variables.config import VariablesConfig as LogfireVariablesConfig

    config = VariablesConfig.model_validate(DESIGN_EXAMPLE)
    parsed = LogfireVariablesConfig.model_validate_json(config.to_json())
    assert parsed.variables["support_agent_config"].labels["standard"].version == 1


def test_negate_is_serialized_only_when_true() -> None:
    plain = ValueEquals(attribute="plan", value="x").model_dump()
    negated = ValueEquals(attribute="plan", value="x", negate=True).model_dump()
    assert "negate" not in plain
    assert negated["negate"] is True


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_variable(rollout={"labels": {"ghost": 1.0}}), "rollout names label 'ghost'"),
        (
            _variable(
                labels={"a": {"version": 1, "serialized_value": "1"}},
                overrides=[{"conditions": [], "rollout": {"labels": {"ghost": 1.0}}}],
            ),
            "overrides[0].rollout names label 'ghost'",
        ),
        (_variable(labels={"a": {"ref": "missing"}}), "refers to label 'missing'"),
        (_variable(labels={"a": {"ref": "b"}, "b": {"ref": "a"}}), "cycle: a -> b -> a"),
        (_variable(labels={"a": {"ref": "a"}}), "cycle: a -> a"),
        (_variable(labels={"a": {"version": 1, "serialized_value": "1"}}, rollout={"labels": {"a": 1.5}}), "between 0"),
        (
            _variable(labels={"a": {"version": 1, "serialized_value": "1"}}, rollout={"labels": {"a": -0.1}}),
            "between 0",
        ),
        (
            _variable(
                labels={"a": {"version": 1, "serialized_value": "1"}, "b": {"version": 2, "serialized_value": "2"}},
                rollout={"labels": {"a": 0.6, "b": 0.5}},
            ),
            "sum to 1.1",
        ),
        (_variable(labels={"latest": {"version": 1, "serialized_value": "1"}}), "reserved"),
        ({"variables": {"bad-name": {"name": "bad-name"}}}, "String should match pattern"),
        ({"variables": {"a": {"name": "b"}}}, "key 'a' is named 'b'"),
        (
            _variable(overrides=[{"conditions": [{"kind": "value-matches-regex", "attribute": "a", "pattern": "(("}]}]),
            "invalid regular expression",
        ),
        (
            _variable(overrides=[{"conditions": [{"kind": "value-semver-equal", "attribute": "a", "value": "one"}]}]),
            "not a semantic version",
        ),
        (
            _variable(overrides=[{"conditions": [{"kind": "value-before", "attribute": "a", "value": "yesterday"}]}]),
            "not a timestamp",
        ),
        (
            _variable(overrides=[{"conditions": [{"kind": "value-greater-than", "attribute": "a", "value": "5"}]}]),
            "must be a number",
        ),
        (
            _variable(overrides=[{"conditions": [{"kind": "value-greater-than", "attribute": "a", "value": True}]}]),
            "must be a number",
        ),
        (
            _variable(overrides=[{"conditions": [{"kind": "in-segment", "segment": "nope"}], "rollout": {}}]),
            "unknown segment(s): nope",
        ),
        (_variable(overrides=[{"conditions": [{"kind": "value-is-bigger", "attribute": "a"}]}]), "unknown condition"),
    ],
)
def test_invalid_configs_are_rejected_with_a_message_naming_the_problem(data: dict[str, Any], message: str) -> None:
    error = _error(data)
    assert message in error
    if "variables" in data and "v" in data["variables"]:
        assert "variables.v" in error or "variable 'v'" in error  # the message names the variable


def test_segment_problems_are_rejected() -> None:
    clause = {"attribute": "key", "op": "segmentMatch", "values": ["b"]}
    cycle = {
        "a": {"key": "a", "name": "A", "rules": [{"clauses": [clause]}]},
        "b": {"key": "b", "name": "B", "rules": [{"clauses": [{**clause, "values": ["a"]}]}]},
    }
    assert "cycle" in _error({"variables": {}, "segments": cycle})
    assert "unknown segment(s): zzz" in _error(
        {"segments": {"a": {"key": "a", "name": "A", "rules": [{"clauses": [{**clause, "values": ["zzz"]}]}]}}}
    )
    bad_op = {"a": {"key": "a", "name": "A", "rules": [{"clauses": [{"attribute": "x", "op": "near", "values": [1]}]}]}}
    assert "near" in _error({"segments": bad_op})
    bad_regex = {"attribute": "x", "op": "matches", "values": ["[unclosed"]}
    assert "invalid regular expression" in _error(
        {"segments": {"a": {"key": "a", "name": "A", "rules": [{"clauses": [bad_regex]}]}}}
    )


def test_alias_clashes_are_rejected() -> None:
    data = {"variables": {"a": {"name": "a", "aliases": ["b"]}, "b": {"name": "b"}}}
    assert "alias 'b' of variable 'a' is the name of another variable" in _error(data)


def test_unknown_condition_kind_is_accepted_only_when_asked() -> None:
    data = _variable(overrides=[{"conditions": [{"kind": "from-the-future", "attribute": "a"}], "rollout": {}}])
    config = VariablesConfig.model_validate(data, context={"allow_unknown_conditions": True})
    assert config.variables["v"].overrides[0].conditions[0].kind == "from-the-future"


def test_every_documented_condition_kind_exists() -> None:
    documented = {
        "value-equals", "value-does-not-equal", "value-is-in", "value-is-not-in", "value-matches-regex",
        "value-does-not-match-regex", "key-is-present", "key-is-not-present", "value-starts-with", "value-ends-with",
        "value-contains", "value-greater-than", "value-greater-than-or-equal", "value-less-than",
        "value-less-than-or-equal", "value-before", "value-after", "value-semver-equal", "value-semver-less-than",
        "value-semver-greater-than", "in-segment", "not-in-segment",
    }  # fmt: skip
    assert set(CONDITION_KINDS) == documented


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_read_and_write_files(tmp_path: Path, suffix: str) -> None:
    config = VariablesConfig.model_validate(DESIGN_EXAMPLE)
    path = tmp_path / f"variables{suffix}"
    config.write(path)
    assert VariablesConfig.read(path) == config
    assert VariablesConfig.read(str(path)) == config
    if suffix == ".json":
        assert json.loads(path.read_text())["variables"]["support_agent_config"]["name"] == "support_agent_config"
    else:
        assert path.read_text().startswith("variables:")


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match=r"unknown config file type '\.txt'"):
        VariablesConfig.read(tmp_path / "x.txt")
    with pytest.raises(ConfigFileError, match="cannot read"):
        VariablesConfig.read(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("variables: [unclosed\n")
    with pytest.raises(ConfigFileError, match=r"broken\.yaml: not valid YAML"):
        VariablesConfig.read(broken)
    broken_json = tmp_path / "broken.json"
    broken_json.write_text("{")
    with pytest.raises(ConfigFileError, match="not valid JSON"):
        VariablesConfig.read(broken_json)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert VariablesConfig.read(empty) == VariablesConfig()


def test_merge_prefers_other() -> None:
    a = VariablesConfig(variables={"x": VariableConfig(name="x", description="old"), "y": VariableConfig(name="y")})
    b = VariablesConfig(
        variables={"x": VariableConfig(name="x", description="new")},
        segments={"s": Segment(key="s", name="S")},
    )
    merged = a.merge(b)
    assert merged.variables["x"].description == "new"
    assert set(merged.variables) == {"x", "y"}
    assert set(merged.segments) == {"s"}


class AgentConfig(BaseModel):
    instructions: str
    temperature: float


@dataclass
class _CodeVariable:
    """The attributes `from_variables` reads from an SDK variable."""

    name: str
    default: Any
    type_adapter: TypeAdapter[Any]
    description: str | None = None


def test_from_variables_builds_a_template() -> None:
    config = VariablesConfig.from_variables(
        [
            _CodeVariable("agent", AgentConfig(instructions="hi", temperature=0.5), TypeAdapter(AgentConfig), "Agent"),
            _CodeVariable("flag", lambda key, attrs: True, TypeAdapter(bool)),
        ]
    )
    agent = config.variables["agent"]
    assert agent.example == '{"instructions":"hi","temperature":0.5}'
    assert agent.json_schema is not None
    assert agent.json_schema["properties"]["temperature"] == {"title": "Temperature", "type": "number"}
    assert agent.description == "Agent"
    assert agent.labels == {}
    assert config.variables["flag"].example is None  # a function default has no example


def test_models_build_from_python() -> None:
    config = VariablesConfig(
        variables={
            "v": VariableConfig(
                name="v",
                labels={"a": LabeledValue(version=1, serialized_value="1"), "b": LabelRef(ref="latest")},
                latest_version=LatestVersion(version=3, serialized_value="3"),
                rollout=Rollout(labels={"a": 1.0}),
                overrides=[
                    RolloutOverride(conditions=[KeyIsPresent(attribute="x")], rollout=Rollout(labels={"b": 1.0})),
                    RolloutOverride(conditions=[InSegment(segment="s")], rollout=Rollout(labels={"b": 1.0})),
                    RolloutOverride(conditions=[ValueIsIn(attribute="c", values=["US"])], rollout=Rollout()),
                ],
            )
        },
        segments={
            "s": Segment(
                key="s",
                name="S",
                rules=[SegmentRule(clauses=[SegmentClause(attribute="beta", op="in", values=[True])])],
            )
        },
    )
    assert config.get_variable("v") is config.variables["v"]
    assert config.get_variable("nope") is None


def test_segment_clause_accepts_the_launchdarkly_spelling_of_context_kind() -> None:
    clause = SegmentClause.model_validate({"attribute": "plan", "op": "in", "values": ["x"], "contextKind": "org"})
    assert clause.context_kind == "org"
    assert clause.model_dump()["context_kind"] == "org"
