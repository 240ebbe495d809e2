"""An OpenFeature provider that evaluates Setpoint variables in-process, through the Setpoint SDK.

::

    import setpoint
    from openfeature import api
    from setpoint.openfeature import SetpointProvider

    setpoint.configure(remote=setpoint.RemoteOptions(url=..., api_key=...))   # or config=..., as usual
    api.set_provider(SetpointProvider())
    client = api.get_client()
    client.get_boolean_value("new_checkout", False, EvaluationContext("user-123", {"plan": "pro"}))

A flag key is a variable name. The variable is resolved like ``Variable.get()`` (the same targeting key
fallbacks, baggage and resource attributes, overrides, spans): by the variable defined with `setpoint.var()`
in this process when there is one, else by a variable of the requested flag type. Mapping:

* ``EvaluationContext.targeting_key`` -> targeting key; ``attributes`` -> attributes (a nested object
  ``{"organization": {"key": "o1"}}`` also gives the dotted ``organization.key`` that segments read).
* ``variant`` = the label; ``flag_metadata["version"]`` = the version.
* ``reason``: ``TARGETING_MATCH`` (an override matched), ``SPLIT`` (a percentage rollout chose), ``STATIC``
  (one label for everyone, or a ``Variable.override()``), ``DEFAULT`` (the default rollout's single label,
  or the code default: then the caller's ``default_value`` is returned), ``ERROR``.
* Error codes: ``FLAG_NOT_FOUND`` (no such variable in the configuration), ``TYPE_MISMATCH`` (the value does
  not have the requested type), ``PARSE_ERROR`` (the value is not valid for the variable's type),
  ``PROVIDER_NOT_READY`` (Setpoint is not configured, or has not loaded a configuration yet), ``GENERAL``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagType, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata
from pydantic import Strict, ValidationError

from setpoint._core.evaluator import CompiledVariable
from setpoint._sdk import state as sdk_state
from setpoint._sdk.registry import lookup
from setpoint._sdk.resolved import Resolved
from setpoint._sdk.variable import Variable

__all__ = ["SetpointProvider"]

_WEIGHT_TOLERANCE = 1e-9
_NO_VALUE: Any = object()
_STRICT_TYPES: dict[FlagType, Any] = {
    FlagType.BOOLEAN: Annotated[bool, Strict()],
    FlagType.STRING: Annotated[str, Strict()],
    FlagType.INTEGER: Annotated[int, Strict()],
    FlagType.FLOAT: Annotated[float, Strict()],
    FlagType.OBJECT: dict[str, Any] | list[Any],
}
_PYTHON_TYPES: dict[FlagType, tuple[type, ...]] = {
    FlagType.BOOLEAN: (bool,),
    FlagType.STRING: (str,),
    FlagType.INTEGER: (int,),
    FlagType.FLOAT: (int, float),
    FlagType.OBJECT: (dict, list),
}


def _no_value(_key: str | None, _attributes: Mapping[str, Any]) -> Any:
    return _NO_VALUE


def _flatten(prefix: str, value: Mapping[str, Any], out: dict[str, Any]) -> None:
    for name, item in value.items():
        dotted = f"{prefix}.{name}"
        out.setdefault(dotted, item)
        if isinstance(item, Mapping):
            _flatten(dotted, item, out)


def _attributes(context: EvaluationContext | None) -> tuple[str | None, dict[str, Any]]:
    if context is None:
        return None, {}
    attributes = dict(context.attributes)
    for name, value in list(attributes.items()):
        if isinstance(value, Mapping):
            _flatten(name, value, attributes)
    return context.targeting_key or None, attributes


def _splits(rollout: Iterable[tuple[str, float]]) -> bool:
    weights = [w for _, w in rollout if w > 0]
    return bool(weights) and not (len(weights) == 1 and weights[0] >= 1 - _WEIGHT_TOLERANCE)


def _reason(variable: CompiledVariable | None, resolved: Resolved[Any]) -> str:
    evaluation = resolved.evaluation
    if resolved.reason == "context_override" or (variable is not None and variable.is_static):
        return Reason.STATIC
    if evaluation is not None and evaluation.override_index is not None:
        return Reason.TARGETING_MATCH
    if variable is not None and _splits(variable.rollout_weights()):
        return Reason.SPLIT
    return Reason.DEFAULT


def _is_type(value: Any, flag_type: FlagType) -> bool:
    return isinstance(value, _PYTHON_TYPES[flag_type]) and not (
        isinstance(value, bool) and flag_type in (FlagType.INTEGER, FlagType.FLOAT)
    )


class SetpointProvider(AbstractProvider):
    """OpenFeature provider evaluating Setpoint variables locally with the Setpoint SDK.

    Configure Setpoint itself with `setpoint.configure()` (local config, file or remote server); this provider
    reads whatever configuration the SDK currently serves. ``ready_timeout``: how long `initialize` (called by
    ``api.set_provider``) waits for the SDK's first configuration, e.g. a remote server's first fetch.
    """

    def __init__(self, *, ready_timeout: float = 10.0) -> None:
        super().__init__()
        self._ready_timeout = ready_timeout
        self._variables: dict[tuple[str, FlagType], Variable[Any] | None] = {}
        self._lock = threading.Lock()

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Wait (up to ``ready_timeout``) until the Setpoint SDK has a configuration to serve."""
        sdk_state.CURRENT.provider.wait_ready(self._ready_timeout)

    def get_metadata(self) -> Metadata:
        """The provider's name: ``setpoint``."""
        return Metadata(name="setpoint")

    def _variable(self, name: str, flag_type: FlagType) -> Variable[Any] | None:
        """The variable to resolve for a flag key: the app's own, else a private one of the flag's type."""
        registered = lookup(name)
        if registered is not None:
            return registered
        key = (name, flag_type)
        if key not in self._variables:
            try:
                created: Variable[Any] | None = Variable(name, type=_STRICT_TYPES[flag_type], default=_no_value)
            except Exception:  # not a valid variable name: no Setpoint variable can have this key
                created = None
            with self._lock:
                self._variables[key] = created
        return self._variables[key]

    def _resolve(
        self, flag_type: FlagType, flag_key: str, default_value: Any, context: EvaluationContext | None
    ) -> FlagResolutionDetails[Any]:
        def error(code: ErrorCode, message: str, variant: str | None = None) -> FlagResolutionDetails[Any]:
            return FlagResolutionDetails(
                value=default_value, error_code=code, error_message=message, reason=Reason.ERROR, variant=variant
            )

        variable = self._variable(flag_key, flag_type)
        if variable is None:
            return error(ErrorCode.FLAG_NOT_FOUND, f"{flag_key!r} is not a Setpoint variable name")
        targeting_key, attributes = _attributes(context)
        try:
            resolved = variable.get(targeting_key, attributes)
        except Exception as exc:  # the app's own default function raised
            return error(ErrorCode.GENERAL, f"resolving {flag_key!r} failed: {exc!r}")
        compiled = sdk_state.CURRENT.provider.compiled
        compiled_variable = compiled.get(flag_key) if compiled is not None else None
        if resolved.reason == "validation_error":
            return self._invalid(flag_key, variable, resolved, default_value)
        if resolved.reason == "other_error":
            return error(ErrorCode.GENERAL, f"resolving {flag_key!r} failed: {resolved.exception!r}")
        evaluation = resolved.evaluation
        if resolved.reason == "code_default":
            if compiled is None:
                return error(
                    ErrorCode.PROVIDER_NOT_READY, "Setpoint has no configuration (not configured or not loaded)"
                )
            if evaluation is None or evaluation.detail == "unknown_variable":
                return error(ErrorCode.FLAG_NOT_FOUND, f"no variable {flag_key!r} in the Setpoint configuration")
            variant = evaluation.label
            return FlagResolutionDetails(
                default_value, reason=Reason.DEFAULT, variant=variant, flag_metadata={"detail": evaluation.detail}
            )
        value = resolved.value
        if flag_type == FlagType.OBJECT and lookup(flag_key) is variable:
            value = variable.type_adapter.dump_python(value, mode="json")
        if not _is_type(value, flag_type):
            message = f"{flag_key!r} is {type(value).__name__} {value!r}, not a {flag_type.value.lower()} flag"
            return error(ErrorCode.TYPE_MISMATCH, message, resolved.label)
        if flag_type == FlagType.FLOAT:
            value = float(value)
        metadata: dict[str, bool | int | float | str] = {}
        if resolved.version is not None:
            metadata["version"] = resolved.version
        if evaluation is not None:
            metadata["detail"] = evaluation.detail
        return FlagResolutionDetails(
            value, reason=_reason(compiled_variable, resolved), variant=resolved.label, flag_metadata=metadata
        )

    def _invalid(
        self, flag_key: str, variable: Variable[Any], resolved: Resolved[Any], default_value: Any
    ) -> FlagResolutionDetails[Any]:
        exc = resolved.exception
        code = ErrorCode.PARSE_ERROR
        private = lookup(flag_key) is not variable
        if private and isinstance(exc, ValidationError) and all(e["type"] != "json_invalid" for e in exc.errors()):
            code = ErrorCode.TYPE_MISMATCH
        return FlagResolutionDetails(
            value=default_value,
            error_code=code,
            error_message=f"the value of {flag_key!r} (label {resolved.evaluation and resolved.evaluation.label!r}) "
            f"is not valid: {exc}",
            reason=Reason.ERROR,
        )

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        """Resolve a boolean flag."""
        return self._resolve(FlagType.BOOLEAN, flag_key, default_value, evaluation_context)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        """Resolve a string flag."""
        return self._resolve(FlagType.STRING, flag_key, default_value, evaluation_context)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        """Resolve an integer flag."""
        return self._resolve(FlagType.INTEGER, flag_key, default_value, evaluation_context)

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        """Resolve a float flag (an integer value is served as a float)."""
        return self._resolve(FlagType.FLOAT, flag_key, default_value, evaluation_context)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        """Resolve an object flag (a JSON object or array; a pydantic value is dumped to JSON)."""
        return self._resolve(FlagType.OBJECT, flag_key, default_value, evaluation_context)
