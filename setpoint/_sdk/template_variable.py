"""`TemplateVariable` and `template_var()`: a variable whose value is a Handlebars template rendered with typed
inputs at resolution: resolve -> compose ``@{references}@`` -> render ``{{fields}}`` -> validate (as in the
Logfire SDK's ``template_var``)."""

from __future__ import annotations

import builtins
import contextlib
import warnings
from collections.abc import Mapping
from typing import Any, Generic, Literal, TypeVar, overload

from opentelemetry import trace as otel_trace
from pydantic import TypeAdapter

from setpoint._core import templates
from setpoint._sdk import spans, usage
from setpoint._sdk import state as sdk_state
from setpoint._sdk.registry import register, registered_variables
from setpoint._sdk.resolved import Resolved
from setpoint._sdk.variable import DefaultFunction, Renderer, Variable, _DefaultFunctionError
from setpoint.exceptions import ConfigurationError, TemplateInputsMismatchError

__all__ = ["TemplateMismatchPolicy", "TemplateVariable", "template_var", "warn_plain_composes_template"]

T = TypeVar("T")
InputsT = TypeVar("InputsT")

TemplateMismatchPolicy = Literal["warn", "error", "ignore"]
"""What `TemplateVariable.get` does when the template uses a ``{{field}}`` its inputs type does not declare."""

_POLICIES = ("warn", "error", "ignore")
_MAX_CHECKED = 256


class TemplateVariable(Variable[T], Generic[T, InputsT]):
    """A managed variable whose value is rendered with typed inputs: ``get(inputs)``.

    Create with `setpoint.template_var()`. The value's ``@{references}@`` are expanded first, then its
    ``{{fields}}`` are rendered from ``inputs`` (strings are not HTML-escaped), then the result is validated
    against the type. Like `Variable.get`, it never raises because of the configuration, except under
    ``template_mismatch_policy='error'``.
    """

    __slots__ = ("_checked", "_inputs_adapter", "_inputs_type", "_template_mismatch_policy")

    def __init__(
        self,
        name: str,
        *,
        type: Any,
        default: T | DefaultFunction[T],
        inputs_type: Any,
        description: str | None = None,
        template_mismatch_policy: TemplateMismatchPolicy | None = None,
    ) -> None:
        super().__init__(name, type=type, default=default, description=description)
        if template_mismatch_policy is not None and template_mismatch_policy not in _POLICIES:
            raise ConfigurationError(
                f"variable {name!r}: template_mismatch_policy must be 'warn', 'error' or 'ignore', "
                f"not {template_mismatch_policy!r}"
            )
        try:
            self._inputs_adapter: TypeAdapter[InputsT] = TypeAdapter(inputs_type)
            self._inputs_adapter.json_schema()
        except Exception as exc:
            raise ConfigurationError(
                f"variable {name!r}: pydantic cannot build a JSON schema for inputs_type {inputs_type!r}: {exc}"
            ) from exc
        self._inputs_type = inputs_type
        self._template_mismatch_policy = template_mismatch_policy
        self._checked: dict[str, tuple[str, ...]] = {}

    @property
    def inputs_type(self) -> Any:
        """The type of the template inputs given to `get()`."""
        return self._inputs_type

    @property
    def template_mismatch_policy(self) -> TemplateMismatchPolicy | None:
        """This variable's own policy (None: the one given to `setpoint.configure()`)."""
        return self._template_mismatch_policy

    @property
    def template_inputs_schema(self) -> dict[str, Any]:
        """The JSON schema of ``inputs_type`` (pushed to the server, which checks every new version against it)."""
        return self._inputs_adapter.json_schema()

    def get_template_inputs_schema(self) -> dict[str, Any]:
        """The JSON schema of ``inputs_type`` (the Logfire SDK's spelling of `template_inputs_schema`)."""
        return self.template_inputs_schema

    def __repr__(self) -> str:
        return (
            f"TemplateVariable(name={getattr(self, '_name', None)!r}, type={getattr(self, '_type', None)!r}, "
            f"inputs_type={getattr(self, '_inputs_type', None)!r})"
        )

    def _always_renders(self) -> bool:
        return True

    def get(  # type: ignore[override]
        self,
        inputs: InputsT,
        targeting_key: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        *,
        label: str | None = None,
    ) -> Resolved[T]:
        """Resolve the value, expand its ``@{references}@``, render its ``{{fields}}`` with ``inputs`` and
        validate it against the type.

        Targeting (key, attributes, ``label``) works as in `Variable.get`, and every reference is resolved
        with the same targeting key and attributes. A stored value whose references cannot be expanded, that
        does not render or does not validate gives the code default (rendered with ``inputs`` too) with reason
        ``other_error`` / ``validation_error`` and the exception. Raises `TemplateInputsMismatchError` only
        when the effective ``template_mismatch_policy`` is ``'error'`` and the template uses a field that
        ``inputs_type`` does not declare.
        """
        state = sdk_state.CURRENT
        render = self._renderer(inputs, state)
        provider = otel_trace._TRACER_PROVIDER
        if provider is not None and state.instrument:
            cached = spans.TRACER_CACHE
            tracer = cached[1] if cached[0] is provider else spans.tracer_for(provider)
            if tracer is not None:
                return self._get_traced(tracer, state, targeting_key, attributes, label, render)
        try:
            resolved = self._resolve_full(state, targeting_key, attributes, label, render)[0]
        except _DefaultFunctionError as failed:
            raise failed.error from None
        except TemplateInputsMismatchError:
            raise
        except Exception as exc:
            resolved = self._error_result(exc, targeting_key, attributes)
        usage.count_slow(resolved)
        return resolved

    def _renderer(self, inputs: Any, state: sdk_state.SdkState) -> Renderer:
        policy = self._template_mismatch_policy or state.template_mismatch_policy

        def render(serialized: str) -> str:
            if policy != "ignore":
                self._check_fields(serialized, policy)
            return templates.render(serialized, templates.inputs_context(inputs))

        return render

    def _check_fields(self, serialized: str, policy: str) -> None:
        undeclared = self._checked.get(serialized)
        if undeclared is None:
            undeclared = tuple(templates.undeclared_fields(serialized, self.template_inputs_schema))
            if len(self._checked) >= _MAX_CHECKED:
                self._checked.clear()
            self._checked[serialized] = undeclared
        if not undeclared:
            return
        type_name = getattr(self._inputs_type, "__name__", repr(self._inputs_type))
        message = (
            f"variable {self._name!r}: the template uses {', '.join(repr(f) for f in undeclared)}, which "
            f"inputs_type {type_name!r} does not declare (they render empty); add them to {type_name} or remove "
            "them from the template"
        )
        if policy == "error":
            raise TemplateInputsMismatchError(message)
        _warn(message)


