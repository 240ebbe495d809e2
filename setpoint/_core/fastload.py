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

import re
from collections.abc import Mapping
from operator import itemgetter
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from setpoint._core.evaluator import Extra, LabelSpec, OverrideSpec, PendingVariable, Weights
from setpoint._core.jsonvalues import NonFiniteNumberError, check_finite
from setpoint._core.segments import ContextPredicate
from setpoint.config._conditions import Condition, InSegment, NotInSegment
from setpoint.config._variables import RESERVED_LABELS, WEIGHT_TOLERANCE

__all__ = ["LENIENT", "variable_from_data"]

LENIENT = {"allow_unknown_conditions": True}
"""The validation context of configs received from a server."""

_LABEL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z")  # `LabelName`
_CONDITIONS: TypeAdapter[list[Condition]] = TypeAdapter(list[Condition])
_GOOD_LABELS: set[str] = set()
"""Label names already checked (a project uses a handful of label names across all its variables)."""
_EMPTY: dict[str, Any] = {}
_NO_ROLLOUT: dict[str, Any] = {"labels": {}}
_NO_OVERRIDES: list[Any] = []
_NO_REFERENCES: frozenset[str] = frozenset()
_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("name", None),
    ("latest_version", None),
    ("labels", _EMPTY),
    ("rollout", _NO_ROLLOUT),
    ("overrides", _NO_OVERRIDES),
    ("description", None),
    ("type_name", None),
    ("example", None),
    ("json_schema", None),
    ("template_inputs_schema", None),
    ("aliases", None),
    ("external", False),
)
"""`VariableConfig`'s fields, with their defaults."""
_FIELDS = itemgetter(*(field for field, _ in _DEFAULTS))
_UNSET = (None,) * 6  # description ... aliases all unset
_SHARED: dict[Any, Any] = {}
_SHARED_MAX = 10_000
T = TypeVar("T")


class _NotFastError(Exception):
    """The data is outside the shapes handled here: let the pydantic model decide."""


def _shared(parts: T) -> T:
    """One object for equal parts (rollouts and label refs repeat across a project's variables)."""
    found = _SHARED.get(parts)
    if found is None:
        if len(_SHARED) < _SHARED_MAX:
            _SHARED[parts] = parts
        return parts
    return found  # type: ignore[no-any-return]  # equal to ``parts``, so of its type


def _weights(data: Any, labels: Mapping[str, Any]) -> Weights:
    """A rollout's weights, each in 0..1, summing to at most 1, naming labels that exist."""
    if type(data) is not dict:
        raise _NotFastError
    weights = data.get("labels", _EMPTY)
    if type(weights) is not dict:
        raise _NotFastError
    pairs: list[tuple[str, float]] = []
    total = 0.0
    for label, weight in weights.items():
        if label not in labels:
            raise _NotFastError
        if type(weight) is not float:
            if type(weight) is not int or weight not in (0, 1):
                raise _NotFastError
            weight = float(weight)
        if not 0 <= weight <= 1:  # NaN fails this too; infinity is out of range
            raise _NotFastError
        total += weight
        pairs.append((label, weight))
    if total > 1 + WEIGHT_TOLERANCE:
        raise _NotFastError
    return _shared(tuple(pairs))


def _check_refs(refs: Mapping[str, str], labels: Mapping[str, Any]) -> None:
    """Every ref reaches a label with a value, ``latest`` or ``code_default`` through labels that exist, without
    a cycle (the model's check; ``refs`` maps the ref labels to what they name)."""
    for start, ref in refs.items():
        seen = {start}
        current: str | None = ref
        while current is not None and current not in RESERVED_LABELS:
            if current not in labels or current in seen:
                raise _NotFastError
            seen.add(current)
            current = refs.get(current)  # None: a label with a value


def _overrides(
    data: Any, labels: Mapping[str, Any], segments: Mapping[str, ContextPredicate]
) -> tuple[tuple[OverrideSpec, ...], frozenset[str]]:
    if type(data) is not list:
        raise _NotFastError
    specs: list[OverrideSpec] = []
    references: set[str] = set()
    for item in data:
        if type(item) is not dict or type(item.get("conditions")) is not list or "rollout" not in item:
            raise _NotFastError
        try:
            conditions = _CONDITIONS.validate_python(item["conditions"], context=LENIENT)
        except ValidationError:
            raise _NotFastError from None
        for condition in conditions:
            if isinstance(condition, InSegment | NotInSegment):
                if condition.segment not in segments:
                    raise KeyError(condition.segment)
                references.add(condition.segment)
        specs.append((tuple(conditions), _weights(item["rollout"], labels)))
    return tuple(specs), frozenset(references) if references else _NO_REFERENCES


