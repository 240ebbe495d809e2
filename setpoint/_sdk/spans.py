"""OpenTelemetry spans for resolutions, created only when a real (SDK) tracer provider is installed.

Asking OpenTelemetry for the global provider costs about a microsecond (it checks an environment
variable), so the hot path reads the module global that `trace.set_tracer_provider` writes and keeps the
tracer of the last provider it saw; when no provider is installed no span, not even a no-op one, is made.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, Tracer, TracerProvider

from setpoint._sdk.resolved import Resolved

__all__ = ["TRACER_CACHE", "record_span", "tracer_for"]

PROVIDER_NAME = "setpoint"

TRACER_CACHE: tuple[object, Tracer | None] = (object(), None)
"""(the tracer provider last seen, its Setpoint tracer or None for a non-recording provider)."""


def tracer_for(provider: object) -> Tracer | None:
    """Setpoint's tracer from ``provider``, or None if it is a proxy or no-op provider (cached by identity)."""
    global TRACER_CACHE
    cached_provider, cached_tracer = TRACER_CACHE
    if provider is cached_provider:
        return cached_tracer
    tracer: Tracer | None = None
    if isinstance(provider, TracerProvider) and not isinstance(provider, ProxyTracerProvider | NoOpTracerProvider):
        from importlib.metadata import PackageNotFoundError, version

        try:
            setpoint_version: str | None = version("setpoint")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
            setpoint_version = None
        tracer = provider.get_tracer("setpoint", setpoint_version)
    TRACER_CACHE = (provider, tracer)
    return tracer


_RESULT_REASONS = {
    "context_override": "static",
    "code_default": "default",
    "validation_error": "error",
    "other_error": "error",
}


def _result_reason(resolved: Resolved[Any], static: bool) -> str:
    reason = _RESULT_REASONS.get(resolved.reason)
    if reason is not None:
        return reason
    evaluation = resolved.evaluation
    detail = evaluation.detail if evaluation is not None else None
    if detail == "rollout":
        return "static" if static else "split"
    return "targeting_match"  # an override matched, or an explicit label was asked for


def record_span(
    tracer: Tracer, span_name: str, resolved: Resolved[Any], targeting_key: str | None, start_ns: int, static: bool
) -> None:
    """Record one finished ``Resolve variable <name>`` span.

    Besides ``setpoint.*`` it carries OpenTelemetry's current ``feature_flag.*`` semantic conventions
    (``feature_flag.key``, ``feature_flag.provider.name``, ``feature_flag.result.variant`` (the label),
    ``feature_flag.result.reason``, ``feature_flag.version``, ``feature_flag.context.id`` (the targeting key),
    ``feature_flag.error.message``), not their deprecated spellings: each attribute costs the SDK ~1 µs.
    """
    attributes: dict[str, Any] = {
        "setpoint.variable": resolved.name,
        "setpoint.reason": resolved.reason,
        "feature_flag.key": resolved.name,
        "feature_flag.provider.name": PROVIDER_NAME,
        "feature_flag.result.reason": _result_reason(resolved, static),
    }
    if targeting_key is not None:
        attributes["setpoint.targeting_key"] = targeting_key
        attributes["feature_flag.context.id"] = targeting_key
    if resolved.label is not None:
        attributes["setpoint.label"] = resolved.label
        attributes["feature_flag.result.variant"] = resolved.label
    if resolved.version is not None:
        attributes["setpoint.version"] = resolved.version
        attributes["feature_flag.version"] = str(resolved.version)
    if resolved.override_index is not None:
        attributes["setpoint.override_index"] = resolved.override_index
    if resolved.composed_from:
        attributes["setpoint.composed_from"] = json.dumps([ref.to_json() for ref in resolved.composed_from])
    if resolved.exception is not None:
        attributes["feature_flag.error.message"] = str(resolved.exception)[:1000]
    span = tracer.start_span(span_name, start_time=start_ns, attributes=attributes)
    if resolved.exception is not None:
        span.record_exception(resolved.exception)
    span.end()
