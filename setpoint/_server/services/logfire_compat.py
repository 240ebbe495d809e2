"""Serve Logfire SDK clients only JSON they can validate.

The Logfire SDK knows eight condition kinds and no ``negate`` (it would silently ignore the field) and no
segments. Setpoint-only conditions are rewritten into Logfire ones where that is exact: a negated condition
becomes its opposite kind; starts-with / ends-with / contains become an escaped regex; a segment made only of
simple rules becomes one override per rule (a negated segment clause also requires the attribute to be present,
since segment clauses never match a missing attribute). Any other override is left out and named in a warning that the
API sends as the ``X-Logfire-Warning`` header.

Writes from such a client go through `merge_logfire_overrides`: whatever the client was not served, or was
served rewritten, is kept as stored (or the write is refused with 409), never silently dropped.
"""

from __future__ import annotations

import itertools
import re
from difflib import SequenceMatcher
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


def variable_to_logfire(
    name: str, variable: dict[str, Any], segments: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The Logfire-readable form of one variable and the warnings about what was left out."""
    warnings: list[str] = []
    overrides: list[dict[str, Any]] = []
    for index, override in enumerate(variable.get("overrides", [])):
        try:
            overrides.extend(rewrite_override(override, segments))
        except NotExpressibleError as exc:
            warnings.append(f"variable {name!r}: rule #{index + 1} (overrides[{index}]) left out because {exc}")
    return {**variable, "overrides": overrides}, warnings


def to_logfire(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The Logfire-readable form of a project config and the warnings about what was left out."""
    segments: dict[str, Any] = config.get("segments", {})
    warnings: list[str] = []
    variables: dict[str, Any] = {}
    for name, variable in config["variables"].items():
        variables[name], found = variable_to_logfire(name, variable, segments)
        warnings.extend(found)
    return {"variables": variables}, warnings


class HiddenOverrideConflictError(Exception):
    """A Logfire client's write changed part of an override it was served in rewritten form (message says which)."""


def _canonical(value: Any) -> Any:
    """A hashable form for comparing what a client sends with what it was served (1 and 1.0 compare equal)."""
    if isinstance(value, dict):
        return tuple(sorted((str(k), _canonical(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("[", *(_canonical(v) for v in value))
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _served(override: dict[str, Any], segments: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return rewrite_override(override, segments)
    except NotExpressibleError:
        return []


def merge_logfire_overrides(
    stored: list[dict[str, Any]], incoming: list[dict[str, Any]], segments: dict[str, Any]
) -> list[dict[str, Any]]:
    """The overrides to store when a Logfire client, which was served `to_logfire`'s form of ``stored``, sends
    ``incoming``.

    Overrides the client was never served (left out) are kept, at the same place relative to their neighbours;
    overrides it was served rewritten (a negated condition turned into its opposite kind, a segment expanded
    into one override per rule, a text condition as a regex) and sends back unchanged are stored in their
    original form. An override the client dropped entirely is dropped, and new ones are stored as sent.
    HiddenOverrideConflictError when the client changed or reordered only part of one rewritten override (its
    original cannot be rebuilt from that).
    """
    groups = [(override, _served(override, segments)) for override in stored]
    if all(len(served) == 1 and _canonical(served[0]) == _canonical(o) for o, served in groups):
        return incoming  # the client saw everything as it is stored
    served_keys = [_canonical(s) for _, served in groups for s in served]
    incoming_keys = [_canonical(o) for o in incoming]
    matcher = SequenceMatcher(None, served_keys, incoming_keys, autojunk=False)
    position: dict[int, int] = {}
    for block in matcher.get_matching_blocks():
        for offset in range(block.size):
            position[block.a + offset] = block.b + offset
    gap: dict[int, int] = {}
    for _tag, a1, a2, b1, _b2 in matcher.get_opcodes():
        for a in range(a1, a2):
            gap[a] = position.get(a, b1)

    placed: list[tuple[tuple[int, int, int], dict[str, Any]]] = []
    taken: set[int] = set()
    anchor: tuple[int, int] = (-1, 1)  # where a left-out override goes: after the previous served one
    first_served = 0
    for index, (original, served) in enumerate(groups):
        span = range(first_served, first_served + len(served))
        first_served += len(served)
        if not served:
            placed.append(((*anchor, index), original))
            continue
        matched = [position[a] for a in span if a in position]
        if not matched:  # the client removed this override
            anchor = (gap[span.start], -1)
            continue
        if len(matched) != len(served) or matched != list(range(matched[0], matched[0] + len(matched))):
            raise HiddenOverrideConflictError(
                f"override {index} is served to Logfire clients as {len(served)} overrides (rewritten from "
                "Setpoint-only conditions); change or reorder all of them together, or edit it with Setpoint"
            )
        placed.append(((matched[0], 0, 0), original))
        taken.update(matched)
        anchor = (matched[-1], 1)
    placed.extend(((k, 0, 0), override) for k, override in enumerate(incoming) if k not in taken)
    placed.sort(key=lambda item: item[0])
    return [override for _, override in placed]
