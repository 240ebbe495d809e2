"""`Variable` and `var()`: a typed value defined in code with a safe default, resolved at runtime.

The hot path (`Variable.get`) is written for speed: per compiled config, a variable keeps a `_Bound` holding
its compiled variable and one prebuilt `Resolved` per possible outcome (values parsed once), so a resolution
is a few attribute reads, the core's `evaluate`, and a dict lookup. Everything rare (overrides, default
functions, spans, errors) lives in `_resolve_full`.
"""

from __future__ import annotations

import builtins
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, Generic, TypeVar, cast, overload

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from pydantic import TypeAdapter, ValidationError

from setpoint._core import templates
from setpoint._core.evaluator import CompiledConfig, CompiledVariable, Evaluation
from setpoint._sdk import spans, usage
from setpoint._sdk import state as sdk_state
from setpoint._sdk.registry import lookup, register
from setpoint._sdk.resolved import Reason, Resolved
from setpoint._sdk.targeting import TARGETING
from setpoint.config import InSegment, NotInSegment, UnknownCondition
from setpoint.exceptions import (
    CompositionCycleError,
    CompositionDepthError,
    CompositionError,
    ConfigurationError,
    TemplateInputsMismatchError,
)

__all__ = ["DefaultFunction", "Variable", "var"]

T = TypeVar("T")

DefaultFunction = Callable[[str | None, Mapping[str, Any]], T]
"""``fn(targeting_key, attributes) -> value``: a default or override computed per resolution."""

logger = logging.getLogger("setpoint")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_CALL_DEFAULT: Any = object()  # placeholder value of an outcome whose code default is a function
# Reading baggage through the context directly avoids `baggage.get_all()`'s ~0.4 µs MappingProxyType wrap.
_BAGGAGE_KEY: str = getattr(otel_baggage, "_BAGGAGE_KEY", "")
_BAGGAGE_FALLBACK = not _BAGGAGE_KEY  # a future opentelemetry-api without the private key: use get_all()
_get_current_context: Callable[[], otel_context.Context] = otel_context.get_current
_runtime_var = getattr(getattr(otel_context, "_RUNTIME_CONTEXT", None), "_current_context", None)
if isinstance(_runtime_var, ContextVar):  # the default runtime context: skip two Python-level calls
    _get_current_context = _runtime_var.get
_warned_unknown_kinds: set[str] = set()
_MAX_PARSED = 256
_MAX_OUTCOMES = 1024

Renderer = Callable[[str], str]
"""Renders the ``{{fields}}`` of a composed JSON value (`TemplateVariable.get`)."""


class _Attempt:
    """The outcome of one compose -> render -> validate pass over a JSON value."""

    __slots__ = ("composed", "error", "stage", "value")

    def __init__(
        self,
        value: Any = None,
        error: Exception | None = None,
        stage: str = "",
        composed: tuple[templates.ComposedReference, ...] = (),
    ) -> None:
        self.value = value
        self.error = error
        self.stage = stage
        self.composed = composed


class _Override:
    """An active `Variable.override()`: a value (prebuilt result) or a function."""

    __slots__ = ("composes", "function", "resolved")

    def __init__(self, name: str, value: Any, composes: bool = False) -> None:
        self.function: Callable[[str | None, Mapping[str, Any]], Any] | None = value if callable(value) else None
        self.resolved: Resolved[Any] = Resolved(name, None if callable(value) else value, "context_override")
        self.composes = composes
        """True when the value has ``@{references}@`` (it is then composed like a stored value)."""


_OVERRIDES: ContextVar[Mapping[str, _Override] | None] = ContextVar("setpoint_overrides", default=None)


