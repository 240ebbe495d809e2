"""Override conditions: the Logfire eight and Setpoint's additions, discriminated on ``kind``.

Each value condition compiles its literal once, when the model is validated (a bad regex, semver or date
is a validation error), into a predicate over the attribute's value. The evaluator applies it; it also
handles a missing attribute (positive kinds do not match, negative kinds and ``negate`` invert).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    PrivateAttr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from setpoint._core import operators as ops
from setpoint._core.jsonvalues import check_finite, lenient_context

__all__ = [
    "CONDITION_KINDS",
    "Condition",
    "InSegment",
    "KeyIsNotPresent",
    "KeyIsPresent",
    "NotInSegment",
    "UnknownCondition",
    "ValueAfter",
    "ValueBefore",
    "ValueContains",
    "ValueDoesNotEqual",
    "ValueDoesNotMatchRegex",
    "ValueEndsWith",
    "ValueEquals",
    "ValueGreaterThan",
    "ValueGreaterThanOrEqual",
    "ValueIsIn",
    "ValueIsNotIn",
    "ValueLessThan",
    "ValueLessThanOrEqual",
    "ValueMatchesRegex",
    "ValueSemverEqual",
    "ValueSemverGreaterThan",
    "ValueSemverLessThan",
    "ValueStartsWith",
]

AttributeName = Annotated[str, Field(min_length=1, max_length=256)]


class _Condition(BaseModel):
    """Shared behaviour: optional ``negate`` (serialized only when true) and the compiled predicate."""

    negate: bool = False
    """Invert the result of this condition."""

    inverted: ClassVar[bool] = False
    """True for the negative kinds (does-not-equal, is-not-in, ...): a missing attribute matches them."""

    def __eq__(self, other: object) -> bool:
        # Compare the fields only: the compiled predicate (a private attribute) differs per instance.
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    @model_serializer(mode="wrap")
    def _drop_default_negate(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        data = handler(self)
        if isinstance(data, dict) and not self.negate:
            data.pop("negate", None)
        return data


def _never(_: Any) -> bool:
    return False


class _ValueCondition(_Condition):
    """A condition on one attribute's value."""

    _predicate: ops.Predicate = PrivateAttr()

    def _build(self) -> ops.Predicate:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    @model_validator(mode="after")
    def _compile(self, info: ValidationInfo) -> _ValueCondition:
        lenient = lenient_context(info.context)
        try:
            if not lenient:
                for field in ("value", "values"):
                    check_finite(self.__dict__.get(field), field)
            self._predicate = self._build()
        except ValueError as exc:
            if not (lenient and isinstance(exc, ops.RegexError)):
                raise ValueError(f"{self.kind_name()}: {exc}") from None
            self._predicate = _never  # stored before such patterns were refused: it never matches
        return self

    @classmethod
    def kind_name(cls) -> str:
        return str(cls.model_fields["kind"].default)

    @property
    def predicate(self) -> ops.Predicate:
        """The compiled test of a present attribute's value (before inversion and ``negate``)."""
        return self._predicate


class ValueEquals(_ValueCondition):
    """The attribute equals ``value`` (same JSON type)."""

    attribute: AttributeName
    value: Any
    kind: Literal["value-equals"] = "value-equals"

    def _build(self) -> ops.Predicate:
        return ops.compile_equals(self.value)


class ValueDoesNotEqual(_ValueCondition):
    """The attribute is missing or does not equal ``value``."""

    attribute: AttributeName
    value: Any
    kind: Literal["value-does-not-equal"] = "value-does-not-equal"
    inverted: ClassVar[bool] = True

    def _build(self) -> ops.Predicate:
        return ops.compile_equals(self.value)


class ValueIsIn(_ValueCondition):
    """The attribute equals one of ``values``."""

    attribute: AttributeName
    values: list[Any]
    kind: Literal["value-is-in"] = "value-is-in"

    def _build(self) -> ops.Predicate:
        return ops.compile_is_in(self.values)


class ValueIsNotIn(_ValueCondition):
    """The attribute is missing or equals none of ``values``."""

    attribute: AttributeName
    values: list[Any]
    kind: Literal["value-is-not-in"] = "value-is-not-in"
    inverted: ClassVar[bool] = True

    def _build(self) -> ops.Predicate:
        return ops.compile_is_in(self.values)


class ValueMatchesRegex(_ValueCondition):
    """The attribute is a string in which ``pattern`` is found (Python ``re.search``)."""

    attribute: AttributeName
    pattern: str
    kind: Literal["value-matches-regex"] = "value-matches-regex"

    def _build(self) -> ops.Predicate:
        return ops.compile_regex(self.pattern)


