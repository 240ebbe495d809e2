"""The evaluation engine: (compiled config, targeting key, attributes) -> `Evaluation`. Pure; no I/O.

`compile_config` does all the work that does not depend on the caller once per config: label refs are
followed, rollouts become cumulative bounds, conditions become predicates, segments become frozensets,
and every possible answer is built in advance, so `evaluate` only tests conditions, hashes the key and
returns one of those prebuilt answers.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from setpoint._core.bucketing import bucket_with_prefix
from setpoint._core.segments import ContextPredicate, compile_segments
from setpoint.config._conditions import (
    InSegment,
    KeyIsNotPresent,
    KeyIsPresent,
    NotInSegment,
    UnknownCondition,
    ValueConditionModel,
)
from setpoint.config._variables import (
    WEIGHT_TOLERANCE,
    LabeledValue,
    LabelRef,
    Rollout,
    VariableConfig,
    VariablesConfig,
)

__all__ = ["CompiledConfig", "CompiledVariable", "Detail", "Evaluation", "EvaluationReason", "compile_config"]

EvaluationReason = Literal["resolved", "code_default"]
Detail = Literal[
    "explicit_label",
    "override",
    "rollout",
    "override_remainder",
    "rollout_remainder",
    "no_value",
    "unknown_variable",
]
_EMPTY: Mapping[str, Any] = {}
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What the configuration says a variable should serve. Prebuilt per outcome, so treat as immutable."""

    name: str
    label: str | None
    """The label the rollout (or ``label=``) chose; None when the code default is served."""
    version: int | None
    """The version finally reached after following refs; None when the code default is served."""
    serialized_value: str | None
    """The JSON value to serve; None means: serve the code default."""
    reason: EvaluationReason
    detail: Detail
    override_index: int | None = None
    """Index of the override whose conditions matched, if any."""
    rule: str | None = None
    """Human-readable text of the matching override's conditions."""

    def explain(self) -> str:
        """One sentence a human can read, saying what was served and why."""
        served = (
            f"label {self.label!r} (version {self.version})"
            if self.serialized_value is not None
            else "the code default"
        )
        if self.detail == "unknown_variable":
            return f"{self.name!r} is not in the configuration, so the code default is served."
        if self.detail == "explicit_label":
            return f"label {self.label!r} was requested explicitly; serving {served}."
        if self.detail == "no_value":
            return f"label {self.label!r} was chosen but points at no value, so the code default is served."
        if self.override_index is not None:
            head = f"override #{self.override_index + 1} matched ({self.rule})"
            if self.detail == "override_remainder":
                return f"{head}; the key fell in its rollout's remainder, so the code default is served."
            return f"{head}; its rollout chose {served}."
        if self.detail == "rollout_remainder":
            return (
                "no override matched; the key fell in the default rollout's remainder, so the code default is served."
            )
        return f"no override matched; the default rollout chose {served}."


def _condition_text(condition: Any) -> str:
    kind = condition.kind
    subject = getattr(condition, "attribute", None) or getattr(condition, "segment", "")
    literal = ""
    for field in ("value", "values", "pattern"):
        if hasattr(condition, field):
            text = repr(getattr(condition, field))
            literal = " " + (text if len(text) <= 60 else text[:57] + "...")
            break
    negation = "not " if condition.negate else ""
    return f"{negation}{subject} {kind}{literal}"


def _condition_predicate(condition: Any, segments: Mapping[str, ContextPredicate]) -> ContextPredicate:
    flip = condition.inverted != condition.negate
    if isinstance(condition, UnknownCondition):
        return lambda key, attrs: False
    if isinstance(condition, InSegment | NotInSegment):
        member = segments[condition.segment]
        return (lambda key, attrs: not member(key, attrs)) if flip else member
    attribute = condition.attribute
    if isinstance(condition, KeyIsPresent | KeyIsNotPresent):
        return (lambda key, attrs: attribute not in attrs) if flip else (lambda key, attrs: attribute in attrs)
    assert isinstance(condition, ValueConditionModel)
    test = condition.predicate
    if flip:

        def negative(key: str | None, attrs: Mapping[str, Any]) -> bool:
            value = attrs.get(attribute, _MISSING)
            return value is _MISSING or not test(value)

        return negative

    def positive(key: str | None, attrs: Mapping[str, Any]) -> bool:
        value = attrs.get(attribute, _MISSING)
        return value is not _MISSING and test(value)

    return positive


