"""JSON Patch (RFC 6902) on a segment's LaunchDarkly representation: the other ``PATCH`` format of
LaunchDarkly's segments API (``[{"op": "replace", "path": "/name", "value": ...}]``).

Pure functions; any problem raises `PatchError` naming the operation (its index and ``op``) and the path.
"""

from __future__ import annotations

import copy
from typing import Any

from setpoint._server.services.segments.patch import PatchError

__all__ = ["EDITABLE_FIELDS", "apply_json_patch", "edited_fields"]

EDITABLE_FIELDS = frozenset(
    {"name", "description", "tags", "included", "excluded", "includedContexts", "excludedContexts", "rules", "salt"}
)
"""Fields of the representation a JSON Patch may change; the rest are read-only."""


def _tokens(path: Any, where: str) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"{where}: 'path' must be a JSON pointer such as '/name', got {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]] if path else []


def _index(container: list[Any], part: str, where: str, *, appending: bool = False) -> int:
    if appending and part == "-":
        return len(container)
    if not part.isdigit():
        raise PatchError(f"{where}: {part!r} is not an array index")
    index = int(part)
    if index > len(container) or (index == len(container) and not appending):
        raise PatchError(f"{where}: index {index} is out of range")
    return index


def _parent(doc: Any, tokens: list[str], where: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, where)]
        else:
            raise PatchError(f"{where}: path segment {token!r} does not exist")
    return node


def _get(doc: Any, tokens: list[str], where: str) -> Any:
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens, where), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"{where}: {last!r} does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, where)]
    raise PatchError(f"{where}: cannot index into {type(parent).__name__}")


def _remove(doc: Any, tokens: list[str], where: str) -> Any:
    if not tokens:
        raise PatchError(f"{where}: cannot remove the whole segment")
    value = _get(doc, tokens, where)
    parent, last = _parent(doc, tokens, where), tokens[-1]
    if isinstance(parent, dict):
        del parent[last]
    else:
        del parent[_index(parent, last, where)]
    return value


def _add(doc: Any, tokens: list[str], value: Any, where: str, *, replace: bool = False) -> None:
    if not tokens:
        raise PatchError(f"{where}: cannot replace the whole segment")
    parent, last = _parent(doc, tokens, where), tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"{where}: {last!r} does not exist")
        parent[last] = value
    elif isinstance(parent, list):
        if replace:
            parent[_index(parent, last, where)] = value
        else:
            parent.insert(_index(parent, last, where, appending=True), value)
    else:
        raise PatchError(f"{where}: cannot add into {type(parent).__name__}")


def apply_json_patch(document: dict[str, Any], operations: Any) -> dict[str, Any]:
    """``document`` with the RFC 6902 ``operations`` applied (add, remove, replace, move, copy, test)."""
    if isinstance(operations, dict) and "patch" in operations:
        operations = operations["patch"]  # LaunchDarkly's {"patch": [...], "comment": "..."} form
    if not isinstance(operations, list) or not operations:
        raise PatchError(
            'a JSON Patch is a non-empty list of {"op", "path", "value"} operations; for semantic-patch '
            "instructions send Content-Type: application/json; domain-model=launchdarkly.semanticpatch"
        )
    doc = copy.deepcopy(document)
    for index, operation in enumerate(operations):
        if not isinstance(operation, dict):
            raise PatchError(f"operation {index}: must be an object, got {operation!r}")
        op = operation.get("op")
        where = f"operation {index} ({op} {operation.get('path')!r})"
        tokens = _tokens(operation.get("path"), where)
        if op in ("add", "replace", "test") and "value" not in operation:
            raise PatchError(f"{where}: missing 'value'")
        if op == "add":
            _add(doc, tokens, copy.deepcopy(operation["value"]), where)
        elif op == "replace":
            _add(doc, tokens, copy.deepcopy(operation["value"]), where, replace=True)
        elif op == "remove":
            _remove(doc, tokens, where)
        elif op in ("move", "copy"):
            source = _tokens(operation.get("from"), where)
            value = _remove(doc, source, where) if op == "move" else copy.deepcopy(_get(doc, source, where))
            _add(doc, tokens, value, where)
        elif op == "test":
            if _get(doc, tokens, where) != operation["value"]:
                raise PatchError(f"{where}: test failed, the value is {_get(doc, tokens, where)!r}")
        else:
            raise PatchError(f"{where}: unknown op {op!r}; use add, remove, replace, move, copy or test")
    return doc


def edited_fields(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """Top-level fields whose value differs; `PatchError` when a read-only one changed."""
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    read_only = sorted(changed - EDITABLE_FIELDS)
    if read_only:
        raise PatchError(f"read-only field(s) cannot be patched: {', '.join(read_only)}")
    return changed
