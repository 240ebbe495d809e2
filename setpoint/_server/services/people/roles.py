"""Roles and the one permission check.

Per project: ``viewer`` (read everything, the simulator) < ``editor`` (versions, labels, targeting, segments,
types) < ``admin`` (plus members, API keys, settings, delete). Per instance: ``owner`` (every project as
admin, plus people and projects). An API key acts with its maker's current role, capped by its scopes (a key
without the ``write`` scope is at most a viewer), so demoting a person limits their keys at once.
"""

from __future__ import annotations

from setpoint._server.services.errors import ForbiddenError, InvalidError

VIEWER = "viewer"
EDITOR = "editor"
ADMIN = "admin"
OWNER = "owner"
PROJECT_ROLES: tuple[str, ...] = (VIEWER, EDITOR, ADMIN)
_RANK = {VIEWER: 1, EDITOR: 2, ADMIN: 3, OWNER: 4}

WHAT_ROLES_ALLOW = {
    VIEWER: "read everything, use the simulator",
    EDITOR: "viewer + create versions, move labels, change targeting, segments and types",
    ADMIN: "editor + members, API keys, project settings (protected labels), delete variables",
    OWNER: "every project as admin + people (invite, deactivate), create projects, instance audit",
}


def parse_role(text: str) -> str:
    """A project role by name; 422 naming the roles otherwise."""
    role = text.strip().lower()
    if role not in PROJECT_ROLES:
        raise InvalidError(f"unknown role {text!r}; use one of {', '.join(PROJECT_ROLES)}")
    return role


def allows(have: str | None, need: str) -> bool:
    """Whether role ``have`` includes ``need``."""
    return have is not None and _RANK[have] >= _RANK[need]


def lower(a: str | None, b: str | None) -> str | None:
    """The lesser of two roles (None: no role)."""
    if a is None or b is None:
        return None
    return a if _RANK[a] <= _RANK[b] else b


def require(have: str | None, need: str, *, who: str = "you", where: str = "") -> None:
    """403 unless ``have`` includes ``need``; the message names the role needed and the one held."""
    if allows(have, need):
        return
    place = f" in project {where!r}" if where else ""
    held = f"the {have} role" if have else "no role"
    raise ForbiddenError(f"this needs the {need} role{place}; {who} {'have' if who == 'you' else 'has'} {held}")