class _CompiledRollout:
    """Cumulative bounds over the labels in listed order, each with its prebuilt answer."""

    __slots__ = ("bounds", "constant", "outcomes", "prefix", "remainder")

    def __init__(
        self, name: str, bounds: tuple[float, ...], outcomes: tuple[Evaluation, ...], remainder: Evaluation
    ) -> None:
        self.prefix = f"{name}:"
        self.bounds = bounds
        self.outcomes = outcomes
        self.remainder = remainder
        self.constant: Evaluation | None = None
        if not bounds:
            self.constant = remainder
        elif bounds[0] == float("inf"):
            self.constant = outcomes[0]

    def pick(self, key: str | None) -> Evaluation:
        if self.constant is not None:
            return self.constant
        r = bucket_with_prefix(self.prefix, key) if key is not None else random.random()
        for bound, outcome in zip(self.bounds, self.outcomes, strict=True):
            if r < bound:
                return outcome
        return self.remainder


class CompiledVariable:
    """One variable, compiled: everything `evaluate` needs, and nothing it has to compute twice."""

    __slots__ = ("_default", "_explicit", "_overrides", "_targets", "config", "is_static", "name", "static_result")

    def __init__(self, config: VariableConfig, segments: Mapping[str, ContextPredicate]) -> None:
        self.name = config.name
        self.config = config
        self._targets = {label: _follow(config, label) for label in config.labels}
        self._explicit = {
            label: Evaluation(config.name, label, version, value, "resolved", "explicit_label")
            for label, (version, value) in self._targets.items()
            if value is not None
        }
        self._default = self._compile_rollout(config.rollout, None, None)
        overrides: list[tuple[tuple[ContextPredicate, ...], _CompiledRollout]] = []
        for index, override in enumerate(config.overrides):
            predicates = tuple(_condition_predicate(c, segments) for c in override.conditions)
            rule = " and ".join(_condition_text(c) for c in override.conditions) or "no conditions"
            overrides.append((predicates, self._compile_rollout(override.rollout, index, rule)))
            if not predicates:
                break  # an override without conditions always matches: later ones are unreachable
        self._overrides = tuple(overrides)
        self.static_result: Evaluation | None = self._default.constant if not self._overrides else None
        self.is_static = self.static_result is not None
        """True when the answer depends on neither the targeting key nor the attributes."""

    def _compile_rollout(self, rollout: Rollout, index: int | None, rule: str | None) -> _CompiledRollout:
        bounds: list[float] = []
        outcomes: list[Evaluation] = []
        total = 0.0
        weights = [(label, weight) for label, weight in rollout.labels.items() if weight > 0]
        for label, weight in weights:
            total += weight
            version, value = self._targets[label]
            detail: Detail = "rollout" if index is None else "override"
            if value is None:
                outcome = Evaluation(self.name, label, None, None, "code_default", "no_value", index, rule)
            else:
                outcome = Evaluation(self.name, label, version, value, "resolved", detail, index, rule)
            bounds.append(total)
            outcomes.append(outcome)
        if bounds and total >= 1 - WEIGHT_TOLERANCE:
            bounds[-1] = float("inf")  # float sums like 0.1 + 0.2 + 0.7 must not leave a sliver of remainder
            if len(bounds) == 1:
                bounds[0] = float("inf")
        remainder_detail: Detail = "rollout_remainder" if index is None else "override_remainder"
        remainder = Evaluation(self.name, None, None, None, "code_default", remainder_detail, index, rule)
        return _CompiledRollout(self.name, tuple(bounds), tuple(outcomes), remainder)

    def evaluate(
        self, targeting_key: str | None, attributes: Mapping[str, Any] | None, label: str | None = None
    ) -> Evaluation:
        """Choose what to serve for this key and these attributes (``label`` forces a label with a value)."""
        if label is not None:
            explicit = self._explicit.get(label)
            if explicit is not None:
                return explicit
        if self.static_result is not None:
            return self.static_result
        attrs = _EMPTY if attributes is None else attributes
        for predicates, rollout in self._overrides:
            if _all_match(predicates, targeting_key, attrs):
                return rollout.pick(targeting_key)
        return self._default.pick(targeting_key)


