"""Rewriting Setpoint-only conditions for Logfire SDK clients: exact rewrites, or the override left out."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from logfire.variables import VariablesConfig as LogfireConfig

from setpoint._core.evaluator import compile_config
from setpoint._server.services.logfire_compat import MAX_EXPANDED_OVERRIDES, to_logfire
from setpoint.config import VariablesConfig


def _config(conditions: list[dict[str, Any]], segments: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "variables": {
            "v": {
                "name": "v",
                "labels": {"on": {"version": 1, "serialized_value": "true"}},
                "rollout": {"labels": {}},
                "overrides": [{"conditions": conditions, "rollout": {"labels": {"on": 1.0}}}],
            }
        }
    }
    if segments:
        data["segments"] = segments
    VariablesConfig.model_validate(data)  # a valid Setpoint config to begin with
    return data


def _rewrite(conditions: list[dict[str, Any]], segments: dict[str, Any] | None = None) -> tuple[list[Any], list[str]]:
    data, warnings = to_logfire(_config(conditions, segments))
    LogfireConfig.model_validate(data)
    return [o["conditions"] for o in data["variables"]["v"]["overrides"]], warnings


@pytest.mark.parametrize(
    ("kind", "opposite", "extra"),
    [
        ("value-equals", "value-does-not-equal", {"value": "x"}),
        ("value-does-not-equal", "value-equals", {"value": "x"}),
        ("value-is-in", "value-is-not-in", {"values": ["a"]}),
        ("value-is-not-in", "value-is-in", {"values": ["a"]}),
        ("value-matches-regex", "value-does-not-match-regex", {"pattern": "^a"}),
        ("value-does-not-match-regex", "value-matches-regex", {"pattern": "^a"}),
        ("key-is-present", "key-is-not-present", {}),
        ("key-is-not-present", "key-is-present", {}),
    ],
)
def test_negation_becomes_the_opposite_kind(kind: str, opposite: str, extra: dict[str, Any]) -> None:
    plain, _ = _rewrite([{"kind": kind, "attribute": "a", **extra}])
    negated, warnings = _rewrite([{"kind": kind, "attribute": "a", "negate": True, **extra}])
    assert plain == [[{"kind": kind, "attribute": "a", **extra}]]
    assert negated == [[{"kind": opposite, "attribute": "a", **extra}]]
    assert warnings == []


@pytest.mark.parametrize(
    ("kind", "matching", "not_matching"),
    [
        ("value-starts-with", ["a.b-c", "x+y!"], ["za.b", "a-b"]),
        ("value-ends-with", ["za.b", "q x+y"], ["a.bz", "x+y\n"]),
        ("value-contains", ["za.bz", "x+y"], ["ab", "xy"]),
    ],
)
def test_text_conditions_become_exact_regexes(kind: str, matching: list[str], not_matching: list[str]) -> None:
    (conditions,), _ = _rewrite([{"kind": kind, "attribute": "a", "values": ["a.b", "x+y"]}])
    (condition,) = conditions
    assert condition["kind"] == "value-matches-regex"
    for text in matching:
        assert re.search(condition["pattern"], text), text
    for text in not_matching:
        assert not re.search(condition["pattern"], text), text
    (negated,), _ = _rewrite([{"kind": kind, "attribute": "a", "values": ["a.b"], "negate": True}])
    assert negated[0]["kind"] == "value-does-not-match-regex"


def test_a_segment_of_simple_rules_becomes_one_override_per_rule() -> None:
    segment = {
        "key": "beta",
        "name": "Beta",
        "rules": [
            {
                "clauses": [
                    {"attribute": "plan", "op": "in", "values": ["pro"]},
                    {"attribute": "n", "op": "in", "values": [1], "negate": True},
                ]
            },
            {"clauses": [{"attribute": "id", "op": "startsWith", "values": ["x"], "contextKind": "org"}]},
        ],
    }
    overrides, warnings = _rewrite(
        [{"kind": "key-is-present", "attribute": "k"}, {"kind": "in-segment", "segment": "beta"}], {"beta": segment}
    )
    assert warnings == []
    assert overrides == [
        [
            {"kind": "key-is-present", "attribute": "k"},
            {"kind": "value-is-in", "attribute": "plan", "values": ["pro"]},
            {"kind": "key-is-present", "attribute": "n"},  # a negated segment clause needs the attribute
            {"kind": "value-is-not-in", "attribute": "n", "values": [1]},
        ],
        [
            {"kind": "key-is-present", "attribute": "k"},
            {"kind": "value-matches-regex", "attribute": "org.id", "pattern": "^(?:x)"},
        ],
    ]


def test_an_empty_segment_never_matches_so_its_override_goes_silently() -> None:
    overrides, warnings = _rewrite([{"kind": "in-segment", "segment": "none"}], {"none": {"key": "none", "name": "N"}})
    assert overrides == [] and warnings == []


@pytest.mark.parametrize(
    ("conditions", "segment", "reason"),
    [
        ([{"kind": "value-greater-than", "attribute": "age", "value": 3}], None, "value-greater-than"),
        ([{"kind": "value-semver-equal", "attribute": "v", "value": "1.0.0"}], None, "value-semver-equal"),
        ([{"kind": "in-segment", "segment": "s", "negate": True}], {"key": "s", "name": "S"}, "negated"),
        ([{"kind": "not-in-segment", "segment": "s"}], {"key": "s", "name": "S"}, "negated"),
        ([{"kind": "in-segment", "segment": "s"}], {"key": "s", "name": "S", "included": ["u1"]}, "included"),
        (
            [{"kind": "in-segment", "segment": "s"}],
            {"key": "s", "name": "S", "rules": [{"clauses": [{"attribute": "key", "op": "in", "values": ["u"]}]}]},
            "targeting key",
        ),
        (
            [{"kind": "in-segment", "segment": "s"}],
            {"key": "s", "name": "S", "rules": [{"clauses": [{"attribute": "kind", "op": "in", "values": ["u"]}]}]},
            "'kind'",
        ),
        (
            [{"kind": "in-segment", "segment": "s"}],
            {"key": "s", "name": "S", "rules": [{"clauses": [{"attribute": "/a/b", "op": "in", "values": ["u"]}]}]},
            "attribute reference",
        ),
        (
            [{"kind": "in-segment", "segment": "s"}],
            {
                "key": "s",
                "name": "S",
                "rules": [{"clauses": [{"attribute": "a", "op": "in", "values": ["u"]}], "weight": 5000}],
            },
            "weighted rule",
        ),
        (
            [{"kind": "in-segment", "segment": "s"}],
            {"key": "s", "name": "S", "rules": [{"clauses": [{"attribute": "n", "op": "greaterThan", "values": [1]}]}]},
            "greaterThan",
        ),
    ],
)
def test_inexpressible_overrides_are_left_out_with_a_warning(
    conditions: list[dict[str, Any]], segment: dict[str, Any] | None, reason: str
) -> None:
    overrides, warnings = _rewrite(conditions, {"s": segment} if segment else None)
    assert overrides == []
    assert len(warnings) == 1 and "'v'" in warnings[0] and reason in warnings[0]


def test_expansion_is_bounded() -> None:
    rules = [{"clauses": [{"attribute": "a", "op": "in", "values": [i]}]} for i in range(9)]
    segments = {k: {"key": k, "name": k, "rules": rules} for k in ("s1", "s2")}
    overrides, warnings = _rewrite(
        [{"kind": "in-segment", "segment": "s1"}, {"kind": "in-segment", "segment": "s2"}], segments
    )
    assert MAX_EXPANDED_OVERRIDES < 81
    assert overrides == [] and "more than" in warnings[0]


_TEXT = st.text(alphabet="ab.-+*^$\\ \n", max_size=4)
_VALUES = st.one_of(_TEXT, st.integers(-2, 2), st.booleans(), st.none())


@st.composite
def _condition(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            [
                "value-equals",
                "value-does-not-equal",
                "value-is-in",
                "value-is-not-in",
                "key-is-present",
                "key-is-not-present",
                "value-matches-regex",
                "value-does-not-match-regex",
                "value-starts-with",
                "value-ends-with",
                "value-contains",
            ]
        )
    )
    condition: dict[str, Any] = {"kind": kind, "attribute": "a"}
    if kind in ("value-equals", "value-does-not-equal"):
        condition["value"] = draw(_TEXT)  # strings: Logfire and Setpoint agree on string equality
    elif kind in ("value-is-in", "value-is-not-in"):
        condition["values"] = draw(st.lists(_TEXT, max_size=3))
    elif kind in ("value-matches-regex", "value-does-not-match-regex"):
        condition["pattern"] = draw(st.sampled_from(["^a", "b$", "a.b", "\\.", ""]))
    elif kind.startswith("value-"):
        condition["values"] = draw(st.lists(_TEXT, min_size=1, max_size=3))
    if draw(st.booleans()):
        condition["negate"] = True
    return condition


@settings(max_examples=300, deadline=None)
@given(conditions=st.lists(_condition(), min_size=1, max_size=3), attributes=st.dictionaries(st.just("a"), _VALUES))
def test_rewritten_overrides_match_exactly_when_setpoint_s_do(
    conditions: list[dict[str, Any]], attributes: dict[str, Any]
) -> None:
    """The Logfire SDK evaluating the rewritten config picks what Setpoint's evaluator picks."""
    data = _config(conditions)
    setpoint_label = compile_config(VariablesConfig.model_validate(data)).evaluate("v", "key", attributes).label
    rewritten, warnings = to_logfire(data)
    assert warnings == []
    logfire_label = LogfireConfig.model_validate(rewritten).variables["v"].resolve_value("key", attributes)[1]
    assert logfire_label == setpoint_label