class _DefaultFunctionError(Exception):
    """Carries an exception raised by the user's default function through `get`'s error handling."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class _Bound:
    """A variable bound to one compiled config and SDK state (rebuilt when either changes)."""

    __slots__ = (
        "compiled",
        "composes",
        "hits",
        "outcomes",
        "resource",
        "slow",
        "state",
        "static",
        "static_hits",
        "variable",
        "wanted",
    )

    def __init__(
        self, state: sdk_state.SdkState | None, compiled: CompiledConfig | None, variable: CompiledVariable | None
    ) -> None:
        self.state = state
        self.compiled = compiled
        self.variable = variable
        self.wanted: frozenset[str] | None = _wanted_attributes(variable)
        """The attribute names the rules read (None: cannot tell, so all of them)."""
        self.resource: Mapping[str, Any] = _EMPTY
        """The resource attributes the rules read."""
        self.outcomes: dict[int, Resolved[Any]] = {}
        """Prebuilt result per `Evaluation`, keyed by identity: the core prebuilds every outcome at compile time
        and the compiled config (held here) keeps them alive, so an id is never reused while cached; a hit is
        still checked against the entry's evaluation."""
        self.static: Resolved[Any] | None = None
        """The result of every ``get()`` without ``label=`` when it depends on nothing, else None."""
        self.static_hits = 0
        """Resolutions served `static` since the last usage harvest (`setpoint._sdk.usage`)."""
        self.hits: defaultdict[int, int] = defaultdict(int)
        """Resolutions per prebuilt outcome (keyed like `outcomes`) since the last usage harvest."""
        self.composes = False
        """True when a value (or the code default) has ``@{references}@``: resolve through `_pipeline`."""
        self.slow = False
        """True when `get()` must take the general path (composition, or a default function)."""


