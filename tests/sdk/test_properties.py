"""Property: resolution never raises on any config that validated, whatever the key, attributes and label."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

import setpoint
from setpoint._sdk.registry import clear_registry
from setpoint.config import VariablesConfig

LABELS = ["a", "b", "c", "d"]
ATTRIBUTES = ["plan", "country", "age", "version", "created", "tier", "deployment.environment"]


class Model(BaseModel):
    name: str
    size: int = 0


TYPES: list[tuple[Any, Any]] = [(str, "default"), (int, 0), (int | str, 1), (list[int], []), (Model, Model(name="d"))]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=6,
)
serialized = st.one_of(
    json_values.map(json.dumps),
    st.just('{"name": "x", "size": 3}'),
    st.just("[1, 2, 3]"),
    st.text(max_size=10),  # often not JSON at all
)
attribute_values = st.one_of(
    json_values,
    st.sampled_from(["1.2.3", "2024-01-01T00:00:00Z", "US", "enterprise", math.nan, math.inf]),
    st.integers(),
)


def condition() -> st.SearchStrategy[dict[str, Any]]:
    attribute = st.sampled_from(ATTRIBUTES)
    literal = st.one_of(st.sampled_from(["US", "enterprise", 3, True, "1.2.3", "2024-01-01T00:00:00Z"]), json_values)
    return st.one_of(
        st.builds(lambda a, v: {"kind": "value-equals", "attribute": a, "value": v}, attribute, literal),
        st.builds(lambda a, v: {"kind": "value-does-not-equal", "attribute": a, "value": v}, attribute, literal),
        st.builds(lambda a, v: {"kind": "value-is-in", "attribute": a, "values": v}, attribute, st.lists(literal)),
        st.builds(lambda a, v: {"kind": "value-is-not-in", "attribute": a, "values": v}, attribute, st.lists(literal)),
        st.builds(lambda a: {"kind": "value-matches-regex", "attribute": a, "pattern": "^U"}, attribute),
        st.builds(lambda a: {"kind": "key-is-present", "attribute": a}, attribute),
        st.builds(lambda a: {"kind": "key-is-not-present", "attribute": a}, attribute),
        st.builds(lambda a, v: {"kind": "value-greater-than", "attribute": a, "value": v}, attribute, st.integers()),
        st.builds(lambda a: {"kind": "value-semver-less-than", "attribute": a, "value": "2.0.0"}, attribute),
        st.builds(lambda a: {"kind": "value-before", "attribute": a, "value": "2025-01-01T00:00:00Z"}, attribute),
        st.builds(lambda a: {"kind": "value-starts-with", "attribute": a, "value": "en"}, attribute),
        st.builds(lambda n: {"kind": "in-segment", "segment": "seg", "negate": n}, st.booleans()),
        st.just({"kind": "value-from-the-future", "attribute": "plan", "whatever": 1}),
    ).flatmap(lambda c: st.booleans().map(lambda negate: {**c, "negate": negate} if negate else c))


def rollout(labels: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    if not labels:
        return st.just({"labels": {}})
    return st.one_of(
        st.sampled_from(labels).map(lambda label: {"labels": {label: 1.0}}),
        st.dictionaries(st.sampled_from(labels), st.floats(0, 1), max_size=4).map(
            lambda weights: {"labels": {k: v / max(1.0, sum(weights.values())) for k, v in weights.items()}}
        ),
    )


def label_target(labels: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda v, s: {"version": v, "serialized_value": s}, st.integers(1, 5), serialized),
        st.builds(lambda v, s: {"version": v, "serialized_value": s}, st.integers(1, 5), good_values),
        st.builds(lambda r: {"ref": r}, st.sampled_from(["latest", "code_default", *labels])),
    )


good_values = st.sampled_from(['"text"', "7", "[1, 2]", '{"name": "n", "size": 1}'])


@st.composite
def variable_data(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(LABELS), unique=True, max_size=4))
    labels = {name: draw(label_target([other for other in names if other != name])) for name in names}
    data: dict[str, Any] = {
        "name": "v",
        "labels": labels,
        "rollout": draw(rollout(names)),
        "overrides": draw(
            st.lists(
                st.fixed_dictionaries({"conditions": st.lists(condition(), max_size=3), "rollout": rollout(names)}),
                max_size=3,
            )
        ),
    }
    if draw(st.booleans()):
        data["latest_version"] = {"version": 5, "serialized_value": draw(st.one_of(serialized, good_values))}
    return data


segment = {
    "seg": {
        "key": "seg",
        "name": "seg",
        "included": ["user-1"],
        "rules": [{"clauses": [{"attribute": "country", "op": "in", "values": ["US"]}]}],
    }
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=variable_data(),
    type_index=st.integers(0, len(TYPES) - 1),
    targeting_key=st.none() | st.text(max_size=10),
    attributes=st.none() | st.dictionaries(st.sampled_from(ATTRIBUTES), attribute_values, max_size=5),
    label=st.none() | st.sampled_from([*LABELS, "latest", "zzz"]),
)
def test_resolution_never_raises(
    data: dict[str, Any],
    type_index: int,
    targeting_key: str | None,
    attributes: dict[str, Any] | None,
    label: str | None,
) -> None:
    try:
        config = VariablesConfig.model_validate(
            {"variables": {"v": data}, "segments": segment}, context={"allow_unknown_conditions": True}
        )
    except ValidationError:
        assume(False)
        raise
    clear_registry()
    type_, default = TYPES[type_index]
    setpoint.configure(config=config)
    variable = setpoint.var("v", type=type_, default=default)
    for _ in range(2):  # the second call goes through the caches
        resolved = variable.get(targeting_key, attributes, label=label)
        assert resolved.reason in {"resolved", "code_default", "validation_error"}
        event(resolved.reason)
        if resolved.reason == "resolved":
            assert resolved.label is not None and resolved.version is not None
            variable.type_adapter.validate_python(resolved.value)
        else:
            assert resolved.value is default
            assert (resolved.label, resolved.version) == (None, None)
            assert (resolved.exception is not None) == (resolved.reason == "validation_error")
        assert isinstance(resolved.explain(), str)
