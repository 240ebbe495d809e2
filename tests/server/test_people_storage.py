"""People in storage, on SQLite and PostgreSQL: migrating the single admin of 0003 (its scrypt hash and its
sessions), people, memberships, one-time links, instance audit entries and their filters."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from setpoint._server.security import hash_token, scrypt_hash, verify_password
from setpoint._server.services.changes import ChangeSink
from setpoint._server.services.context import ServiceContext
from setpoint._server.storage import AlreadyExistsError, Storage, open_storage
from setpoint._server.storage.migrate import _config, upgrade
from setpoint._server.storage.sql import SqlStorage
from setpoint._server.web import session as sessions
from tests.server.conftest import BACKENDS

on_both = pytest.mark.parametrize("storage", BACKENDS, indirect=True)


def test_migrating_the_admin_of_0003_keeps_its_password_and_sessions_and_makes_it_owner(tmp_path: Path) -> None:
    store = open_storage(f"sqlite:///{tmp_path / 'old.db'}")
    assert isinstance(store, SqlStorage)
    try:
        upgrade(store.engine, "0003")
        now = datetime.now(UTC)
        with store.engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO admin_users (username, password_hash, created_at) VALUES ('admin', :h, :t)"),
                {"h": scrypt_hash("old password"), "t": now},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) "
                    "VALUES (:h, 1, 'c', :t, :e)"
                ),
                {"h": hash_token("old-session"), "t": now, "e": now + timedelta(hours=1)},
            )
        upgrade(store.engine)
        with store.read() as tx:
            admin = tx.get_admin_user("admin")
            assert admin is not None and admin.is_owner and admin.active and admin.display_name == "admin"
            assert admin.password_hash is not None and admin.password_hash.startswith("scrypt$")
            assert tx.get_session(hash_token("old-session")) is not None
            assert tx.count_owners() == 1
        ctx = ServiceContext(storage=store, sink=ChangeSink(origin="tests"))
        assert sessions.load(ctx, "old-session") is not None  # still logged in after the upgrade
        assert sessions.login(ctx, "admin", "old password") is not None
        with store.read() as tx:
            upgraded = tx.get_admin_user("admin")
        assert upgraded is not None and upgraded.password_hash is not None
        assert upgraded.password_hash.startswith("$argon2id$")  # re-hashed at the first login
        assert verify_password("old password", upgraded.password_hash)
        from alembic import command

        command.downgrade(_config(store.engine), "0003")  # the migration can be undone and done again,
        upgrade(store.engine)  # and rebuilding tables on SQLite does not cascade to their children
        with store.read() as tx:
            assert tx.get_session(hash_token("old-session")) is not None
    finally:
        store.dispose()


def _person(storage: Storage, **kwargs: object) -> int:
    with storage.write() as tx:
        return tx.create_admin_user(f"p{uuid.uuid4().hex[:8]}@example.com", None, name="P", **kwargs).id  # type: ignore[arg-type]


@on_both
def test_people_memberships_links_and_instance_audit(storage: Storage) -> None:
    with storage.write() as tx:
        project = tx.create_project(f"p-{uuid.uuid4().hex[:8]}")
        other = tx.create_project(f"p-{uuid.uuid4().hex[:8]}")
    assert project.protected_labels == ("production",)
    person = _person(storage)
    with storage.read() as tx:
        found = tx.get_admin_user_by_id(person)
    assert found is not None
    with pytest.raises(AlreadyExistsError), storage.write() as tx:
        tx.create_admin_user(found.username, None)
    with storage.write() as tx:
        new, previous = tx.set_membership(project.id, person, "viewer")
        assert previous is None and new.role == "viewer"
        new, previous = tx.set_membership(project.id, person, "admin")
        assert previous is not None and previous.role == "viewer" and new.role == "admin"
        tx.set_membership(other.id, person, "editor")
        tx.set_protected_labels(project.id, ("production", "staging"))
    with storage.read() as tx:
        assert tx.get_membership(project.id, person) is not None
        assert [m.role for m in tx.list_memberships(user_id=person)] == ["admin", "editor"]
        assert [m.user_id for m in tx.list_memberships(project_id=project.id)] == [person]
        stored = tx.get_project_by_id(project.id)
        assert stored is not None and stored.protected_labels == ("production", "staging")
    with storage.write() as tx:
        removed = tx.delete_membership(other.id, person)
        assert removed is not None and removed.role == "editor"
        assert tx.delete_membership(other.id, person) is None
        token = uuid.uuid4().hex * 2
        invite = tx.create_invite(person, token[:64], "invite", "tests", datetime.now(UTC) + timedelta(days=7))
        assert tx.use_invite(invite.id) and not tx.use_invite(invite.id)  # works once
        tx.create_session(uuid.uuid4().hex * 2, person, "c", datetime.now(UTC) - timedelta(seconds=1))
        tx.create_session(uuid.uuid4().hex * 2, person, "c", datetime.now(UTC) + timedelta(hours=1))
        assert tx.delete_expired_sessions(datetime.now(UTC)) >= 1
        assert len(tx.list_user_sessions(person)) == 1
        tx.add_audit(None, f"user:{person}:P", "login", "session", "x", None, None, person)
        tx.add_audit(project.id, f"user:{person}:P", "create", "variable", "v", None, {}, person)
        changed = tx.set_person(person, name="Pat", deactivated=True)
        assert changed is not None and changed.name == "Pat" and not changed.active
        assert tx.delete_user_sessions(person) == 1
    with storage.read() as tx:
        used = tx.get_invite(token[:64])
        assert used is not None and used.used_at is not None
        instance = tx.list_audit(None, user_id=person)
        assert [(e.action, e.project_id) for e in instance] == [("login", None)]
        in_project = tx.list_audit(project.id, user_id=person)
        assert [e.action for e in in_project] == ["create"]
        assert tx.list_audit(project.id, user_id=person, since=datetime.now(UTC) + timedelta(minutes=1)) == []
        assert tx.list_audit(project.id, user_id=person, until=datetime.now(UTC) - timedelta(minutes=1)) == []
