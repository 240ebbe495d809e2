"""JSON numbers that every client can read: NaN, Infinity and overflowing literals (``1e309``) are refused.

Python's ``json`` accepts ``NaN``, ``Infinity`` and ``-Infinity`` and reads ``1e309`` as infinity, but they
are not JSON: JavaScript's ``JSON.parse`` rejects them and other SDKs fail on them. Values, conditions and
schemas are checked with these helpers wherever they enter (config model, API bodies, forms, files).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["NonFiniteNumberError", "check_finite", "check_serialized", "loads_finite", "non_finite_path"]

_SUSPECT = re.compile(r"NaN|Infinity|[eE][+]?0*\d{3,}")
"""Text in which a non-finite number could hide (a cheap scan before a full parse)."""


STORED_CONFIG = "stored_config"
"""Validation context flag: the config was read from storage or received from a server. Values and patterns
written before NaN, Infinity and patterns RE2 cannot run were refused may still be there: they are refused on
every write, and read leniently (a non-finite value is handled per value by OFREP and the SDK; an unusable
pattern never matches) instead of failing the whole config."""


def lenient_context(context: object) -> bool:
    """Whether a pydantic validation context asks for the lenient reading of stored configs."""
    if not isinstance(context, dict):
        return False
    return bool(context.get(STORED_CONFIG) or context.get("allow_unknown_conditions"))


class NonFiniteNumberError(ValueError):
    """A value holds NaN, Infinity or a number too large for a double (the message says where)."""


def _constant(name: str) -> Any:
    raise NonFiniteNumberError(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NonFiniteNumberError(f"{text} is too large for a JSON number (it overflows to infinity)")
    return value


def loads_finite(text: str | bytes) -> Any:
    """``json.loads`` that refuses NaN, Infinity, -Infinity and overflowing numbers (NonFiniteNumberError,
    a ValueError; other JSON errors raise as usual)."""
    return json.loads(text, parse_constant=_constant, parse_float=_float)


def non_finite_path(value: Any, path: str = "") -> str | None:
    """The location (``a.b[2]``) of the first non-finite float inside ``value``, or None when there is none."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path or "(value)")
    if isinstance(value, dict):
        for key, item in value.items():
            found = non_finite_path(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = non_finite_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def check_finite(value: Any, where: str) -> None:
    """NonFiniteNumberError naming ``where`` and the location when ``value`` holds a non-finite number."""
    found = non_finite_path(value)
    if found is not None:
        what = where if found == "(value)" else f"{where}: {found}"
        raise NonFiniteNumberError(f"{what} is NaN or infinite, which JSON cannot carry; send a finite number")


def check_serialized(text: str, where: str) -> None:
    """NonFiniteNumberError when a serialized JSON value holds NaN, Infinity or an overflowing number.

    Text that is not JSON at all is left to the caller's own check.
    """
    if _SUSPECT.search(text) is None:
        return
    try:
        loads_finite(text)
    except NonFiniteNumberError as exc:
        raise NonFiniteNumberError(f"{where}: {exc}; JSON numbers must be finite") from None
    except ValueError:
        return
