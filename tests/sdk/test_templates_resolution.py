"""Composition and templates against a served config (LocalProvider): stored values, each reference resolved with
the root's targeting key and attributes, spans, and every kind of bad input (never raising, except where the
'error' policy is asked for)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

import setpoint
from setpoint.config import LabeledValue, Rollout, RolloutOverride, ValueEquals, VariableConfig, VariablesConfig


class Inputs(BaseModel):
    user_name: str
    count: int = 1


def _variable(name: str, *values: Any, weights: list[float] | None = None, **extra: Any) -> VariableConfig:
    labels: dict[str, LabeledValue | Any] = {
        f"v{i + 1}": LabeledValue(version=i + 1, serialized_value=json.dumps(v)) for i, v in enumerate(values)
    }
    rollout = dict(zip(labels, weights or [1.0], strict=False))
    return VariableConfig(name=name, labels=labels, rollout=Rollout(labels=rollout), **extra)


def _configure(*variables: VariableConfig) -> None:
    setpoint.configure(config=VariablesConfig(variables={v.name: v for v in variables}))


def test_stored_values_compose_and_each_fragment_keeps_its_own_rollout() -> None:
    _configure(
        _variable("tone", "A", "B", weights=[0.5, 0.5]),
        _variable("prompt", "Hi {{user_name}} x{{count}}: @{tone}@"),
    )
    prompt = setpoint.template_var("prompt", type=str, default="default", inputs_type=Inputs)
    tone = setpoint.var("tone", type=str, default="T")
    seen = set()
    for key in (f"user-{i}" for i in range(16)):
        resolved = prompt.get(Inputs(user_name="Ada", count=3), targeting_key=key)
        expected_tone = tone.get(targeting_key=key)
        assert resolved.value == f"Hi Ada x3: {expected_tone.value}"
        assert (resolved.label, resolved.version, resolved.reason) == ("v1", 1, "resolved")
        [ref] = resolved.composed_from
        assert (ref.name, ref.value, ref.label, ref.version, ref.reason) == (
            "tone",
            expected_tone.value,
            expected_tone.label,
            expected_tone.version,
            "resolved",
        )
        seen.add(expected_tone.value)
    assert seen == {"A", "B"}


def test_references_see_the_roots_attributes_and_overrides() -> None:
    tone = VariableConfig(
        name="tone",
        labels={
            "a": LabeledValue(version=1, serialized_value='"plain"'),
            "b": LabeledValue(version=2, serialized_value='"pro"'),
        },
        rollout=Rollout(labels={"a": 1.0}),
        overrides=[
            RolloutOverride(conditions=[ValueEquals(attribute="plan", value="pro")], rollout=Rollout(labels={"b": 1.0}))
        ],
    )
    _configure(tone, _variable("msg", "[@{tone}@]"))
    msg = setpoint.var("msg", type=str, default="")
    tone_var = setpoint.var("tone", type=str, default="")
    assert msg.get(attributes={"plan": "pro"}).value == "[pro]"
    assert msg.get(attributes={"plan": "free"}).value == "[plain]"
    with tone_var.override("overridden"):
        resolved = msg.get()
        assert resolved.value == "[overridden]"
        assert resolved.composed_from[0].reason == "context_override"


def test_a_plain_variable_without_references_keeps_the_prebuilt_fast_path() -> None:
    _configure(_variable("plain", "value"), _variable("composed", "@{plain}@!"))
    plain = setpoint.var("plain", type=str, default="")
    composed = setpoint.var("composed", type=str, default="")
    assert plain.get() is plain.get()  # the same prebuilt result object every time
    assert composed.get().value == "value!"
    assert composed.get() is not composed.get()  # composed per call (references may depend on the key)


def test_spans_record_the_expansions(tracer_provider: Any, exporter: InMemorySpanExporter) -> None:
    _configure(_variable("leaf", "L"), _variable("root", "R@{leaf}@"))
    root = setpoint.var("root", type=str, default="")
    assert root.get().value == "RL"
    [span] = [s for s in exporter.get_finished_spans() if s.name == "Resolve variable root"]
    assert span.attributes is not None
    assert json.loads(str(span.attributes["setpoint.composed_from"])) == [
        {"name": "leaf", "version": 1, "label": "v1", "reason": "resolved", "error": None}
    ]


@pytest.mark.parametrize(
    ("stored", "needle"),
    [
        ("@{#if other}@ never closed", "composition"),  # a template that does not parse
        ("x @{deleted_on_the_server}@", "deleted_on_the_server"),  # a reference from an older server's config
        ("@{other}@ {{#each}}", "rendering"),  # {{...}} that does not parse
    ],
)
def test_bad_stored_values_serve_the_code_default_with_the_reason_and_exception(
    stored: str, needle: str, caplog: pytest.LogCaptureFixture
) -> None:
    _configure(_variable("other", "O"), _variable("prompt", stored))
    prompt = setpoint.template_var("prompt", type=str, default="Hi {{user_name}}", inputs_type=Inputs)
    with caplog.at_level(logging.WARNING, logger="setpoint"):
        resolved = prompt.get(Inputs(user_name="Ada"))
    assert resolved.value == "Hi Ada"
    assert resolved.reason == "other_error"
    assert resolved.exception is not None and resolved.label is None and resolved.version is None
    assert needle in caplog.text


def test_a_stored_cycle_and_a_21_deep_chain_fall_back_to_the_code_default() -> None:
    # c0 -> c1 -> ... -> c22 (plain): c0's references nest 21 levels deep; from c1, 20 (the most expanded)
    chain = [_variable(f"c{i}", f"@{{c{i + 1}}}@") for i in range(22)] + [_variable("c22", "end")]
    _configure(_variable("a", "@{b}@"), _variable("b", "@{a}@"), *chain)
    a = setpoint.var("a", type=str, default="A default")
    resolved = a.get()
    assert (resolved.value, resolved.reason) == ("A default", "other_error")
    assert isinstance(resolved.exception, setpoint.CompositionCycleError)
    assert "a -> b -> a" in str(resolved.exception)
    deep = setpoint.var("c0", type=str, default="too deep")
    resolved = deep.get()
    assert (resolved.value, resolved.reason) == ("too deep", "other_error")
    assert isinstance(resolved.exception, setpoint.CompositionDepthError)
    assert setpoint.var("c1", type=str, default="").get().value == "end"


def test_wrong_typed_inputs_never_raise() -> None:
    prompt = setpoint.template_var("prompt", type=str, default="Hi {{user_name}}", inputs_type=Inputs)
    resolved = prompt.get(42)  # type: ignore[arg-type]
    assert resolved.reason == "other_error"
    assert resolved.value == "Hi {{user_name}}"  # the raw code default: rendering is impossible
    assert isinstance(resolved.exception, TypeError)


def test_a_value_that_renders_to_an_invalid_type_is_a_validation_error() -> None:
    class Limits(BaseModel):
        text: str
        limit: int

    _configure(_variable("limits", {"text": "{{user_name}}", "limit": "not a number"}))
    limits = setpoint.template_var(
        "limits", type=Limits, default=Limits(text="{{user_name}}", limit=1), inputs_type=Inputs
    )
    resolved = limits.get(Inputs(user_name="Ada"))
    assert resolved.reason == "validation_error"
    assert resolved.value == Limits(text="Ada", limit=1)


def test_the_error_policy_raises_only_for_the_variable_that_asked() -> None:
    _configure(
        _variable("strict", "Hi {{user_name}} {{unknown}}"), _variable("lenient", "Hi {{user_name}} {{unknown}}")
    )
    strict = setpoint.template_var("strict", type=str, default="", inputs_type=Inputs, template_mismatch_policy="error")
    lenient = setpoint.template_var(
        "lenient", type=str, default="", inputs_type=Inputs, template_mismatch_policy="ignore"
    )
    with pytest.raises(setpoint.TemplateInputsMismatchError, match="'unknown'"):
        strict.get(Inputs(user_name="Ada"))
    assert lenient.get(Inputs(user_name="Ada")).value == "Hi Ada "
    loud: Any = "loud"
    with pytest.raises(setpoint.ConfigurationError):
        setpoint.template_var("bad_policy", type=str, default="", inputs_type=Inputs, template_mismatch_policy=loud)


def test_build_config_carries_the_template_inputs_schema() -> None:
    setpoint.template_var("prompt", type=str, default="Hi {{user_name}}", inputs_type=Inputs)
    setpoint.var("plain", type=str, default="x")
    config = setpoint.build_config()
    assert config.variables["prompt"].template_inputs_schema == Inputs.model_json_schema()
    assert config.variables["plain"].template_inputs_schema is None
