"""The evaluation engine: (compiled config, targeting key, attributes) -> `Evaluation`. Pure; no I/O.

`compile_config` does all the work that does not depend on the caller once per config: label refs are
followed, rollouts become cumulative bounds, conditions become predicates, segments become frozensets,
and every possible answer is built in advance, so `evaluate` only tests conditions, hashes the key and
returns one of those prebuilt answers.

A compiled variable keeps its parts as tuples, not a second (pydantic) copy of the config; the SDK builds
them straight from the JSON it receives (`setpoint._core.fastload`). After a change, only what changed is
compiled again: the changed variables, and for a changed segment the segments that reference it and the
variables that name any of those (`CompiledConfig.replaced`, `updated`).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterator, Mapping, Sequence
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
from setpoint.config._segments import Segment
from setpoint.config._variables import (
    WEIGHT_TOLERANCE,
    LabeledValue,
    LabelRef,
    LatestVersion,
    Rollout,
    RolloutOverride,
    VariableConfig,
    VariablesConfig,
)

__all__ = [
    "AnyVariable",
    "CompiledConfig",
    "CompiledVariable",
    "Detail",
    "Evaluation",
    "EvaluationReason",
    "PendingVariable",
    "affected_segments",
    "compile_config",
]

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


LabelSpec = tuple[str, int | None, str | None, str | None]
"""(label, version, serialized value, ref): an inline value has a value and no ref; a ref has a ref."""
Weights = tuple[tuple[str, float], ...]
"""A rollout's (label, weight) pairs, in listed order."""
OverrideSpec = tuple[tuple[Any, ...], Weights]
"""An override: its condition models and its rollout's weights."""
Extra = dict[str, Any]
"""The fields evaluation does not read (description, json_schema, type_name, example, template_inputs_schema)."""
Parts = tuple[tuple[LabelSpec, ...], tuple[int, str] | None, Weights, tuple[OverrideSpec, ...], bool, Extra | None]
"""A variable's labels, latest version, rollout, overrides, ``external`` and extra fields."""

_NO_SEGMENTS: frozenset[str] = frozenset()


class _CompiledRollout:
    """Cumulative bounds over the labels in listed order, each with its prebuilt answer."""

    __slots__ = ("bounds", "constant", "outcomes", "prefix", "remainder")

    def __init__(
        self, prefix: str, bounds: tuple[float, ...], outcomes: tuple[Evaluation, ...], remainder: Evaluation | None
    ) -> None:
        self.prefix = prefix
        self.bounds = bounds
        self.outcomes = outcomes
        self.remainder = remainder
        """The code-default answer; None when the labels cover the whole bucket space (it is unreachable)."""
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
        assert self.remainder is not None  # the last bound is infinite when there is no remainder
        return self.remainder


_UNUSED_ROLLOUT = _CompiledRollout("", (), (), None)
"""The default rollout of a static variable: `evaluate` answers before reaching it."""


def _compile_rollout(
    name: str,
    prefix: str,
    weights: Weights,
    targets: Mapping[str, tuple[int | None, str | None]],
    index: int | None,
    rule: str | None,
) -> _CompiledRollout:
    bounds: list[float] = []
    outcomes: list[Evaluation] = []
    total = 0.0
    detail: Detail = "rollout" if index is None else "override"
    for label, weight in weights:
        if weight <= 0:
            continue
        total += weight
        version, value = targets[label]
        if value is None:
            outcome = Evaluation(name, label, None, None, "code_default", "no_value", index, rule)
        else:
            outcome = Evaluation(name, label, version, value, "resolved", detail, index, rule)
        bounds.append(total)
        outcomes.append(outcome)
    remainder: Evaluation | None = None
    if bounds and total >= 1 - WEIGHT_TOLERANCE:
        bounds[-1] = float("inf")  # float sums like 0.1 + 0.2 + 0.7 must not leave a sliver of remainder
        if len(bounds) == 1:
            bounds[0] = float("inf")
    else:
        remainder_detail: Detail = "rollout_remainder" if index is None else "override_remainder"
        remainder = Evaluation(name, None, None, None, "code_default", remainder_detail, index, rule)
    return _CompiledRollout(prefix, tuple(bounds), tuple(outcomes), remainder)


