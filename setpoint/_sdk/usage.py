"""Counting resolutions per variable, label, version and reason, for usage reporting (no I/O here).

The hot path pays one integer increment: ``Variable.get`` bumps a counter on the variable's current `_Bound`
(one per prebuilt outcome, or one for a static variable). Those increments are plain attribute and dict-item
updates with no call in between, which the GIL makes indivisible, so no lock is taken. Rare paths (context
overrides, default functions, errors, spans) go through `count_slow`, which takes a lock.

`harvest` collects and zeroes every counter: the variables' current bounds, the bounds retired by a config
change since the last harvest (kept only while a reporter is active, so memory stays bounded), and the slow
counts. `UsageReporter` (``setpoint._remote.usage``) calls it once per interval.
"""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from setpoint._sdk.resolved import Resolved
    from setpoint._sdk.variable import Variable, _Bound

__all__ = ["MAX_KEYS", "UsageKey", "count_slow", "harvest", "reporting", "retire", "set_reporting", "track"]

UsageKey = tuple[str, str | None, int | None, str]
"""(variable, label, version, reason)."""

MAX_KEYS = 10_000
"""Distinct keys kept between two harvests; counts of further keys are dropped (and counted as dropped)."""

_VARIABLES: weakref.WeakSet[Variable[Any]] = weakref.WeakSet()
_RETIRED: list[_Bound] = []
_SLOW: dict[UsageKey, int] = {}
_LOCK = threading.Lock()
_state = {"reporting": 0, "dropped": 0}


def track(variable: Variable[Any]) -> None:
    """Count ``variable``'s resolutions (called once, when it is created)."""
    _VARIABLES.add(variable)


def set_reporting(active: bool) -> None:
    """A reporter started (True) or stopped (False); retired bounds are kept only while one is active."""
    with _LOCK:
        _state["reporting"] = max(0, _state["reporting"] + (1 if active else -1))
        if not _state["reporting"]:
            _RETIRED.clear()


def reporting() -> bool:
    """Whether a reporter is active."""
    return _state["reporting"] > 0


def retire(bound: _Bound) -> None:
    """``bound`` is being replaced (new config): keep its uncollected counts for the next harvest."""
    if _state["reporting"] and (bound.static_hits or bound.hits):
        _RETIRED.append(bound)


def key_of(resolved: Resolved[Any]) -> UsageKey:
    """The usage key of a result."""
    return (resolved.name, resolved.label, resolved.version, resolved.reason)


def count_slow(resolved: Resolved[Any]) -> None:
    """Count one resolution that did not go through the hot path."""
    key = key_of(resolved)
    with _LOCK:
        if key in _SLOW:
            _SLOW[key] += 1
        elif len(_SLOW) < MAX_KEYS:
            _SLOW[key] = 1
        else:
            _state["dropped"] += 1


def _drain(bound: _Bound, into: dict[UsageKey, int]) -> None:
    hits = bound.static_hits
    if hits:
        bound.static_hits -= hits
        if bound.static is not None:
            into[key_of(bound.static)] += hits
    counters = bound.hits
    for outcome_id in list(counters):
        hits = counters[outcome_id]
        if hits:
            counters[outcome_id] -= hits
            resolved = bound.outcomes.get(outcome_id)
            if resolved is not None:
                into[key_of(resolved)] += hits


def harvest() -> tuple[dict[UsageKey, int], int]:
    """Every count since the previous harvest (and zero them), plus how many were dropped for lack of room."""
    into: dict[UsageKey, int] = defaultdict(int)
    with _LOCK:
        retired = list(_RETIRED)
        _RETIRED.clear()
        slow = dict(_SLOW)
        _SLOW.clear()
        dropped = _state["dropped"]
        _state["dropped"] = 0
    for bound in retired:
        _drain(bound, into)
    for variable in list(_VARIABLES):
        _drain(variable._bound, into)
    for key, hits in slow.items():
        into[key] += hits
    return dict(into), dropped
