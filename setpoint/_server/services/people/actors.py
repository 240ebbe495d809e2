"""How the audit names who made a change.

- a person: ``user:<id>:<name>``
- an API key of a person: ``api_key:<key id>:<key name> of user:<id>:<name>``
- a key made by the operator (``setpoint keys create``): ``api_key:<key id>:<key name>``
- scheduled work: ``<the actor who scheduled it> via schedule <schedule id>`` (it acts with that person's role
  when it runs)
- anything else (``cli``, ``setpoint serve (first start)``): the operator, unrestricted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ACTOR = re.compile(r"^(?:api_key:(?P<kid>\d+):(?P<kname>.*?) of )?user:(?P<uid>\d+):(?P<uname>.*)$", re.DOTALL)
_NAME = 60  # actors are stored in 200-character columns
_KEY = re.compile(r"^api_key:(?P<kid>\d+):(?P<kname>.*)$", re.DOTALL)
_VIA_SCHEDULE = re.compile(r"^(?P<actor>.*) via schedule (?P<sid>\d+)$", re.DOTALL)
_APPLYING = re.compile(r"^(?P<actor>.*?) (?P<note>applying change request #\d+ by .*)$", re.DOTALL)
"""The applier of a change request: ``<actor> applying change request #N by <author>, approved by <approver>``."""


@dataclass(frozen=True)
class ParsedActor:
    """The person and key an actor string names (either may be None)."""

    user_id: int | None
    user_name: str | None
    key_id: int | None
    key_name: str | None
    schedule_id: int | None = None
    """Set when the change was made by scheduled work on behalf of the person (or key)."""


def person(user_id: int, name: str) -> str:
    """The actor of a person acting in the UI."""
    return f"user:{user_id}:{name[:_NAME]}"


def key(key_id: int, key_name: str, user_id: int | None, user_name: str | None) -> str:
    """The actor of an API key (of a person, when it has a maker)."""
    own = f"api_key:{key_id}:{key_name[:_NAME]}"
    return own if user_id is None else f"{own} of {person(user_id, user_name or '')}"


def via_schedule(actor: str, schedule_id: int) -> str:
    """The actor of scheduled work done on behalf of ``actor`` (who scheduled it)."""
    return f"{actor} via schedule {schedule_id}"


def parse(actor: str) -> ParsedActor:
    """Who an actor string names (for scheduled work: who scheduled it, with ``schedule_id``; for the apply of a
    change request: who applied it)."""
    applying = _APPLYING.match(actor)
    if applying:
        return parse(applying.group("actor"))
    scheduled = _VIA_SCHEDULE.match(actor)
    if scheduled:
        inner = parse(scheduled.group("actor"))
        return ParsedActor(inner.user_id, inner.user_name, inner.key_id, inner.key_name, int(scheduled.group("sid")))
    match = _ACTOR.match(actor)
    if match:
        kid = match.group("kid")
        return ParsedActor(
            int(match.group("uid")), match.group("uname"), int(kid) if kid else None, match.group("kname")
        )
    match = _KEY.match(actor)
    if match:
        return ParsedActor(None, None, int(match.group("kid")), match.group("kname"))
    return ParsedActor(None, None, None, None)


def display(actor: str) -> str:
    """A human-readable name: ``Alice``, ``key ci of Alice``, ``key ci``, ``Alice via schedule``, or the actor
    itself; the apply of a change request keeps its note: ``Alice applying change request #3 by Bob, ...``."""
    applying = _APPLYING.match(actor)
    if applying:
        return f"{display(applying.group('actor'))} {applying.group('note')}"
    scheduled = _VIA_SCHEDULE.match(actor)
    if scheduled:
        return f"{display(scheduled.group('actor'))} via schedule"
    found = parse(actor)
    # An unnamed key is named "key sp_abc…" when created: say "API key sp_abc…", not "API key key sp_abc…".
    key = (found.key_name or "").removeprefix("key ")
    if found.user_id is not None:
        name = found.user_name or f"person {found.user_id}"
        return name if found.key_id is None else f"key {key} of {name}"
    if found.key_id is not None:
        return f"API key {key}"
    return actor.removeprefix("user:")


def initials(name: str) -> str:
    """Up to two letters for an avatar: ``Alice Smith`` -> ``AS``; ``bob@x.io`` -> ``B``."""
    words = [w for w in re.split(r"[\s._@-]+", name.split("@")[0] if "@" in name and " " not in name else name) if w]
    letters = "".join(w[0] for w in words[:2]).upper()
    return letters or "?"