class ValueDoesNotMatchRegex(_ValueCondition):
    """The attribute is missing, not a string, or a string in which ``pattern`` is not found."""

    attribute: AttributeName
    pattern: str
    kind: Literal["value-does-not-match-regex"] = "value-does-not-match-regex"
    inverted: ClassVar[bool] = True

    def _build(self) -> ops.Predicate:
        return ops.compile_regex(self.pattern)


class KeyIsPresent(_Condition):
    """The attribute is present (whatever its value)."""

    attribute: AttributeName
    kind: Literal["key-is-present"] = "key-is-present"


class KeyIsNotPresent(_Condition):
    """The attribute is not present."""

    attribute: AttributeName
    kind: Literal["key-is-not-present"] = "key-is-not-present"
    inverted: ClassVar[bool] = True


class ValueStartsWith(_ValueCondition):
    """The attribute is a string starting with any of ``values``."""

    attribute: AttributeName
    values: list[str] = Field(min_length=1)
    kind: Literal["value-starts-with"] = "value-starts-with"

    def _build(self) -> ops.Predicate:
        return ops.compile_starts_with(self.values)


class ValueEndsWith(_ValueCondition):
    """The attribute is a string ending with any of ``values``."""

    attribute: AttributeName
    values: list[str] = Field(min_length=1)
    kind: Literal["value-ends-with"] = "value-ends-with"

    def _build(self) -> ops.Predicate:
        return ops.compile_ends_with(self.values)


class ValueContains(_ValueCondition):
    """The attribute is a string containing any of ``values``."""

    attribute: AttributeName
    values: list[str] = Field(min_length=1)
    kind: Literal["value-contains"] = "value-contains"

    def _build(self) -> ops.Predicate:
        return ops.compile_contains(self.values)


class _NumberCondition(_ValueCondition):
    attribute: AttributeName
    value: float | int
    _op: ClassVar[ops.Comparison]

    @field_validator("value", mode="before")
    @classmethod
    def _number_only(cls, value: Any) -> Any:
        if not ops.is_number(value):
            raise ValueError(f"must be a number, got {value!r}")
        return value

    def _build(self) -> ops.Predicate:
        return ops.compile_number(self._op, self.value)


class ValueGreaterThan(_NumberCondition):
    """The attribute is a number greater than ``value``."""

    kind: Literal["value-greater-than"] = "value-greater-than"
    _op: ClassVar[ops.Comparison] = "gt"


class ValueGreaterThanOrEqual(_NumberCondition):
    """The attribute is a number greater than or equal to ``value``."""

    kind: Literal["value-greater-than-or-equal"] = "value-greater-than-or-equal"
    _op: ClassVar[ops.Comparison] = "ge"


class ValueLessThan(_NumberCondition):
    """The attribute is a number less than ``value``."""

    kind: Literal["value-less-than"] = "value-less-than"
    _op: ClassVar[ops.Comparison] = "lt"


class ValueLessThanOrEqual(_NumberCondition):
    """The attribute is a number less than or equal to ``value``."""

    kind: Literal["value-less-than-or-equal"] = "value-less-than-or-equal"
    _op: ClassVar[ops.Comparison] = "le"


class ValueBefore(_ValueCondition):
    """The attribute is a timestamp (ISO 8601 or Unix millis) before ``value``."""

    attribute: AttributeName
    value: str | int | float
    kind: Literal["value-before"] = "value-before"

    def _build(self) -> ops.Predicate:
        return ops.compile_date("before", self.value)


class ValueAfter(_ValueCondition):
    """The attribute is a timestamp (ISO 8601 or Unix millis) after ``value``."""

    attribute: AttributeName
    value: str | int | float
    kind: Literal["value-after"] = "value-after"

    def _build(self) -> ops.Predicate:
        return ops.compile_date("after", self.value)


class ValueSemverEqual(_ValueCondition):
    """The attribute is a semantic version equal to ``value``."""

    attribute: AttributeName
    value: str
    kind: Literal["value-semver-equal"] = "value-semver-equal"

    def _build(self) -> ops.Predicate:
        return ops.compile_semver("eq", self.value)


class ValueSemverLessThan(_ValueCondition):
    """The attribute is a semantic version lower than ``value``."""

    attribute: AttributeName
    value: str
    kind: Literal["value-semver-less-than"] = "value-semver-less-than"

    def _build(self) -> ops.Predicate:
        return ops.compile_semver("lt", self.value)