def _extra_fields(fields: tuple[Any, ...]) -> tuple[Extra | None, tuple[str, ...] | None]:
    """The fields evaluation does not read, checked, and the aliases (from `_FIELDS`'s values)."""
    description, type_name, example, json_schema, inputs_schema, aliases_data, external = fields[5:]
    extra: Extra | None = None
    for field, value in (("description", description), ("type_name", type_name), ("example", example)):
        if value is not None:
            if type(value) is not str:
                raise _NotFastError
            extra = extra or {}
            extra[field] = value
    for field, value in (("json_schema", json_schema), ("template_inputs_schema", inputs_schema)):
        if value is not None:
            if type(value) is not dict:
                raise _NotFastError
            try:
                check_finite(value, field)
            except NonFiniteNumberError:
                raise _NotFastError from None
            extra = extra or {}
            extra[field] = value
    aliases: tuple[str, ...] | None = None
    if aliases_data is not None:
        if type(aliases_data) is not list:
            raise _NotFastError
        for alias in aliases_data:
            if type(alias) is not str or len(alias) > 128 or not alias.isascii() or not alias.isidentifier():
                raise _NotFastError
        aliases = tuple(aliases_data)
    if type(external) is not bool:
        raise _NotFastError
    return extra, aliases


def variable_from_data(data: Any, segments: Mapping[str, ContextPredicate]) -> PendingVariable | None:
    """The variable described by ``data`` (one value of a config's ``variables``), validated, to be compiled
    against ``segments`` on first use; None when ``data`` is not in a shape this reads (validate it with
    `VariableConfig` then). Raises KeyError when it names a segment missing from ``segments``."""
    # One function, few calls: this runs once per variable of every config received.
    try:
        if type(data) is not dict:
            raise _NotFastError
        try:
            fields = _FIELDS(data)  # one C call for the usual case: a server sends every field
        except KeyError:
            fields = tuple(data.get(field, default) for field, default in _DEFAULTS)
        name, latest_data, labels_data, rollout_data, overrides_data = fields[:5]
        # `VariableName`: for ASCII text, `isidentifier` is exactly [A-Za-z_][A-Za-z0-9_]*
        if type(name) is not str or len(name) > 128 or not name.isascii() or not name.isidentifier():
            raise _NotFastError
        latest: tuple[int, str] | None = None
        if latest_data is not None:
            if type(latest_data) is not dict:
                raise _NotFastError
            version = latest_data.get("version")
            value = latest_data.get("serialized_value")
            if type(version) is not int or version < 1 or type(value) is not str:
                raise _NotFastError
            latest = (version, value)
        if type(labels_data) is not dict:
            raise _NotFastError
        labels: list[LabelSpec] = []
        refs: dict[str, str] | None = None
        for label, target in labels_data.items():
            if label not in _GOOD_LABELS:
                if type(label) is not str or _LABEL.match(label) is None or label in RESERVED_LABELS:
                    raise _NotFastError
                if len(_GOOD_LABELS) < 10_000:
                    _GOOD_LABELS.add(label)
            if type(target) is not dict:
                raise _NotFastError
            version = target.get("version")
            ref = target.get("ref")
            if ref is None:
                value = target.get("serialized_value")
                if type(value) is not str or type(version) is not int or version < 1 or "ref" in target:
                    raise _NotFastError
                if latest is not None and value == latest[1]:
                    value = latest[1]  # one string for the same value (a pinned label and the latest version)
                labels.append((label, version, value, None))
            else:
                if type(ref) is not str or not ref or "serialized_value" in target:
                    raise _NotFastError
                if version is not None and type(version) is not int:
                    raise _NotFastError
                spec = (label, version, None, ref)
                labels.append(_shared(spec))
                if ref not in RESERVED_LABELS:  # a ref to `latest` or `code_default` needs no more checking
                    if refs is None:
                        refs = {}
                    refs[label] = ref
        if refs is not None:
            _check_refs(refs, labels_data)
        rollout = _weights(rollout_data, labels_data)
        overrides: tuple[OverrideSpec, ...] = ()
        references = _NO_REFERENCES
        if overrides_data:
            overrides, references = _overrides(overrides_data, labels_data, segments)
        elif type(overrides_data) is not list:
            raise _NotFastError
        extra: Extra | None = None
        aliases: tuple[str, ...] | None = None
        external = fields[11]
        if fields[5:11] != _UNSET or external is not False:
            extra, aliases = _extra_fields(fields)
        return PendingVariable(
            name, aliases, references, segments, (tuple(labels), latest, rollout, overrides, external, extra)
        )
    except _NotFastError:
        return None
