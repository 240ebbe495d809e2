"""People: invites and password resets (one-time links, valid 7 days, stored hashed), deactivation, owners.

A person's login is their email address (the owner created at first start logs in as ``admin``). An invited
person has no password until they open their link and choose one.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from setpoint._server.security import hash_password, hash_token
from setpoint._server.services import audit
from setpoint._server.services.changes import Change
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import ConflictError, GoneError, InvalidError, NotFoundError
from setpoint._server.services.keys import key_json
from setpoint._server.services.people import actors
from setpoint._server.services.people.roles import OWNER
from setpoint._server.storage import ReadTx, WriteTx
from setpoint._server.storage.records import AdminUser, Invite

INVITE_LIFETIME = timedelta(days=7)
MIN_PASSWORD_LENGTH = 8
_EMAIL = re.compile(r"^[^@\s:]+@[^@\s:]+\.[^@\s:]+$")


@dataclass(frozen=True)
class OneTimeLink:
    """A new invite or reset link: ``token`` exists only here (the database keeps its sha256)."""

    person: AdminUser
    token: str
    expires_at: datetime

    @property
    def path(self) -> str:
        """The link's path on the server (``/invite/<token>``)."""
        return f"/invite/{self.token}"


def person_json(person: AdminUser) -> dict[str, object]:
    """A person's public description (never their password hash)."""
    return {
        "id": person.id,
        "email": person.username,
        "name": person.display_name,
        "owner": person.is_owner,
        "active": person.active,
        "has_password": person.password_hash is not None,
        "deactivated_at": None if person.deactivated_at is None else person.deactivated_at.isoformat(),
    }


def check_email(email: str) -> str:
    """A normalized email address; 422 saying what is wrong otherwise."""
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 200:
        raise InvalidError(f"{email!r} is not an email address (like alice@example.com)")
    return email


