"""Segments: reusable audiences, shaped like the LaunchDarkly segments of seed 003.

A context is in a segment when its key is not excluded and it is either included or matches a rule. Rules
are OR-ed, the clauses inside a rule AND-ed, and a clause matches when its attribute matches any of its
``values`` under ``op`` (then ``negate`` inverts it). Context kind ``user`` reads the plain attribute and the
targeting key; another kind ``k`` reads the attribute ``k.<attribute>`` and the key attribute ``k.key``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from setpoint._core import operators as ops

__all__ = ["SEGMENT_OPS", "Segment", "SegmentClause", "SegmentKey", "SegmentRule", "SegmentTarget"]

SegmentKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
"""A segment key: letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit."""

ContextKind = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]

SegmentOp = Literal[
    "in",
    "startsWith",
    "endsWith",
    "contains",
    "matches",
    "greaterThan",
    "greaterThanOrEqual",
    "lessThan",
    "lessThanOrEqual",
    "before",
    "after",
    "semVerEqual",
    "semVerLessThan",
    "semVerGreaterThan",
    "segmentMatch",
]
SEGMENT_OPS: tuple[str, ...] = get_args(SegmentOp)


def _clause_value_predicate(op: str, values: list[Any]) -> ops.Predicate:
    """One predicate over an attribute value that is true when any of ``values`` matches under ``op``."""
    if op == "in":
        return ops.compile_is_in(values)
    if op == "startsWith":
        return ops.compile_starts_with(values)
    if op == "endsWith":
        return ops.compile_ends_with(values)
    if op == "contains":
        return ops.compile_contains(values)
    singles: list[ops.Predicate]
    if op == "matches":
        singles = [ops.compile_regex(_text(v, op)) for v in values]
    elif op in ("greaterThan", "greaterThanOrEqual", "lessThan", "lessThanOrEqual"):
        comparison: ops.Comparison = {
            "greaterThan": "gt",
            "greaterThanOrEqual": "ge",
            "lessThan": "lt",
            "lessThanOrEqual": "le",
        }[op]  # type: ignore[assignment]
        singles = [ops.compile_number(comparison, v) for v in values]
    elif op in ("before", "after"):
        singles = [ops.compile_date(op, v) for v in values]  # type: ignore[arg-type]
    else:
        semver_op: Literal["eq", "lt", "gt"] = {"semVerEqual": "eq", "semVerLessThan": "lt"}.get(op, "gt")  # type: ignore[assignment]
        singles = [ops.compile_semver(semver_op, v) for v in values]
    if len(singles) == 1:
        return singles[0]
    return lambda value: any(p(value) for p in singles)


def _text(value: Any, op: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{op} needs string values, got {value!r}")
    return value


class SegmentClause(BaseModel):
    """One test of a context attribute: ``attribute`` ``op`` any of ``values``."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=False)

    attribute: str = Field(min_length=1, max_length=256)
    op: SegmentOp
    values: list[Any] = Field(min_length=1)
    context_kind: ContextKind = Field(default="user", alias="contextKind")
    negate: bool = False

    _predicate: ops.Predicate | None = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        # Compare the fields only: the compiled predicate (a private attribute) differs per instance.
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _compile(self) -> SegmentClause:
        if self.op == "segmentMatch":
            for value in self.values:
                if not isinstance(value, str):
                    raise ValueError(f"segmentMatch needs segment keys as values, got {value!r}")
            return self
        try:
            self._predicate = _clause_value_predicate(self.op, self.values)
        except ValueError as exc:
            raise ValueError(f"clause on {self.attribute!r} with op {self.op!r}: {exc}") from None
        return self

    @property
    def predicate(self) -> ops.Predicate | None:
        """The compiled value test; None for ``segmentMatch``, which the evaluator resolves."""
        return self._predicate


class SegmentRule(BaseModel):
    """Clauses that must all match."""

    id: str | None = None
    description: str | None = None
    clauses: list[SegmentClause] = Field(min_length=1)


class SegmentTarget(BaseModel):
    """Keys of one context kind included in or excluded from a segment."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=False)

    context_kind: ContextKind = Field(alias="contextKind")
    values: list[str]


class Segment(BaseModel):
    """A reusable audience: included keys, excluded keys (which win) and rules."""

    key: SegmentKey
    name: str = Field(min_length=1, max_length=256)
    description: str | None = None
    tags: list[str] = []
    included: list[str] = []
    """Targeting keys (context kind ``user``) always in the segment, unless excluded."""
    excluded: list[str] = []
    """Targeting keys (context kind ``user``) never in the segment."""
    included_contexts: list[SegmentTarget] = []
    """Included keys of other context kinds."""
    excluded_contexts: list[SegmentTarget] = []
    """Excluded keys of other context kinds."""
    rules: list[SegmentRule] = []

    def referenced_segments(self) -> set[str]:
        """Keys of the segments this one references through ``segmentMatch`` clauses."""
        return {
            str(value)
            for rule in self.rules
            for clause in rule.clauses
            if clause.op == "segmentMatch"
            for value in clause.values
        }
