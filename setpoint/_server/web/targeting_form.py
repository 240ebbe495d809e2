"""The Targeting tab's form: to and from the rollout + ordered overrides JSON.

The form lists its fields in document order, which the browser keeps when posting: the default rollout's
``weight:<label>`` fields, then per rule a ``rule`` marker, its ``rule_weight:<label>`` fields and its
conditions (each starting with ``cond_negate``). Reordering or deleting a rule in the page is moving or
removing its block, so no indexes need renumbering.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from setpoint._core.operators import is_number
from setpoint._server.services.errors import InvalidError
from setpoint._server.services.simulate import literal
from setpoint.config import CONDITION_KINDS

NUMBER_KINDS = frozenset(
    {"value-greater-than", "value-greater-than-or-equal", "value-less-than", "value-less-than-or-equal"}
)
TEXT_LIST_KINDS = frozenset({"value-starts-with", "value-ends-with", "value-contains"})

KIND_LABELS: dict[str, str] = {
    "value-equals": "equals",
    "value-does-not-equal": "does not equal",
    "value-is-in": "is one of",
    "value-is-not-in": "is not one of",
    "value-matches-regex": "matches regex",
    "value-does-not-match-regex": "does not match regex",
    "key-is-present": "is present",
    "key-is-not-present": "is not present",
    "value-starts-with": "starts with",
    "value-ends-with": "ends with",
    "value-contains": "contains",
    "value-greater-than": "greater than",
    "value-greater-than-or-equal": "greater than or equal to",
    "value-less-than": "less than",
    "value-less-than-or-equal": "less than or equal to",
    "value-before": "is before (date)",
    "value-after": "is after (date)",
    "value-semver-equal": "semver equals",
    "value-semver-less-than": "semver less than",
    "value-semver-greater-than": "semver greater than",
    "in-segment": "is in segment",
    "not-in-segment": "is not in segment",
}
"""A readable operator name for every condition kind (the builder offers all of them)."""

assert set(KIND_LABELS) == set(CONDITION_KINDS), "every condition kind needs a label in the builder"


def operand_field(kind: str) -> str | None:
    """Which operand a kind takes: ``value``, ``values``, ``pattern``, ``segment`` or none."""
    fields = CONDITION_KINDS[kind].model_fields
    for name in ("segment", "pattern", "values", "value"):
        if name in fields:
            return name
    return None


def kinds_json() -> str:
    """For the page's script: per kind, whether it takes an attribute and which operand."""
    data = {
        kind: {"attribute": "attribute" in cls.model_fields, "operand": operand_field(kind)}
        for kind, cls in CONDITION_KINDS.items()
    }
    return json.dumps(data, separators=(",", ":"))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def operand_text(condition: dict[str, Any]) -> str:
    """The operand of a stored condition as the builder's text box shows it."""
    kind = str(condition.get("kind"))
    name = operand_field(kind) if kind in CONDITION_KINDS else None
    if name == "values":
        return ", ".join(_text(v) for v in condition.get("values") or [])
    if name in ("value", "pattern"):
        return _text(condition.get(name))
    return ""


@dataclass
class _Rule:
    weights: dict[str, float] = field(default_factory=dict)
    conditions: list[dict[str, Any]] = field(default_factory=list)


def _percent(raw: str, where: str) -> float | None:
    raw = raw.strip().removesuffix("%").strip()
    if not raw:
        return None
    try:
        number = float(raw)
    except ValueError:
        raise InvalidError(f"{where}: {raw!r} is not a percentage") from None
    return round(number / 100, 9)


def _condition(kind: str, attribute: str, operand: str, segment: str, negate: bool, where: str) -> dict[str, Any]:
    if kind not in CONDITION_KINDS:
        raise InvalidError(f"{where}: unknown condition kind {kind!r}")
    out: dict[str, Any] = {"kind": kind}
    fields = CONDITION_KINDS[kind].model_fields
    if "attribute" in fields:
        if not attribute.strip():
            raise InvalidError(f"{where}: enter the attribute name")
        out["attribute"] = attribute.strip()
    name = operand_field(kind)
    if name == "segment":
        if not segment.strip():
            raise InvalidError(f"{where}: choose a segment")
        out["segment"] = segment.strip()
    elif name == "pattern":
        out["pattern"] = operand
    elif name == "values":
        parts = [p.strip() for p in operand.split(",") if p.strip()]
        out["values"] = parts if kind in TEXT_LIST_KINDS else [literal(p) for p in parts]
    elif name == "value":
        value = literal(operand.strip())
        if kind in NUMBER_KINDS and not is_number(value):
            raise InvalidError(f"{where}: {operand.strip()!r} is not a number")
        if kind.startswith("value-semver"):
            value = operand.strip()
        out["value"] = value
    if negate:
        out["negate"] = True
    return out


def parse(items: Iterable[tuple[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The rollout and overrides a posted targeting form describes."""
    default: dict[str, float] = {}
    rules: list[_Rule] = []
    pending: dict[str, str] | None = None

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            where = f"override rule #{len(rules)}, condition #{len(rules[-1].conditions) + 1}"
            rules[-1].conditions.append(
                _condition(
                    pending.get("cond_kind", ""),
                    pending.get("cond_attribute", ""),
                    pending.get("cond_operand", ""),
                    pending.get("cond_segment", ""),
                    pending.get("cond_negate", "") == "yes",
                    where,
                )
            )
            pending = None

    for key, raw in items:
        value = raw if isinstance(raw, str) else ""
        if key.startswith("weight:"):
            weight = _percent(value, f"default rollout, label {key[7:]!r}")
            if weight:
                default[key[7:]] = weight
        elif key == "rule":
            flush()
            rules.append(_Rule())
        elif key.startswith("rule_weight:") and rules:
            weight = _percent(value, f"override rule #{len(rules)}, label {key[12:]!r}")
            if weight:
                rules[-1].weights[key[12:]] = weight
        elif key == "cond_negate" and rules:
            flush()
            pending = {"cond_negate": value}
        elif key.startswith("cond_") and pending is not None:
            pending[key] = value
    flush()
    overrides = [{"conditions": r.conditions, "rollout": {"labels": r.weights}} for r in rules]
    return {"labels": default}, overrides