def _warn(message: str) -> None:
    """A RuntimeWarning that a ``-W error`` filter cannot turn into a resolution failure."""
    with contextlib.suppress(Exception):
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def _static_references(variable: Variable[Any]) -> set[str]:
    if callable(variable.default) and not isinstance(variable, TemplateVariable) and variable._default_is_function:
        return set()
    if variable._default_is_function:
        return set()
    try:
        return set(templates.find_references(variable.type_adapter.dump_json(variable.default).decode()))
    except Exception:
        return set()


def warn_plain_composes_template(variable: Variable[Any]) -> None:
    """Warn (RuntimeWarning) when a plain variable's code default composes a template variable, whose
    ``{{fields}}`` could then never receive inputs; checked both ways, whatever the order of definition."""
    others = {other.name: other for other in registered_variables() if other is not variable}

    def warn(plain: str, template: str) -> None:
        warnings.warn(
            f"variable {plain!r} composes template variable {template!r}, but {plain!r} has no inputs_type, so "
            f"the {{{{fields}}}} of {template!r} render empty when {plain!r} is resolved; define {plain!r} with "
            "setpoint.template_var() or remove the reference",
            RuntimeWarning,
            stacklevel=4,
        )

    if isinstance(variable, TemplateVariable):
        for other in others.values():
            if not isinstance(other, TemplateVariable) and variable.name in _static_references(other):
                warn(other.name, variable.name)
    else:
        for ref in sorted(_static_references(variable)):
            if isinstance(others.get(ref), TemplateVariable):
                warn(variable.name, ref)


@overload
def template_var(
    name: str,
    *,
    default: T,
    inputs_type: builtins.type[InputsT],
    description: str | None = None,
    template_mismatch_policy: TemplateMismatchPolicy | None = None,
) -> TemplateVariable[T, InputsT]: ...


@overload
def template_var(
    name: str,
    *,
    type: builtins.type[T],
    default: T | DefaultFunction[T],
    inputs_type: builtins.type[InputsT],
    description: str | None = None,
    template_mismatch_policy: TemplateMismatchPolicy | None = None,
) -> TemplateVariable[T, InputsT]: ...


def template_var(
    name: str,
    *,
    type: Any = None,
    default: Any,
    inputs_type: Any,
    description: str | None = None,
    template_mismatch_policy: TemplateMismatchPolicy | None = None,
) -> TemplateVariable[Any, Any]:
    """Define a managed template variable: ``get(inputs)`` renders its ``{{fields}}`` with typed inputs.

    As `setpoint.var()`, plus ``inputs_type`` (a pydantic model, dataclass, TypedDict... describing the
    inputs; its JSON schema is pushed as ``template_inputs_schema``) and ``template_mismatch_policy``
    (``'warn'``, ``'error'`` or ``'ignore'``; None: the one given to `setpoint.configure()`). ``type`` may be
    left out when ``default`` is a value: its class is used.

    Raises `ConfigurationError` for an invalid or duplicate name, an unsupported type or inputs type, or a
    default that does not fit the type.
    """
    if type is None:
        if default is None or callable(default):
            raise ConfigurationError(
                f"variable {name!r}: give type= when the default is None or a function (it cannot be inferred)"
            )
        type = default.__class__
    variable: TemplateVariable[Any, Any] = TemplateVariable(
        name,
        type=type,
        default=default,
        inputs_type=inputs_type,
        description=description,
        template_mismatch_policy=template_mismatch_policy,
    )
    register(variable)
    warn_plain_composes_template(variable)
    return variable
