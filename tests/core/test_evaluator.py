"""The evaluator: labels and refs, explicit labels, ordered overrides, remainders, explanations, segments."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from setpoint._core.evaluator import compile_config
from setpoint.config import (
    LabeledValue,
    LabelRef,
    LatestVersion,
    Rollout,
    RolloutOverride,
    Segment,
    SegmentClause,
    SegmentRule,
    SegmentTarget,
    ValueEquals,
    ValueIsIn,
    VariableConfig,
    VariablesConfig,
)


def _config(**fields: Any) -> VariablesConfig:
    segments = fields.pop("segments", {})
    return VariablesConfig(variables={"v": VariableConfig(name="v", **fields)}, segments=segments)


LABELS: dict[str, LabeledValue | LabelRef] = {
    "standard": LabeledValue(version=1, serialized_value='"standard"'),
    "premium": LabelRef(version=2, ref="latest"),
    "alias_of_premium": LabelRef(ref="premium"),
    "off": LabelRef(ref="code_default"),
}
LATEST = LatestVersion(version=2, serialized_value='"latest"')


def test_refs_are_followed_to_the_final_version() -> None:
    config = compile_config(
        _config(labels=LABELS, latest_version=LATEST, rollout=Rollout(labels={"alias_of_premium": 1}))
    )
    evaluation = config.evaluate("v", "k")
    assert (evaluation.label, evaluation.version, evaluation.serialized_value) == ("alias_of_premium", 2, '"latest"')
    assert evaluation.reason == "resolved"


def test_code_default_ref_and_latest_without_versions_serve_the_code_default() -> None:
    off = compile_config(_config(labels=LABELS, latest_version=LATEST, rollout=Rollout(labels={"off": 1}))).evaluate(
        "v"
    )
    assert (off.reason, off.detail, off.label, off.serialized_value) == ("code_default", "no_value", "off", None)
    no_latest = compile_config(_config(labels=LABELS, rollout=Rollout(labels={"premium": 1}))).evaluate("v")
    assert no_latest.serialized_value is None
    assert no_latest.reason == "code_default"


def test_explicit_label_wins_when_it_has_a_value_and_falls_through_otherwise() -> None:
    config = compile_config(_config(labels=LABELS, latest_version=LATEST, rollout=Rollout(labels={"standard": 1})))
    assert config.evaluate("v", label="premium").label == "premium"
    assert config.evaluate("v", label="premium").detail == "explicit_label"
    assert config.evaluate("v", label="off").label == "standard"
    assert config.evaluate("v", label="nonexistent").label == "standard"


def test_first_matching_override_wins_and_conditions_are_anded() -> None:
    config = compile_config(
        _config(
            labels=LABELS,
            latest_version=LATEST,
            rollout=Rollout(labels={"standard": 1}),
            overrides=[
                RolloutOverride(
                    conditions=[
                        ValueEquals(attribute="is_beta", value=True),
                        ValueIsIn(attribute="country", values=["US", "UK"]),
                    ],
                    rollout=Rollout(labels={"premium": 1}),
                ),
                RolloutOverride(
                    conditions=[ValueEquals(attribute="is_beta", value=True)], rollout=Rollout(labels={"off": 1})
                ),
            ],
        )
    )
    both = config.evaluate("v", "k", {"is_beta": True, "country": "UK"})
    assert (both.label, both.override_index, both.detail) == ("premium", 0, "override")
    assert "override #1 matched" in both.explain()
    only_beta = config.evaluate("v", "k", {"is_beta": True, "country": "FR"})
    assert (only_beta.label, only_beta.override_index, only_beta.reason) == ("off", 1, "code_default")
    neither = config.evaluate("v", "k", {"country": "UK"})
    assert (neither.label, neither.override_index) == ("standard", None)
    assert neither.explain() == "no override matched; the default rollout chose label 'standard' (version 1)."


def test_remainders_and_empty_rollouts_serve_the_code_default() -> None:
    empty = compile_config(_config(labels=LABELS)).evaluate("v", "k")
    assert (empty.reason, empty.detail) == ("code_default", "rollout_remainder")
    zero = compile_config(_config(labels=LABELS, rollout=Rollout(labels={"standard": 0.0}))).evaluate("v", "k")
    assert zero.label is None
    override_remainder = compile_config(
        _config(labels=LABELS, overrides=[RolloutOverride(conditions=[], rollout=Rollout())])
    ).evaluate("v", "k")
    assert override_remainder.detail == "override_remainder"
    assert "remainder" in override_remainder.explain()


def test_unknown_variable_and_aliases() -> None:
    config = compile_config(
        VariablesConfig(
            variables={
                "new_name": VariableConfig(
                    name="new_name",
                    labels=dict(LABELS),
                    latest_version=LATEST,
                    rollout=Rollout(labels={"standard": 1}),
                    aliases=["old_name"],
                )
            }
        )
    )
    assert config.evaluate("old_name", "k").label == "standard"
    unknown = config.evaluate("nope")
    assert (unknown.detail, unknown.reason) == ("unknown_variable", "code_default")
    assert "not in the configuration" in unknown.explain()
    assert config.names() == ["new_name"]


def test_static_variables_are_detected() -> None:
    static = compile_config(_config(labels=LABELS, rollout=Rollout(labels={"standard": 1.0}))).get("v")
    assert static is not None
    assert static.is_static
    dynamic = compile_config(_config(labels=LABELS, rollout=Rollout(labels={"standard": 0.5}))).get("v")
    assert dynamic is not None
    assert not dynamic.is_static


def test_unknown_condition_from_a_newer_server_never_matches() -> None:
    data = _config(labels=LABELS, rollout=Rollout(labels={"standard": 1})).to_dict()
    data["variables"]["v"]["overrides"] = [
        {"conditions": [{"kind": "value-is-prime", "attribute": "n"}], "rollout": {"labels": {"off": 1}}}
    ]
    config = VariablesConfig.model_validate(data, context={"allow_unknown_conditions": True})
    assert compile_config(config).evaluate("v", "k", {"n": 7}).label == "standard"


def _segment_config(segment: Segment, *extra: Segment, negate: bool = False) -> Any:
    return compile_config(
        _config(
            labels=LABELS,
            rollout=Rollout(labels={"standard": 1}),
            overrides=[
                RolloutOverride.model_validate(
                    {"conditions": [{"kind": "in-segment", "segment": segment.key, "negate": negate}],
                     "rollout": {"labels": {"off": 1}}}
                )
            ],
            segments={s.key: s for s in (segment, *extra)},
        )
    )  # fmt: skip


def _in(config: Any, key: str | None, attrs: dict[str, Any] | None = None) -> bool:
    return bool(config.evaluate("v", key, attrs or {}).label == "off")


def test_segment_included_excluded_and_rules() -> None:
    segment = Segment(
        key="beta-testers",
        name="Beta testers",
        included=["vip", "both"],
        excluded=["banned", "both"],
        rules=[
            SegmentRule(
                clauses=[
                    SegmentClause(attribute="beta_tester", op="in", values=[True]),
                    SegmentClause(attribute="accountAge", op="greaterThan", values=[30]),
                ]
            ),
            SegmentRule(clauses=[SegmentClause(attribute="email", op="endsWith", values=["@company.com"])]),
        ],
    )
    config = _segment_config(segment)
    assert _in(config, "vip")
    assert _in(config, "both")  # included is checked first, as in LaunchDarkly
    assert not _in(config, "banned", {"email": "x@company.com"})
    assert _in(config, "u1", {"beta_tester": True, "accountAge": 31})
    assert not _in(config, "u1", {"beta_tester": True, "accountAge": 30})
    assert _in(config, "u2", {"email": "me@company.com"})
    assert not _in(config, None, {})
    negated = _segment_config(segment, negate=True)
    assert not _in(negated, "vip")
    assert _in(negated, "nobody")


def _rule(attribute: str, op: Any, values: list[Any], context_kind: str = "user") -> SegmentRule:
    return SegmentRule(clauses=[SegmentClause(attribute=attribute, op=op, values=values, context_kind=context_kind)])


def test_segment_context_kinds_read_dotted_attributes() -> None:
    segment = Segment(
        key="enterprise",
        name="Enterprise",
        included_contexts=[SegmentTarget(context_kind="organization", values=["org-1"])],
        excluded_contexts=[SegmentTarget(context_kind="organization", values=["org-9"])],
        rules=[
            _rule("plan", "in", ["enterprise"], context_kind="organization"),
            _rule("version", "semVerGreaterThan", ["2.0.0"], context_kind="device"),
            _rule("key", "startsWith", ["staff-"]),
        ],
    )
    config = _segment_config(segment)
    assert _in(config, "u", {"organization.key": "org-1"})
    assert not _in(config, "u", {"organization.key": "org-9", "organization.plan": "enterprise"})
    assert _in(config, "u", {"organization.plan": "enterprise"})
    assert not _in(config, "u", {"plan": "enterprise"})  # the user kind's attribute is a different one
    assert _in(config, "u", {"device.version": "2.1.0"})
    assert _in(config, "staff-7")
    assert not _in(config, "user-7")


def test_segment_clause_negate_list_values_and_segment_match() -> None:
    inner = Segment(
        key="eu",
        name="EU",
        rules=[SegmentRule(clauses=[SegmentClause(attribute="region", op="startsWith", values=["eu-"])])],
    )
    outer = Segment(
        key="eu-power",
        name="EU power users",
        rules=[
            SegmentRule(
                clauses=[
                    SegmentClause(attribute="key", op="segmentMatch", values=["eu"]),
                    SegmentClause(attribute="tier", op="in", values=["free"], negate=True),
                ]
            )
        ],
    )  # fmt: skip
    config = _segment_config(outer, inner)
    assert _in(config, "u", {"region": "eu-west", "tier": "pro"})
    assert not _in(config, "u", {"region": "eu-west", "tier": "free"})
    assert not _in(config, "u", {"region": "eu-west"})  # a missing attribute never matches, negated or not
    assert not _in(config, "u", {"region": "us-east", "tier": "pro"})
    tags = Segment(
        key="tags",
        name="Tags",
        rules=[SegmentRule(clauses=[SegmentClause(attribute="groups", op="in", values=["admins"])])],
    )
    tag_config = _segment_config(tags)
    assert _in(tag_config, "u", {"groups": ["users", "admins"]})  # a list attribute matches if any element does
    assert not _in(tag_config, "u", {"groups": ["users"]})


def test_large_segment_membership_is_a_set_lookup() -> None:
    keys = [f"user-{i}" for i in range(100_000)]
    config = _segment_config(Segment(key="big", name="Big", included=keys))
    assert _in(config, "user-99999")
    assert not _in(config, "user-100000")


_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)  # fmt: skip
_literals = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)  # fmt: skip
"""Condition literals: JSON values (a config with NaN or Infinity is refused); attributes may be anything."""
_condition = st.one_of(
    st.builds(lambda v: {"kind": "value-equals", "attribute": "a", "value": v}, _literals),
    st.builds(lambda v: {"kind": "value-is-in", "attribute": "a", "values": v}, st.lists(_literals, max_size=3)),
    st.builds(lambda n: {"kind": "value-greater-than", "attribute": "a", "value": n}, st.integers()),
    st.just({"kind": "value-matches-regex", "attribute": "a", "pattern": "^x"}),
    st.just({"kind": "value-before", "attribute": "a", "value": "2024-01-01"}),
    st.just({"kind": "value-semver-less-than", "attribute": "a", "value": "1.2.3"}),
    st.just({"kind": "value-contains", "attribute": "a", "values": ["x"]}),
    st.just({"kind": "key-is-not-present", "attribute": "a"}),
    st.just({"kind": "in-segment", "segment": "s"}),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    conditions=st.lists(_condition, max_size=3),
    weights=st.lists(st.floats(min_value=0, max_value=0.5), min_size=0, max_size=2),
    key=st.one_of(st.none(), st.text(max_size=8)),
    attribute=_values,
    label=st.one_of(st.none(), st.sampled_from(["l0", "l1", "nope"])),
)
def test_evaluation_never_raises_on_a_valid_config(
    conditions: list[dict[str, Any]], weights: list[float], key: str | None, attribute: Any, label: str | None
) -> None:
    labels = {f"l{i}": {"version": i + 1, "serialized_value": str(i)} for i in range(len(weights))}
    rollout = {"labels": {f"l{i}": w for i, w in enumerate(weights)}}
    data = {
        "variables": {"v": {"name": "v", "labels": labels, "rollout": rollout,
                            "overrides": [{"conditions": conditions, "rollout": rollout}]}},
        "segments": {"s": {"key": "s", "name": "S", "included": ["k"],
                           "rules": [{"clauses": [{"attribute": "a", "op": "greaterThan", "values": [1]}]}]}},
    }  # fmt: skip
    config = compile_config(VariablesConfig.model_validate(data))
    evaluation = config.evaluate("v", key, {"a": attribute}, label=label)
    assert evaluation.reason in ("resolved", "code_default")
    assert evaluation.explain()
