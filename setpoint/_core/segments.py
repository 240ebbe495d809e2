"""Segment membership, compiled once: key sets become frozensets (O(1) for any size), rules become predicates."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from setpoint.config._segments import Segment, SegmentClause

__all__ = ["ContextPredicate", "compile_segments", "key_of_kind"]

ContextPredicate = Callable[[str | None, Mapping[str, Any]], bool]
"""A test of (targeting key, attributes)."""

_MISSING: Any = object()


def key_of_kind(kind: str, targeting_key: str | None, attributes: Mapping[str, Any]) -> Any:
    """The key of a context kind: the targeting key for ``user``, else the ``<kind>.key`` attribute."""
    if kind == "user":
        return targeting_key
    return attributes.get(f"{kind}.key")


def _compile_clause(clause: SegmentClause, segments: Mapping[str, ContextPredicate]) -> ContextPredicate:
    negate = clause.negate
    if clause.op == "segmentMatch":
        members = [segments[str(key)] for key in clause.values]

        def in_any(key: str | None, attrs: Mapping[str, Any]) -> bool:
            return any(m(key, attrs) for m in members) != negate

        return in_any

    test = clause.predicate
    assert test is not None
    kind = clause.context_kind
    if clause.attribute == "key":

        def read(key: str | None, attrs: Mapping[str, Any]) -> Any:
            found = key_of_kind(kind, key, attrs)
            return _MISSING if found is None else found

    else:
        name = clause.attribute if kind == "user" else f"{kind}.{clause.attribute}"

        def read(key: str | None, attrs: Mapping[str, Any]) -> Any:
            return attrs.get(name, _MISSING)

    def matches(key: str | None, attrs: Mapping[str, Any]) -> bool:
        value = read(key, attrs)
        if value is _MISSING:
            return negate
        if isinstance(value, list | tuple):
            return any(test(item) for item in value) != negate
        return test(value) != negate

    return matches


def _targets(segment: Segment, *, included: bool) -> dict[str, frozenset[str]]:
    keys: dict[str, set[str]] = {"user": set(segment.included if included else segment.excluded)}
    for target in segment.included_contexts if included else segment.excluded_contexts:
        keys.setdefault(target.context_kind, set()).update(target.values)
    return {kind: frozenset(values) for kind, values in keys.items() if values}


def _compile_segment(segment: Segment, compiled: Mapping[str, ContextPredicate]) -> ContextPredicate:
    excluded = tuple(_targets(segment, included=False).items())
    included = tuple(_targets(segment, included=True).items())
    rules = tuple(tuple(_compile_clause(c, compiled) for c in rule.clauses) for rule in segment.rules)

    def contains(key: str | None, attrs: Mapping[str, Any]) -> bool:
        for kind, keys in excluded:
            if key_of_kind(kind, key, attrs) in keys:
                return False
        for kind, keys in included:
            if key_of_kind(kind, key, attrs) in keys:
                return True
        return any(all(clause(key, attrs) for clause in rule) for rule in rules)

    return contains


def compile_segments(segments: Mapping[str, Segment]) -> dict[str, ContextPredicate]:
    """Membership tests for every segment (the reference graph was checked acyclic by the config model)."""
    compiled: dict[str, ContextPredicate] = {}

    def build(key: str) -> ContextPredicate:
        if key not in compiled:
            segment = segments[key]
            for child in sorted(segment.referenced_segments()):
                build(child)
            compiled[key] = _compile_segment(segment, compiled)
        return compiled[key]

    for key in segments:
        build(key)
    return compiled