def _all_match(predicates: Sequence[ContextPredicate], key: str | None, attrs: Mapping[str, Any]) -> bool:
    try:
        for predicate in predicates:
            if not predicate(key, attrs):
                return False
    except Exception:  # an attribute value no operator can handle (e.g. an unhashable object) never matches
        return False
    return True


def _follow(config: VariableConfig, label: str) -> tuple[int | None, str | None]:
    """(version, serialized value) that ``label`` finally reaches; value None means the code default."""
    target: LabeledValue | LabelRef = config.labels[label]
    for _ in range(len(config.labels) + 1):
        if isinstance(target, LabeledValue):
            return target.version, target.serialized_value
        if target.ref == "code_default":
            return None, None
        if target.ref == "latest":
            latest = config.latest_version
            return (latest.version, latest.serialized_value) if latest is not None else (None, None)
        target = config.labels[target.ref]
    return None, None  # unreachable for a validated config (cycles are rejected)


class CompiledConfig:
    """A whole `VariablesConfig`, compiled. Immutable; build a new one when the config changes."""

    __slots__ = ("_variables", "config", "recompiled", "segments")

    def __init__(self, config: VariablesConfig) -> None:
        self.config = config
        self.segments = compile_segments(config.segments)
        variables: dict[str, CompiledVariable] = {}
        for name, variable in config.variables.items():
            variables[name] = CompiledVariable(variable, self.segments)
        self._variables = _with_aliases(config, variables)
        self.recompiled = len(config.variables)
        """How many variables were compiled to build this (all of them, or what `updated` had to redo)."""

    def updated(self, config: VariablesConfig, variables: Collection[str], segments: Collection[str]) -> CompiledConfig:
        """``config`` compiled, reusing this compiled config for what did not change: only the variables named
        in ``variables`` (changed, added or removed) are compiled again, and, when ``segments`` changed, the
        segments and the variables whose overrides name a segment."""
        new = object.__new__(CompiledConfig)
        new.config = config
        new.segments = compile_segments(config.segments) if segments else self.segments
        redo = set(variables)
        if segments:
            redo.update(name for name, variable in config.variables.items() if variable.segment_references())
        compiled = dict(self._variables)  # a C-level copy; then only what changed is touched
        for name in redo:
            previous = self._variables.get(name)
            if previous is not None and previous.name == name:
                compiled.pop(name, None)
                for alias in previous.config.aliases or ():
                    if compiled.get(alias) is previous:
                        del compiled[alias]
        count = 0
        for name in redo:
            variable = config.variables.get(name)
            if variable is None:
                continue
            compiled[name] = CompiledVariable(variable, new.segments)
            count += 1
        for name in redo:
            variable = config.variables.get(name)
            for alias in (variable.aliases or ()) if variable is not None else ():
                compiled.setdefault(alias, compiled[name])
        new._variables = compiled
        new.recompiled = count
        return new

    def get(self, name: str) -> CompiledVariable | None:
        """The compiled variable called ``name`` (or aliased so)."""
        return self._variables.get(name)

    def names(self) -> list[str]:
        """The names of the variables in the config (without aliases)."""
        return list(self.config.variables)

    def evaluate(
        self,
        name: str,
        targeting_key: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        *,
        label: str | None = None,
    ) -> Evaluation:
        """Evaluate variable ``name``; an unknown name gets the code default with detail ``unknown_variable``."""
        variable = self._variables.get(name)
        if variable is None:
            return Evaluation(name, None, None, None, "code_default", "unknown_variable")
        return variable.evaluate(targeting_key, attributes, label)


def _with_aliases(config: VariablesConfig, variables: dict[str, CompiledVariable]) -> dict[str, CompiledVariable]:
    for variable in config.variables.values():
        for alias in variable.aliases or ():
            variables.setdefault(alias, variables[variable.name])
    return variables


def compile_config(config: VariablesConfig) -> CompiledConfig:
    """Compile a validated config for evaluation."""
    return CompiledConfig(config)
