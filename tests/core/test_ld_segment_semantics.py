"""The pure parts of LaunchDarkly's segment semantics in the core: strict SemVer and RFC 3339, attribute
references (and how they map onto dotted OpenTelemetry attributes), context kinds, LaunchDarkly's sha1 bucketing
of segment rules (checked against LaunchDarkly's Python SDK), and that variable conditions keep Logfire's rules."""

from __future__ import annotations

from typing import Any

import pytest
from ldclient.context import Context
from ldclient.impl.evaluator_common import _bucket_context
from pydantic import ValidationError

from setpoint._core import operators as ops
from setpoint._core.bucketing import segment_bucket
from setpoint._core.evaluator import compile_config
from setpoint._core.segments import _lookup, context_kinds, read_attribute
from setpoint.config import Segment, VariablesConfig
from setpoint.config._segments import parse_attribute_ref


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("2", (2, 0, 0, None, None)),
        ("2.1", (2, 1, 0, None, None)),
        ("2-rc", (2, 0, 0, "rc", None)),
        ("2.0.0-rc.2.green+build.5", (2, 0, 0, "rc.2.green", "build.5")),
        ("0.0.0", (0, 0, 0, None, None)),
    ],
)
def test_strict_semver_accepts_semver_2_and_the_short_forms(text: str, version: tuple[Any, ...]) -> None:
    parsed = ops.parse_strict_semver(text)
    assert parsed is not None and tuple(parsed.to_tuple()) == version


@pytest.mark.parametrize(
    "text", ["v2.0.0", " 2.0.0", "2.0.0 ", "2.0.0\n", "02.0.0", "2.00.0", "2.0.0.0", "2.0.0-", "2.0.0-01", "", "x", "٢"]
)
def test_strict_semver_refuses_what_launchdarkly_refuses(text: str) -> None:
    assert ops.parse_strict_semver(text) is None
    with pytest.raises(ValueError, match="is not a semantic version"):
        ops.compile_strict_semver("eq", text)


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("2017-12-06T07:00:00Z", 1512543600000.0),
        ("2017-12-06T00:00:00.000-07:00", 1512543600000.0),
        ("2017-12-06t07:00:00.250z", 1512543600250.0),
        ("2017-12-06T08:30:00+01:30", 1512543600000.0),
        (1512543600000, 1512543600000.0),
        (1.5, 1.5),
    ],
)
def test_rfc3339_timestamps_and_unix_millis(text: Any, millis: float) -> None:
    assert ops.parse_rfc3339_millis(text) == millis


@pytest.mark.parametrize(
    "value",
    [
        "2017-12-06",
        "2017-12-06T07:00:00",
        "2017-12-06 07:00:00Z",
        "2017-W49-3T07:00:00Z",
        "20171206T070000Z",
        "2017-02-30T00:00:00Z",
        "2017-12-06T07:00:00+24:00",
        " 2017-12-06T07:00:00Z",
        "1512543600000",
        True,
        None,
        [1],
    ],
)
def test_rfc3339_refuses_other_iso_8601_forms(value: Any) -> None:
    assert ops.parse_rfc3339_millis(value) is None
    with pytest.raises(ValueError, match="is not a timestamp"):
        ops.compile_rfc3339("before", value)


@pytest.mark.parametrize(
    ("text", "path"),
    [("name", ("name",)), ("a.b", ("a.b",)), ("a/b", ("a/b",)), ("/a", ("a",)), ("/a/b~1c/d~0e", ("a", "b/c", "d~e"))],
)
def test_attribute_references(text: str, path: tuple[str, ...]) -> None:
    assert parse_attribute_ref(text) == path


@pytest.mark.parametrize("text", ["", "/", "//", "/a/", "/a//b", "/a~", "/a~2b"])
def test_malformed_attribute_references_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="attribute reference"):
        parse_attribute_ref(text)


def test_a_reference_reads_structures_then_dotted_opentelemetry_names() -> None:
    user = _lookup("user", ("address", "city"))
    assert read_attribute(user, {"address": {"city": "Paris"}}) == "Paris"
    assert read_attribute(user, {"address.city": "Paris"}) == "Paris"  # a flat OpenTelemetry-style name
    assert read_attribute(user, {"address": {"city": "Paris"}, "address.city": "Rome"}) == "Paris"  # structure wins
    assert read_attribute(user, {"address": "Paris"}) is not "Paris"  # noqa: F632 - the sentinel, not a value
    assert read_attribute(user, {"address": {"city": None}}) is read_attribute(user, {})  # null is missing
    org = _lookup("org", ("billing", "id"))
    assert read_attribute(org, {"org.billing": {"id": 7}}) == 7
    assert read_attribute(org, {"org.billing.id": 7}) == 7
    assert read_attribute(org, {"org": {"key": "o", "billing": {"id": 7}}}) == 7  # a structured context object
    assert read_attribute(org, {"billing": {"id": 7}}) is read_attribute(org, {})  # that is the user's