class Variable(Generic[T]):
    """A managed variable: a typed value with a code default, resolved against the current configuration.

    Create with `setpoint.var()`; read with `get()`.
    """

    __slots__ = (
        "__weakref__",
        "_bound",
        "_default",
        "_default_composes",
        "_default_is_function",
        "_description",
        "_name",
        "_parsed",
        "_span_name",
        "_type",
        "_type_adapter",
        "_warned",
    )

    def __init__(
        self,
        name: str,
        *,
        type: Any,
        default: T | DefaultFunction[T],
        description: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name) or len(name) > 128:
            raise ConfigurationError(
                f"invalid variable name {name!r}: use a Python identifier (ASCII letters, digits and underscores, "
                "not starting with a digit, at most 128 characters), e.g. 'agent_config'"
            )
        try:
            adapter: TypeAdapter[T] = TypeAdapter(type)
        except Exception as exc:
            raise ConfigurationError(f"variable {name!r}: pydantic cannot handle type {type!r}: {exc}") from exc
        self._name = name
        self._type = type
        self._type_adapter = adapter
        self._description = description
        self._default = default
        self._default_is_function = callable(default) and not isinstance(default, type_if_class(type))
        if not self._default_is_function:
            try:
                adapter.validate_python(default)
            except ValidationError as exc:
                raise ConfigurationError(f"variable {name!r}: the default does not fit type {type!r}: {exc}") from None
        self._default_composes = False
        if not self._default_is_function:
            try:
                self._default_composes = templates.has_references(adapter.dump_json(cast(T, default)).decode())
            except Exception:
                self._default_composes = False
        self._span_name = f"Resolve variable {name}"
        self._parsed: dict[tuple[int | None, str], tuple[bool, Any]] = {}
        self._warned: set[object] = set()
        self._bound = _Bound(None, None, None)
        usage.track(self)

    # --- properties used by `VariablesConfig.from_variables` and users ---------------------------------

    @property
    def name(self) -> str:
        """The variable's name (unique in the process, and its key in the configuration)."""
        return self._name

    @property
    def description(self) -> str | None:
        """Human-readable description, pushed to the server."""
        return self._description

    @property
    def default(self) -> T | DefaultFunction[T]:
        """The code default: a value, or a function ``fn(targeting_key, attributes)``."""
        return self._default

    @property
    def type(self) -> Any:
        """The type given to `setpoint.var()`."""
        return self._type

    @property
    def type_adapter(self) -> TypeAdapter[T]:
        """The pydantic `TypeAdapter` that parses and validates this variable's values."""
        return self._type_adapter

    def __repr__(self) -> str:
        return f"Variable(name={getattr(self, '_name', None)!r}, type={getattr(self, '_type', None)!r})"

    # --- resolution -------------------------------------------------------------------------------------

    def get(
        self,
        targeting_key: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        *,
        label: str | None = None,
    ) -> Resolved[T]:
        """Resolve the value to use now. Never raises because of the configuration.

        Priority: an active `override()`; then an explicit ``label`` (if it resolves to a value); then the
        first matching override rule's rollout, else the default rollout.

        The targeting key is ``targeting_key``, else the variable-specific `setpoint.targeting_context`, else
        the default one, else the active trace id (``trace_id:<32 hex>``). The attributes the rules see are
        the OpenTelemetry resource attributes, then the baggage, then ``attributes`` (later wins).

        A value that does not validate against the type gives the code default with reason
        ``validation_error`` and the exception attached; any other failure gives the code default with
        ``other_error``. Only the variable's own default function can raise out of here.
        """
        state = sdk_state.CURRENT
        provider = otel_trace._TRACER_PROVIDER
        if provider is not None and state.instrument:
            cached = spans.TRACER_CACHE
            tracer = cached[1] if cached[0] is provider else spans.tracer_for(provider)
            if tracer is not None:
                return self._get_traced(tracer, state, targeting_key, attributes, label)
        try:
            overrides = _OVERRIDES.get()
            if overrides is not None and self._name in overrides:
                full = self._resolve_full(state, targeting_key, attributes, label)[0]
                usage.count_slow(full)
                return full
            compiled = state.provider.compiled
            bound = self._bound
            if bound.compiled is not compiled or bound.state is not state:
                bound = self._bind(state, compiled)
            if label is None:
                static = bound.static
                if static is not None:
                    bound.static_hits += 1
                    return static
            variable = bound.variable
            if variable is None or bound.slow:
                full = self._resolve_full(state, targeting_key, attributes, label)[0]
                usage.count_slow(full)
                return full
            if targeting_key is None:
                targeting = TARGETING.get()
                if targeting is not None:
                    targeting_key = targeting.specific.get(self._name, targeting.default)
                if targeting_key is None and not variable.is_static:
                    targeting_key = _trace_targeting_key()
            wanted = bound.wanted
            merged = attributes
            if wanted is None:
                merged = _merge_attributes(state, attributes)
            elif wanted and (
                bound.resource
                or (state.include_baggage and (_BAGGAGE_FALLBACK or _get_current_context().get(_BAGGAGE_KEY)))
            ):
                merged = _merge_wanted(bound, state, wanted, attributes)
            evaluation = variable.evaluate(targeting_key, merged, label)
            outcome_id = id(evaluation)
            resolved = bound.outcomes.get(outcome_id)
            if resolved is None or resolved._evaluation is not evaluation:
                resolved = self._outcome(bound, evaluation)
            bound.hits[outcome_id] += 1
            return resolved
        except _DefaultFunctionError as failed:
            raise failed.error from None
        except Exception as exc:
            resolved = self._error_result(exc, targeting_key, attributes)
            usage.count_slow(resolved)
            return resolved

    def _get_traced(
        self,
        tracer: otel_trace.Tracer,
        state: sdk_state.SdkState,
        targeting_key: str | None,
        attributes: Mapping[str, Any] | None,
        label: str | None,
        render: Renderer | None = None,
    ) -> Resolved[T]:
        start = time.time_ns()
        static = False
        try:
            resolved, targeting_key = self._resolve_full(state, targeting_key, attributes, label, render)
            variable = self._bound.variable
            static = variable is not None and variable.is_static and not self._bound.composes
        except _DefaultFunctionError as failed:
            raise failed.error from None
        except TemplateInputsMismatchError:
            raise
        except Exception as exc:
            resolved = self._error_result(exc, targeting_key, attributes)
        usage.count_slow(resolved)
        try:
            spans.record_span(tracer, self._span_name, resolved, targeting_key, start, static)
        except Exception:  # a broken exporter or processor must not break the application
            logger.debug("setpoint: recording the span of %r failed", self._name, exc_info=True)
        return resolved

    def _resolve_full(
        self,
        state: sdk_state.SdkState,
        targeting_key: str | None,
        attributes: Mapping[str, Any] | None,
        label: str | None,
        render: Renderer | None = None,
    ) -> tuple[Resolved[T], str | None]:
        """The general path: every case, and the final targeting key (for the span)."""
        if targeting_key is None:
            targeting = TARGETING.get()
            if targeting is not None:
                targeting_key = targeting.key_for(self._name)
            if targeting_key is None:
                targeting_key = _trace_targeting_key()
        merged = _merge_attributes(state, attributes)
        compiled = state.provider.compiled
        bound = self._bound
        if bound.compiled is not compiled or bound.state is not state:
            bound = self._bind(state, compiled)
        overrides = _OVERRIDES.get()
        override = overrides.get(self._name) if overrides is not None else None
        if bound.composes or render is not None or (override is not None and override.composes):
            return self._pipeline(bound, targeting_key, merged, label, render), targeting_key
        if override is not None:
            if override.function is None:
                return override.resolved, targeting_key
            value = override.function(targeting_key, merged if merged is not None else _EMPTY)
            return override.resolved._with_value(value), targeting_key
        variable = bound.variable
        if variable is None:
            if compiled is None:
                resolved: Resolved[Any] = Resolved(self._name, self._default_value(), "code_default")
            else:
                resolved = bound.outcomes.get(0) or self._unknown_outcome(bound)
        else:
            evaluation = variable.evaluate(targeting_key, merged, label)
            found = bound.outcomes.get(id(evaluation))
            hit = found is not None and found._evaluation is evaluation
            resolved = found if found is not None and hit else self._outcome(bound, evaluation)
        if resolved.value is _CALL_DEFAULT:
            resolved = resolved._with_value(self._call_default(targeting_key, merged))
        return resolved, targeting_key

    def _bind(self, state: sdk_state.SdkState, compiled: CompiledConfig | None) -> _Bound:
        """Prepare for a newly installed compiled config or SDK state."""
        variable = compiled.get(self._name) if compiled is not None else None
        bound = _Bound(state, compiled, variable)
        bound.composes = self._default_composes or (variable is not None and _has_references(variable))
        bound.slow = bound.composes or self._default_is_function or self._always_renders()
        if bound.wanted:
            resource = state.resource_attributes
            if resource is None:
                resource = state.load_resource()
            bound.resource = {key: value for key, value in resource.items() if key in bound.wanted}
        if bound.composes or self._always_renders():
            pass  # the value depends on other variables (or on template inputs): no static result
        elif variable is not None:
            _warn_unknown_conditions(variable)
            if variable.static_result is not None:
                static = self._outcome(bound, variable.static_result)
                bound.static = static if static.value is not _CALL_DEFAULT else None
        elif not self._default_is_function:
            if compiled is None:
                bound.static = Resolved(self._name, self._default, "code_default")
            else:
                bound.static = self._unknown_outcome(bound)
        if variable is not None and bound.composes:
            _warn_unknown_conditions(variable)
        if len(self._parsed) > _MAX_PARSED:
            self._parsed.clear()
        usage.retire(self._bound)
        self._bound = bound
        return bound

    def _always_renders(self) -> bool:
        """True for template variables, whose every `get()` renders inputs."""
        return False

    # --- composition and templates: resolve -> compose -> render -> validate ----------------------------

    def _pipeline(
        self,
        bound: _Bound,
        targeting_key: str | None,
        merged: Mapping[str, Any] | None,
        label: str | None,
        render: Renderer | None,
    ) -> Resolved[T]:
        """Resolve with ``@{references}@`` expanded (and ``{{fields}}`` rendered by ``render``), as the
        Logfire SDK does: a stored or override value is composed strictly and, if that fails, the code
        default is served; the code default is composed leniently (a missing reference renders empty)."""
        resolver = _RefResolver(bound.compiled, targeting_key, merged)
        overrides = _OVERRIDES.get()
        override = overrides.get(self._name) if overrides is not None else None
        if override is not None:
            if override.function is None:
                value = override.resolved.value
            else:
                value = override.function(targeting_key, merged if merged is not None else _EMPTY)
            try:
                serialized = self._type_adapter.dump_json(value).decode()
            except Exception:
                return cast(Resolved[T], Resolved(self._name, value, "context_override"))
            attempt = self._attempt(serialized, resolver, render, strict=True)
            if attempt.error is None:
                return Resolved(self._name, attempt.value, "context_override", composed_from=attempt.composed)
            return self._default_pipeline(targeting_key, merged, resolver, render, attempt, None)
        variable = bound.variable
        evaluation = variable.evaluate(targeting_key, merged, label) if variable is not None else None
        if evaluation is not None and evaluation.serialized_value is not None:
            attempt = self._attempt(evaluation.serialized_value, resolver, render, strict=True)
            if attempt.error is None:
                return Resolved(
                    self._name,
                    attempt.value,
                    "resolved",
                    label=evaluation.label,
                    version=evaluation.version,
                    evaluation=evaluation,
                    composed_from=attempt.composed,
                )
            return self._default_pipeline(targeting_key, merged, resolver, render, attempt, evaluation)
        return self._default_pipeline(targeting_key, merged, resolver, render, None, evaluation)

    def _attempt(self, serialized: str, resolver: _RefResolver, render: Renderer | None, *, strict: bool) -> _Attempt:
        composed: tuple[templates.ComposedReference, ...] = ()
        if templates.has_references(serialized):
            try:
                serialized, composed = templates.compose(serialized, self._name, resolver, strict=strict)
            except CompositionError as exc:
                return _Attempt(error=exc, stage="composition")  # as Logfire: exc.composed_from has the attempt
            fatal = templates.first_fatal_error(composed)
            if fatal is not None:
                error_type = CompositionCycleError if fatal.startswith("circular") else CompositionDepthError
                return _Attempt(error=error_type(fatal), stage="composition", composed=composed)
        if render is not None:
            try:
                serialized = render(serialized)
            except TemplateInputsMismatchError:
                raise
            except Exception as exc:
                return _Attempt(error=exc, stage="template rendering", composed=composed)
        if render is None and len(self._parsed) < _MAX_PARSED:  # composed values repeat: parse each once
            ok, value = self.parse_serialized(None, serialized)
            if not ok:
                return _Attempt(error=value, stage="validation", composed=composed)
            return _Attempt(value=value, composed=composed)
        try:
            value = self._type_adapter.validate_json(serialized)
        except Exception as exc:
            return _Attempt(error=exc, stage="validation", composed=composed)
        return _Attempt(value=value, composed=composed)

    def _default_pipeline(
        self,
        targeting_key: str | None,
        merged: Mapping[str, Any] | None,
        resolver: _RefResolver,
        render: Renderer | None,
        trigger: _Attempt | None,
        evaluation: Evaluation | None,
    ) -> Resolved[T]:
        """Serve the code default, composed leniently; ``trigger`` is the failed attempt that led here."""
        if trigger is not None:
            self._log_fallback(trigger)
        default: Any = self._call_default(targeting_key, merged) if self._default_is_function else self._default
        try:
            serialized: str | None = self._type_adapter.dump_json(default).decode()
        except Exception:
            serialized = None
        attempt: _Attempt | None = None
        if serialized is not None:
            attempt = self._attempt(serialized, resolver, render, strict=True)
            if attempt.error is not None and attempt.stage == "composition":
                lenient = self._attempt(serialized, resolver, render, strict=False)
                if lenient.error is None:
                    logger.warning(
                        "setpoint: variable %r: the code default has unresolved @{references}@; they render empty: %s",
                        self._name,
                        attempt.error,
                    )
                attempt = lenient
        if attempt is not None and attempt.error is None:
            if trigger is not None:
                return Resolved(
                    self._name,
                    attempt.value,
                    _fallback_reason(trigger.stage),
                    exception=trigger.error,
                    evaluation=evaluation,
                    composed_from=trigger.composed or attempt.composed,
                )
            return Resolved(
                self._name, attempt.value, "code_default", evaluation=evaluation, composed_from=attempt.composed
            )
        failed = trigger if trigger is not None else attempt
        if failed is None:
            return Resolved(self._name, default, "code_default", evaluation=evaluation)
        if trigger is None:
            logger.warning(
                "setpoint: variable %r: %s of the code default failed; serving it raw: %s",
                self._name,
                failed.stage,
                failed.error,
            )
        return Resolved(
            self._name,
            default,
            _fallback_reason(failed.stage),
            exception=failed.error,
            evaluation=evaluation,
            composed_from=trigger.composed if trigger is not None else (),
        )

    def _log_fallback(self, failed: _Attempt) -> None:
        key = ("fallback", failed.stage, str(failed.error))
        if key in self._warned or len(self._warned) > 64:
            return
        self._warned.add(key)
        logger.warning(
            "setpoint: variable %r: %s failed; serving the code default: %s", self._name, failed.stage, failed.error
        )

    def serialized_default(self, targeting_key: str | None, attributes: Mapping[str, Any] | None) -> str | None:
        """The code default as JSON (computed for this key and attributes if it is a function); None if it cannot
        be serialized or the function raises. Used when another variable's ``@{reference}@`` names this one."""
        try:
            value: Any = self._default
            if self._default_is_function:
                value = cast(DefaultFunction[T], self._default)(targeting_key, attributes or _EMPTY)
            return self._type_adapter.dump_json(value).decode()
        except Exception:
            return None

    def serialized_override(self, targeting_key: str | None, attributes: Mapping[str, Any] | None) -> str | None:
        """The active `override()` value as JSON, or None (no override, or not serializable)."""
        overrides = _OVERRIDES.get()
        override = overrides.get(self._name) if overrides is not None else None
        if override is None:
            return None
        try:
            if override.function is None:
                value = override.resolved.value
            else:
                value = override.function(targeting_key, attributes or _EMPTY)
            return self._type_adapter.dump_json(value).decode()
        except Exception as exc:
            logger.warning("setpoint: the override of %r cannot be composed (not serializable): %s", self._name, exc)
            return None

    def _unknown_outcome(self, bound: _Bound) -> Resolved[Any]:
        evaluation = Evaluation(self._name, None, None, None, "code_default", "unknown_variable")
        resolved = Resolved(self._name, self._default_value(), "code_default", evaluation=evaluation)
        bound.outcomes[0] = resolved  # 0 is never the id() of a live object
        return resolved

    def _outcome(self, bound: _Bound, evaluation: Evaluation) -> Resolved[Any]:
        """Build (parsing the value once) and cache the result for ``evaluation``."""
        serialized = evaluation.serialized_value
        if serialized is None:
            resolved: Resolved[Any] = Resolved(self._name, self._default_value(), "code_default", evaluation=evaluation)
        else:
            ok, parsed = self._parse(evaluation.version, serialized, evaluation.label)
            if ok:
                resolved = Resolved(
                    self._name,
                    parsed,
                    "resolved",
                    label=evaluation.label,
                    version=evaluation.version,
                    evaluation=evaluation,
                )
            else:
                reason: Reason = "validation_error" if isinstance(parsed, ValidationError) else "other_error"
                resolved = Resolved(self._name, self._default_value(), reason, exception=parsed, evaluation=evaluation)
        if len(bound.outcomes) >= _MAX_OUTCOMES:  # only if the core ever builds evaluations per call
            bound.outcomes.clear()
            bound.hits.clear()  # their keys are ids of the dropped outcomes
        bound.outcomes[id(evaluation)] = resolved
        return resolved

    def _parse(self, version: int | None, serialized: str, label: str | None) -> tuple[bool, Any]:
        key = (version, serialized)
        found = self._parsed.get(key)
        if found is not None:
            return found
        result = self.parse_serialized(version, serialized)
        if not result[0]:
            logger.warning(
                "setpoint: variable %r, label %r (version %s): the value does not fit the variable's type; "
                "serving the code default: %s",
                self._name,
                label,
                version,
                result[1],
            )
        return result

    def parse_serialized(self, version: int | None, serialized: str) -> tuple[bool, Any]:
        """``(True, value)`` or ``(False, exception)`` for a JSON value; cached per (version, text)."""
        key = (version, serialized)
        found = self._parsed.get(key)
        if found is not None:
            return found
        try:
            result: tuple[bool, Any] = (True, self._type_adapter.validate_json(serialized))
        except Exception as exc:
            result = (False, exc)
        self._parsed[key] = result
        return result

    def _default_value(self) -> Any:
        return _CALL_DEFAULT if self._default_is_function else self._default

    def _call_default(self, targeting_key: str | None, attributes: Mapping[str, Any] | None) -> T:
        function = cast(DefaultFunction[T], self._default)
        try:
            return function(targeting_key, attributes if attributes is not None else _EMPTY)
        except Exception as exc:
            raise _DefaultFunctionError(exc) from exc

    def _error_result(
        self, exc: Exception, targeting_key: str | None, attributes: Mapping[str, Any] | None
    ) -> Resolved[T]:
        if type(exc) not in self._warned:
            self._warned.add(type(exc))
            logger.warning("setpoint: resolving %r failed; serving the code default", self._name, exc_info=exc)
        if self._default_is_function:
            try:
                value = self._call_default(targeting_key, attributes)
            except _DefaultFunctionError as failed:
                raise failed.error from None
        else:
            value = cast(T, self._default)
        return Resolved(self._name, value, "other_error", exception=exc)

    # --- overrides and refresh --------------------------------------------------------------------------

    @contextmanager
    def override(self, value: T | DefaultFunction[T]) -> Iterator[None]:
        """Serve ``value`` (or ``fn(targeting_key, attributes)``) in this context, whatever the configuration.

        For tests and experiments; resolutions report reason ``context_override``. Scoped to the current
        thread / asyncio task and the block; nestable.
        """
        composes = False
        if not callable(value):
            try:
                composes = templates.has_references(self._type_adapter.dump_json(value).decode())
            except Exception:
                composes = False
        current = _OVERRIDES.get()
        token = _OVERRIDES.set({**(current or {}), self._name: _Override(self._name, value, composes)})
        try:
            yield
        finally:
            _OVERRIDES.reset(token)

    def refresh_sync(self, force: bool = False) -> None:
        """Ask the current provider to refresh the configuration now (blocking)."""
        sdk_state.CURRENT.provider.refresh(force)

    async def refresh(self, force: bool = False) -> None:
        """Ask the current provider to refresh the configuration now."""
        await sdk_state.CURRENT.provider.refresh_async(force)


