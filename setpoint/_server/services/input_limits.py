"""Limits on what a client may send, checked once where input enters the server.

- Integers that become database columns (version numbers, key ids, revisions) stay within
  :data:`DB_INT_MAX`, PostgreSQL's ``integer`` (SQLite's is wider): API path, query and body types use
  :data:`DbInt` bounds, so a larger number is a 422 naming the parameter instead of a database error.
- JSON is nested at most :data:`MAX_JSON_DEPTH` levels (values, schemas, conditions, attributes), so no
  recursive step (validation, serialization, evaluation) can run out of stack.
- Text holds no NUL character (PostgreSQL cannot store it) and no lone UTF-16 surrogate (not encodable
  as UTF-8).

``middleware.InputGuard`` applies the JSON and text rules to every JSON request body, URL path and query
string; services apply :func:`loads` to JSON carried inside strings (``serialized_value``, form fields).
"""

from __future__ import annotations

import json
import re
from typing import Any

from setpoint._server.services.errors import InvalidError

DB_INT_MAX = 2**31 - 1
"""The largest integer accepted where a number is stored or looked up (PostgreSQL ``integer``)."""
MAX_JSON_DEPTH = 64
"""How deeply JSON arrays and objects may nest in anything a client sends."""


class InputLimitError(InvalidError):
    """Input past one of the limits above; the message names the field and the limit."""


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored; remove it"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone UTF-16 surrogate (e.g. \\ud800), which is not valid Unicode text; remove it"
    return None


def check_text(text: str, field: str) -> None:
    """:class:`InputLimitError` naming ``field`` when ``text`` holds a NUL or a lone surrogate."""
    problem = _text_problem(text)
    if problem is not None:
        raise InputLimitError(f"{field} {problem}", errors=[{"loc": field, "msg": problem}])


def _first_problem(value: Any) -> tuple[list[str], str] | None:
    """The path and description of the first limit ``value`` breaks (depth-first; iterative)."""
    stack: list[tuple[Any, int, list[str]]] = [(value, 0, [])]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            problem = _text_problem(item)
            if problem is not None:
                return path, problem
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                return path, f"is nested more than {MAX_JSON_DEPTH} levels deep (the limit); flatten it"
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str) and (problem := _text_problem(key)) is not None:
                        return [*path, key], f"(a key) {problem}"
                    stack.append((child, depth + 1, [*path, str(key)]))
            else:
                stack.extend((child, depth + 1, [*path, str(i)]) for i, child in enumerate(item))
    return None


def _is_clean(value: Any) -> bool:
    """Fast path of :func:`check_json`: True when no limit is broken (no paths built)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _text_problem(item) is not None:
                return False
        elif isinstance(item, dict):
            if depth >= MAX_JSON_DEPTH:
                return False
            for key, child in item.items():
                if isinstance(key, str) and _text_problem(key) is not None:
                    return False
                if isinstance(child, dict | list | str):
                    stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth >= MAX_JSON_DEPTH:
                return False
            stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list | str))
    return True


def check_json(value: Any, field: str) -> None:
    """:class:`InputLimitError` naming the offending location under ``field`` (e.g. ``body.overrides.0``)
    when parsed JSON nests deeper than :data:`MAX_JSON_DEPTH` or holds text that cannot be stored."""
    if _is_clean(value):
        return
    found = _first_problem(value)
    if found is None:  # pragma: no cover - both walks check the same rules
        return
    path, problem = found
    loc = ".".join([field, *path])
    raise InputLimitError(f"{loc} {problem}", errors=[{"loc": loc, "msg": problem}])


_CONTAINERS = (dict, list)
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _shallow(value: Any) -> bool:
    """Whether parsed JSON nests at most :data:`MAX_JSON_DEPTH` levels (visits containers only; parsed
    JSON holds exact dicts and lists)."""
    level: list[Any] = [value] if type(value) in _CONTAINERS else []
    for _ in range(MAX_JSON_DEPTH):
        if not level:
            return True
        deeper: list[Any] = []
        for item in level:
            children = item.values() if type(item) is dict else item
            deeper += [c for c in children if type(c) in _CONTAINERS]
        level = deeper
    return not level


def _surely_clean(raw: bytes, value: Any) -> bool:
    """True when JSON text and its parsed value certainly break no limit, found quickly: no ``\\u0000`` or
    surrogate escape in the text (NUL and surrogates can only be written escaped in JSON), and containers
    nested at most :data:`MAX_JSON_DEPTH` levels. False means "walk it" (it may still be clean, e.g. an
    emoji written as a surrogate pair)."""
    return _SUSPECT_ESCAPE.search(raw) is None and _shallow(value)


def loads(text: str | bytes, field: str) -> Any:
    """``json.loads`` for client input: ``ValueError`` when it is not JSON (as ``json.loads``),
    :class:`InputLimitError` naming ``field`` when it breaks a limit."""
    try:
        value = json.loads(text)
    except RecursionError:
        message = f"is nested more than {MAX_JSON_DEPTH} levels deep (the limit); flatten it"
        raise InputLimitError(f"{field} {message}", errors=[{"loc": field, "msg": message}]) from None
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if not _surely_clean(raw, value):
        check_json(value, field)
    return value


def check_db_int(value: int, field: str) -> None:
    """:class:`InputLimitError` unless ``1 <= value <=`` :data:`DB_INT_MAX` (for numbers that never came
    through a constrained API type, e.g. a web form's field)."""
    if not 1 <= value <= DB_INT_MAX:
        message = f"must be between 1 and {DB_INT_MAX}"
        raise InputLimitError(f"{field} {message} (got {value})", errors=[{"loc": field, "msg": message}])