def _follow(
    labels: Mapping[str, tuple[int | None, str | None, str | None]], latest: tuple[int, str] | None, label: str
) -> tuple[int | None, str | None]:
    """(version, serialized value) that ``label`` finally reaches; value None means the code default."""
    current = label
    for _ in range(len(labels) + 1):
        version, value, ref = labels[current]
        if ref is None:
            return version, value
        if ref == "code_default":
            return None, None
        if ref == "latest":
            return latest if latest is not None else (None, None)
        current = ref
    return None, None  # unreachable for a validated config (cycles are rejected)


class CompiledVariable:
    """One variable, compiled: everything `evaluate` needs, and nothing it has to compute twice.

    It keeps the variable's parts as plain tuples (not a second, pydantic copy of the config): ``config``
    rebuilds the `VariableConfig` when asked (or returns the one it was compiled from, see `from_model`).
    """

    __slots__ = (
        "_default",
        "_explicit",
        "_extra",
        "_labels",
        "_latest",
        "_model",
        "_override_specs",
        "_overrides",
        "_rollout",
        "aliases",
        "external",
        "is_static",
        "name",
        "segment_references",
        "static_result",
    )

    def __init__(
        self,
        name: str,
        labels: tuple[LabelSpec, ...],
        latest: tuple[int, str] | None,
        rollout: Weights,
        overrides: tuple[OverrideSpec, ...],
        segments: Mapping[str, ContextPredicate],
        *,
        aliases: tuple[str, ...] | None = None,
        external: bool = False,
        extra: Extra | None = None,
        model: VariableConfig | None = None,
    ) -> None:
        """Compile validated parts (see `from_model`; `setpoint._core.fastload` builds them from JSON).
        Raises KeyError when an override names a segment missing from ``segments``."""
        self.name = name
        self._labels = labels
        self._latest = latest
        self._rollout = rollout
        self._override_specs = overrides
        self.aliases = aliases
        self.external = external
        self._extra = extra
        self._model = model
        self._explicit: dict[str, Evaluation] | None = None
        references = {
            condition.segment
            for conditions, _ in overrides
            for condition in conditions
            if isinstance(condition, InSegment | NotInSegment)
        }
        self.segment_references = frozenset(references) if references else _NO_SEGMENTS
        """Keys of the segments the override conditions name (directly)."""
        targets = self._targets()
        prefix = f"{name}:"
        default = _compile_rollout(name, prefix, rollout, targets, None, None)
        compiled: list[tuple[tuple[ContextPredicate, ...], _CompiledRollout]] = []
        for index, (conditions, weights) in enumerate(overrides):
            predicates = tuple(_condition_predicate(c, segments) for c in conditions)
            rule = " and ".join(_condition_text(c) for c in conditions) or "no conditions"
            compiled.append((predicates, _compile_rollout(name, prefix, weights, targets, index, rule)))
            if not predicates:
                break  # an override without conditions always matches: later ones are unreachable
        self._overrides = tuple(compiled)
        self.static_result: Evaluation | None = default.constant if not compiled else None
        self._default = default if self.static_result is None else _UNUSED_ROLLOUT
        self.is_static = self.static_result is not None
        """True when the answer depends on neither the targeting key nor the attributes."""

    @classmethod
    def from_model(cls, config: VariableConfig, segments: Mapping[str, ContextPredicate]) -> CompiledVariable:
        """Compile a validated `VariableConfig` (kept, and returned by ``config``)."""
        latest = config.latest_version
        labels = tuple(
            (label, target.version, target.serialized_value, None)
            if isinstance(target, LabeledValue)
            else (label, target.version, None, target.ref)
            for label, target in config.labels.items()
        )
        return cls(
            config.name,
            labels,
            (latest.version, latest.serialized_value) if latest is not None else None,
            tuple(config.rollout.labels.items()),
            tuple((tuple(o.conditions), tuple(o.rollout.labels.items())) for o in config.overrides),
            segments,
            aliases=tuple(config.aliases) if config.aliases is not None else None,
            external=config.external,
            model=config,
        )

    def recompiled(self, segments: Mapping[str, ContextPredicate]) -> CompiledVariable:
        """The same variable compiled against other segment predicates (after a segment changed)."""
        return CompiledVariable(
            self.name,
            self._labels,
            self._latest,
            self._rollout,
            self._override_specs,
            segments,
            aliases=self.aliases,
            external=self.external,
            extra=self._extra,
            model=self._model,
        )

    def _targets(self) -> dict[str, tuple[int | None, str | None]]:
        by_name = {label: (version, value, ref) for label, version, value, ref in self._labels}
        return {label: _follow(by_name, self._latest, label) for label in by_name}

    @property
    def config(self) -> VariableConfig:
        """The variable's config (rebuilt from the compiled parts unless compiled from a model)."""
        if self._model is not None:
            return self._model
        labels: dict[str, LabeledValue | LabelRef] = {}
        for label, version, value, ref in self._labels:
            if ref is None:
                labels[label] = LabeledValue.model_construct(version=version, serialized_value=value)  # type: ignore[arg-type]  # an inline label has both
            else:
                labels[label] = LabelRef.model_construct(version=version, ref=ref)
        latest = self._latest
        return VariableConfig.model_construct(
            name=self.name,
            labels=labels,
            rollout=Rollout.model_construct(labels=dict(self._rollout)),
            overrides=[
                RolloutOverride.model_construct(
                    conditions=list(conditions), rollout=Rollout.model_construct(labels=dict(weights))
                )
                for conditions, weights in self._override_specs
            ],
            latest_version=LatestVersion.model_construct(version=latest[0], serialized_value=latest[1])
            if latest is not None
            else None,
            aliases=list(self.aliases) if self.aliases is not None else None,
            external=self.external,
            **(self._extra or {}),
        )

    def conditions(self) -> Iterator[Any]:
        """Every condition of every override (the models), in order."""
        for conditions, _ in self._override_specs:
            yield from conditions

    def values(self) -> Iterator[str]:
        """Every serialized value the variable holds (its labels' and its latest version's)."""
        for _, _, value, _ in self._labels:
            if value is not None:
                yield value
        if self._latest is not None:
            yield self._latest[1]

    def rollout_weights(self, override_index: int | None = None) -> Weights:
        """The (label, weight) pairs of the default rollout, or of override ``override_index``'s rollout."""
        return self._rollout if override_index is None else self._override_specs[override_index][1]

    def evaluate(
        self, targeting_key: str | None, attributes: Mapping[str, Any] | None, label: str | None = None
    ) -> Evaluation:
        """Choose what to serve for this key and these attributes (``label`` forces a label with a value)."""
        if label is not None:
            explicit = self._explicit
            if explicit is None:  # built on first use: few callers ever force a label
                explicit = {
                    name: Evaluation(self.name, name, version, value, "resolved", "explicit_label")
                    for name, (version, value) in self._targets().items()
                    if value is not None
                }
                self._explicit = explicit
            found = explicit.get(label)
            if found is not None:
                return found
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


