"""The SDK's process-wide state: the provider in use and the options of the last `setpoint.configure()`.

`CURRENT` is replaced as a whole (one assignment) by `configure`/`shutdown`; the hot path reads it once.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource

from setpoint._sdk.providers.base import Provider
from setpoint._sdk.providers.noop import NoOpProvider

__all__ = ["CURRENT", "SdkState", "replace_state", "resource_attributes"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def resource_attributes() -> Mapping[str, Any]:
    """The OpenTelemetry resource attributes: the global SDK tracer provider's resource, else `Resource.create()`."""
    provider = trace.get_tracer_provider()
    resource = getattr(provider, "resource", None)
    if not isinstance(resource, Resource):
        resource = Resource.create()
    return MappingProxyType(dict(resource.attributes))


class SdkState:
    """What `configure()` decided. Immutable once published in `CURRENT`."""

    __slots__ = (
        "include_baggage",
        "include_resource",
        "instrument",
        "provider",
        "resource_attributes",
        "template_mismatch_policy",
    )

    def __init__(
        self,
        provider: Provider,
        *,
        instrument: bool = True,
        include_resource: bool = True,
        include_baggage: bool = True,
        resource: Mapping[str, Any] | None = None,
        template_mismatch_policy: str = "warn",
    ) -> None:
        self.provider = provider
        self.instrument = instrument
        self.include_resource = include_resource
        self.include_baggage = include_baggage
        self.template_mismatch_policy = template_mismatch_policy
        """What `TemplateVariable.get` does about undeclared ``{{fields}}``: warn, error or ignore."""
        self.resource_attributes: Mapping[str, Any] | None = resource if include_resource else _EMPTY
        """Resource attributes merged into every context (empty when switched off; None until loaded)."""

    def load_resource(self) -> Mapping[str, Any]:
        """Compute the resource attributes now (once)."""
        resource = self.resource_attributes
        if resource is None:
            resource = self.resource_attributes = resource_attributes()
        return resource


CURRENT = SdkState(NoOpProvider())
"""The state every resolution reads (replaced, never mutated, by `replace_state`)."""


def replace_state(state: SdkState) -> SdkState:
    """Publish ``state``; returns the previous one."""
    global CURRENT
    previous, CURRENT = CURRENT, state
    return previous
