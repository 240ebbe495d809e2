"""Segments: reusable audiences, shaped like the LaunchDarkly segments of seed 003, evaluated as LaunchDarkly does.

A context is in a segment when its key is included, else when it is not excluded and matches a rule (included
keys are checked before excluded ones, as in LaunchDarkly). Rules are OR-ed, the clauses inside a rule AND-ed,
and a clause matches when its attribute matches any of its ``values`` under ``op`` (then ``negate`` inverts it);
a clause whose attribute is missing or null, or whose context kind the context lacks, never matches, whatever
``negate`` says. A rule with a ``weight`` then keeps only that share of the contexts (LaunchDarkly's sha1
bucketing on the segment key and ``salt``). Context kind ``user`` reads the plain attribute and the targeting
key; another kind ``k`` reads the attribute ``k.<attribute>`` and the key attribute ``k.key``. An attribute
starting with ``/`` is a reference into structured values (``/address/city``, ``~1`` for ``/`` and ``~0`` for
``~``); the attribute ``kind`` tests the context's kinds.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator

from setpoint._core import operators as ops
from setpoint._core.jsonvalues import check_finite, lenient_context

__all__ = [
    "SEGMENT_OPS",
    "Segment",
    "SegmentClause",
    "SegmentKey",
    "SegmentRule",
    "SegmentTarget",
    "parse_attribute_ref",
]

MAX_WEIGHT = 100_000
"""A segment rule's ``weight`` is in thousandths of a percent, as in LaunchDarkly: 100000 keeps everyone."""

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
        singles = [ops.compile_rfc3339(op, v) for v in values]  # type: ignore[arg-type]
    else:
        semver_op: Literal["eq", "lt", "gt"] = {"semVerEqual": "eq", "semVerLessThan": "lt"}.get(op, "gt")  # type: ignore[assignment]
        singles = [ops.compile_strict_semver(semver_op, v) for v in values]
    if len(singles) == 1:
        return singles[0]
    return lambda value: any(p(value) for p in singles)


