"""Semantic-patch instructions (LaunchDarkly's ``domain-model=launchdarkly.semanticpatch``) applied to a segment.

Pure functions: :func:`apply_instructions` takes a segment's stored document (the `setpoint.config.Segment`
JSON shape) and a list of instructions, and returns the patched document, validated as a `Segment`. Any
problem raises :class:`PatchError` naming the instruction (its index and ``kind``) and what to fix.

Supported instruction kinds: ``addRule``, ``removeRule``, ``reorderRules``, ``updateRuleDescription``,
``addClauses``, ``addIncludedTargets``, ``removeIncludedTargets``, ``addExcludedTargets``,
``removeExcludedTargets``, ``addIncludedUsers``, ``removeIncludedUsers``, ``addExcludedUsers``,
``removeExcludedUsers``, ``updateName``, ``updateDescription``, ``addTags``, ``removeTags``.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from setpoint.config import SEGMENT_OPS, Segment

__all__ = [
    "INSTRUCTION_KINDS",
    "PatchError",
    "apply_instructions",
    "clause_from_wire",
    "describe_segment_error",
    "rollout_from_wire",
]


class PatchError(ValueError):
    """An instruction (or the segment it produces) is invalid; the message says which and why."""


Doc = dict[str, Any]
Instruction = dict[str, Any]


def _field(instruction: Instruction, name: str, kind: type | tuple[type, ...], where: str) -> Any:
    if name not in instruction:
        raise PatchError(f"{where}: missing field {name!r}")
    value = instruction[name]
    if not isinstance(value, kind):
        expected = " or ".join(t.__name__ for t in _as_tuple(kind))
        raise PatchError(f"{where}: field {name!r} must be {expected}, got {value!r}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _strings(instruction: Instruction, name: str, where: str) -> list[str]:
    values = _field(instruction, name, list, where)
    for value in values:
        if not isinstance(value, str):
            raise PatchError(f"{where}: {name!r} must be a list of strings, got {value!r}")
    return list(values)


def _escaped(name: str) -> str:
    """An attribute name as an attribute reference (``/`` + the name with ``~`` -> ``~0`` and ``/`` -> ``~1``)."""
    return "/" + name.replace("~", "~0").replace("/", "~1")


def clause_from_wire(clause: Any, where: str) -> dict[str, Any]:
    """A clause in LaunchDarkly's shape (``attribute``, ``op``, ``values``, ``contextKind``, ``negate``) as
    a stored clause; an unknown ``op`` or a missing field raises :class:`PatchError` naming it.

    As in LaunchDarkly, a clause without ``contextKind`` names its attribute literally: an attribute that
    starts with ``/`` is then stored as the escaped reference to that name (``/a/b`` -> ``/~1a~1b``)."""
    if not isinstance(clause, dict):
        raise PatchError(f"{where}: a clause must be an object, got {clause!r}")
    op = clause.get("op")
    if op not in SEGMENT_OPS:
        raise PatchError(f"{where}: unknown operator {op!r}; use one of: {', '.join(SEGMENT_OPS)}")
    attribute = clause.get("attribute")
    if op == "segmentMatch" and attribute in (None, ""):
        attribute = "segmentMatch"
    if not isinstance(attribute, str) or not attribute:
        raise PatchError(f"{where}: clause needs a non-empty string 'attribute', got {attribute!r}")
    values = clause.get("values")
    if not isinstance(values, list) or not values:
        raise PatchError(f"{where}: clause on {attribute!r} needs a non-empty list 'values', got {values!r}")
    kind = clause.get("contextKind", clause.get("context_kind", "user"))
    negate = clause.get("negate", False)
    if not isinstance(negate, bool):
        raise PatchError(f"{where}: clause on {attribute!r}: 'negate' must be true or false, got {negate!r}")
    unknown = sorted(set(clause) - {"attribute", "op", "values", "contextKind", "context_kind", "negate", "_id"})
    if unknown:
        raise PatchError(f"{where}: clause on {attribute!r} has unknown field(s): {', '.join(unknown)}")
    if "contextKind" not in clause and "context_kind" not in clause and attribute.startswith("/"):
        attribute = _escaped(attribute)
    return {"attribute": attribute, "op": op, "values": values, "context_kind": kind, "negate": negate}


def rollout_from_wire(source: dict[str, Any], where: str) -> dict[str, Any]:
    """A segment rule's ``weight`` (0-100000), ``bucketBy`` and ``rolloutContextKind`` (LaunchDarkly's names)
    as stored fields; only the ones given. As in LaunchDarkly, ``bucketBy`` without ``rolloutContextKind``
    names its attribute literally."""
    out: dict[str, Any] = {}
    weight = source.get("weight")
    if weight is not None:
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100_000:
            raise PatchError(
                f"{where}: 'weight' must be an integer from 0 to 100000 (thousandths of a percent), got {weight!r}"
            )
        out["weight"] = weight
    kind = source.get("rolloutContextKind")
    bucket_by = source.get("bucketBy")
    for name, value in (("bucketBy", bucket_by), ("rolloutContextKind", kind)):
        if value is not None:
            if weight is None:
                raise PatchError(f"{where}: {name!r} needs a 'weight' (the share of matching contexts to keep)")
            if not isinstance(value, str) or not value:
                raise PatchError(f"{where}: {name!r} must be a non-empty string, got {value!r}")
    if bucket_by is not None:
        out["bucket_by"] = _escaped(bucket_by) if kind is None and bucket_by.startswith("/") else bucket_by
    if kind is not None:
        out["rollout_context_kind"] = kind
    return out


def _clauses(instruction: Instruction, where: str) -> list[dict[str, Any]]:
    clauses = _field(instruction, "clauses", list, where)
    if not clauses:
        raise PatchError(f"{where}: 'clauses' must not be empty")
    return [clause_from_wire(c, f"{where}, clause {i}") for i, c in enumerate(clauses)]


def _rule_index(doc: Doc, instruction: Instruction, where: str) -> int:
    rule_id = _field(instruction, "ruleId", str, where)
    for index, rule in enumerate(doc["rules"]):
        if rule.get("id") == rule_id:
            return index
    known = ", ".join(str(r.get("id")) for r in doc["rules"]) or "none"
    raise PatchError(f"{where}: no rule with ruleId {rule_id!r} (rule ids: {known})")


def _add_rule(doc: Doc, ins: Instruction, where: str) -> None:
    rule: dict[str, Any] = {"id": str(uuid.uuid4()), "clauses": _clauses(ins, where), **rollout_from_wire(ins, where)}
    description = ins.get("description")
    if description is not None:
        rule["description"] = _field(ins, "description", str, where)
    before = ins.get("beforeRuleId")
    if before is None:
        doc["rules"].append(rule)
    else:
        doc["rules"].insert(_rule_index(doc, {"ruleId": before}, where), rule)


def _remove_rule(doc: Doc, ins: Instruction, where: str) -> None:
    del doc["rules"][_rule_index(doc, ins, where)]


def _reorder_rules(doc: Doc, ins: Instruction, where: str) -> None:
    ids = _strings(ins, "ruleIds", where)
    current = {r.get("id"): r for r in doc["rules"]}
    if sorted(ids) != sorted(str(k) for k in current):
        raise PatchError(f"{where}: 'ruleIds' must list every rule id exactly once: {', '.join(map(str, current))}")
    doc["rules"] = [current[i] for i in ids]


def _update_rule_description(doc: Doc, ins: Instruction, where: str) -> None:
    doc["rules"][_rule_index(doc, ins, where)]["description"] = _field(ins, "description", str, where)


def _add_clauses(doc: Doc, ins: Instruction, where: str) -> None:
    doc["rules"][_rule_index(doc, ins, where)]["clauses"].extend(_clauses(ins, where))


def _target_lists(doc: Doc, context_kind: str, *, included: bool) -> list[str]:
    if context_kind == "user":
        key = "included" if included else "excluded"
        values: list[str] = doc[key]
        return values
    targets: list[dict[str, Any]] = doc["included_contexts" if included else "excluded_contexts"]
    for target in targets:
        if target["context_kind"] == context_kind:
            found: list[str] = target["values"]
            return found
    target = {"context_kind": context_kind, "values": []}
    targets.append(target)
    created: list[str] = target["values"]
    return created


def _targets(*, included: bool, add: bool, users: bool) -> Callable[[Doc, Instruction, str], None]:
    def apply(doc: Doc, ins: Instruction, where: str) -> None:
        kind = "user" if users else _field(ins, "contextKind", str, where)
        values = _strings(ins, "values", where)
        keys = _target_lists(doc, kind, included=included)
        if add:
            present = set(keys)
            keys.extend(v for v in dict.fromkeys(values) if v not in present)
        else:
            gone = set(values)
            keys[:] = [k for k in keys if k not in gone]
        for name in ("included_contexts", "excluded_contexts"):
            doc[name] = [t for t in doc[name] if t["values"]]

    return apply


def _update_name(doc: Doc, ins: Instruction, where: str) -> None:
    doc["name"] = _field(ins, "value", str, where)


def _update_description(doc: Doc, ins: Instruction, where: str) -> None:
    value = ins.get("value")
    doc["description"] = None if value is None else _field(ins, "value", str, where)


def _add_tags(doc: Doc, ins: Instruction, where: str) -> None:
    doc["tags"] = list(dict.fromkeys([*doc["tags"], *_strings(ins, "values", where)]))


def _remove_tags(doc: Doc, ins: Instruction, where: str) -> None:
    gone = set(_strings(ins, "values", where))
    doc["tags"] = [t for t in doc["tags"] if t not in gone]


_HANDLERS: dict[str, Callable[[Doc, Instruction, str], None]] = {
    "addRule": _add_rule,
    "removeRule": _remove_rule,
    "reorderRules": _reorder_rules,
    "updateRuleDescription": _update_rule_description,
    "addClauses": _add_clauses,
    "addIncludedTargets": _targets(included=True, add=True, users=False),
    "removeIncludedTargets": _targets(included=True, add=False, users=False),
    "addExcludedTargets": _targets(included=False, add=True, users=False),
    "removeExcludedTargets": _targets(included=False, add=False, users=False),
    "addIncludedUsers": _targets(included=True, add=True, users=True),
    "removeIncludedUsers": _targets(included=True, add=False, users=True),
    "addExcludedUsers": _targets(included=False, add=True, users=True),
    "removeExcludedUsers": _targets(included=False, add=False, users=True),
    "updateName": _update_name,
    "updateDescription": _update_description,
    "addTags": _add_tags,
    "removeTags": _remove_tags,
}
INSTRUCTION_KINDS: tuple[str, ...] = tuple(_HANDLERS)
"""Every semantic-patch instruction kind this module applies."""


def _normalized(doc: Doc) -> Doc:
    """A deep copy with every list the instructions touch present."""
    out = copy.deepcopy(doc)
    for name in ("tags", "included", "excluded", "included_contexts", "excluded_contexts", "rules"):
        out[name] = list(out.get(name) or [])
    for rule in out["rules"]:
        rule.setdefault("id", None)
        if rule["id"] is None:
            rule["id"] = str(uuid.uuid4())
    return out


def apply_instructions(doc: Doc, instructions: Any) -> Segment:
    """Apply semantic-patch ``instructions`` in order to a stored segment document; all or nothing."""
    if not isinstance(instructions, list) or not instructions:
        raise PatchError("'instructions' must be a non-empty list of {\"kind\": ...} objects")
    draft = _normalized(doc)
    for index, instruction in enumerate(instructions):
        if not isinstance(instruction, dict):
            raise PatchError(f"instruction {index}: must be an object with a 'kind', got {instruction!r}")
        kind = instruction.get("kind")
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise PatchError(
                f"instruction {index}: unknown instruction kind {kind!r}; supported: {', '.join(INSTRUCTION_KINDS)}"
            )
        handler(draft, instruction, f"instruction {index} ({kind})")
    return validate_segment(draft)


def validate_segment(doc: Doc) -> Segment:
    """The document as a `Segment`; :class:`PatchError` naming the offending field or clause otherwise.
    Strict: JSON types as the schema says (``"negate": "yes"`` is refused, not read as true)."""
    try:
        return Segment.model_validate(doc, strict=True)
    except ValidationError as exc:
        raise PatchError(describe_segment_error(exc, doc)) from None


def _locate(loc: tuple[int | str, ...], doc: Doc, message: str) -> str:
    parts: list[str] = []
    node: Any = doc
    for part in loc:
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{part}]"]
        else:
            parts.append(str(part))
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    where = ".".join(parts) or "segment"
    if isinstance(node, dict) and "op" in node and not message.startswith("clause on"):
        where += f" (attribute {node.get('attribute')!r}, op {node.get('op')!r})"
    return where


def describe_segment_error(exc: ValidationError, doc: Doc) -> str:
    """A pydantic error about a segment as one message naming each bad field (and clause)."""
    messages = []
    for err in exc.errors(include_url=False):
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "literal_error":
            message = f"unknown value {err.get('input')!r}; {message}"
        messages.append(f"{_locate(tuple(err['loc']), doc, message)}: {message}")
    return f"invalid segment {doc.get('key')!r}: " + "; ".join(messages)