def check_password(password: str) -> None:
    """422 unless the password is long enough."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def find(tx: ReadTx, login: str) -> AdminUser | None:
    """A person by login (case-insensitive email) or by id (``#12`` or ``12``)."""
    text = login.strip()
    if text.lstrip("#").isdigit():
        return tx.get_admin_user_by_id(int(text.lstrip("#")))
    return tx.get_admin_user(text) or tx.get_admin_user(text.lower())


def get(ctx: ServiceContext, login: str) -> AdminUser:
    """A person by login or id; 404 naming them otherwise."""
    with ctx.storage.read() as tx:
        person = find(tx, login)
    if person is None:
        raise NotFoundError(f"no person {login!r}; see the People page or `setpoint users list`")
    return person


def list_people(ctx: ServiceContext) -> list[AdminUser]:
    """Everyone, active or not."""
    with ctx.storage.read() as tx:
        return tx.list_people()


def _new_link(tx: WriteTx, person: AdminUser, purpose: str, actor: str) -> OneTimeLink:
    token = secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + INVITE_LIFETIME
    tx.create_invite(person.id, hash_token(token), purpose, actor, expires)
    return OneTimeLink(person=person, token=token, expires_at=expires)


def invite(ctx: ServiceContext, email: str, name: str, actor: str, *, owner: bool = False) -> OneTimeLink:
    """Create a person (no password yet) and their one-time invite link; 409 when the email is taken."""
    email = check_email(email)
    name = name.strip()[:200]
    with ctx.storage.write() as tx:
        if find(tx, email) is not None:
            raise ConflictError(
                f"a person with the email {email!r} already exists; to let them in again use reset-password"
            )
        person = tx.create_admin_user(email, None, name=name, is_owner=owner)
        link = _new_link(tx, person, "invite", actor)
        audit.record(tx, None, actor, "invite", "person", email, None, person_json(person))
    return link


def reset_password(ctx: ServiceContext, login: str, actor: str) -> OneTimeLink:
    """A one-time link for a person to choose a new password (their old one keeps working until then)."""
    with ctx.storage.write() as tx:
        person = find(tx, login)
        if person is None:
            raise NotFoundError(f"no person {login!r}; see `setpoint users list`")
        if not person.active:
            raise ConflictError(f"{person.username} is deactivated; reactivate them first")
        link = _new_link(tx, person, "reset", actor)
        audit.record(tx, None, actor, "reset_password", "person", person.username, None, None)
    return link


def _check_link(tx: ReadTx, token: str) -> tuple[Invite, AdminUser]:
    invite_row = tx.get_invite(hash_token(token))
    if invite_row is None:
        raise NotFoundError("this link is not valid; ask an owner for a new one")
    if invite_row.used_at is not None:
        raise GoneError("this link was already used; log in, or ask an owner for a new link")
    if invite_row.expires_at <= datetime.now(UTC):
        raise GoneError(f"this link expired on {invite_row.expires_at:%Y-%m-%d %H:%M} UTC; ask an owner for a new one")
    person = tx.get_admin_user_by_id(invite_row.user_id)
    if person is None or not person.active:
        raise GoneError("the person of this link was deactivated; ask an owner")
    return invite_row, person


def open_link(ctx: ServiceContext, token: str) -> tuple[Invite, AdminUser]:
    """The invite and person of a link; 404 when unknown, 410 when expired or used."""
    with ctx.storage.read() as tx:
        return _check_link(tx, token)


def accept_link(ctx: ServiceContext, token: str, password: str, name: str = "") -> AdminUser:
    """Set the person's password (and name) through their link, which then stops working."""
    check_password(password)
    with ctx.storage.write() as tx:
        invite_row, person = _check_link(tx, token)
        if not tx.use_invite(invite_row.id):
            raise GoneError("this link was already used; log in, or ask an owner for a new link")
        tx.set_admin_password(person.id, hash_password(password))
        if name.strip():
            person = tx.set_person(person.id, name=name.strip()[:200]) or person
        if invite_row.purpose == "reset":
            tx.delete_user_sessions(person.id)
        actor = actors.person(person.id, person.display_name)
        action = "accept_invite" if invite_row.purpose == "invite" else "set_password"
        audit.record(tx, None, actor, action, "person", person.username, None, person_json(person))
    return person


def _owner_guard(tx: ReadTx, person: AdminUser, what: str) -> None:
    if person.is_owner and person.active and tx.count_owners() <= 1:
        raise ConflictError(f"{person.username} is the last owner and cannot be {what}; make someone else owner first")


def deactivate(ctx: ServiceContext, login: str, actor: str) -> AdminUser:
    """Deactivate a person: their sessions end and their API keys are revoked (open SSE streams end)."""
    changes: list[Change] = []
    with ctx.storage.write() as tx:
        person = find(tx, login)
        if person is None:
            raise NotFoundError(f"no person {login!r}; see `setpoint users list`")
        if not person.active:
            raise ConflictError(f"{person.username} is already deactivated")
        _owner_guard(tx, person, "deactivated")
        before = person_json(person)
        person = tx.set_person(person.id, deactivated=True) or person
        tx.delete_user_sessions(person.id)
        for key in tx.list_user_api_keys(person.id):
            if key.revoked_at is not None:
                continue
            revoked = tx.revoke_api_key(key.project_id, key.id)
            if revoked is None:
                continue
            audit.record(tx, key.project_id, actor, "revoke", "api_key", key.name, None, key_json(revoked))
            changes.append(Change(key.project_id, "api_key", "deleted", key.key_hash))
        audit.record(tx, None, actor, "deactivate", "person", person.username, before, person_json(person))
        for change in changes:
            ctx.sink.record(tx, change)
    for change in changes:
        ctx.sink.applied(change)
    return person


def reactivate(ctx: ServiceContext, login: str, actor: str) -> AdminUser:
    """Let a deactivated person in again (their revoked keys stay revoked)."""
    with ctx.storage.write() as tx:
        person = find(tx, login)
        if person is None:
            raise NotFoundError(f"no person {login!r}; see `setpoint users list`")
        before = person_json(person)
        person = tx.set_person(person.id, deactivated=False) or person
        audit.record(tx, None, actor, "reactivate", "person", person.username, before, person_json(person))
    return person


def set_owner(ctx: ServiceContext, login: str, owner: bool, actor: str) -> AdminUser:
    """Make a person an owner, or not (never the last owner)."""
    with ctx.storage.write() as tx:
        person = find(tx, login)
        if person is None:
            raise NotFoundError(f"no person {login!r}; see `setpoint users list`")
        if not owner:
            _owner_guard(tx, person, "demoted")
        before = person_json(person)
        person = tx.set_person(person.id, is_owner=owner) or person
        audit.record(
            tx,
            None,
            actor,
            "set_owner" if owner else "unset_owner",
            "person",
            person.username,
            before,
            person_json(person),
        )
        change = Change(0, "person", "updated", person.username)
        ctx.sink.record(tx, change)
    ctx.sink.applied(change)
    return person


def project_role(tx: ReadTx, person: AdminUser, project_id: int) -> str | None:
    """A person's role in a project: ``owner`` for owners, their membership's role, or None."""
    if not person.active:
        return None
    if person.is_owner:
        return OWNER
    membership = tx.get_membership(project_id, person.id)
    return None if membership is None else membership.role


def actor_role(tx: ReadTx, project_id: int, actor: str) -> str | None:
    """The current role in a project of whoever an audit actor names; the operator (the CLI, keys it made)
    is unrestricted (``owner``)."""
    found = actors.parse(actor)
    if found.user_id is None:
        return OWNER
    person = tx.get_admin_user_by_id(found.user_id)
    return None if person is None else project_role(tx, person, project_id)
