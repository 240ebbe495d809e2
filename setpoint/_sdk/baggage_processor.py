"""`BaggageSpanProcessor`: copies the ``setpoint.variables.*`` baggage entries onto every span started inside."""

from __future__ import annotations

from opentelemetry import baggage
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from setpoint._sdk.resolved import BAGGAGE_PREFIX

__all__ = ["BaggageSpanProcessor"]


class BaggageSpanProcessor(SpanProcessor):
    """Tags spans with the labels served to them.

    Inside ``with variable.get():`` the baggage says which label and version of each variable is in use;
    install this processor (``tracer_provider.add_span_processor(setpoint.BaggageSpanProcessor())``) and every
    span started there carries ``setpoint.variables.<name>`` and ``setpoint.variables.<name>.version`` as
    attributes, so traces can be filtered and compared by label.
    """

    def __init__(self, prefix: str = BAGGAGE_PREFIX) -> None:
        self.prefix = prefix

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Copy matching baggage entries of the span's parent context onto the span."""
        prefix = self.prefix
        for key, value in baggage.get_all(parent_context).items():
            if key.startswith(prefix):
                span.set_attribute(key, str(value))

    def on_end(self, span: ReadableSpan) -> None:
        """Nothing to do when a span ends."""

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered."""
        return True