def test_context_kinds() -> None:
    assert context_kinds("u", {}) == ["user"]
    assert context_kinds(None, {"org.key": "o", "device": {"key": "d"}, "plan": "x"}) == ["org", "device"]
    assert context_kinds("u", {"org.key": 5, "org.name": "x"}) == ["user"]  # a key is a string


def _member(segment: dict[str, Any], key: str | None, attributes: dict[str, Any]) -> bool:
    config = VariablesConfig.model_validate({"variables": {}, "segments": {segment["key"]: segment}})
    return compile_config(config).segments[segment["key"]](key, attributes)


def test_kind_anonymous_and_missing_kinds_in_clauses() -> None:
    kind = {"key": "k", "name": "K", "rules": [{"clauses": [{"attribute": "kind", "op": "in", "values": ["org"]}]}]}
    assert _member(kind, "u", {"org.key": "o"}) is True
    assert _member(kind, "u", {}) is False
    anonymous = {
        "key": "a",
        "name": "A",
        "rules": [{"clauses": [{"attribute": "anonymous", "op": "in", "values": [False]}]}],
    }
    assert _member(anonymous, "u", {}) is True  # LaunchDarkly's default for a present context
    assert _member(anonymous, "u", {"anonymous": True}) is False
    assert _member(anonymous, None, {}) is False  # no user context at all
    negated = {
        "key": "n",
        "name": "N",
        "rules": [
            {"clauses": [{"attribute": "plan", "op": "in", "values": ["x"], "negate": True, "context_kind": "org"}]}
        ],
    }
    assert _member(negated, "u", {"org.key": "o", "org.plan": "y"}) is True
    assert _member(negated, "u", {"org.key": "o"}) is False  # missing attribute
    assert _member(negated, "u", {"plan": "y"}) is False  # missing context kind


def test_segment_bucket_is_launchdarklys() -> None:
    for i in range(300):
        key = f"user-{i}"
        context = Context.create(key)
        assert segment_bucket("seg", "salty", key) == pytest.approx(
            _bucket_context(None, context, None, "seg", "salty", None), abs=0
        )
    # the harness's own vector: segment3 / salty / user-key buckets below 14955 / 100000
    assert (
        segment_bucket("segment3", "salty", "user-key")
        < 0.14955
        < segment_bucket("segment3", "salty", "unmatching-key")
    )


def test_weighted_rules_bucket_integers_and_nothing_else() -> None:
    rule = {"clauses": [{"attribute": "a", "op": "in", "values": [1]}], "weight": 50000, "bucket_by": "n"}
    segment = {"key": "w", "name": "W", "salt": "s", "rules": [rule]}
    inside = segment_bucket("w", "s", "7") < 0.5
    assert _member(segment, "u", {"a": 1, "n": 7}) is inside
    assert _member(segment, "u", {"a": 1, "n": 7.0}) is inside  # an integral number buckets as its integer
    for not_bucketable in (True, 7.5, None, [7]):
        assert _member(segment, "u", {"a": 1, "n": not_bucketable}) is True  # bucket 0: inside any weight > 0
    zero = {**segment, "rules": [{**rule, "weight": 0}]}
    assert _member(zero, "u", {"a": 1}) is False


def test_weight_bounds_and_bucket_by_need_a_weight() -> None:
    with pytest.raises(ValidationError, match="less than or equal to 100000"):
        Segment.model_validate({"key": "s", "name": "S", "rules": [{"clauses": [{"attribute": "a", "op": "in",
                                "values": [1]}], "weight": 100001}]})  # fmt: skip
    with pytest.raises(ValidationError, match="bucket_by needs a weight"):
        Segment.model_validate({"key": "s", "name": "S", "rules": [{"clauses": [{"attribute": "a", "op": "in",
                                "values": [1]}], "bucket_by": "org"}]})  # fmt: skip


def test_variable_conditions_keep_logfire_semantics() -> None:
    config = VariablesConfig.model_validate(
        {
            "variables": {
                "v": {
                    "name": "v",
                    "labels": {"on": {"version": 1, "serialized_value": "true"}},
                    "rollout": {"labels": {}},
                    "overrides": [
                        {
                            "conditions": [
                                {"kind": "value-is-not-in", "attribute": "plan", "values": ["free"]},
                                {"kind": "value-semver-equal", "attribute": "app", "value": "v2.0.0"},
                                {"kind": "value-before", "attribute": "t", "value": "2030-01-01"},
                            ],
                            "rollout": {"labels": {"on": 1}},
                        }
                    ],
                    "json_schema": {},
                }
            }
        }
    )
    # a missing attribute matches the negative kind; 'v2.0.0' and a bare date stay accepted (Logfire/ISO 8601)
    assert compile_config(config).evaluate("v", "u", {"app": "2.0.0", "t": "2029-12-31"}).label == "on"
