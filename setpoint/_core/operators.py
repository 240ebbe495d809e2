"""Typed comparison operators, compiled once from a config literal into a predicate over one attribute value.

Every `compile_*` function validates its literal (raising `ValueError` with a message that says what to fix)
and returns `Predicate`: a function of the attribute's value that answers whether it matches. The caller
handles a missing attribute. Values are compared by type, as JSON sees them: booleans, numbers (int and
float alike), strings and null are four different kinds, so ``1 == True`` and ``1 == "1"`` never match.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, Literal

import semver

__all__ = [
    "Predicate",
    "compile_contains",
    "compile_date",
    "compile_ends_with",
    "compile_equals",
    "compile_is_in",
    "compile_number",
    "compile_regex",
    "compile_rfc3339",
    "compile_semver",
    "compile_starts_with",
    "compile_strict_semver",
    "is_number",
    "parse_date_millis",
    "parse_rfc3339_millis",
    "parse_semver",
    "parse_strict_semver",
]

Predicate = Callable[[Any], bool]
Comparison = Literal["gt", "ge", "lt", "le", "eq"]

_NUMBER_TYPES = (int, float)


def is_number(value: object) -> bool:
    """A JSON number: an int or a float, never a bool."""
    return isinstance(value, _NUMBER_TYPES) and not isinstance(value, bool)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, _NUMBER_TYPES):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _typed_equal(a: object, b: object) -> bool:
    kind = _kind(a)
    if kind != _kind(b):
        return False
    if kind == "array":
        assert isinstance(a, list | tuple) and isinstance(b, list | tuple)
        return len(a) == len(b) and all(_typed_equal(x, y) for x, y in zip(a, b, strict=True))
    if kind == "object":
        assert isinstance(a, dict) and isinstance(b, dict)
        return a.keys() == b.keys() and all(_typed_equal(a[k], b[k]) for k in a)
    return a == b


def compile_equals(expected: Any) -> Predicate:
    """Match an attribute equal to `expected` and of the same JSON kind."""
    if isinstance(expected, str):
        return lambda v: v.__class__ is str and v == expected
    if expected is True or expected is False:
        return lambda v: v is expected
    if is_number(expected):
        return lambda v: (v.__class__ is int or v.__class__ is float) and v == expected
    if expected is None:
        return lambda v: v is None
    return lambda v: _typed_equal(v, expected)


def compile_is_in(values: Sequence[Any]) -> Predicate:
    """Match an attribute equal (same JSON kind) to any of `values`, in O(1) for scalars."""
    strings = frozenset(v for v in values if isinstance(v, str))
    if len(strings) == len(values):
        return lambda v: v.__class__ is str and v in strings
    scalars: set[tuple[str, Any]] = set()
    others: list[Any] = []
    for value in values:
        kind = _kind(value)
        if kind in ("array", "object"):
            others.append(value)
        else:
            scalars.add((kind, value))

    def is_in(v: Any) -> bool:
        kind = _kind(v)
        if kind in ("array", "object"):
            return any(_typed_equal(v, other) for other in others)
        return (kind, v) in scalars

    return is_in


def compile_regex(pattern: str) -> Predicate:
    """Match a string attribute in which `pattern` is found (`re.search`)."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    search = compiled.search
    return lambda v: v.__class__ is str and search(v) is not None


def _strings(values: Iterable[Any], what: str) -> tuple[str, ...]:
    result = tuple(values)
    for value in result:
        if not isinstance(value, str):
            raise ValueError(f"{what} needs string values, got {value!r}")
    return result


def compile_starts_with(values: Iterable[Any]) -> Predicate:
    """Match a string attribute that starts with any of `values`."""
    prefixes = _strings(values, "starts-with")
    return lambda v: v.__class__ is str and v.startswith(prefixes)


def compile_ends_with(values: Iterable[Any]) -> Predicate:
    """Match a string attribute that ends with any of `values`."""
    suffixes = _strings(values, "ends-with")
    return lambda v: v.__class__ is str and v.endswith(suffixes)


def compile_contains(values: Iterable[Any]) -> Predicate:
    """Match a string attribute that contains any of `values`."""
    needles = _strings(values, "contains")
    return lambda v: v.__class__ is str and any(n in v for n in needles)


def compile_number(op: Comparison, literal: Any) -> Predicate:
    """Compare a numeric attribute with a numeric literal; anything that is not a number never matches."""
    if not is_number(literal):
        raise ValueError(f"a numeric comparison needs a number, got {literal!r}")
    bound = literal
    if op == "gt":
        return lambda v: (v.__class__ is int or v.__class__ is float) and v > bound
    if op == "ge":
        return lambda v: (v.__class__ is int or v.__class__ is float) and v >= bound
    if op == "lt":
        return lambda v: (v.__class__ is int or v.__class__ is float) and v < bound
    if op == "le":
        return lambda v: (v.__class__ is int or v.__class__ is float) and v <= bound
    return lambda v: (v.__class__ is int or v.__class__ is float) and v == bound


def _millis_of_datetime(value: datetime) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp() * 1000.0


def parse_date_millis(value: Any) -> float | None:
    """Unix milliseconds of a timestamp given as Unix millis, ISO 8601 text, a datetime or a date; else None.

    Text without a timezone is taken as UTC.
    """
    if is_number(value):
        return float(value)
    if isinstance(value, datetime):
        return _millis_of_datetime(value)
    if isinstance(value, date):
        return _millis_of_datetime(datetime(value.year, value.month, value.day, tzinfo=UTC))
    if isinstance(value, str):
        return _parse_iso_millis(value)
    return None


