"""Typed comparison operators, compiled once from a config literal into a predicate over one attribute value.

Every `compile_*` function validates its literal (raising `ValueError` with a message that says what to fix)
and returns `Predicate`: a function of the attribute's value that answers whether it matches. The caller
handles a missing attribute. Values are compared by type, as JSON sees them: booleans, numbers (int and
float alike), strings and null are four different kinds, so ``1 == True`` and ``1 == "1"`` never match.
"""

from __future__ import annotations

import calendar
import re
import re._constants as _c  # type: ignore[import-not-found]
import re._parser as _parser  # type: ignore[import-not-found]
import warnings
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, Literal

import re2  # type: ignore[import-untyped]
import semver
from re2 import _re2

__all__ = [
    "Predicate",
    "RegexError",
    "compile_contains",
    "compile_date",
    "compile_ends_with",
    "compile_equals",
    "compile_is_in",
    "compile_number",
    "compile_re2",
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


class RegexError(ValueError):
    """A pattern that Setpoint's regex rules cannot run (the message names the construct and what to use)."""


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.never_capture = True
_RE2_OPTIONS.log_errors = False
_UNANCHORED = _re2.RE2.Anchor.UNANCHORED
_NO_MATCH = (-1, -1)
_SPECIAL = frozenset(".^$*+?{}[]()|\\")
_MEMO_LIMIT = 4096
_MEMO_MAX_LEN = 256


@lru_cache(maxsize=1)
def _python_classes() -> dict[str, tuple[str, str]]:
    """Python's Unicode ``\\d``/``\\w``/``\\s`` as RE2 class ranges: letter -> (the set, its complement).

    Python reads these classes as Unicode (a str pattern), RE2 as ASCII; spelling out Python's own sets keeps
    the two engines in agreement on every input. Computed with Python's engine once, when first needed.
    """
    chars = "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x110000)))

    def spell(spans: list[tuple[int, int]]) -> str:
        return "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in spans)

    classes: dict[str, tuple[str, str]] = {}
    for letter in "dws":
        inside: list[tuple[int, int]] = []
        for found in re.finditer(f"\\{letter}+", chars):
            low, high = ord(chars[found.start()]), ord(chars[found.end() - 1])
            inside += [(low, 0xD7FF), (0xE000, high)] if low < 0xD800 < high else [(low, high)]
        outside: list[tuple[int, int]] = []
        after = 0
        for low, high in [*inside, (0x110000, 0x110000)]:
            for a, b in ((after, min(low - 1, 0xD7FF)), (max(after, 0xE000), low - 1)):
                if a <= b:
                    outside.append((a, b))
            after = high + 1
        classes[letter] = (spell(inside), spell(outside))
    return classes


def _class_escape(letter: str, in_class: bool) -> str:
    ranges, complement = _python_classes()[letter.lower()]
    body = ranges if letter.islower() else complement
    return body if in_class else f"[{body}]"


def _to_re2(pattern: str) -> str:
    """The RE2 spelling of a Python pattern with the same meaning, or RegexError naming what differs."""
    multiline = re.match(r"\(\?[aiLmsux]*m", pattern) is not None
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    class_at = -1
    while i < n:
        c = pattern[i]
        if c == "\\":
            e = pattern[i + 1 : i + 2]
            if e in ("d", "D", "w", "W", "s", "S"):
                out.append(_class_escape(e, in_class))
            elif e in ("b", "B") and not in_class:
                raise RegexError(
                    f"word boundaries (\\{e}) are not supported: Python reads them as Unicode, RE2 as ASCII; "
                    "use a character class instead, e.g. (?:^|[^a-z0-9_])word(?:$|[^a-z0-9_])"
                )
            elif e == "Z" and not in_class:
                out.append("\\z")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            at_start = i == class_at or (i == class_at + 1 and pattern[class_at] == "^")
            if c == "]" and not at_start:
                in_class = False
            elif c == "[" and pattern[i + 1 : i + 2] in (":", "=", "."):
                raise RegexError(
                    f"POSIX classes such as {pattern[i : i + 3]}...] inside a set are read differently by Python; "
                    "use ranges (a-z) or \\d, \\w, \\s"
                )
            elif pattern[i : i + 2] in ("--", "&&", "~~", "||"):
                raise RegexError(
                    f"{pattern[i : i + 2]!r} inside a set is ambiguous (Python reserves it for set operations); "
                    "escape the second character"
                )
        elif c == "[":
            in_class = True
            class_at = i + 1
        elif c == "$" and not multiline:
            # Python's $ also matches before a final newline; RE2's only at the very end.
            out.append("(?:\\n?\\z)")
            i += 1
            continue
        elif c == "{" and re.match(r"\{,\d", pattern[i:]):
            raise RegexError("a repetition {,n} means {0,n} to Python but literal text to RE2; write {0,n}")
        elif c == "(" and re.match(r"\(\?[a-zA-Z]*-?[a-zA-Z]*m[a-zA-Z]*:", pattern[i : i + 12]):
            raise RegexError("a scoped multiline flag (?m:...) is not supported; put (?m) at the start")
        out.append(c)
        i += 1
    return "".join(out)


def _re2_problem(message: str) -> str:
    """RE2's parse error made readable: the construct and why it cannot be used."""
    if "(?=" in message or "(?!" in message:
        return "lookahead (?=...) / (?!...) is not supported (it cannot run in linear time)"
    if "(?<" in message:
        return "lookbehind (?<=...) / (?<!...) or (?<name>...) is not supported; name groups (?P<name>...)"
    if re.search(r"invalid escape sequence: \\[1-9]", message) or message.endswith("(?P"):
        return "backreferences (\\1, (?P=name)) are not supported (they cannot run in linear time)"
    if "repetition operator" in message:
        return f"possessive or doubled repetition is not supported ({message})"
    if "repetition size" in message:
        return f"repetition counts are limited to 1000 ({message})"
    return message


_SINGLE = frozenset({_c.LITERAL, _c.NOT_LITERAL, _c.ANY, _c.IN})
_CATEGORY_TESTS: dict[Any, Callable[[str], bool]] = {
    _c.CATEGORY_DIGIT: str.isdecimal,
    _c.CATEGORY_NOT_DIGIT: lambda ch: not ch.isdecimal(),
    _c.CATEGORY_WORD: lambda ch: ch.isalnum() or ch == "_",
    _c.CATEGORY_NOT_WORD: lambda ch: not (ch.isalnum() or ch == "_"),
    _c.CATEGORY_SPACE: str.isspace,
    _c.CATEGORY_NOT_SPACE: lambda ch: not ch.isspace(),
}


def _may_match(item: tuple[Any, Any], ch: str) -> bool:
    """Whether the one-character item can match ``ch`` (True when unsure: the caller then stays on RE2)."""
    op, av = item
    if op == _c.LITERAL:
        return bool(av == ord(ch))
    if op == _c.NOT_LITERAL:
        return bool(av != ord(ch))
    if op == _c.ANY:
        return ch != "\n"
    if op != _c.IN:
        return True
    negate, found = False, False
    for kind, value in av:
        if kind == _c.NEGATE:
            negate = True
        elif kind == _c.LITERAL:
            found = found or value == ord(ch)
        elif kind == _c.RANGE:
            found = found or value[0] <= ord(ch) <= value[1]
        elif kind == _c.CATEGORY and value in _CATEGORY_TESTS:
            found = found or _CATEGORY_TESTS[value](ch)
        else:
            return True
    return found != negate


def _first_chars(item: tuple[Any, Any]) -> set[str] | None:
    """The characters a mandatory item can start with, when they are few and known; else None."""
    op, av = item
    if op == _c.LITERAL:
        return {chr(av)}
    if op == _c.IN:
        chars: set[str] = set()
        for kind, value in av:
            if kind == _c.LITERAL:
                chars.add(chr(value))
            elif kind == _c.RANGE and value[1] - value[0] < 256:
                chars.update(map(chr, range(value[0], value[1] + 1)))
            else:
                return None
        return chars
    if op == _c.MAX_REPEAT and av[0] >= 1 and len(av[2]) == 1 and av[2][0][0] in _SINGLE:
        return _first_chars(av[2][0])
    if op == _c.BRANCH and all(alt and alt[0][0] == _c.LITERAL for alt in av[1]):
        return {chr(alt[0][1]) for alt in av[1]}
    return None


def _flatten(items: Iterable[tuple[Any, Any]]) -> list[tuple[Any, Any]] | None:
    out: list[tuple[Any, Any]] = []
    for op, av in items:
        if op == _c.SUBPATTERN:
            if av[1] or av[2]:
                return None  # scoped flags
            inner = _flatten(av[3])
            if inner is None:
                return None
            out += inner
        else:
            out.append((op, av))
    return out


def _deterministic(pattern: str) -> bool:
    """Whether Python's backtracking ``re`` provably runs `pattern` in time linear in the input.

    True only for patterns made of single-character items, alternations of plain literals with distinct first
    characters, and greedy repetitions of one character class that the next item cannot start with (so giving
    characters back never lets the rest match: each backtracking step fails at once), that are either anchored
    at the start (``^`` or ``\\A``: one starting position) or start with a literal item whose characters no
    repetition takes (each attempt's scan crosses a bounded number of other starting positions).
    Everything else runs on RE2.
    """
    try:
        parsed = _parser.parse(pattern)
    except re.error:
        return False
    if parsed.state.flags != re.UNICODE:
        return False
    items = _flatten(list(parsed))
    if not items:
        return False
    starts: set[str] | None = None
    if items[0] in ((_c.AT, _c.AT_BEGINNING), (_c.AT, _c.AT_BEGINNING_STRING)):
        body = items[1:]
    else:
        # Unanchored: a start position is one of the few characters the first (non-repeated) item takes; no
        # repetition may take them, so one attempt's scan crosses at most len(pattern) other start positions.
        starts = _first_chars(items[0]) if items[0][0] != _c.MAX_REPEAT else None
        if starts is None:
            return False
        body = items
    if body and body[-1] in ((_c.AT, _c.AT_END), (_c.AT, _c.AT_END_STRING)):
        body = body[:-1]
    for index, (op, av) in enumerate(body):
        if op in _SINGLE:
            continue
        if op == _c.BRANCH:
            alternatives = av[1]
            if not all(alt and all(part[0] == _c.LITERAL for part in alt) for alt in alternatives):
                return False
            firsts = [alt[0][1] for alt in alternatives]
            if len(set(firsts)) != len(firsts):
                return False
            continue
        if op != _c.MAX_REPEAT or len(av[2]) != 1 or av[2][0][0] not in _SINGLE:
            return False
        if starts is not None and any(_may_match(av[2][0], ch) for ch in starts):
            return False
        if index + 1 < len(body):
            following = _first_chars(body[index + 1])
            if following is None or any(_may_match(av[2][0], ch) for ch in following):
                return False
    return True


@lru_cache(maxsize=1024)
def compile_re2(pattern: str) -> _re2.RE2:
    """Check `pattern` and compile it for RE2 (cached): RegexError unless both Python's re and RE2 run it
    with the same meaning.

    Rules accept the RE2 syntax that Python's ``re`` reads the same way: the SDK, the server and the Logfire
    SDK (which evaluates with ``re.search``) then agree, and every evaluation is linear in the input.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            re.compile(pattern)
    except re.error as exc:
        raise RegexError(f"invalid regular expression {pattern!r}: {exc}") from None
    except FutureWarning as exc:
        raise RegexError(f"regular expression {pattern!r} is ambiguous: {exc}") from None
    try:
        translated = _to_re2(pattern)
    except RegexError as exc:
        raise RegexError(f"regular expression {pattern!r}: {exc}") from None
    compiled = _re2.RE2(translated.encode("utf-8", "surrogatepass"), _RE2_OPTIONS)
    if not compiled.ok():
        problem = _re2_problem(compiled.error().decode("utf-8", "replace"))
        raise RegexError(f"regular expression {pattern!r} cannot be used: {problem}")
    return compiled


def compile_regex(pattern: str) -> Predicate:
    """Match a string attribute in which `pattern` is found (search semantics, like Python's ``re.search``),
    evaluated by RE2 in time linear in the attribute's length. RegexError (a ValueError) when the pattern
    cannot be used (see `compile_re2`)."""
    compiled = compile_re2(pattern)
    if not any(ch in _SPECIAL for ch in pattern):
        return lambda v: v.__class__ is str and pattern in v
    if _deterministic(pattern):
        # Fast path: a call into RE2's binding costs ~1 µs; Python's re is linear for these patterns.
        python = re.compile(pattern).search
        return lambda v: v.__class__ is str and python(v) is not None
    match = compiled.Match
    memo: dict[str, bool] = {}

    def search(v: Any) -> bool:
        if v.__class__ is not str:
            return False
        found = memo.get(v)
        if found is not None:
            return found
        data = v.encode("utf-8", "surrogatepass")
        found = bool(match(_UNANCHORED, data, 0, len(data))[0] != _NO_MATCH)
        if len(v) <= _MEMO_MAX_LEN:
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            memo[v] = found
        return found

    return search


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