class PendingVariable:
    """A validated variable, compiled on first use (`CompiledConfig.get`): a load compiles nothing it does not
    serve, and keeps only the parts."""

    __slots__ = ("_parts", "aliases", "name", "segment_references", "segments")

    def __init__(
        self,
        name: str,
        aliases: tuple[str, ...] | None,
        segment_references: frozenset[str],
        segments: Mapping[str, ContextPredicate],
        parts: Parts,
    ) -> None:
        """``parts`` as `CompiledVariable` takes them; ``segment_references`` must be the segments the overrides
        name, and every one of them must be in ``segments`` (compiling then never fails)."""
        self.name = name
        self.aliases = aliases
        self.segment_references = segment_references
        self.segments = segments
        self._parts = parts

    def compile(self) -> CompiledVariable:
        """The compiled variable."""
        labels, latest, rollout, overrides, external, extra = self._parts
        return CompiledVariable(
            self.name,
            labels,
            latest,
            rollout,
            overrides,
            self.segments,
            aliases=self.aliases,
            external=external,
            extra=extra,
        )

    def recompiled(self, segments: Mapping[str, ContextPredicate]) -> PendingVariable:
        """The same variable, to be compiled against other segment predicates."""
        return PendingVariable(self.name, self.aliases, self.segment_references, segments, self._parts)

    @property
    def config(self) -> VariableConfig:
        """The variable's config (rebuilt from the parts)."""
        return self.compile().config


