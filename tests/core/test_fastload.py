"""The SDK's fast reader (`setpoint._core.fastload`) against the pydantic model it stands in for.

For any variable JSON, the fast reader either declines (None: the model decides) or returns a variable that
the model accepts too and that compiles to the same thing: the same config, the same answers. Checked on
generated variables (valid ones and every kind of wrong field), plus hand-picked edge cases.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from setpoint._core.evaluator import CompiledConfig, CompiledVariable, PendingVariable
from setpoint._core.fastload import LENIENT, variable_from_data
from setpoint._core.segments import compile_segments
from setpoint._remote.lkg import load_response
from setpoint.config import Segment, VariableConfig

SEGMENTS = compile_segments({"beta": Segment(key="beta", name="Beta", included=["u1"])})

LABEL_NAMES = ["main", "prod", "x.y-z", "latest", "code_default", "bad name", "", "-dash"]
VERSIONS: list[Any] = [1, 2, 7, 0, -1, True, 1.0, "1", None]
VALUES: list[Any] = ["1", '"x"', '{"a": [1, 2]}', "@{other}@", "NaN", "", 5, None]
REFS: list[Any] = ["latest", "code_default", "main", "prod", "missing", "", 5, None]
WEIGHTS: list[Any] = [0, 1, 0.0, 0.25, 0.5, 0.75, 1.0, 2, -0.1, 1.5, math.nan, math.inf, True, "0.5", 10**400]
CONDITIONS: list[Any] = [
    {"kind": "value-equals", "attribute": "plan", "value": "pro"},
    {"kind": "value-is-in", "attribute": "country", "values": ["FR", "DE"], "negate": True},
    {"kind": "value-matches-regex", "attribute": "email", "pattern": "@corp\\.com$"},
    {"kind": "value-greater-than", "attribute": "age", "value": 18},
    {"kind": "key-is-present", "attribute": "beta"},
    {"kind": "in-segment", "segment": "beta"},
    {"kind": "not-in-segment", "segment": "beta"},
    {"kind": "value-is-prime", "attribute": "n"},  # unknown: accepted from a server, never matches
    {"kind": "value-equals", "attribute": "", "value": 1},
    {"kind": "value-greater-than", "attribute": "age", "value": "x"},
    {"kind": "value-equals"},
    "not a condition",
]

label_target = st.one_of(
    st.fixed_dictionaries({"version": st.sampled_from(VERSIONS), "serialized_value": st.sampled_from(VALUES)}),
    st.fixed_dictionaries({"ref": st.sampled_from(REFS)}, optional={"version": st.sampled_from(VERSIONS)}),
    st.fixed_dictionaries(
        {"ref": st.sampled_from(REFS), "version": st.just(1), "serialized_value": st.sampled_from(VALUES)}
    ),
    st.just({}),
    st.just("main"),
)
rollout = st.one_of(
    st.fixed_dictionaries(
        {"labels": st.dictionaries(st.sampled_from(LABEL_NAMES[:4]), st.sampled_from(WEIGHTS), max_size=3)}
    ),
    st.just({}),
    st.just(None),
    st.just([]),
)
override = st.one_of(
    st.fixed_dictionaries(
        {"conditions": st.lists(st.sampled_from(CONDITIONS), max_size=3), "rollout": rollout},
    ),
    st.just({"conditions": []}),
    st.just("override"),
)
latest = st.one_of(
    st.none(),
    st.fixed_dictionaries({"version": st.sampled_from(VERSIONS), "serialized_value": st.sampled_from(VALUES)}),
    st.just("latest"),
)
variable_data = st.fixed_dictionaries(
    {
        "name": st.one_of(
            st.sampled_from(["a", "var_1", "_x"]), st.sampled_from(["1bad", "", "a" * 129, "a\n", 5, None])
        )
    },
    optional={
        "description": st.sampled_from([None, "text", 5]),
        "labels": st.one_of(
            st.dictionaries(st.sampled_from(LABEL_NAMES), label_target, max_size=4), st.just(None), st.just([])
        ),
        "rollout": rollout,
        "overrides": st.one_of(st.lists(override, max_size=3), st.just(None)),
        "latest_version": latest,
        "json_schema": st.sampled_from([None, {"type": "object"}, {"maximum": math.inf}, "object"]),
        "type_name": st.sampled_from([None, "Agent", 3]),
        "aliases": st.sampled_from([None, [], ["old_a"], ["1x"], "old_a", [None]]),
        "example": st.sampled_from([None, '{"a": 1}', 7]),
        "template_inputs_schema": st.sampled_from([None, {"type": "object"}, []]),
        "external": st.sampled_from([False, True, 1, "true", None]),
        "extra_field": st.just("ignored"),
    },
)


@st.composite
def valid_variable(draw: Callable[[st.SearchStrategy[Any]], Any]) -> dict[str, Any]:
    """A variable the model accepts (mostly): labels that exist, weights that fit, known conditions."""
    names = draw(st.lists(st.sampled_from(["main", "prod", "canary", "x.y-z"]), min_size=1, max_size=4, unique=True))
    labels: dict[str, Any] = {}
    for index, label in enumerate(names):
        earlier = names[:index]
        if earlier and draw(st.booleans()):
            labels[label] = {"ref": draw(st.sampled_from([*earlier, "latest", "code_default"]))}
        else:
            labels[label] = {"version": draw(st.integers(1, 3)), "serialized_value": draw(st.sampled_from(VALUES[:4]))}

    def weights() -> dict[str, Any]:
        chosen = draw(st.lists(st.sampled_from(names), max_size=len(names), unique=True))
        parts = [draw(st.sampled_from([0, 1, 0.0, 0.1, 0.25, 0.5, 1.0])) for _ in chosen]
        return {"labels": dict(zip(chosen, parts, strict=True))}

    overrides = [
        {"conditions": draw(st.lists(st.sampled_from(CONDITIONS[:8]), max_size=2)), "rollout": weights()}
        for _ in range(draw(st.integers(0, 2)))
    ]
    data: dict[str, Any] = {"name": "v", "labels": labels, "rollout": weights(), "overrides": overrides}
    if draw(st.booleans()):
        data["latest_version"] = {"version": 3, "serialized_value": draw(st.sampled_from(VALUES[:4]))}
    return data


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_variable())
def test_fast_reader_compiles_valid_variables_as_the_model_does(data: dict[str, Any]) -> None:
    check_same(data)


CONTEXTS: list[tuple[str | None, dict[str, Any]]] = [
    (None, {}),
    ("u1", {}),
    ("u2", {"plan": "pro", "country": "US", "email": "a@corp.com", "age": 30, "beta": 1, "n": 7}),
    ("user-17", {"plan": "free", "country": "FR", "age": 12}),
    ("user-42", {"age": [1]}),
]


def model_of(data: Any) -> VariableConfig | None:
    try:
        return VariableConfig.model_validate(data, context=LENIENT)
    except ValidationError:
        return None


def check_same(data: Any) -> PendingVariable | None:
    """The fast reader agrees with the model on ``data``; returns what the fast reader made."""
    model = model_of(data)
    try:
        fast = variable_from_data(data, SEGMENTS)
    except KeyError:  # names a segment that does not exist: so must the model's compiled variable
        assert model is not None
        with pytest.raises(KeyError):
            CompiledVariable.from_model(model, SEGMENTS)
        return None
    if fast is None:
        return None
    assert model is not None, f"the fast reader accepted what the model refuses: {data!r}"
    compiled = fast.compile()
    expected = CompiledVariable.from_model(model, SEGMENTS)
    assert compiled.config.model_dump(mode="json") == model.model_dump(mode="json")
    assert compiled.segment_references == expected.segment_references == fast.segment_references
    assert compiled.is_static == expected.is_static and compiled.aliases == expected.aliases
    labels = [None, *model.labels, "nope"]
    for key, attributes in CONTEXTS:
        for label in labels:
            got, want = compiled.evaluate(key, attributes, label), expected.evaluate(key, attributes, label)
            if key is None and not (expected.is_static or want.detail == "explicit_label"):
                continue  # no targeting key: a random draw when a rollout splits
            assert got == want, (data, key, attributes, label)
    return fast


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(variable_data)
def test_fast_reader_accepts_only_what_the_model_accepts_and_compiles_the_same(data: dict[str, Any]) -> None:
    check_same(data)


VALID = {
    "name": "agent",
    "description": "the agent",
    "labels": {
        "prod": {"version": 2, "serialized_value": '{"a": 2}'},
        "canary": {"version": 3, "serialized_value": '{"a": 3}'},
        "current": {"version": 3, "ref": "latest"},
        "alias": {"ref": "prod"},
        "off": {"ref": "code_default"},
    },
    "rollout": {"labels": {"prod": 0.5, "canary": 0.25, "off": 0.1}},
    "overrides": [
        {"conditions": [{"kind": "in-segment", "segment": "beta"}], "rollout": {"labels": {"canary": 1}}},
        {"conditions": [{"kind": "value-equals", "attribute": "plan", "value": "pro"}], "rollout": {"labels": {}}},
        {"conditions": [], "rollout": {"labels": {"alias": 1.0}}},
    ],
    "latest_version": {"version": 3, "serialized_value": '{"a": 3}'},
    "json_schema": {"type": "object"},
    "type_name": "Agent",
    "aliases": ["old_agent"],
    "example": '{"a": 0}',
    "template_inputs_schema": None,
    "external": True,
}


def with_change(path: list[str | int], value: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(VALID))
    target: Any = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "fast"),
    [
        ([], None, True),  # unchanged
        (["labels", "current", "ref"], "alias", True),
        (["labels", "alias", "ref"], "current", True),  # alias -> current -> latest
        (["labels", "alias", "ref"], "alias", False),  # a cycle
        (["labels", "alias", "ref"], "nowhere", False),
        (["labels", "prod", "version"], 0, False),
        (["labels", "prod", "version"], "2", False),  # the model coerces it; the fast reader leaves it to the model
        (["rollout", "labels", "prod"], 0.9, False),  # sums to 1.25
        (["rollout", "labels", "missing"], 0.0, False),
        (["overrides", 0, "conditions", 0, "segment"], "gone", None),  # KeyError on both sides
        (["overrides", 1, "rollout", "labels"], {"nowhere": 1}, False),
        (["aliases"], ["agent2", "agent3"], True),
        (["aliases"], ["not valid"], False),
        (["external"], 1, False),
        (["json_schema"], {"maximum": math.inf}, False),
        (["name"], "agent" * 30, False),
    ],
)
def test_edge_cases(path: list[str | int], value: Any, fast: bool | None) -> None:
    data = with_change(path, value) if path else VALID
    made = check_same(data)
    if fast is not None:
        assert (made is not None) is fast
    if fast is False:
        model = model_of(data)
        assert model is None or path in (["labels", "prod", "version"], ["external"])


def big_config(size: int) -> dict[str, Any]:
    variables = {
        f"v{i}": {
            "name": f"v{i}",
            "labels": {"prod": {"version": 1, "serialized_value": json.dumps(i)}, "current": {"ref": "latest"}},
            "rollout": {"labels": {"prod": 1.0}},
            "overrides": [
                {"conditions": [{"kind": "in-segment", "segment": "beta"}], "rollout": {"labels": {"current": 1.0}}}
            ]
            if i % 10 == 0
            else [],
            "latest_version": {"version": 1, "serialized_value": json.dumps(i)},
        }
        for i in range(size)
    }
    return {"variables": variables, "segments": {"beta": {"key": "beta", "name": "Beta", "included": ["u1"]}}}


def test_a_load_validates_everything_compiles_on_first_use_and_keeps_no_model() -> None:
    compiled = load_response(None, big_config(100)).compiled
    names = compiled.names()
    assert len(names) == 100 and not any(compiled.is_compiled(name) for name in names)
    assert compiled.evaluate("v3", "k").serialized_value == "3"
    assert [name for name in names if compiled.is_compiled(name)] == ["v3"]
    variable = compiled.get("v10")
    assert variable is not None and compiled.get("v10") is variable  # compiled once, then kept
    assert variable.evaluate("u1", {}).label == "current" and variable.evaluate("u2", {}).label == "prod"
    assert variable._model is None and compiled._config is None  # the compiled form only, no pydantic copy
    # the pinned label and the latest version hold one string, not two equal ones
    assert variable._labels[0][2] is variable._latest[1]  # type: ignore[index]


def test_one_bad_variable_is_rejected_at_load() -> None:
    data = big_config(5)
    data["variables"]["v2"]["rollout"] = {"labels": {"prod": 2.0}}
    loaded = load_response(None, data)
    assert sorted(loaded.compiled.names()) == ["v0", "v1", "v3", "v4"]
    assert loaded.problems == [
        "variable 'v2' is invalid (rollout.labels: Value error, weight of label 'prod' is 2.0; each weight must be "
        "between 0 and 1); it is left out"
    ]
    again = load_response(loaded.compiled, big_config(5))
    data["variables"]["v1"]["labels"]["prod"] = {"version": 0, "serialized_value": "1"}
    kept = load_response(again.compiled, data)
    assert kept.compiled.evaluate("v1", "k").serialized_value == "1" and "last good" in kept.problems[0]


def test_compiled_equals_the_model_path_for_a_whole_config() -> None:
    data = big_config(30)
    fast = load_response(None, data).compiled
    slow = CompiledConfig(fast.config.model_validate(data, context=LENIENT))
    assert fast.config.model_dump(mode="json") == slow.config.model_dump(mode="json")
    for name in slow.names():
        for key, attributes in CONTEXTS:
            assert fast.evaluate(name, key or "k", attributes) == slow.evaluate(name, key or "k", attributes)
