"""SDK test fixtures: a clean SDK per test, and an in-memory OpenTelemetry SDK tracer on demand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import setpoint
from setpoint._sdk import state as sdk_state
from setpoint._sdk.providers import NoOpProvider
from setpoint._sdk.registry import clear_registry, registered_variables, restore_registry


@pytest.fixture(autouse=True)
def clean_sdk() -> Iterator[None]:
    """Every test starts unconfigured with no variables defined; afterwards what it configured is shut down and
    the SDK state and registry of the rest of the suite (e.g. module-level variables) are put back."""
    saved_variables = registered_variables()
    saved_state = sdk_state.replace_state(sdk_state.SdkState(NoOpProvider()))
    clear_registry()
    try:
        yield
    finally:
        setpoint.shutdown()
        sdk_state.replace_state(saved_state)
        restore_registry(saved_variables)


@pytest.fixture(autouse=True)
def no_global_tracer(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OpenTelemetry SDK tracer provider is installed unless a test asks for `tracer_provider`."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(monkeypatch: pytest.MonkeyPatch, exporter: InMemorySpanExporter) -> TracerProvider:
    """A global SDK tracer provider (resource ``deployment.environment=test``) exporting to ``exporter``."""
    provider = TracerProvider(resource=Resource.create({"deployment.environment": "test", "service.name": "svc"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    return provider
