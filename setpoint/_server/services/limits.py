"""Caps on what one write can make a stored document grow to, so repeated patches cannot grow it without bound.

The defaults suit every normal use; ``setpoint serve`` reads overrides from ``SETPOINT_MAX_SEGMENT_KEYS``,
``SETPOINT_MAX_SEGMENT_RULES``, ``SETPOINT_MAX_SEGMENT_CLAUSES`` and ``SETPOINT_MAX_CLAUSE_VALUES``.
"""

from __future__ import annotations

from dataclasses import dataclass

from setpoint.config import Segment


@dataclass(frozen=True)
class Limits:
    """Size caps checked on every segment write (create, replace, patch, UI, LaunchDarkly-style API)."""

    max_segment_keys: int = 100_000
    """Included plus excluded target keys of one segment, over all context kinds."""
    max_segment_rules: int = 1_000
    """Rules of one segment."""
    max_segment_clauses: int = 100
    """Clauses of one rule."""
    max_clause_values: int = 10_000
    """Values of one clause."""


def segment_problem(segment: Segment, limits: Limits) -> str | None:
    """What makes ``segment`` larger than ``limits`` allow (a message saying what to do), or None."""
    keys = len(segment.included) + len(segment.excluded)
    keys += sum(len(t.values) for t in (*segment.included_contexts, *segment.excluded_contexts))
    if keys > limits.max_segment_keys:
        return (
            f"segment {segment.key!r} would have {keys} included and excluded keys, more than the limit of "
            f"{limits.max_segment_keys} (SETPOINT_MAX_SEGMENT_KEYS); remove keys or match them with a rule instead"
        )
    if len(segment.rules) > limits.max_segment_rules:
        return (
            f"segment {segment.key!r} would have {len(segment.rules)} rules, more than the limit of "
            f"{limits.max_segment_rules} (SETPOINT_MAX_SEGMENT_RULES); merge rules or split the segment"
        )
    for index, rule in enumerate(segment.rules):
        if len(rule.clauses) > limits.max_segment_clauses:
            return (
                f"segment {segment.key!r}, rules[{index}] would have {len(rule.clauses)} clauses, more than the "
                f"limit of {limits.max_segment_clauses} (SETPOINT_MAX_SEGMENT_CLAUSES)"
            )
        for position, clause in enumerate(rule.clauses):
            if len(clause.values) > limits.max_clause_values:
                return (
                    f"segment {segment.key!r}, rules[{index}].clauses[{position}] would have {len(clause.values)} "
                    f"values, more than the limit of {limits.max_clause_values} (SETPOINT_MAX_CLAUSE_VALUES)"
                )
    return None