class ValueSemverGreaterThan(_ValueCondition):
    """The attribute is a semantic version higher than ``value``."""

    attribute: AttributeName
    value: str
    kind: Literal["value-semver-greater-than"] = "value-semver-greater-than"

    def _build(self) -> ops.Predicate:
        return ops.compile_semver("gt", self.value)


class InSegment(_Condition):
    """The targeting key and attributes are in the segment ``segment`` (a key of the config's ``segments``)."""

    segment: str = Field(min_length=1)
    kind: Literal["in-segment"] = "in-segment"


class NotInSegment(_Condition):
    """The targeting key and attributes are not in the segment ``segment``."""

    segment: str = Field(min_length=1)
    kind: Literal["not-in-segment"] = "not-in-segment"
    inverted: ClassVar[bool] = True


_KNOWN: tuple[type[_Condition], ...] = (
    ValueEquals,
    ValueDoesNotEqual,
    ValueIsIn,
    ValueIsNotIn,
    ValueMatchesRegex,
    ValueDoesNotMatchRegex,
    KeyIsPresent,
    KeyIsNotPresent,
    ValueStartsWith,
    ValueEndsWith,
    ValueContains,
    ValueGreaterThan,
    ValueGreaterThanOrEqual,
    ValueLessThan,
    ValueLessThanOrEqual,
    ValueBefore,
    ValueAfter,
    ValueSemverEqual,
    ValueSemverLessThan,
    ValueSemverGreaterThan,
    InSegment,
    NotInSegment,
)
CONDITION_KINDS: dict[str, type[_Condition]] = {str(c.model_fields["kind"].default): c for c in _KNOWN}
"""Every condition kind this version understands, by its ``kind`` string."""

ALLOW_UNKNOWN_CONDITIONS = "allow_unknown_conditions"
_UNKNOWN_TAG = "__unknown__"


class UnknownCondition(_Condition):
    """A condition kind from a newer server. Accepted only when parsing with the context flag
    ``{"allow_unknown_conditions": True}`` (what the SDK does with configs it receives); it never matches."""

    model_config = {"extra": "allow"}

    kind: str

    @model_validator(mode="before")
    @classmethod
    def _only_when_allowed(cls, data: Any, info: ValidationInfo) -> Any:
        if not (info.context or {}).get(ALLOW_UNKNOWN_CONDITIONS):
            kind = data.get("kind") if isinstance(data, dict) else None
            known = ", ".join(sorted(CONDITION_KINDS))
            raise ValueError(f"unknown condition kind {kind!r}; expected one of: {known}")
        return data


def _condition_tag(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if isinstance(kind, str) and kind in CONDITION_KINDS else _UNKNOWN_TAG


Condition = Annotated[
    Annotated[ValueEquals, Tag("value-equals")]
    | Annotated[ValueDoesNotEqual, Tag("value-does-not-equal")]
    | Annotated[ValueIsIn, Tag("value-is-in")]
    | Annotated[ValueIsNotIn, Tag("value-is-not-in")]
    | Annotated[ValueMatchesRegex, Tag("value-matches-regex")]
    | Annotated[ValueDoesNotMatchRegex, Tag("value-does-not-match-regex")]
    | Annotated[KeyIsPresent, Tag("key-is-present")]
    | Annotated[KeyIsNotPresent, Tag("key-is-not-present")]
    | Annotated[ValueStartsWith, Tag("value-starts-with")]
    | Annotated[ValueEndsWith, Tag("value-ends-with")]
    | Annotated[ValueContains, Tag("value-contains")]
    | Annotated[ValueGreaterThan, Tag("value-greater-than")]
    | Annotated[ValueGreaterThanOrEqual, Tag("value-greater-than-or-equal")]
    | Annotated[ValueLessThan, Tag("value-less-than")]
    | Annotated[ValueLessThanOrEqual, Tag("value-less-than-or-equal")]
    | Annotated[ValueBefore, Tag("value-before")]
    | Annotated[ValueAfter, Tag("value-after")]
    | Annotated[ValueSemverEqual, Tag("value-semver-equal")]
    | Annotated[ValueSemverLessThan, Tag("value-semver-less-than")]
    | Annotated[ValueSemverGreaterThan, Tag("value-semver-greater-than")]
    | Annotated[InSegment, Tag("in-segment")]
    | Annotated[NotInSegment, Tag("not-in-segment")]
    | Annotated[UnknownCondition, Tag(_UNKNOWN_TAG)],
    Discriminator(_condition_tag),
]
"""Any condition; parsed by its ``kind``."""

ValueConditionModel = _ValueCondition
