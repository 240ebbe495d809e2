"""Last known good: turn a server response into a config without ever losing what already works. No I/O.

A response that is not a config at all (not JSON, no ``variables`` object) changes nothing. Otherwise each
variable (and segment) is validated on its own: one that fails keeps its last good version (or stays
absent if it never had one), so one invalid variable does not take the others down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from setpoint.config import Segment, VariableConfig, VariablesConfig

__all__ = ["InvalidResponseError", "Merged", "merge_response"]

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