@lru_cache(maxsize=4096)
def _parse_iso_millis(text: str) -> float | None:
    try:
        return _millis_of_datetime(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except ValueError:
        return None


def compile_date(op: Literal["before", "after"], literal: Any) -> Predicate:
    """Compare a timestamp attribute (Unix millis or ISO 8601) with a timestamp literal."""
    bound = parse_date_millis(literal)
    if bound is None or isinstance(literal, bool):
        raise ValueError(f"{literal!r} is not a timestamp: use ISO 8601 (2024-01-01T00:00:00Z) or Unix milliseconds")

    def compare(v: Any) -> bool:
        if isinstance(v, bool):
            return False
        millis = parse_date_millis(v)
        if millis is None:
            return False
        return millis < bound if op == "before" else millis > bound

    return compare


@lru_cache(maxsize=4096)
def _parse_semver_cached(text: str) -> semver.Version | None:
    try:
        return semver.Version.parse(text.strip().removeprefix("v"), optional_minor_and_patch=True)
    except (ValueError, TypeError):
        return None


def parse_semver(value: Any) -> semver.Version | None:
    """A semantic version from text such as ``2.0.1``, ``v2.1`` or ``3.0.0-beta.1``; None when it is not one."""
    if not isinstance(value, str):
        return None
    return _parse_semver_cached(value)


def compile_semver(op: Literal["eq", "lt", "gt"], literal: Any) -> Predicate:
    """Compare a semantic-version attribute with a version literal (semver 2.0.0 precedence)."""
    bound = parse_semver(literal)
    if bound is None:
        raise ValueError(f"{literal!r} is not a semantic version (expected e.g. '2.0.0' or '1.4.0-beta.1')")

    def compare(v: Any) -> bool:
        version = parse_semver(v)
        if version is None:
            return False
        order = version.compare(bound)
        return order == 0 if op == "eq" else (order < 0 if op == "lt" else order > 0)

    return compare


# LaunchDarkly's parsing, for segment clauses (Setpoint's variable conditions keep the lenient parsers above).

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


@lru_cache(maxsize=4096)
def _rfc3339_millis(text: str) -> float | None:
    found = _RFC3339.fullmatch(text)
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(found.group(i)) for i in range(1, 7))
    try:
        datetime(year, month, day, hour, minute, second)  # rejects 2017-02-30, 25:00, ...
    except ValueError:
        return None
    offset = 0
    if found.group(8) is None:
        offset_hours, offset_minutes = int(found.group(10)), int(found.group(11))
        if offset_hours > 23 or offset_minutes > 59:
            return None
        offset = (offset_hours * 60 + offset_minutes) * (1 if found.group(9) == "+" else -1)
    seconds = calendar.timegm((year, month, day, hour, minute, second)) - offset * 60
    fraction = float(found.group(7)) if found.group(7) else 0.0
    return (seconds + fraction) * 1000.0


def parse_rfc3339_millis(value: Any) -> float | None:
    """Unix milliseconds as LaunchDarkly reads a timestamp: a JSON number is Unix millis, a string must be an
    RFC 3339 timestamp with a date, a time and an offset (``2017-12-06T07:00:00Z``); anything else is None."""
    if is_number(value):
        return float(value)
    if isinstance(value, str):
        return _rfc3339_millis(value)
    return None


def compile_rfc3339(op: Literal["before", "after"], literal: Any) -> Predicate:
    """LaunchDarkly's ``before`` / ``after``: both sides Unix millis or RFC 3339; anything else never matches."""
    bound = parse_rfc3339_millis(literal)
    if bound is None:
        raise ValueError(
            f"{literal!r} is not a timestamp: use RFC 3339 with a date, a time and an offset "
            "(2024-01-01T00:00:00Z) or a number of Unix milliseconds"
        )
    if op == "before":
        return lambda v: (millis := parse_rfc3339_millis(v)) is not None and millis < bound
    return lambda v: (millis := parse_rfc3339_millis(v)) is not None and millis > bound


_NUMERIC_ID = r"(?:0|[1-9][0-9]*)"
_PRERELEASE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_STRICT_SEMVER = re.compile(
    rf"({_NUMERIC_ID})(?:\.({_NUMERIC_ID})(?:\.({_NUMERIC_ID}))?)?"
    rf"(?:-({_PRERELEASE_ID}(?:\.{_PRERELEASE_ID})*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


@lru_cache(maxsize=4096)
def _strict_semver(text: str) -> semver.Version | None:
    found = _STRICT_SEMVER.fullmatch(text)
    if found is None:
        return None
    major, minor, patch, prerelease, build = found.groups()
    return semver.Version(int(major), int(minor or 0), int(patch or 0), prerelease, build)


def parse_strict_semver(value: Any) -> semver.Version | None:
    """A SemVer 2.0 version, also shortened to ``m`` or ``m.n`` (as LaunchDarkly accepts); a leading ``v``,
    surrounding whitespace, leading zeros or a fourth component make it None."""
    if not isinstance(value, str):
        return None
    return _strict_semver(value)


def compile_strict_semver(op: Literal["eq", "lt", "gt"], literal: Any) -> Predicate:
    """LaunchDarkly's ``semVerEqual`` / ``semVerLessThan`` / ``semVerGreaterThan`` (SemVer 2.0 precedence;
    build metadata is ignored); an attribute that is not a strict semantic version never matches."""
    bound = parse_strict_semver(literal)
    if bound is None:
        raise ValueError(
            f"{literal!r} is not a semantic version: use SemVer 2.0 such as '2.0.0', '1.4.0-beta.1' or the "
            "shortened '2' / '2.1' (no leading 'v', no spaces)"
        )

    def compare(v: Any) -> bool:
        version = parse_strict_semver(v)
        if version is None:
            return False
        order = version.compare(bound)
        return order == 0 if op == "eq" else (order < 0 if op == "lt" else order > 0)

    return compare