def _fallback_reason(stage: str) -> Reason:
    return "validation_error" if stage == "validation" else "other_error"


def _has_references(variable: CompiledVariable) -> bool:
    """Whether any value of ``variable`` (a label's or the latest version's) has ``@{`` in it."""
    return any(templates.has_references(value) for value in variable.values())


class _RefResolver:
    """Resolves a referenced variable as the Logfire SDK does, with the root's targeting key and attributes:
    an active override of it, else the configuration, else its registered code default."""

    __slots__ = ("attributes", "compiled", "targeting_key")

    def __init__(
        self, compiled: CompiledConfig | None, targeting_key: str | None, attributes: Mapping[str, Any] | None
    ) -> None:
        self.compiled = compiled
        self.targeting_key = targeting_key
        self.attributes = attributes

    def __call__(self, name: str) -> templates.RefResolution:
        registered = lookup(name)
        if registered is not None:
            overridden = registered.serialized_override(self.targeting_key, self.attributes)
            if overridden is not None:
                return templates.RefResolution(overridden, reason="context_override")
        if self.compiled is not None:
            evaluation = self.compiled.evaluate(name, self.targeting_key, self.attributes)
            if evaluation.serialized_value is not None:
                return templates.RefResolution(evaluation.serialized_value, evaluation.label, evaluation.version)
        if registered is not None:
            default = registered.serialized_default(self.targeting_key, self.attributes)
            if default is not None:
                return templates.RefResolution(default, reason="code_default")
        return templates.RefResolution(None, reason="code_default")


