"""Segment membership, compiled once, evaluated as LaunchDarkly evaluates segments.

Key sets become frozensets (O(1) for any size), rules become predicates. A context is Setpoint's (targeting
key, attributes): context kind ``user`` is the targeting key and the plain attributes; another kind ``k`` is
the attribute ``k.key`` and the attributes ``k.<name>`` (OpenTelemetry's flat dotted names), or the properties
of a structured attribute ``k``. LaunchDarkly's rules that Setpoint follows here:

- included keys are checked before excluded ones, then the rules;
- a clause whose attribute is missing or null (which is also the case when the context lacks the clause's
  kind) is a non-match whatever ``negate`` says;
- an attribute reference ``/a/b`` reads property ``b`` of the structured attribute ``a``; when there is no
  attribute ``a``, the dotted attribute ``a.b`` (and ``a.b`` holding a structure for ``/a/b/c``) is read;
- ``anonymous`` is false for a context kind that is present and does not set it;
- the attribute ``kind`` is the list of the context's kinds (``user`` when there is a targeting key, and every
  ``k`` with a string ``k.key`` attribute or a structured attribute ``k`` with a string ``key``);
- a rule with a ``weight`` keeps a context when LaunchDarkly's sha1 bucket of its key (or ``bucket_by``
  value) in the segment (key + salt) is below ``weight / 100000``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from setpoint._core.bucketing import segment_bucket
from setpoint.config._segments import MAX_WEIGHT, Segment, SegmentClause, SegmentRule

__all__ = ["ContextPredicate", "compile_segments", "context_kinds", "key_of_kind", "read_attribute"]

ContextPredicate = Callable[[str | None, Mapping[str, Any]], bool]
"""A test of (targeting key, attributes)."""

_MISSING: Any = object()
Lookup = tuple[tuple[str, tuple[str, ...]], ...]
"""Where to read a path: (attribute name, properties to descend) pairs, tried in order."""


def key_of_kind(kind: str, targeting_key: str | None, attributes: Mapping[str, Any]) -> Any:
    """The key of a context kind: the targeting key for ``user``, else ``<kind>.key`` (or ``<kind>``'s ``key``)."""
    if kind == "user":
        return targeting_key
    found = attributes.get(f"{kind}.key")
    if found is None:
        nested = attributes.get(kind)
        if isinstance(nested, Mapping):
            found = nested.get("key")
    return found


def context_kinds(targeting_key: str | None, attributes: Mapping[str, Any]) -> list[str]:
    """The kinds of a context: ``user`` when there is a targeting key, and every kind that has a string key."""
    kinds = [] if targeting_key is None else ["user"]
    for name, value in attributes.items():
        if name.endswith(".key") and isinstance(value, str) and len(name) > 4:
            kinds.append(name[:-4])
        elif isinstance(value, Mapping) and isinstance(value.get("key"), str):
            kinds.append(name)
    return list(dict.fromkeys(kinds))


def _lookup(kind: str, path: Sequence[str]) -> Lookup:
    """The attribute names that may hold ``path`` of context kind ``kind``, most specific first."""
    full = tuple(path) if kind == "user" else (kind, *path)
    first = 1 if kind == "user" else 2
    candidates = [(".".join(full[:i]), full[i:]) for i in range(first, len(full) + 1)]
    if kind != "user":
        candidates.append((kind, tuple(path)))
    return tuple(candidates)


def read_attribute(lookup: Lookup, attributes: Mapping[str, Any]) -> Any:
    """The value at the first attribute name present (descending into structures); `_MISSING` when there is
    none, when a property is absent or not inside an object, or when the value is null."""
    for name, rest in lookup:
        value = attributes.get(name, _MISSING)
        if value is _MISSING:
            continue
        for part in rest:
            if not isinstance(value, Mapping):
                return _MISSING
            value = value.get(part, _MISSING)
            if value is _MISSING:
                return _MISSING
        return _MISSING if value is None else value
    return _MISSING


def _reader(kind: str, path: tuple[str, ...]) -> Callable[[str | None, Mapping[str, Any]], Any]:
    if path == ("key",):

        def read_key(key: str | None, attrs: Mapping[str, Any]) -> Any:
            found = key_of_kind(kind, key, attrs)
            return _MISSING if found is None else found

        return read_key
    lookup = _lookup(kind, path)
    if path == ("anonymous",):

        def read_anonymous(key: str | None, attrs: Mapping[str, Any]) -> Any:
            value = read_attribute(lookup, attrs)
            if value is _MISSING and key_of_kind(kind, key, attrs) is not None:
                return False  # LaunchDarkly's built-in: a context is not anonymous unless it says so
            return value

        return read_anonymous
    if len(lookup) == 1 and not lookup[0][1]:
        name = lookup[0][0]

        def read_plain(key: str | None, attrs: Mapping[str, Any]) -> Any:
            value = attrs.get(name)
            return _MISSING if value is None else value

        return read_plain
    return lambda key, attrs: read_attribute(lookup, attrs)


def _compile_clause(clause: SegmentClause, segments: Mapping[str, ContextPredicate]) -> ContextPredicate:
    negate = clause.negate
    if clause.op == "segmentMatch":
        members = [segments[str(key)] for key in clause.values]

        def in_any(key: str | None, attrs: Mapping[str, Any]) -> bool:
            return any(m(key, attrs) for m in members) != negate

        return in_any

    test = clause.predicate
    assert test is not None
    if clause.path == ("kind",):

        def kind_matches(key: str | None, attrs: Mapping[str, Any]) -> bool:
            return any(test(kind) for kind in context_kinds(key, attrs)) != negate

        return kind_matches

    read = _reader(clause.context_kind, clause.path)

    def matches(key: str | None, attrs: Mapping[str, Any]) -> bool:
        value = read(key, attrs)
        if value is _MISSING:
            return False  # LaunchDarkly: a missing attribute or context kind never matches, negated or not
        if isinstance(value, list | tuple):
            return any(test(item) for item in value) != negate
        return test(value) != negate

    return matches


def _bucketable(value: Any) -> str | None:
    """The text LaunchDarkly hashes: a string, or an integral number; anything else is not bucketable."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None


def _compile_rule(
    rule: SegmentRule, segment: Segment, compiled: Mapping[str, ContextPredicate]
) -> Callable[[str | None, Mapping[str, Any]], bool]:
    clauses = tuple(_compile_clause(c, compiled) for c in rule.clauses)
    if rule.weight is None:
        return lambda key, attrs: all(clause(key, attrs) for clause in clauses)
    threshold = rule.weight / MAX_WEIGHT
    read = _reader(rule.rollout_context_kind or "user", rule.bucket_path)
    segment_key, salt = segment.key, segment.salt

    def weighted(key: str | None, attrs: Mapping[str, Any]) -> bool:
        if not all(clause(key, attrs) for clause in clauses):
            return False
        value = read(key, attrs)
        text = None if value is _MISSING else _bucketable(value)
        bucket = 0.0 if text is None else segment_bucket(segment_key, salt, text)
        return bucket < threshold

    return weighted


def _targets(segment: Segment, *, included: bool) -> dict[str, frozenset[str]]:
    keys: dict[str, set[str]] = {"user": set(segment.included if included else segment.excluded)}
    for target in segment.included_contexts if included else segment.excluded_contexts:
        keys.setdefault(target.context_kind, set()).update(target.values)
    return {kind: frozenset(values) for kind, values in keys.items() if values}


def _compile_segment(segment: Segment, compiled: Mapping[str, ContextPredicate]) -> ContextPredicate:
    included = tuple(_targets(segment, included=True).items())
    excluded = tuple(_targets(segment, included=False).items())
    rules = tuple(_compile_rule(rule, segment, compiled) for rule in segment.rules)

    def contains(key: str | None, attrs: Mapping[str, Any]) -> bool:
        for kind, keys in included:
            if key_of_kind(kind, key, attrs) in keys:
                return True
        for kind, keys in excluded:
            if key_of_kind(kind, key, attrs) in keys:
                return False
        return any(rule(key, attrs) for rule in rules)

    return contains


def compile_segments(
    segments: Mapping[str, Segment],
    *,
    reuse: Mapping[str, ContextPredicate] | None = None,
    redo: Collection[str] = (),
) -> dict[str, ContextPredicate]:
    """Membership tests for every segment (the reference graph was checked acyclic by the config model).

    With ``reuse``, the tests of segments not in ``redo`` are taken from it (``redo`` must hold every segment
    that references a segment in it: `setpoint._core.evaluator.affected_segments`)."""
    compiled: dict[str, ContextPredicate] = {}

    def build(key: str) -> ContextPredicate:
        if key not in compiled and reuse is not None and key not in redo and key in reuse:
            compiled[key] = reuse[key]
        if key not in compiled:
            segment = segments[key]
            for child in sorted(segment.referenced_segments()):
                build(child)
            compiled[key] = _compile_segment(segment, compiled)
        return compiled[key]

    for key in segments:
        build(key)
    return compiled
