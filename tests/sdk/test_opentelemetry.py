"""Spans per resolution, baggage inside ``with``, `BaggageSpanProcessor`, and nothing at all without a tracer."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import setpoint
from setpoint._sdk import spans
from setpoint.config import LabeledValue, Rollout, VariableConfig
from tests.sdk.helpers import config_of, rollout_config, support_agent_config


def test_one_span_per_resolution_with_attributes(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    setpoint.configure(config=support_agent_config())
    agent = setpoint.var("support_agent_config", type=dict, default={})
    agent.get(targeting_key="user-1", attributes={"plan": "enterprise"})
    (span,) = exporter.get_finished_spans()
    assert span.name == "Resolve variable support_agent_config"
    assert dict(span.attributes or {}) == {
        "setpoint.variable": "support_agent_config",
        "setpoint.targeting_key": "user-1",
        "setpoint.label": "premium",
        "setpoint.version": 2,
        "setpoint.reason": "resolved",
        "setpoint.override_index": 0,
        "feature_flag.key": "support_agent_config",
        "feature_flag.provider.name": "setpoint",
        "feature_flag.result.variant": "premium",
        "feature_flag.result.reason": "targeting_match",
        "feature_flag.version": "2",
        "feature_flag.context.id": "user-1",
    }


@pytest.mark.parametrize(
    ("weights", "result_reason"),
    [({"a": 1.0}, "static"), ({"a": 0.5, "b": 0.5}, "split"), ({}, "default")],
)
def test_semconv_result_reason(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter, weights: dict[str, float], result_reason: str
) -> None:
    variable = rollout_config("ab", weights, {"a": "a", "b": "b"})
    setpoint.configure(config=config_of(variable))
    setpoint.var("ab", type=str, default="code").get("user-1")
    (span,) = exporter.get_finished_spans()
    assert (span.attributes or {})["feature_flag.result.reason"] == result_reason


def test_code_default_span_has_no_label_or_version(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    setpoint.var("flag", type=bool, default=False).get()
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes["setpoint.reason"] == "code_default"
    assert "setpoint.label" not in attributes
    assert "setpoint.version" not in attributes
    assert "setpoint.targeting_key" not in attributes


def test_validation_error_is_recorded_on_the_span(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    bad = VariableConfig(
        name="limit", labels={"x": LabeledValue(version=1, serialized_value='"many"')}, rollout=Rollout(labels={"x": 1})
    )
    setpoint.configure(config=config_of(bad))
    resolved = setpoint.var("limit", type=int, default=3).get()
    assert (resolved.value, resolved.reason) == (3, "validation_error")
    (span,) = exporter.get_finished_spans()
    assert (span.attributes or {})["setpoint.reason"] == "validation_error"
    assert (span.attributes or {})["feature_flag.result.reason"] == "error"
    assert [event.name for event in span.events] == ["exception"]


def test_span_is_a_child_of_the_current_span_and_records_the_trace_key(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    setpoint.configure(config=config_of(rollout_config("ab", {"a": 0.5, "b": 0.5})))
    ab = setpoint.var("ab", type=str, default="code")
    with tracer_provider.get_tracer("t").start_as_current_span("request") as parent:
        ab.get()
    resolve, _request = exporter.get_finished_spans()
    assert resolve.parent is not None and resolve.parent.span_id == parent.get_span_context().span_id
    trace_id = parent.get_span_context().trace_id
    assert (resolve.attributes or {})["setpoint.targeting_key"] == f"trace_id:{trace_id:032x}"


def test_instrument_false_records_no_span(tracer_provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    setpoint.configure(config=support_agent_config(), instrument=False)
    setpoint.var("support_agent_config", type=dict, default={}).get("user-1")
    assert exporter.get_finished_spans() == ()


def test_no_span_and_no_tracer_work_without_an_sdk_tracer_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("must not be called without an SDK tracer provider")

    monkeypatch.setattr(spans, "record_span", fail)
    monkeypatch.setattr(spans, "tracer_for", fail)
    setpoint.configure(config=support_agent_config())
    agent = setpoint.var("support_agent_config", type=dict, default={})
    assert agent.get("user-1", {"plan": "enterprise"}).label == "premium"
    assert setpoint.var("flag", type=bool, default=False).get().value is False


def test_proxy_tracer_provider_records_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", trace.ProxyTracerProvider())
    monkeypatch.setattr(spans, "record_span", lambda *args: pytest.fail("no span through a proxy provider"))
    assert setpoint.var("flag", type=bool, default=False).get().value is False


def test_a_tracer_provider_installed_later_is_picked_up(
    monkeypatch: pytest.MonkeyPatch, exporter: InMemorySpanExporter
) -> None:
    flag = setpoint.var("flag", type=bool, default=False)
    flag.get()
    provider = TracerProvider()
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    flag.get()
    assert len(exporter.get_finished_spans()) == 1


def test_baggage_is_set_inside_with_and_restored() -> None:
    setpoint.configure(config=support_agent_config())
    agent = setpoint.var("support_agent_config", type=dict, default={})
    flag = setpoint.var("flag", type=bool, default=False)
    with agent.get("user-1", {"plan": "enterprise"}):
        assert baggage.get_all() == {
            "setpoint.variables.support_agent_config": "premium",
            "setpoint.variables.support_agent_config.version": "2",
        }
        with flag.get():
            assert baggage.get_baggage("setpoint.variables.flag") == "<code_default>"
            assert baggage.get_baggage("setpoint.variables.flag.version") is None
        assert baggage.get_baggage("setpoint.variables.flag") is None
    assert baggage.get_all() == {}


def test_a_shared_resolved_can_be_entered_nested_and_concurrently() -> None:
    setpoint.configure(config=config_of(rollout_config("s", {"a": 1.0})))
    s = setpoint.var("s", type=str, default="code")
    first, second = s.get(), s.get()
    assert first is second
    with first:
        with second:
            assert baggage.get_baggage("setpoint.variables.s") == "a"
        assert baggage.get_baggage("setpoint.variables.s") == "a"
    assert baggage.get_all() == {}


def test_baggage_span_processor_copies_variable_baggage(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tracer_provider.add_span_processor(setpoint.BaggageSpanProcessor())
    setpoint.configure(config=support_agent_config(), instrument=False)
    agent = setpoint.var("support_agent_config", type=dict, default={})
    tracer = tracer_provider.get_tracer("app")
    with agent.get("user-1", {"plan": "enterprise"}), tracer.start_as_current_span("llm call"):
        pass
    with tracer.start_as_current_span("outside"):
        pass
    inside, outside = exporter.get_finished_spans()
    assert (inside.attributes or {})["setpoint.variables.support_agent_config"] == "premium"
    assert (inside.attributes or {})["setpoint.variables.support_agent_config.version"] == "2"
    assert not any(key.startswith("setpoint.") for key in outside.attributes or {})


def test_baggage_span_processor_ignores_other_baggage(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    from opentelemetry import context

    tracer_provider.add_span_processor(setpoint.BaggageSpanProcessor())
    token = context.attach(baggage.set_baggage("user.id", "42"))
    try:
        with tracer_provider.get_tracer("app").start_as_current_span("span"):
            pass
    finally:
        context.detach(token)
    (span,) = exporter.get_finished_spans()
    assert "user.id" not in (span.attributes or {})