def _text(value: Any, op: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{op} needs string values, got {value!r}")
    return value


def parse_attribute_ref(text: str) -> tuple[str, ...]:
    """The path of a LaunchDarkly attribute reference: ``name`` is the attribute called ``name`` (dots and
    slashes included); ``/a/b`` is property ``b`` of attribute ``a``, with ``~1`` for ``/`` and ``~0`` for ``~``.
    A malformed reference (empty, an empty component, ``~`` not followed by 0 or 1) raises `ValueError`."""
    if not text:
        raise ValueError("an attribute reference must not be empty")
    if not text.startswith("/"):
        return (text,)
    parts = text[1:].split("/")
    path = []
    for part in parts:
        if not part:
            raise ValueError(f"attribute reference {text!r} has an empty component (use '/a/b', not '/a//b' or '/')")
        if "~" in part.replace("~0", "").replace("~1", ""):
            raise ValueError(f"attribute reference {text!r}: '~' must be followed by 0 (for '~') or 1 (for '/')")
        path.append(part.replace("~1", "/").replace("~0", "~"))
    return tuple(path)


class SegmentClause(BaseModel):
    """One test of a context attribute: ``attribute`` ``op`` any of ``values``."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=False)

    attribute: str = Field(min_length=1, max_length=256)
    op: SegmentOp
    values: list[Any] = Field(min_length=1)
    context_kind: ContextKind = Field(default="user", alias="contextKind")
    negate: bool = False

    _predicate: ops.Predicate | None = PrivateAttr(default=None)
    _path: tuple[str, ...] = PrivateAttr(default=())

    def __eq__(self, other: object) -> bool:
        # Compare the fields only: the compiled predicate (a private attribute) differs per instance.
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _compile(self, info: ValidationInfo) -> SegmentClause:
        if self.op == "segmentMatch":
            for value in self.values:
                if not isinstance(value, str):
                    raise ValueError(f"segmentMatch needs segment keys as values, got {value!r}")
            return self
        try:
            self._path = parse_attribute_ref(self.attribute)
        except ValueError as exc:
            raise ValueError(f"clause on {self.attribute!r}: {exc}") from None
        lenient = lenient_context(info.context)
        try:
            if not lenient:
                check_finite(self.values, "values")
            self._predicate = _clause_value_predicate(self.op, self.values)
        except ValueError as exc:
            if not (lenient and isinstance(exc, ops.RegexError)):
                raise ValueError(f"clause on {self.attribute!r} with op {self.op!r}: {exc}") from None
            self._predicate = lambda _: False  # stored before such patterns were refused: it never matches
        return self

    @property
    def predicate(self) -> ops.Predicate | None:
        """The compiled value test; None for ``segmentMatch``, which the evaluator resolves."""
        return self._predicate

    @property
    def path(self) -> tuple[str, ...]:
        """The attribute as a path (see `parse_attribute_ref`); empty for ``segmentMatch``."""
        return self._path


class SegmentRule(BaseModel):
    """Clauses that must all match; with a ``weight``, only that share of the matching contexts."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=False)

    id: str | None = None
    description: str | None = None
    clauses: list[SegmentClause] = Field(min_length=1)
    weight: int | None = Field(default=None, ge=0, le=MAX_WEIGHT, exclude_if=lambda v: v is None)
    """Thousandths of a percent (0-100000) of the matching contexts that are in the segment; None: all."""
    bucket_by: str | None = Field(
        default=None, alias="bucketBy", min_length=1, max_length=256, exclude_if=lambda v: v is None
    )
    """The attribute (reference) whose value is bucketed; None: the key of ``rollout_context_kind``."""
    rollout_context_kind: ContextKind | None = Field(
        default=None, alias="rolloutContextKind", exclude_if=lambda v: v is None
    )
    """The context kind that is bucketed; None: ``user``."""

    _bucket_path: tuple[str, ...] = PrivateAttr(default=("key",))

    @model_validator(mode="after")
    def _check_bucket_by(self) -> SegmentRule:
        if self.bucket_by is not None:
            if self.weight is None:
                raise ValueError("bucket_by needs a weight (the share of matching contexts to keep)")
            self._bucket_path = parse_attribute_ref(self.bucket_by)
        if self.rollout_context_kind is not None and self.weight is None:
            raise ValueError("rollout_context_kind needs a weight (the share of matching contexts to keep)")
        return self

    @property
    def bucket_path(self) -> tuple[str, ...]:
        """`bucket_by` as a path; ``("key",)`` when it is not set."""
        return self._bucket_path


class SegmentTarget(BaseModel):
    """Keys of one context kind included in or excluded from a segment."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=False)

    context_kind: ContextKind = Field(alias="contextKind")
    values: list[str]


class Segment(BaseModel):
    """A reusable audience: included keys (checked first), excluded keys and rules."""

    key: SegmentKey
    name: str = Field(min_length=1, max_length=256)
    description: str | None = None
    tags: list[str] = []
    included: list[str] = []
    """Targeting keys (context kind ``user``) always in the segment."""
    excluded: list[str] = []
    """Targeting keys (context kind ``user``) not in the segment unless also included."""
    included_contexts: list[SegmentTarget] = []
    """Included keys of other context kinds."""
    excluded_contexts: list[SegmentTarget] = []
    """Excluded keys of other context kinds."""
    rules: list[SegmentRule] = []
    salt: str = Field(default="", max_length=256, exclude_if=lambda v: not v)
    """Mixed into the bucketing of weighted rules (LaunchDarkly's segment ``salt``: copy it to port a segment)."""

    def referenced_segments(self) -> set[str]:
        """Keys of the segments this one references through ``segmentMatch`` clauses."""
        return {
            str(value)
            for rule in self.rules
            for clause in rule.clauses
            if clause.op == "segmentMatch"
            for value in clause.values
        }
