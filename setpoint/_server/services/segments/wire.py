"""Segments in LaunchDarkly's REST representation (``/api/v2/segments``), both ways.

Out: :func:`ld_segment` renders a stored segment as LaunchDarkly does (``key``, ``name``, ``description``,
``tags``, ``creationDate``, ``lastModifiedDate``, ``included``, ``excluded``, ``includedContexts``,
``excludedContexts``, ``rules`` with ``_id``, clauses with ``contextKind`` and, for weighted rules, ``weight``,
``bucketBy`` and ``rolloutContextKind``, ``salt``, ``version``, ``_links``).
In: :func:`doc_from_ld` turns a create body (LaunchDarkly's ``key``/``name``/``description``/``tags``, plus
Setpoint's optional ``included``, ``excluded``, ``includedContexts``, ``excludedContexts``, ``rules`` and
``salt``) into a stored segment document.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from setpoint._server.services.segments.patch import PatchError, clause_from_wire, rollout_from_wire
from setpoint._server.services.segments.service import SegmentView
from setpoint.config import SegmentTarget

__all__ = ["CREATE_FIELDS", "doc_from_ld", "ld_segment", "select"]

CREATE_FIELDS = frozenset(
    {
        "key",
        "name",
        "description",
        "tags",
        "unbounded",
        "unboundedContextKind",
        "included",
        "excluded",
        "includedContexts",
        "excludedContexts",
        "rules",
        "salt",
    }
)
"""The fields a create body may carry."""


def _millis(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _targets(targets: list[SegmentTarget]) -> list[dict[str, Any]]:
    return [{"contextKind": t.context_kind, "values": list(t.values)} for t in targets]


def ld_segment(view: SegmentView, project: str, environment: str) -> dict[str, Any]:
    """A segment as LaunchDarkly's API returns it."""
    s = view.segment
    rules = []
    for rule in s.rules:
        clauses = [
            {
                "attribute": c.attribute,
                "op": c.op,
                "values": list(c.values),
                "contextKind": c.context_kind,
                "negate": c.negate,
            }
            for c in rule.clauses
        ]
        entry: dict[str, Any] = {"_id": rule.id, "clauses": clauses}
        if rule.description is not None:
            entry["description"] = rule.description
        if rule.weight is not None:
            entry["weight"] = rule.weight
            entry["bucketBy"] = rule.bucket_by
            entry["rolloutContextKind"] = rule.rollout_context_kind or "user"
        rules.append(entry)
    href = f"/api/v2/segments/{project}/{environment}/{s.key}"
    return {
        "key": s.key,
        "name": s.name,
        "description": s.description or "",
        "tags": list(s.tags),
        "creationDate": _millis(view.created_at),
        "lastModifiedDate": _millis(view.updated_at),
        "deleted": False,
        "included": list(s.included),
        "excluded": list(s.excluded),
        "includedContexts": _targets(s.included_contexts),
        "excludedContexts": _targets(s.excluded_contexts),
        "rules": rules,
        "salt": s.salt,
        "version": view.revision,
        "generation": view.revision,
        "unbounded": False,
        "_links": {"self": {"href": href, "type": "application/json"}},
    }


def _ld_targets(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    raw = body.get(name) or []
    if not isinstance(raw, list):
        raise PatchError(f'{name!r} must be a list of {{"contextKind", "values"}} objects')
    out = []
    for index, target in enumerate(raw):
        if not isinstance(target, dict):
            raise PatchError(f"{name}[{index}] must be an object with 'contextKind' and 'values'")
        out.append({"context_kind": target.get("contextKind"), "values": target.get("values")})
    return out


def _ld_rules(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("rules") or []
    if not isinstance(raw, list):
        raise PatchError("'rules' must be a list of {\"clauses\": [...]} objects")
    rules = []
    for index, rule in enumerate(raw):
        where = f"rules[{index}]"
        if not isinstance(rule, dict) or not isinstance(rule.get("clauses"), list):
            raise PatchError(f"{where} must be an object with a 'clauses' list")
        clauses = [clause_from_wire(c, f"{where}.clauses[{i}]") for i, c in enumerate(rule["clauses"])]
        rules.append(
            {
                "id": rule.get("_id") or str(uuid.uuid4()),
                "description": rule.get("description"),
                "clauses": clauses,
                **rollout_from_wire(rule, where),
            }
        )
    return rules


def doc_from_ld(body: Any) -> dict[str, Any]:
    """A stored segment document from a create body; :class:`PatchError` naming what is wrong."""
    if not isinstance(body, dict):
        raise PatchError("the body must be a JSON object with at least 'key' and 'name'")
    unknown = sorted(set(body) - CREATE_FIELDS)
    if unknown:
        raise PatchError(f"unknown field(s) {', '.join(unknown)}; a segment takes {', '.join(sorted(CREATE_FIELDS))}")
    if body.get("unbounded"):
        raise PatchError("unbounded (big) segments are not supported: list the keys in 'included' instead")
    for name in ("key", "name"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise PatchError(f"{name!r} is required and must be a non-empty string")
    return {
        "key": body["key"],
        "name": body["name"],
        "description": body.get("description") or None,
        "tags": body.get("tags") or [],
        "included": body.get("included") or [],
        "excluded": body.get("excluded") or [],
        "included_contexts": _ld_targets(body, "includedContexts"),
        "excluded_contexts": _ld_targets(body, "excludedContexts"),
        "rules": _ld_rules(body),
        "salt": _salt(body),
    }


def _salt(body: dict[str, Any]) -> str:
    salt = body.get("salt") or ""
    if not isinstance(salt, str):
        raise PatchError(f"'salt' must be a string (LaunchDarkly's segment salt, for weighted rules), got {salt!r}")
    return salt


_SORTS = {"key", "name", "creationDate", "lastModifiedDate"}


def select(views: list[SegmentView], filter_text: str | None, sort: str | None) -> list[SegmentView]:
    """LaunchDarkly's list ``filter`` (``query:<text>``, ``tags:<a+b>``, ``keys:<k1+k2>``, comma-separated) and
    ``sort`` (``key``, ``name``, ``creationDate``, ``lastModifiedDate``; ``-`` prefix for descending)."""
    chosen = list(views)
    for part in (p.strip() for p in (filter_text or "").split(",") if p.strip()):
        field, _, value = part.partition(":")
        wanted = [w for w in value.replace(" ", "+").split("+") if w]
        if field == "query":
            text = value.lower()
            chosen = [v for v in chosen if text in v.segment.key.lower() or text in v.segment.name.lower()]
        elif field == "tags":
            chosen = [v for v in chosen if set(wanted) <= set(v.segment.tags)]
        elif field == "keys":
            chosen = [v for v in chosen if v.segment.key in wanted]
        elif field != "unbounded":
            raise PatchError(f"unknown filter field {field!r}; use query, tags or keys (e.g. filter=tags:beta+ai)")
    if sort:
        name = sort.removeprefix("-")
        if name not in _SORTS:
            raise PatchError(f"unknown sort {sort!r}; use one of {', '.join(sorted(_SORTS))} (prefix - to reverse)")
        keys: dict[str, Any] = {
            "key": lambda v: v.segment.key,
            "name": lambda v: v.segment.name.lower(),
            "creationDate": lambda v: v.created_at,
            "lastModifiedDate": lambda v: v.updated_at,
        }
        chosen.sort(key=keys[name], reverse=sort.startswith("-"))
    return chosen
