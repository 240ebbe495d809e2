"""Serve Logfire SDK clients only JSON they can validate.

The Logfire SDK knows eight condition kinds and no ``negate`` (it would silently ignore the field) and no
segments. Setpoint-only conditions are rewritten into Logfire ones where that is exact: a negated condition
becomes its opposite kind; starts-with / ends-with / contains become an escaped regex; a segment made only of
simple rules becomes one override per rule (a negated segment clause also requires the attribute to be present,
since segment clauses never match a missing attribute). Any other override is left out and named in a warning that the
API sends as the ``X-Logfire-Warning`` header.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

Conditions = list[dict[str, Any]]
Alternatives = list[Conditions]
"""An OR of ANDs: the override applies when any alternative's conditions all match."""

MAX_EXPANDED_OVERRIDES = 64

_OPPOSITE = {
    "value-equals": "value-does-not-equal",
    "value-is-in": "value-is-not-in",
    "value-matches-regex": "value-does-not-match-regex",
    "key-is-present": "key-is-not-present",
}
_OPPOSITE.update({v: k for k, v in list(_OPPOSITE.items())})
LOGFIRE_KINDS = frozenset(_OPPOSITE)

_TEXT_PATTERNS = {
    "value-starts-with": ("^(?:", ")"),
    "value-ends-with": ("(?:", r")\Z"),
    "value-contains": ("(?:", ")"),
}
_CLAUSE_TEXT_OPS = {"startsWith": "value-starts-with", "endsWith": "value-ends-with", "contains": "value-contains"}


class NotExpressibleError(Exception):
    """A condition has no exact Logfire equivalent."""


def _regex(kind: str, values: list[Any]) -> str:
    if not values or not all(isinstance(v, str) for v in values):
        raise NotExpressibleError(f"{kind} with non-string values")
    start, end = _TEXT_PATTERNS[kind]
    return start + "|".join(re.escape(v) for v in values) + end


def _simple(condition: dict[str, Any]) -> dict[str, Any]:
    """One Setpoint condition (not a segment one) as one Logfire condition."""
    kind = str(condition.get("kind"))
    negate = bool(condition.get("negate", False))
    attribute = condition.get("attribute")
    if kind in LOGFIRE_KINDS:
        out = {k: v for k, v in condition.items() if k != "negate"}
        if negate:
            out["kind"] = _OPPOSITE[kind]
        return out
    if kind in _TEXT_PATTERNS:
        pattern = _regex(kind, list(condition.get("values") or []))
        out_kind = "value-does-not-match-regex" if negate else "value-matches-regex"
        return {"kind": out_kind, "attribute": attribute, "pattern": pattern}
    raise NotExpressibleError(f"condition kind {kind!r} has no Logfire equivalent")


def _plain_attribute(attribute: str) -> str:
    """The attribute name a segment clause reads, when it is one plain name (not a path, not a built-in)."""
    if attribute.startswith("/"):
        if attribute.count("/") != 1 or "~" in attribute:
            raise NotExpressibleError(f"a segment clause on the attribute reference {attribute!r}")
        attribute = attribute[1:]
    if attribute in ("kind", "anonymous"):
        raise NotExpressibleError(f"a segment clause on the context's {attribute!r}")
    return attribute


def _clause(clause: dict[str, Any]) -> Conditions:
    """A segment clause as Logfire conditions (AND-ed).

    A negated clause never matches a missing attribute (LaunchDarkly's rule), while Logfire's negative kinds
    do: it becomes ``key-is-present`` plus the opposite kind."""
    op = clause.get("op")
    kind_name = clause.get("context_kind") or clause.get("contextKind") or "user"
    attribute = _plain_attribute(str(clause.get("attribute")))
    if kind_name == "user":
        if attribute == "key":
            raise NotExpressibleError("a segment clause on the targeting key")
    else:
        attribute = f"{kind_name}.{attribute}"
    values = list(clause.get("values") or [])
    negate = bool(clause.get("negate", False))
    if op == "in":
        condition = _simple({"kind": "value-is-in", "attribute": attribute, "values": values, "negate": negate})
    elif op in _CLAUSE_TEXT_OPS:
        condition = _simple({"kind": _CLAUSE_TEXT_OPS[op], "attribute": attribute, "values": values, "negate": negate})
    elif op == "matches" and values and all(isinstance(v, str) for v in values):
        pattern = "|".join(f"(?:{v})" for v in values)
        condition = _simple(
            {"kind": "value-matches-regex", "attribute": attribute, "pattern": pattern, "negate": negate}
        )
    else:
        raise NotExpressibleError(f"segment clause op {op!r} has no Logfire equivalent")
    if negate:
        return [{"kind": "key-is-present", "attribute": attribute}, condition]
    return [condition]


def _segment(condition: dict[str, Any], segments: dict[str, Any]) -> Alternatives:
    key = condition.get("segment")
    if condition.get("kind") != "in-segment" or condition.get("negate"):
        raise NotExpressibleError(f"{condition.get('kind')} (negated segment membership)")
    segment = segments.get(str(key))
    if segment is None:
        raise NotExpressibleError(f"unknown segment {key!r}")
    for field in ("included", "excluded", "included_contexts", "excluded_contexts"):
        if segment.get(field):
            raise NotExpressibleError(f"segment {key!r} lists {field} keys")
    rules = segment.get("rules", [])
    if any(rule.get("weight") is not None for rule in rules):
        raise NotExpressibleError(f"segment {key!r} has a weighted rule (LaunchDarkly's bucketing)")
    return [[c for clause in rule.get("clauses", []) for c in _clause(clause)] for rule in rules]


def _alternatives(condition: dict[str, Any], segments: dict[str, Any]) -> Alternatives:
    if condition.get("kind") in ("in-segment", "not-in-segment"):
        return _segment(condition, segments)
    return [[_simple(condition)]]


def rewrite_override(override: dict[str, Any], segments: dict[str, Any]) -> list[dict[str, Any]]:
    """The Logfire overrides equivalent to one Setpoint override (none when it can never match)."""
    per_condition = [_alternatives(c, segments) for c in override.get("conditions", [])]
    combos = list(itertools.islice(itertools.product(*per_condition), MAX_EXPANDED_OVERRIDES + 1))
    if len(combos) > MAX_EXPANDED_OVERRIDES:
        raise NotExpressibleError(f"it expands to more than {MAX_EXPANDED_OVERRIDES} Logfire overrides")
    return [
        {"conditions": [c for alternative in combo for c in alternative], "rollout": override["rollout"]}
        for combo in combos
    ]


def to_logfire(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The Logfire-readable form of a project config and the warnings about what was left out."""
    segments: dict[str, Any] = config.get("segments", {})
    warnings: list[str] = []
    variables: dict[str, Any] = {}
    for name, variable in config["variables"].items():
        overrides: list[dict[str, Any]] = []
        for index, override in enumerate(variable.get("overrides", [])):
            try:
                overrides.extend(rewrite_override(override, segments))
            except NotExpressibleError as exc:
                warnings.append(f"variable {name!r}: override {index} left out because {exc}")
        variables[name] = {**variable, "overrides": overrides}
    return {"variables": variables}, warnings
