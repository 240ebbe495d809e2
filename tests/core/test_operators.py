"""Every condition kind and segment operator: matches, non-matches, type mismatches, missing attributes, negate."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from setpoint._core.evaluator import compile_config
from setpoint.config import LabeledValue, Rollout, RolloutOverride, VariableConfig, VariablesConfig

MISSING = object()


def _matches(condition: dict[str, Any], value: Any, *, negate: bool = False) -> bool:
    """Does ``condition`` match attributes where ``x`` is ``value`` (or absent for MISSING)?"""
    config = VariablesConfig.model_validate(
        {
            "variables": {
                "v": VariableConfig(
                    name="v",
                    labels={"hit": LabeledValue(version=1, serialized_value="1")},
                    overrides=[
                        RolloutOverride.model_validate(
                            {"conditions": [{**condition, "negate": negate}], "rollout": Rollout(labels={"hit": 1.0})}
                        )
                    ],
                ).model_dump()
            }
        }
    )
    attributes = {} if value is MISSING else {"x": value}
    return compile_config(config).evaluate("v", "key", attributes).label == "hit"


CASES: list[tuple[dict[str, Any], Any, bool]] = [
    # Logfire's eight
    ({"kind": "value-equals", "attribute": "x", "value": "a"}, "a", True),
    ({"kind": "value-equals", "attribute": "x", "value": "a"}, "b", False),
    ({"kind": "value-equals", "attribute": "x", "value": 1}, True, False),  # 1 == True is false
    ({"kind": "value-equals", "attribute": "x", "value": True}, 1, False),
    ({"kind": "value-equals", "attribute": "x", "value": 1}, 1.0, True),  # one JSON number type
    ({"kind": "value-equals", "attribute": "x", "value": 1}, "1", False),
    ({"kind": "value-equals", "attribute": "x", "value": None}, None, True),
    ({"kind": "value-equals", "attribute": "x", "value": [1, "a"]}, [1, "a"], True),
    ({"kind": "value-equals", "attribute": "x", "value": [1, "a"]}, [True, "a"], False),
    ({"kind": "value-equals", "attribute": "x", "value": {"a": 1}}, {"a": 1}, True),
    ({"kind": "value-does-not-equal", "attribute": "x", "value": "a"}, "b", True),
    ({"kind": "value-does-not-equal", "attribute": "x", "value": "a"}, "a", False),
    ({"kind": "value-does-not-equal", "attribute": "x", "value": 1}, True, True),
    ({"kind": "value-is-in", "attribute": "x", "values": ["US", "UK"]}, "UK", True),
    ({"kind": "value-is-in", "attribute": "x", "values": ["US", "UK"]}, "FR", False),
    ({"kind": "value-is-in", "attribute": "x", "values": [1, 2]}, True, False),
    ({"kind": "value-is-in", "attribute": "x", "values": [True]}, 1, False),
    ({"kind": "value-is-in", "attribute": "x", "values": [1, "a", None]}, None, True),
    ({"kind": "value-is-in", "attribute": "x", "values": [[1], "a"]}, [1], True),
    ({"kind": "value-is-in", "attribute": "x", "values": ["a"]}, {"unhashable"}, False),
    ({"kind": "value-is-not-in", "attribute": "x", "values": ["US"]}, "FR", True),
    ({"kind": "value-is-not-in", "attribute": "x", "values": ["US"]}, "US", False),
    ({"kind": "value-matches-regex", "attribute": "x", "pattern": "^user-\\d+$"}, "user-12", True),
    ({"kind": "value-matches-regex", "attribute": "x", "pattern": "@corp\\.com"}, "me@corp.com", True),
    ({"kind": "value-matches-regex", "attribute": "x", "pattern": "1"}, 1, False),
    ({"kind": "value-does-not-match-regex", "attribute": "x", "pattern": "^a"}, "bcd", True),
    ({"kind": "value-does-not-match-regex", "attribute": "x", "pattern": "^a"}, "abc", False),
    ({"kind": "value-does-not-match-regex", "attribute": "x", "pattern": "^a"}, 5, True),
    ({"kind": "key-is-present", "attribute": "x"}, None, True),
    ({"kind": "key-is-not-present", "attribute": "x"}, "anything", False),
    # Setpoint's additions
    ({"kind": "value-starts-with", "attribute": "x", "values": ["ab", "x"]}, "abc", True),
    ({"kind": "value-starts-with", "attribute": "x", "values": ["ab"]}, "cab", False),
    ({"kind": "value-starts-with", "attribute": "x", "values": ["1"]}, 12, False),
    ({"kind": "value-ends-with", "attribute": "x", "values": ["@corp.com"]}, "me@corp.com", True),
    ({"kind": "value-ends-with", "attribute": "x", "values": ["@corp.com"]}, "me@corp.co", False),
    ({"kind": "value-contains", "attribute": "x", "values": ["mid"]}, "amidst", True),
    ({"kind": "value-contains", "attribute": "x", "values": ["mid"]}, "nope", False),
    ({"kind": "value-greater-than", "attribute": "x", "value": 30}, 31, True),
    ({"kind": "value-greater-than", "attribute": "x", "value": 30}, 30, False),
    ({"kind": "value-greater-than", "attribute": "x", "value": 30}, "31", False),  # a string never compares
    ({"kind": "value-greater-than", "attribute": "x", "value": 0}, True, False),  # nor does a bool
    ({"kind": "value-greater-than-or-equal", "attribute": "x", "value": 30}, 30, True),
    ({"kind": "value-greater-than-or-equal", "attribute": "x", "value": 30}, 29.9, False),
    ({"kind": "value-less-than", "attribute": "x", "value": 10.5}, 10, True),
    ({"kind": "value-less-than", "attribute": "x", "value": 10}, 10, False),
    ({"kind": "value-less-than-or-equal", "attribute": "x", "value": 10}, 10, True),
    ({"kind": "value-less-than-or-equal", "attribute": "x", "value": 10}, None, False),
    ({"kind": "value-before", "attribute": "x", "value": 1704067200000}, "2023-12-31T23:59:59Z", True),
    ({"kind": "value-before", "attribute": "x", "value": "2024-01-01T00:00:00Z"}, 1704067199999, True),
    ({"kind": "value-before", "attribute": "x", "value": "2024-01-01"}, "2024-01-02", False),
    ({"kind": "value-before", "attribute": "x", "value": "2024-01-01"}, "not a date", False),
    ({"kind": "value-before", "attribute": "x", "value": "2024-01-01"}, True, False),
    (
        {"kind": "value-after", "attribute": "x", "value": "2024-01-01T00:00:00+00:00"},
        "2024-01-01T01:00:00+00:00",
        True,
    ),
    ({"kind": "value-after", "attribute": "x", "value": "2024-01-01"}, datetime(2025, 1, 1, tzinfo=UTC), True),
    ({"kind": "value-after", "attribute": "x", "value": 1704067200000}, 1704067200000, False),
    ({"kind": "value-semver-equal", "attribute": "x", "value": "2.0.0"}, "2.0", True),
    ({"kind": "value-semver-equal", "attribute": "x", "value": "2.0.0"}, "v2.0.0", True),
    ({"kind": "value-semver-equal", "attribute": "x", "value": "2.0.0"}, "2.0.1", False),
    ({"kind": "value-semver-less-than", "attribute": "x", "value": "2.0.0"}, "2.0.0-beta.1", True),
    ({"kind": "value-semver-less-than", "attribute": "x", "value": "2.0.0"}, "10.0.0", False),
    ({"kind": "value-semver-greater-than", "attribute": "x", "value": "2.0.0"}, "10.0.0", True),
    ({"kind": "value-semver-greater-than", "attribute": "x", "value": "2.0.0"}, "not.a.version", False),
    ({"kind": "value-semver-greater-than", "attribute": "x", "value": "2.0.0"}, 3, False),
]


@pytest.mark.parametrize(("condition", "value", "expected"), CASES, ids=lambda p: repr(p)[:40])
def test_condition_kind(condition: dict[str, Any], value: Any, expected: bool) -> None:
    assert _matches(condition, value) is expected
    assert _matches(condition, value, negate=True) is (not expected)


NEGATIVE_KINDS = {"value-does-not-equal", "value-is-not-in", "value-does-not-match-regex", "key-is-not-present"}


@pytest.mark.parametrize("condition", {c["kind"]: c for c, _, _ in CASES}.values(), ids=lambda c: c["kind"])
def test_missing_attribute_matches_only_negative_kinds_and_negate(condition: dict[str, Any]) -> None:
    positive = condition["kind"] not in NEGATIVE_KINDS
    assert _matches(condition, MISSING) is (not positive)
    assert _matches(condition, MISSING, negate=True) is positive
