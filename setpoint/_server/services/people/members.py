"""A project's members: an admin (or an owner) adds people with a role, changes it, removes them."""

from __future__ import annotations

from dataclasses import dataclass

from setpoint._server.services import audit
from setpoint._server.services.changes import Change
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import ConflictError, NotFoundError
from setpoint._server.services.people.roles import parse_role
from setpoint._server.services.people.service import find
from setpoint._server.storage.records import AdminUser, Membership


@dataclass(frozen=True)
class Member:
    """A person and their role in one project."""

    person: AdminUser
    role: str


def member_json(member: Member) -> dict[str, object]:
    """A member as JSON."""
    return {
        "user_id": member.person.id,
        "email": member.person.username,
        "name": member.person.display_name,
        "role": member.role,
        "active": member.person.active,
    }


def list_members(ctx: ServiceContext, project_id: int) -> list[Member]:
    """A project's members, by login (owners are not listed: they are admins of every project)."""
    with ctx.storage.read() as tx:
        found = []
        for membership in tx.list_memberships(project_id=project_id):
            person = tx.get_admin_user_by_id(membership.user_id)
            if person is not None:
                found.append(Member(person, membership.role))
    return sorted(found, key=lambda m: m.person.username)


def _announce(ctx: ServiceContext, project_id: int, name: str) -> None:
    # Keys act with their maker's current role: every process re-reads them.
    ctx.sink.applied(Change(project_id, "membership", "updated", name))


def set_member(ctx: ServiceContext, project_id: int, login: str, role: str, actor: str) -> Member:
    """Add a person to the project with ``role``, or change their role."""
    role = parse_role(role)
    with ctx.storage.write() as tx:
        person = find(tx, login)
        if person is None:
            raise NotFoundError(f"no person {login!r}; invite them first (People page or `setpoint users invite`)")
        if not person.active:
            raise ConflictError(f"{person.username} is deactivated")
        new, previous = tx.set_membership(project_id, person.id, role)
        before = None if previous is None else {"email": person.username, "role": previous.role}
        action = "add_member" if previous is None else "change_role"
        audit.record(tx, project_id, actor, action, "membership", person.username, before, _json(person, new))
        ctx.sink.record(tx, Change(project_id, "membership", "updated", person.username))
    _announce(ctx, project_id, person.username)
    return Member(person, new.role)


def remove_member(ctx: ServiceContext, project_id: int, login: str, actor: str) -> Member:
    """Take a person out of the project (their keys of this project stop working at once, and the SSE streams
    those keys opened end)."""
    with ctx.storage.write() as tx:
        person = find(tx, login)
        removed = None if person is None else tx.delete_membership(project_id, person.id)
        if person is None or removed is None:
            raise NotFoundError(f"{login!r} is not a member of this project")
        audit.record(
            tx, project_id, actor, "remove_member", "membership", person.username, _json(person, removed), None
        )
        ctx.sink.record(tx, Change(project_id, "membership", "updated", person.username))
    _announce(ctx, project_id, person.username)  # every process rechecks its open streams' keys: theirs end
    return Member(person, removed.role)


def _json(person: AdminUser, membership: Membership) -> dict[str, object]:
    return {"email": person.username, "role": membership.role}