def type_if_class(type_: Any) -> tuple[type, ...]:
    """``(type_,)`` if it is a class (so a callable default of a callable type is a value, not a function)."""
    return (type_,) if isinstance(type_, type) else ()


def _merge_attributes(state: sdk_state.SdkState, attributes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Resource attributes, then baggage, then ``attributes`` (later wins); no copy when nothing is added."""
    base = state.resource_attributes
    if base is None:
        base = state.load_resource()
    if state.include_baggage:
        # the fallback covers a future opentelemetry-api without the private key
        found = cast(
            "Mapping[str, Any] | None",
            otel_baggage.get_all() if _BAGGAGE_FALLBACK else _get_current_context().get(_BAGGAGE_KEY),
        )
        if found:
            merged = {**base, **found}
            if attributes:
                merged.update(attributes)
            return merged
    if not base:
        return attributes
    if not attributes:
        return base
    return {**base, **attributes}


def _merge_wanted(
    bound: _Bound, state: sdk_state.SdkState, wanted: frozenset[str], attributes: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """`_merge_attributes` restricted to the resource and baggage entries the rules can read: the same result
    for the evaluator, without copying every resource attribute on every call."""
    extra = bound.resource
    if state.include_baggage:
        found = cast(
            "Mapping[str, Any] | None",
            otel_baggage.get_all() if _BAGGAGE_FALLBACK else _get_current_context().get(_BAGGAGE_KEY),
        )
        if found:
            picked = {key: value for key, value in found.items() if key in wanted}
            if picked:
                extra = {**extra, **picked}
    if not extra:
        return attributes
    if not attributes:
        return extra
    return {**extra, **attributes}


def _wanted_attributes(variable: CompiledVariable | None) -> frozenset[str] | None:
    """The attribute names ``variable``'s override conditions read; None when segments make that unclear."""
    if variable is None:
        return frozenset()
    names: set[str] = set()
    for condition in variable.conditions():
        if isinstance(condition, InSegment | NotInSegment):
            return None
        attribute = getattr(condition, "attribute", None)
        if isinstance(attribute, str):
            names.add(attribute)
    return frozenset(names)


def _trace_targeting_key() -> str | None:
    trace_id = otel_trace.get_current_span().get_span_context().trace_id
    return f"trace_id:{trace_id:032x}" if trace_id else None


def _warn_unknown_conditions(variable: CompiledVariable) -> None:
    for condition in variable.conditions():
        if isinstance(condition, UnknownCondition) and condition.kind not in _warned_unknown_kinds:
            _warned_unknown_kinds.add(condition.kind)
            logger.warning(
                "setpoint: variable %r uses condition kind %r, which this SDK does not know (a newer "
                "server?); that condition never matches. Upgrade setpoint.",
                variable.name,
                condition.kind,
            )


@overload
def var(
    name: str, *, type: builtins.type[T], default: DefaultFunction[T], description: str | None = None
) -> Variable[T]: ...


@overload
def var(name: str, *, type: builtins.type[T], default: T, description: str | None = None) -> Variable[T]: ...


@overload
def var(name: str, *, type: Any, default: Any, description: str | None = None) -> Variable[Any]: ...


def var(name: str, *, type: Any, default: Any, description: str | None = None) -> Variable[Any]:
    """Define a managed variable.

    ``name`` is a Python identifier, unique in the process (it is the variable's key in the configuration).
    ``type`` is anything pydantic validates: a pydantic model, a dataclass, a TypedDict, ``str``, ``int``,
    ``float``, ``bool``, a union... ``default`` is served whenever the configuration has no (valid) value: a
    value of ``type``, or a function ``fn(targeting_key, attributes) -> value`` computed per resolution. A
    default function that raises is a bug in the application: its exception propagates out of ``get()``
    (there is no other value left to serve).

    Raises `ConfigurationError` for an invalid or duplicate name, an unsupported type, or a default that does
    not fit the type.
    """
    variable: Variable[Any] = Variable(name, type=type, default=default, description=description)
    register(variable)
    if variable._default_composes:
        from setpoint._sdk.template_variable import warn_plain_composes_template

        warn_plain_composes_template(variable)
    return variable
