"""Last known good: turn a server response into a config without ever losing what already works. No I/O.

A response that is not a config at all (not JSON, no ``variables`` object) changes nothing. Otherwise each
variable (and segment) is validated on its own: one that fails keeps its last good version (or stays
absent if it never had one), so one invalid variable does not take the others down.

`load_response` and `apply_delta` (what the remote provider uses) do this straight into a `CompiledConfig`,
reading each variable from the JSON without keeping a pydantic model; `merge_response` and `merge_delta` build
a `VariablesConfig` (and are the fallback when parts do not fit together).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from setpoint._core.evaluator import AnyVariable, CompiledConfig, CompiledVariable, compile_config
from setpoint._core.fastload import variable_from_data
from setpoint._core.segments import ContextPredicate, compile_segments
from setpoint.config import Segment, VariableConfig, VariablesConfig

__all__ = [
    "InvalidResponseError",
    "Loaded",
    "Merged",
    "MergedDelta",
    "apply_delta",
    "is_delta",
    "load_response",
    "merge_delta",
    "merge_response",
]

_CONTEXT = {"allow_unknown_conditions": True}


class InvalidResponseError(ValueError):
    """The response is not a variables config at all; the current config stays."""


@dataclass(frozen=True)
class Merged:
    """The config to serve and the problems found on the way (each names the variable or segment)."""

    config: VariablesConfig
    problems: list[str] = field(default_factory=list)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def _merge_items(
    kind: str,
    raw: Mapping[str, Any],
    previous: Mapping[str, Any],
    parse: Any,
    problems: list[str],
) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for name, item in raw.items():
        try:
            merged[name] = parse(item)
        except (ValidationError, ValueError, TypeError) as exc:
            message = _first_error(exc) if isinstance(exc, ValidationError) else str(exc)
            kept = previous.get(name)
            if kept is not None:
                merged[name] = kept
                problems.append(f"{kind} {name!r} is invalid ({message}); keeping its last good version")
            else:
                problems.append(f"{kind} {name!r} is invalid ({message}); it is left out")
    return merged


def merge_response(previous: VariablesConfig | None, data: Any) -> Merged:
    """The config to serve after receiving ``data``; raises `InvalidResponseError` to keep ``previous``."""
    if not isinstance(data, dict) or not isinstance(data.get("variables"), dict):
        raise InvalidResponseError("the response is not a variables config (no `variables` object)")
    segments_data = data.get("segments")
    segments_data = {} if segments_data is None else segments_data
    if not isinstance(segments_data, dict):
        raise InvalidResponseError("the response's `segments` is not an object")
    try:
        return Merged(VariablesConfig.model_validate(data, context=_CONTEXT))
    except ValidationError:
        pass  # find out which parts are wrong, and keep the rest
    problems: list[str] = []
    old_variables = previous.variables if previous is not None else {}
    old_segments = previous.segments if previous is not None else {}
    variables = _merge_items(
        "variable",
        data["variables"],
        old_variables,
        lambda item: VariableConfig.model_validate(item, context=_CONTEXT),
        problems,
    )
    segments = _merge_items(
        "segment", segments_data, old_segments, lambda item: Segment.model_validate(item, context=_CONTEXT), problems
    )
    try:
        config = VariablesConfig(variables=variables, segments=segments)
    except ValidationError as exc:
        if previous is None:
            raise InvalidResponseError(f"the config is inconsistent: {_first_error(exc)}") from None
        # The parts are valid but do not fit together (e.g. a segment a variable needs was invalid):
        # take the new variables that still fit the old segments, keep the old ones otherwise.
        config = _fit_to_previous(previous, variables, problems)
        problems.append(f"the config is inconsistent ({_first_error(exc)}); kept the last good parts")
    return Merged(config, problems)


def _fit_to_previous(
    previous: VariablesConfig, variables: dict[str, VariableConfig], problems: list[str]
) -> VariablesConfig:
    result = dict(previous.variables)
    for name, variable in variables.items():
        candidate = {**result, name: variable}
        try:
            VariablesConfig(variables=candidate, segments=previous.segments)
        except ValidationError:
            continue
        result = candidate
    return VariablesConfig(variables=result, segments=previous.segments)


@dataclass(frozen=True)
class MergedDelta:
    """The config after applying a delta, what it touched (for recompiling only that), and the problems."""

    config: VariablesConfig
    variables: frozenset[str]
    """Variables changed, added or removed."""
    segments: frozenset[str]
    """Segments changed, added or removed."""
    problems: list[str] = field(default_factory=list)


def is_delta(data: Any) -> bool:
    """Whether a response is a delta (``GET /v1/variables/?since=...``) rather than a whole config."""
    return isinstance(data, dict) and isinstance(data.get("delta"), dict)


def _names(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidResponseError(f"the delta's `{key}` is not a list of names")
    return value


def _items(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise InvalidResponseError(f"the delta's `{key}` is not an object")
    return value


def merge_delta(previous: VariablesConfig, data: Any) -> MergedDelta:
    """``previous`` with a delta applied: only the variables and segments it carries are validated (each on
    its own, keeping its last good version when invalid). Raises `InvalidResponseError` when the delta is
    malformed or the result does not fit together: then fetch the whole config instead."""
    if not is_delta(data):
        raise InvalidResponseError("the response is not a delta")
    raw_variables, raw_segments = _items(data, "variables"), _items(data, "segments")
    removed, removed_segments = _names(data, "removed"), _names(data, "removed_segments")
    problems: list[str] = []
    variables = dict(previous.variables)
    variables.update(
        _merge_items(
            "variable",
            raw_variables,
            previous.variables,
            lambda item: VariableConfig.model_validate(item, context=_CONTEXT),
            problems,
        )
    )
    for name in removed:
        variables.pop(name, None)
    segments = dict(previous.segments)
    segments.update(
        _merge_items(
            "segment",
            raw_segments,
            previous.segments,
            lambda item: Segment.model_validate(item, context=_CONTEXT),
            problems,
        )
    )
    for key in removed_segments:
        segments.pop(key, None)
    # The parts were validated one by one: check that they fit together (names, aliases, segment references)
    # without validating every part again.
    touched = frozenset(raw_variables) | frozenset(removed)
    touched_segments = frozenset(raw_segments) | frozenset(removed_segments)
    config = VariablesConfig.model_construct(variables=variables, segments=segments)
    try:
        _check_fit(config, touched, bool(touched_segments))
    except ValueError as exc:
        raise InvalidResponseError(f"the config after the delta is inconsistent: {exc}") from None
    return MergedDelta(config, touched, touched_segments, problems)


def _check_fit(config: VariablesConfig, touched: frozenset[str], segments_changed: bool) -> None:
    """What `VariablesConfig` checks across parts, for the parts a delta touched (all of it when segments
    changed: rare, and segments are few): names match their keys, aliases are unique, segments exist."""
    if segments_changed:
        config._check_consistency()  # type: ignore[operator]  # the model validator's own function
        return
    owners: dict[str, str] = {}
    for variable in config.variables.values():
        for alias in variable.aliases or ():
            if alias in owners:
                raise ValueError(f"alias {alias!r} is used by both {owners[alias]!r} and {variable.name!r}")
            owners[alias] = variable.name
    for name in touched:
        found = config.variables.get(name)
        if found is None:
            continue
        if found.name != name:
            raise ValueError(f"variable stored under key {name!r} is named {found.name!r}; they must match")
        if name in owners:
            raise ValueError(f"{name!r} is an alias of variable {owners[name]!r}")
        for alias in found.aliases or ():
            if alias in config.variables:
                raise ValueError(f"alias {alias!r} of variable {name!r} is the name of another variable")
        missing = sorted(found.segment_references() - config.segments.keys())
        if missing:
            raise ValueError(f"variable {name!r} refers to unknown segment(s): {', '.join(missing)}")


# --- compiled straight from the response (what the remote provider uses) ------------------------------------


@dataclass(frozen=True)
class Loaded:
    """A compiled config built from a response, the problems found, and what to persist: the accepted JSON
    documents (all of them after a full response; the changed ones after a delta)."""

    compiled: CompiledConfig
    problems: list[str]
    full: bool
    """True for a whole config (``variables``/``segments`` hold everything served), False for a delta."""
    variables: dict[str, Any] = field(default_factory=dict)
    segments: dict[str, Any] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    removed_segments: list[str] = field(default_factory=list)


class _InconsistentError(Exception):
    """The parts are valid one by one but do not fit together."""


def _variable(
    name: str, item: Any, segments: Mapping[str, ContextPredicate], problems: list[str]
) -> AnyVariable | None:
    """``item`` compiled (the fast reader, else the pydantic model); None with a problem when it is invalid.
    Raises `_InconsistentError` when it names a segment that does not exist."""
    try:
        compiled = variable_from_data(item, segments)
        if compiled is not None:
            return compiled
        try:
            model = VariableConfig.model_validate(item, context=_CONTEXT)
        except ValidationError as exc:
            problems.append(_first_error(exc))
            return None
        return CompiledVariable.from_model(model, segments)
    except KeyError as exc:
        raise _InconsistentError(f"variable {name!r} refers to unknown segment {exc.args[0]!r}") from None


def _segment_models(
    raw: Mapping[str, Any], previous: Mapping[str, Segment], problems: list[str]
) -> tuple[dict[str, Segment], dict[str, Any]]:
    """Validated segments (the last good one kept for an invalid one) and the accepted documents."""
    models: dict[str, Segment] = {}
    accepted: dict[str, Any] = {}
    for key, item in raw.items():
        try:
            models[key] = Segment.model_validate(item, context=_CONTEXT)
            accepted[key] = item
        except (ValidationError, ValueError, TypeError) as exc:
            message = _first_error(exc) if isinstance(exc, ValidationError) else str(exc)
            kept = previous.get(key)
            if kept is not None:
                models[key] = kept
                problems.append(f"segment {key!r} is invalid ({message}); keeping its last good version")
            else:
                problems.append(f"segment {key!r} is invalid ({message}); it is left out")
    return models, accepted


def _check_segments(models: dict[str, Segment]) -> None:
    for key, segment in models.items():
        if segment.key != key:
            raise _InconsistentError(f"segment stored under key {key!r} has key {segment.key!r}; they must match")
    try:
        VariablesConfig.model_construct(variables={}, segments=models)._check_segment_graph()
    except ValueError as exc:
        raise _InconsistentError(str(exc)) from None


def _check_variables(variables: Mapping[str, AnyVariable], segments: Mapping[str, Any]) -> None:
    """What `VariablesConfig` checks across variables: names match keys, aliases are unique and name no
    variable, referenced segments exist."""
    owners: dict[str, str] = {}
    for key, variable in variables.items():
        if variable.name != key:
            raise _InconsistentError(f"variable stored under key {key!r} is named {variable.name!r}; they must match")
        for alias in variable.aliases or ():
            if alias in variables:
                raise _InconsistentError(f"alias {alias!r} of variable {key!r} is the name of another variable")
            if alias in owners:
                raise _InconsistentError(f"alias {alias!r} is used by both {owners[alias]!r} and {key!r}")
            owners[alias] = key
        if variable.segment_references and not variable.segment_references <= segments.keys():
            missing = ", ".join(sorted(variable.segment_references - segments.keys()))
            raise _InconsistentError(f"variable {key!r} refers to unknown segment(s): {missing}")


def load_response(previous: CompiledConfig | None, data: Any) -> Loaded:
    """`merge_response`, compiled: each variable is read straight from the JSON (no pydantic model kept) and
    one that is invalid keeps its last good version. Raises `InvalidResponseError` to keep ``previous``."""
    if not isinstance(data, dict) or not isinstance(data.get("variables"), dict):
        raise InvalidResponseError("the response is not a variables config (no `variables` object)")
    segments_data = data.get("segments")
    segments_data = {} if segments_data is None else segments_data
    if not isinstance(segments_data, dict):
        raise InvalidResponseError("the response's `segments` is not an object")
    problems: list[str] = []
    try:
        old_segments = previous.segment_models if previous is not None else {}
        models, accepted_segments = _segment_models(segments_data, old_segments, problems)
        _check_segments(models)
        predicates = compile_segments(models)
        variables: dict[str, AnyVariable] = {}
        accepted: dict[str, Any] = {}
        for name, item in data["variables"].items():
            try:
                fast = variable_from_data(item, predicates)  # the common case, inlined: this runs per variable
            except KeyError:
                fast = None  # `_variable` says why
            if fast is not None:
                variables[name] = fast
                accepted[name] = item
                continue
            issues: list[str] = []
            compiled = _variable(name, item, predicates, issues)
            if compiled is not None:
                variables[name] = compiled
                accepted[name] = item
                continue
            kept = previous.get(name) if previous is not None else None
            if kept is not None and kept.name == name:
                variables[name] = kept.recompiled(predicates) if kept.segment_references else kept
                accepted[name] = kept.config.model_dump(mode="json")
                problems.append(f"variable {name!r} is invalid ({issues[0]}); keeping its last good version")
            else:
                problems.append(f"variable {name!r} is invalid ({issues[0]}); it is left out")
        _check_variables(variables, models)
    except _InconsistentError:
        # Rare: fall back to the model path, which keeps the last good parts that fit together.
        merged = merge_response(previous.config if previous is not None else None, data)
        document = merged.config.to_dict()
        return Loaded(compile_config(merged.config), merged.problems, True, document["variables"], document["segments"])
    for key in models.keys() - accepted_segments.keys():
        accepted_segments[key] = models[key].model_dump(mode="json")
    return Loaded(CompiledConfig.assemble(variables, models, predicates), problems, True, accepted, accepted_segments)


def apply_delta(previous: CompiledConfig, data: Any) -> Loaded:
    """`merge_delta`, compiled: only the variables the delta carries are read and compiled, and for a changed
    segment the variables that name it (directly or through other segments). Raises `InvalidResponseError`
    when the delta is malformed or the result does not fit together: then fetch the whole config instead."""
    if not is_delta(data):
        raise InvalidResponseError("the response is not a delta")
    raw_variables, raw_segments = _items(data, "variables"), _items(data, "segments")
    removed, removed_segments = _names(data, "removed"), _names(data, "removed_segments")
    problems: list[str] = []
    try:
        models = dict(previous.segment_models)
        accepted_segments: dict[str, Any] = {}
        touched_segments = set(raw_segments) | set(removed_segments)
        if touched_segments:
            changed_models, accepted_segments = _segment_models(raw_segments, previous.segment_models, problems)
            models.update(changed_models)
            for key in removed_segments:
                models.pop(key, None)
            _check_segments(models)
        predicates, affected = previous.segments_after(models, touched_segments)
        changed: dict[str, AnyVariable] = {}
        accepted: dict[str, Any] = {}
        for name, item in raw_variables.items():
            issues: list[str] = []
            compiled = _variable(name, item, predicates, issues)
            if compiled is not None:
                changed[name] = compiled
                accepted[name] = item
            elif previous.get(name) is not None:
                problems.append(f"variable {name!r} is invalid ({issues[0]}); keeping its last good version")
            else:
                problems.append(f"variable {name!r} is invalid ({issues[0]}); it is left out")
        gone = [name for name in removed if name not in changed]
        after = dict(previous.items())
        after.update(changed)
        for name in gone:
            after.pop(name, None)
        _check_variables(after, models)
    except _InconsistentError as exc:
        raise InvalidResponseError(f"the config after the delta is inconsistent: {exc}") from None
    compiled_config = previous.replaced(changed, gone, models, predicates, affected)
    return Loaded(compiled_config, problems, False, accepted, accepted_segments, gone, list(removed_segments))
