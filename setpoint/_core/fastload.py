"""Compile a variable straight from the JSON the server sent, without building a pydantic model first.

`variable_from_data` checks exactly what `setpoint.config.VariableConfig` checks when it reads a config
received from a server (the lenient reading: no finiteness check of values, unknown condition kinds allowed),
but only for the shapes it recognises: plain JSON types, no coercion. Anything else (a string where a number
belongs, a bool as a version, a label that is both a value and a ref, any invalid part) makes it answer None,
and the caller validates that variable with the pydantic model, which accepts or rejects it with its message.
So a variable compiled here is one the model would accept, compiled to the same result, at a fraction of the
time and without keeping a model. Conditions (rare) are validated by the pydantic `Condition` union.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from setpoint._core.evaluator import CompiledVariable, Extra, LabelSpec, OverrideSpec, Weights
from setpoint._core.jsonvalues import NonFiniteNumberError, check_finite
from setpoint._core.segments import ContextPredicate
from setpoint.config._conditions import Condition
from setpoint.config._variables import RESERVED_LABELS, WEIGHT_TOLERANCE

__all__ = ["LENIENT", "variable_from_data"]

LENIENT = {"allow_unknown_conditions": True}
"""The validation context of configs received from a server."""

_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")  # `VariableName`, at most 128 characters
_LABEL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z")  # `LabelName`
_EXTRA_FIELDS = ("description", "type_name", "example")
_SCHEMA_FIELDS = ("json_schema", "template_inputs_schema")
_CONDITIONS: TypeAdapter[list[Condition]] = TypeAdapter(list[Condition])


class _NotFastError(Exception):
    """The data is outside the shapes handled here: let the pydantic model decide."""


def _name(value: Any) -> str:
    if type(value) is not str or len(value) > 128 or _NAME.match(value) is None:
        raise _NotFastError
    return value


def _version(value: Any) -> int:
    if type(value) is not int or value < 1:
        raise _NotFastError
    return value


def _weights(data: Any) -> Weights:
    if type(data) is not dict:
        raise _NotFastError
    labels = data.get("labels", {})
    if type(labels) is not dict:
        raise _NotFastError
    pairs: list[tuple[str, float]] = []
    total = 0.0
    for label, weight in labels.items():
        if type(label) is not str:
            raise _NotFastError
        if type(weight) is float:
            pass
        elif type(weight) is int:
            weight = float(weight)
        else:
            raise _NotFastError
        if not math.isfinite(weight) or weight < 0 or weight > 1:
            raise _NotFastError
        total += weight
        pairs.append((label, weight))
    if total > 1 + WEIGHT_TOLERANCE:
        raise _NotFastError
    return tuple(pairs)


def _labels(data: Any, latest: tuple[int, str] | None) -> tuple[LabelSpec, ...]:
    if type(data) is not dict:
        raise _NotFastError
    specs: list[LabelSpec] = []
    for label, target in data.items():
        if type(label) is not str or _LABEL.match(label) is None or label in RESERVED_LABELS:
            raise _NotFastError
        if type(target) is not dict:
            raise _NotFastError
        ref = target.get("ref")
        if ref is None:
            if "ref" in target:
                raise _NotFastError
            value = target.get("serialized_value")
            if type(value) is not str:
                raise _NotFastError
            if latest is not None and value == latest[1]:
                value = latest[1]  # one string for the same value (a pinned label and the latest version)
            specs.append((label, _version(target.get("version")), value, None))
        else:
            version = target.get("version")
            if type(ref) is not str or not ref or "serialized_value" in target:
                raise _NotFastError
            if version is not None and type(version) is not int:
                raise _NotFastError
            specs.append((label, version, None, ref))
    return tuple(specs)


def _check_refs(labels: tuple[LabelSpec, ...]) -> None:
    """Every ref reaches a value, ``latest`` or ``code_default`` without a cycle (the model's check)."""
    refs = {label: ref for label, _, _, ref in labels}
    for start, ref in refs.items():
        seen = {start}
        while ref is not None and ref not in RESERVED_LABELS:
            if ref not in refs or ref in seen:
                raise _NotFastError
            seen.add(ref)
            ref = refs[ref]


def _overrides(data: Any, labels: Mapping[str, Any]) -> tuple[OverrideSpec, ...]:
    if type(data) is not list:
        raise _NotFastError
    specs: list[OverrideSpec] = []
    for item in data:
        if type(item) is not dict or type(item.get("conditions")) is not list or "rollout" not in item:
            raise _NotFastError
        try:
            conditions = _CONDITIONS.validate_python(item["conditions"], context=LENIENT)
        except ValidationError:
            raise _NotFastError from None
        weights = _weights(item["rollout"])
        for label, _ in weights:
            if label not in labels:
                raise _NotFastError
        specs.append((tuple(conditions), weights))
    return tuple(specs)


def _parse(data: Any, segments: Mapping[str, ContextPredicate]) -> CompiledVariable:
    if type(data) is not dict:
        raise _NotFastError
    name = _name(data.get("name"))
    latest_data = data.get("latest_version")
    latest: tuple[int, str] | None = None
    if latest_data is not None:
        if type(latest_data) is not dict or type(latest_data.get("serialized_value")) is not str:
            raise _NotFastError
        latest = (_version(latest_data.get("version")), latest_data["serialized_value"])
    labels = _labels(data.get("labels", {}), latest)
    by_name = {spec[0]: spec for spec in labels}
    rollout = _weights(data.get("rollout", {"labels": {}}))
    for label, _ in rollout:
        if label not in by_name:
            raise _NotFastError
    overrides = _overrides(data.get("overrides", []), by_name)
    _check_refs(labels)
    extra: Extra | None = None
    for field in _EXTRA_FIELDS:
        value = data.get(field)
        if value is not None:
            if type(value) is not str:
                raise _NotFastError
            extra = extra or {}
            extra[field] = value
    for field in _SCHEMA_FIELDS:
        value = data.get(field)
        if value is not None:
            if type(value) is not dict:
                raise _NotFastError
            try:
                check_finite(value, field)
            except NonFiniteNumberError:
                raise _NotFastError from None
            extra = extra or {}
            extra[field] = value
    aliases_data = data.get("aliases")
    aliases: tuple[str, ...] | None = None
    if aliases_data is not None:
        if type(aliases_data) is not list:
            raise _NotFastError
        aliases = tuple(_name(alias) for alias in aliases_data)
    external = data.get("external", False)
    if type(external) is not bool:
        raise _NotFastError
    return CompiledVariable(
        name, labels, latest, rollout, overrides, segments, aliases=aliases, external=external, extra=extra
    )


def variable_from_data(data: Any, segments: Mapping[str, ContextPredicate]) -> CompiledVariable | None:
    """The variable described by ``data`` (one value of a config's ``variables``), compiled against
    ``segments``; None when ``data`` is not in a shape this reads (validate it with `VariableConfig` then).
    Raises KeyError when it names a segment missing from ``segments``."""
    try:
        return _parse(data, segments)
    except _NotFastError:
        return None