AnyVariable = CompiledVariable | PendingVariable
"""What a compiled config holds per name: compiled, or validated and compiled on first use."""


def affected_segments(models: Mapping[str, Segment], changed: Collection[str]) -> frozenset[str]:
    """``changed`` and every segment that references one of them, directly or through other segments."""
    referrers: dict[str, list[str]] = {}
    for key, segment in models.items():
        for child in segment.referenced_segments():
            referrers.setdefault(child, []).append(key)
    affected = set(changed)
    pending = list(changed)
    while pending:
        for parent in referrers.get(pending.pop(), ()):
            if parent not in affected:
                affected.add(parent)
                pending.append(parent)
    return frozenset(affected)


class CompiledConfig:
    """A whole `VariablesConfig`, compiled. Immutable; build a new one when the config changes (`updated`,
    `replaced` reuse what did not change)."""

    __slots__ = ("_config", "_variables", "recompiled", "segment_models", "segments")

    def __init__(self, config: VariablesConfig) -> None:
        self._config: VariablesConfig | None = config
        self.segment_models: Mapping[str, Segment] = config.segments
        """The segments (models; few, kept as they are)."""
        self.segments = compile_segments(config.segments)
        variables: dict[str, AnyVariable] = {
            name: CompiledVariable.from_model(variable, self.segments) for name, variable in config.variables.items()
        }
        self._variables = _with_aliases(variables)
        self.recompiled = len(config.variables)
        """How many variables were compiled (or validated, to be compiled on first use) to build this: all of them,
        or what `replaced` / `updated` had to redo."""

    @classmethod
    def assemble(
        cls,
        variables: dict[str, AnyVariable],
        segment_models: Mapping[str, Segment],
        segments: dict[str, ContextPredicate],
    ) -> CompiledConfig:
        """A compiled config of parts compiled elsewhere (``variables`` by name, without aliases; checked to
        fit together by the caller). Keeps no `VariablesConfig`: ``config`` rebuilds one when asked."""
        new = object.__new__(cls)
        new._config = None
        new.segment_models = segment_models
        new.segments = segments
        new._variables = _with_aliases(variables)
        new.recompiled = len(variables)
        return new

    @property
    def config(self) -> VariablesConfig:
        """The config (the one compiled, or rebuilt from the compiled parts: O(project), off the hot path)."""
        if self._config is not None:
            return self._config
        return VariablesConfig.model_construct(
            variables={name: variable.config for name, variable in self.items()}, segments=dict(self.segment_models)
        )

    def items(self) -> Iterator[tuple[str, AnyVariable]]:
        """(name, variable) for every variable, without aliases (not compiled by this)."""
        for name, variable in self._variables.items():
            if variable.name == name:
                yield name, variable

    def segments_after(
        self, models: Mapping[str, Segment], changed: Collection[str]
    ) -> tuple[dict[str, ContextPredicate], frozenset[str]]:
        """Segment predicates for ``models`` where the segments ``changed`` (changed, added or removed) are
        compiled again with the segments that reference them; the others are reused. Returns them and the keys
        compiled again."""
        if not changed:
            return self.segments, _NO_SEGMENTS
        affected = affected_segments(models, changed)
        return compile_segments(models, reuse=self.segments, redo=affected), affected

    def replaced(
        self,
        variables: Mapping[str, AnyVariable],
        removed: Collection[str],
        segment_models: Mapping[str, Segment],
        segments: dict[str, ContextPredicate],
        affected: Collection[str],
        config: VariablesConfig | None = None,
    ) -> CompiledConfig:
        """This config with ``variables`` (compiled against ``segments``) added or replacing theirs, ``removed``
        gone, and the variables that name a segment in ``affected`` compiled again: nothing else is compiled."""
        new = object.__new__(CompiledConfig)
        new._config = config
        new.segment_models = segment_models
        new.segments = segments
        compiled = dict(self._variables)  # a C-level copy; then only what changed is touched
        redo: dict[str, AnyVariable] = dict(variables)
        if affected:
            for name, variable in self.items():
                if name not in redo and name not in removed and not variable.segment_references.isdisjoint(affected):
                    redo[name] = variable.recompiled(segments)
        for name in (*redo, *removed):
            previous = self._variables.get(name)
            if previous is not None and previous.name == name:
                if name in removed:
                    del compiled[name]
                for alias in previous.aliases or ():
                    if compiled.get(alias) is previous:
                        del compiled[alias]
        for name, variable in redo.items():
            compiled[name] = variable  # a variable compiled again keeps its place in `names()`
        for variable in redo.values():
            for alias in variable.aliases or ():
                compiled.setdefault(alias, variable)
        new._variables = compiled
        new.recompiled = len(redo)
        return new

    def updated(self, config: VariablesConfig, variables: Collection[str], segments: Collection[str]) -> CompiledConfig:
        """``config`` compiled, reusing this compiled config for what did not change: only the variables named
        in ``variables`` (changed, added or removed) are compiled again, and, when ``segments`` changed, those
        segments, the segments that reference them and the variables that name any of these."""
        predicates, affected = self.segments_after(config.segments, segments)
        changed = {
            name: CompiledVariable.from_model(config.variables[name], predicates)
            for name in variables
            if name in config.variables
        }
        removed = [name for name in variables if name not in config.variables]
        return self.replaced(changed, removed, config.segments, predicates, affected, config)

    def get(self, name: str) -> CompiledVariable | None:
        """The compiled variable called ``name`` (or aliased so), compiled now if it was not yet."""
        found = self._variables.get(name)
        if found is None or isinstance(found, CompiledVariable):
            return found
        return self._compile(found)

    def _compile(self, pending: PendingVariable) -> CompiledVariable:
        compiled = pending.compile()
        variables = self._variables
        for key in (pending.name, *(pending.aliases or ())):
            if variables.get(key) is pending:  # two threads may both compile it: either result is the same
                variables[key] = compiled
        return compiled

    def is_compiled(self, name: str) -> bool:
        """Whether ``name`` is compiled already (variables received from a server are compiled on first use)."""
        return isinstance(self._variables.get(name), CompiledVariable)

    def names(self) -> list[str]:
        """The names of the variables in the config (without aliases)."""
        return [name for name, _ in self.items()]

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
        if not isinstance(variable, CompiledVariable):
            variable = self._compile(variable)
        return variable.evaluate(targeting_key, attributes, label)


def _with_aliases(variables: dict[str, AnyVariable]) -> dict[str, AnyVariable]:
    for variable in list(variables.values()):
        for alias in variable.aliases or ():
            variables.setdefault(alias, variable)
    return variables


def compile_config(config: VariablesConfig) -> CompiledConfig:
    """Compile a validated config for evaluation."""
    return CompiledConfig(config)
