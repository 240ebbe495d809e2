"""`Resolved`: what one `Variable.get()` served, and why.

A `Resolved` is immutable, so the SDK builds one per possible outcome of a compiled config and hands the same
object to every call that lands on that outcome: a hot `get()` allocates nothing. Used as a context manager it
puts the served label and version into OpenTelemetry baggage; the context token lives in a `ContextVar`
stack rather than on the object, so one shared `Resolved` can be entered by many threads and tasks at once.
"""

from __future__ import annotations

from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from opentelemetry import baggage, context

if TYPE_CHECKING:
    from setpoint._core.evaluator import Evaluation
    from setpoint._core.templates import ComposedReference

__all__ = ["BAGGAGE_CODE_DEFAULT", "BAGGAGE_PREFIX", "Reason", "Resolved"]

T_co = TypeVar("T_co", covariant=True)

Reason = Literal["resolved", "context_override", "code_default", "validation_error", "other_error"]
"""Why a value was served.

* ``resolved``: the configuration chose a label and its value was served.
* ``context_override``: a `Variable.override()` is active.
* ``code_default``: the code default, because the configuration says so (rollout remainder, a label pointing
  at ``code_default``), does not know the variable, or Setpoint is not configured.
* ``validation_error``: the chosen value did not parse or validate against the variable's type.
* ``other_error``: something unexpected failed; the code default is served.
"""

BAGGAGE_PREFIX = "setpoint.variables."
BAGGAGE_CODE_DEFAULT = "<code_default>"

_ENTERED: ContextVar[tuple[object, ...]] = ContextVar("setpoint_entered_resolutions", default=())


class Resolved(Generic[T_co]):
    """The result of `Variable.get()`: the value and where it came from.

    ``label`` and ``version`` are None whenever the code default is served. ``exception`` is set for
    ``validation_error`` and ``other_error``. ``override_index`` and ``rule`` say which override rule matched.

    Use it directly or as a context manager: inside ``with variable.get() as resolved:`` the OpenTelemetry
    baggage carries ``setpoint.variables.<name>`` (the label, or ``<code_default>``) and
    ``setpoint.variables.<name>.version``, so `setpoint.BaggageSpanProcessor` can tag the spans started inside.

    The value may be shared with other resolutions of the same version: do not mutate it.
    """

    __slots__ = (
        "_evaluation",
        "composed_from",
        "exception",
        "label",
        "name",
        "override_index",
        "reason",
        "rule",
        "value",
        "version",
    )

    name: str
    value: T_co
    label: str | None
    version: int | None
    reason: Reason
    exception: BaseException | None
    override_index: int | None
    rule: str | None
    composed_from: tuple[ComposedReference, ...]
    """The ``@{references}@`` expanded to build the value (nested ones inside each), in name order."""
    _evaluation: Evaluation | None

    def __init__(
        self,
        name: str,
        value: T_co,
        reason: Reason,
        *,
        label: str | None = None,
        version: int | None = None,
        exception: BaseException | None = None,
        evaluation: Evaluation | None = None,
        composed_from: tuple[ComposedReference, ...] = (),
    ) -> None:
        setter = object.__setattr__
        setter(self, "name", name)
        setter(self, "value", value)
        setter(self, "reason", reason)
        setter(self, "label", label)
        setter(self, "version", version)
        setter(self, "exception", exception)
        setter(self, "_evaluation", evaluation)
        setter(self, "composed_from", composed_from)
        setter(self, "override_index", evaluation.override_index if evaluation is not None else None)
        setter(self, "rule", evaluation.rule if evaluation is not None else None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Resolved is immutable (tried to set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Resolved is immutable (tried to delete {name!r})")

    def _with_value(self, value: Any) -> Resolved[Any]:
        """A copy serving ``value`` instead (same reason, label, version, exception)."""
        return Resolved(
            self.name,
            value,
            self.reason,
            label=self.label,
            version=self.version,
            exception=self.exception,
            evaluation=self._evaluation,
            composed_from=self.composed_from,
        )

    @property
    def evaluation(self) -> Evaluation | None:
        """The evaluation core's answer behind this resolution, if the configuration was consulted."""
        return self._evaluation

    def explain(self) -> str:
        """One sentence a human can read, saying what was served and why."""
        ev = self._evaluation
        if self.reason == "context_override":
            return f"a context override (Variable.override) is active for {self.name!r}; serving its value."
        if self.reason == "validation_error":
            chosen = ev.explain() if ev is not None else "a value was chosen"
            return (
                f"{chosen} But that value is not valid for the variable's type, so the code default is served: "
                f"{self.exception}"
            )
        if self.reason == "other_error" and self.composed_from:
            return (
                f"composing {self.name!r} from its @{{references}}@ failed ({self.exception}), so the code default "
                "is served."
            )
        if self.reason == "other_error":
            return f"resolving {self.name!r} failed unexpectedly ({self.exception!r}), so the code default is served."
        if ev is None:
            return (
                f"Setpoint has no configuration for {self.name!r} (not configured, or not loaded yet), "
                "so the code default is served."
            )
        return ev.explain()

    def __repr__(self) -> str:
        return (
            f"Resolved(name={self.name!r}, value={self.value!r}, label={self.label!r}, version={self.version!r}, "
            f"reason={self.reason!r}, exception={self.exception!r})"
        )

    def __enter__(self) -> Resolved[T_co]:
        name = self.name
        ctx = baggage.set_baggage(BAGGAGE_PREFIX + name, self.label if self.label is not None else BAGGAGE_CODE_DEFAULT)
        if self.version is not None:
            ctx = baggage.set_baggage(f"{BAGGAGE_PREFIX}{name}.version", str(self.version), context=ctx)
        token = context.attach(ctx)
        _ENTERED.set((*_ENTERED.get(), token))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack = _ENTERED.get()
        if not stack:  # pragma: no cover - only when __exit__ is called without __enter__
            return
        _ENTERED.set(stack[:-1])
        context.detach(stack[-1])  # type: ignore[arg-type]
