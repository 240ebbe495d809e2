"""Writes over one SQLAlchemy connection inside an open write transaction."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from setpoint._server.storage import schema as t
from setpoint._server.storage.base import AlreadyExistsError, StaleRevisionError, WriteTx
from setpoint._server.storage.records import (
    AdminUser,
    ApiKey,
    Invite,
    Label,
    LabelTarget,
    Membership,
    Project,
    Segment,
    Session,
    Variable,
    VariableFields,
    VariableType,
    Version,
)
from setpoint._server.storage.sql_read import SqlReadTx
from setpoint._server.storage.sql_rows import (
    _GET_LABEL,
    _GET_VARIABLE,
    _LOCK_VARIABLE,
    _LOCK_VARIABLE_ID,
    _MAX_VERSION,
    _api_key,
    _dump,
    _fields_values,
    _label,
    _now,
    _user,
    _variable,
)

NOTIFY_CHANNEL = "setpoint_changes"


class SqlWriteTx(SqlReadTx, WriteTx):
    """Reads and writes over one connection inside an open write transaction."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        super().__init__(conn, dialect)
        self._notifications: list[str] = []

    def _insert(self, table: sa.Table, values: dict[str, Any], what: str) -> int:
        try:
            with self.conn.begin_nested():
                result = self.conn.execute(sa.insert(table).values(**values).returning(table.c.id))
                return int(result.scalar_one())
        except sa.exc.IntegrityError as exc:
            raise AlreadyExistsError(f"{what} already exists") from exc

    def create_project(self, name: str) -> Project:
        now = _now()
        values = {"name": name, "created_at": now, "protected_labels": '["production"]'}
        project_id = self._insert(t.projects, values, f"project {name!r}")
        return Project(id=project_id, name=name, created_at=now)

    def ensure_project(self, name: str) -> tuple[Project, bool]:
        existing = self.get_project(name)
        if existing is not None:
            return existing, False
        return self.create_project(name), True

    def lock_variable(self, project_id: int, name: str) -> Variable | None:
        stmt = _LOCK_VARIABLE if self.dialect == "postgresql" else _GET_VARIABLE
        row = self.conn.execute(stmt, {"pid": project_id, "name": name}).first()
        return None if row is None else _variable(row)

    def insert_variable(self, project_id: int, name: str, fields: VariableFields) -> Variable:
        now = _now()
        values = {"project_id": project_id, "name": name, "revision": 1, "created_at": now, "updated_at": now}
        variable_id = self._insert(t.variables, values | _fields_values(fields), f"variable {name!r}")
        return Variable(
            id=variable_id, project_id=project_id, name=name, fields=fields, revision=1, created_at=now, updated_at=now
        )

    def _bump(self, variable: Variable, values: dict[str, Any]) -> Variable:
        now = _now()
        c = t.variables.c
        result = self.conn.execute(
            sa.update(t.variables)
            .where(c.id == variable.id, c.revision == variable.revision)
            .values(revision=variable.revision + 1, updated_at=now, **values)
        )
        if result.rowcount != 1:
            raise StaleRevisionError(f"variable {variable.name!r} changed since revision {variable.revision}")
        return Variable(
            id=variable.id,
            project_id=variable.project_id,
            name=variable.name,
            fields=variable.fields,
            revision=variable.revision + 1,
            created_at=variable.created_at,
            updated_at=now,
        )

    def update_variable(self, variable: Variable, fields: VariableFields) -> Variable:
        bumped = self._bump(variable, _fields_values(fields))
        return Variable(
            id=bumped.id,
            project_id=bumped.project_id,
            name=bumped.name,
            fields=fields,
            revision=bumped.revision,
            created_at=bumped.created_at,
            updated_at=bumped.updated_at,
        )

    def touch_variable(self, variable: Variable) -> Variable:
        return self._bump(variable, {})

    def rename_variable(self, variable: Variable, new_name: str, fields: VariableFields) -> Variable:
        try:
            with self.conn.begin_nested():
                bumped = self._bump(variable, {"name": new_name, **_fields_values(fields)})
        except sa.exc.IntegrityError as exc:
            raise AlreadyExistsError(f"variable {new_name!r} already exists") from exc
        return Variable(
            id=bumped.id,
            project_id=bumped.project_id,
            name=new_name,
            fields=fields,
            revision=bumped.revision,
            created_at=bumped.created_at,
            updated_at=bumped.updated_at,
        )

    def delete_variable(self, variable: Variable) -> None:
        for table in (t.variable_versions, t.labels, t.label_history):
            self.conn.execute(sa.delete(table).where(table.c.variable_id == variable.id))
        self.conn.execute(sa.delete(t.variables).where(t.variables.c.id == variable.id))

    def create_version(
        self, variable_id: int, serialized_value: str, created_by: str, description: str | None = None
    ) -> Version:
        if self.dialect == "postgresql":
            # Re-entrant within a transaction: a no-op when the caller already locked the row.
            self.conn.execute(_LOCK_VARIABLE_ID, {"vid": variable_id})
        current = self.conn.execute(_MAX_VERSION, {"vid": variable_id}).scalar_one()
        now = _now()
        number = int(current) + 1
        self.conn.execute(
            sa.insert(t.variable_versions).values(
                variable_id=variable_id,
                version=number,
                serialized_value=serialized_value,
                created_by=created_by,
                created_at=now,
                description=description,
            )
        )
        return Version(
            variable_id=variable_id,
            version=number,
            serialized_value=serialized_value,
            created_by=created_by,
            created_at=now,
            description=description,
        )

    def _record_move(self, variable_id: int, name: str, target: LabelTarget | None, moved_by: str) -> None:
        self.conn.execute(
            sa.insert(t.label_history).values(
                variable_id=variable_id,
                label=name,
                target_type=None if target is None else target.target_type,
                version=None if target is None else target.version,
                target_label=None if target is None else target.target_label,
                moved_by=moved_by,
                moved_at=_now(),
            )
        )

    def set_label(self, variable_id: int, name: str, target: LabelTarget, moved_by: str) -> Label:
        c = t.labels.c
        now = _now()
        row = self.conn.execute(_GET_LABEL, {"vid": variable_id, "name": name}).first()
        values = {"target_type": target.target_type, "version": target.version, "target_label": target.target_label}
        if row is None:
            position = self.conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(c.position), 0)).where(c.variable_id == variable_id)
            ).scalar_one()
            self.conn.execute(
                sa.insert(t.labels).values(
                    variable_id=variable_id, name=name, position=int(position) + 1, updated_at=now, **values
                )
            )
        elif _label(row).target == target:
            return _label(row)
        else:
            self.conn.execute(sa.update(t.labels).where(c.id == row.id).values(updated_at=now, **values))
        self._record_move(variable_id, name, target, moved_by)
        return Label(variable_id=variable_id, name=name, target=target, updated_at=now)

    def delete_label(self, variable_id: int, name: str, moved_by: str) -> bool:
        c = t.labels.c
        result = self.conn.execute(sa.delete(t.labels).where(c.variable_id == variable_id, c.name == name))
        if result.rowcount == 0:
            return False
        self._record_move(variable_id, name, None, moved_by)
        return True

    def upsert_type(
        self, project_id: int, name: str, json_schema: dict[str, Any], description: str | None, source_hint: str | None
    ) -> tuple[VariableType, VariableType | None]:
        previous = self.get_type(project_id, name)
        now = _now()
        values = {"json_schema": json.dumps(json_schema), "description": description, "source_hint": source_hint}
        c = t.variable_types.c
        if previous is None:
            base = {"project_id": project_id, "name": name, "created_at": now, "updated_at": now}
            self._insert(t.variable_types, base | values, f"variable type {name!r}")
            created_at = now
        else:
            self.conn.execute(
                sa.update(t.variable_types)
                .where(c.project_id == project_id, c.name == name)
                .values(updated_at=now, **values)
            )
            created_at = previous.created_at
        new = VariableType(
            project_id=project_id,
            name=name,
            json_schema=json_schema,
            description=description,
            source_hint=source_hint,
            created_at=created_at,
            updated_at=now,
        )
        return new, previous

    def delete_type(self, project_id: int, name: str) -> bool:
        c = t.variable_types.c
        result = self.conn.execute(sa.delete(t.variable_types).where(c.project_id == project_id, c.name == name))
        return bool(result.rowcount)

    def put_segment(self, project_id: int, key: str, data: dict[str, Any], expected_revision: int | None) -> Segment:
        now = _now()
        c = t.segments.c
        if expected_revision is None:
            values = {"project_id": project_id, "key": key, "data": json.dumps(data), "revision": 1, "updated_at": now}
            self._insert(t.segments, values, f"segment {key!r}")
            return Segment(project_id=project_id, key=key, data=data, revision=1, updated_at=now)
        result = self.conn.execute(
            sa.update(t.segments)
            .where(c.project_id == project_id, c.key == key, c.revision == expected_revision)
            .values(data=json.dumps(data), revision=expected_revision + 1, updated_at=now)
        )
        if result.rowcount != 1:
            raise StaleRevisionError(f"segment {key!r} is not at revision {expected_revision}")
        return Segment(project_id=project_id, key=key, data=data, revision=expected_revision + 1, updated_at=now)

    def delete_segment(self, project_id: int, key: str) -> bool:
        c = t.segments.c
        result = self.conn.execute(sa.delete(t.segments).where(c.project_id == project_id, c.key == key))
        return bool(result.rowcount)

    def add_audit(
        self,
        project_id: int | None,
        actor: str,
        action: str,
        entity_type: str,
        entity_name: str,
        before: Any,
        after: Any,
        user_id: int | None = None,
    ) -> None:
        self.conn.execute(
            sa.insert(t.audit_log).values(
                project_id=project_id,
                user_id=user_id,
                at=_now(),
                actor=actor,
                action=action,
                entity_type=entity_type,
                entity_name=entity_name,
                before=_dump(before),
                after=_dump(after),
            )
        )

    def insert_api_key(
        self,
        project_id: int,
        name: str,
        prefix: str,
        key_hash: str,
        scopes: frozenset[str],
        created_by: str,
        user_id: int | None = None,
    ) -> ApiKey:
        now = _now()
        scope_text = ",".join(sorted(scopes))
        values = {
            "project_id": project_id,
            "name": name,
            "prefix": prefix,
            "key_hash": key_hash,
            "scopes": scope_text,
            "created_by": created_by,
            "created_at": now,
            "user_id": user_id,
        }
        key_id = self._insert(t.api_keys, values, "API key")
        return ApiKey(
            id=key_id,
            project_id=project_id,
            name=name,
            prefix=prefix,
            key_hash=key_hash,
            scopes=scopes,
            created_by=created_by,
            created_at=now,
            revoked_at=None,
            last_used_at=None,
            user_id=user_id,
        )

    def revoke_api_key(self, project_id: int, key_id: int) -> ApiKey | None:
        c = t.api_keys.c
        where = sa.and_(c.id == key_id, c.project_id == project_id)
        self.conn.execute(sa.update(t.api_keys).where(where, c.revoked_at.is_(None)).values(revoked_at=_now()))
        row = self._one(sa.select(t.api_keys).where(where))
        return None if row is None else _api_key(row)

    def record_api_key_use(self, key_id: int, at: datetime) -> None:
        c = t.api_keys.c
        newer = sa.or_(c.last_used_at.is_(None), c.last_used_at < at)
        self.conn.execute(sa.update(t.api_keys).where(c.id == key_id, newer).values(last_used_at=at))

    def create_admin_user(
        self, username: str, password_hash: str | None, *, name: str = "", is_owner: bool = False
    ) -> AdminUser:
        now = _now()
        values = {
            "username": username,
            "password_hash": password_hash or "",
            "created_at": now,
            "name": name,
            "is_owner": is_owner,
        }
        user_id = self._insert(t.admin_users, values, f"person {username!r}")
        return AdminUser(
            id=user_id, username=username, password_hash=password_hash, created_at=now, name=name, is_owner=is_owner
        )

    def set_person(
        self, user_id: int, *, name: str | None = None, is_owner: bool | None = None, deactivated: bool | None = None
    ) -> AdminUser | None:
        c = t.admin_users.c
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = name
        if is_owner is not None:
            values["is_owner"] = is_owner
        if deactivated is not None:
            values["deactivated_at"] = _now() if deactivated else None
        if values:
            self.conn.execute(sa.update(t.admin_users).where(c.id == user_id).values(**values))
        row = self._one(sa.select(t.admin_users).where(c.id == user_id))
        return None if row is None else _user(row)

    def set_membership(self, project_id: int, user_id: int, role: str) -> tuple[Membership, Membership | None]:
        previous = self.get_membership(project_id, user_id)
        c = t.memberships.c
        if previous is None:
            now = _now()
            values = {"project_id": project_id, "user_id": user_id, "role": role, "created_at": now}
            self._insert(t.memberships, values, "membership")
            return Membership(project_id, user_id, role, now), None
        self.conn.execute(
            sa.update(t.memberships).where(c.project_id == project_id, c.user_id == user_id).values(role=role)
        )
        return Membership(project_id, user_id, role, previous.created_at), previous

    def delete_membership(self, project_id: int, user_id: int) -> Membership | None:
        previous = self.get_membership(project_id, user_id)
        if previous is not None:
            c = t.memberships.c
            self.conn.execute(sa.delete(t.memberships).where(c.project_id == project_id, c.user_id == user_id))
        return previous

    def create_invite(
        self, user_id: int, token_hash: str, purpose: str, created_by: str, expires_at: datetime
    ) -> Invite:
        now = _now()
        values = {
            "user_id": user_id,
            "token_hash": token_hash,
            "purpose": purpose,
            "created_by": created_by,
            "created_at": now,
            "expires_at": expires_at,
        }
        invite_id = self._insert(t.invites, values, "invite")
        return Invite(invite_id, user_id, token_hash, purpose, created_by, now, expires_at, None)

    def use_invite(self, invite_id: int) -> bool:
        c = t.invites.c
        result = self.conn.execute(
            sa.update(t.invites).where(c.id == invite_id, c.used_at.is_(None)).values(used_at=_now())
        )
        return result.rowcount == 1

    def delete_user_sessions(self, user_id: int, *, keep_token_hash: str | None = None) -> int:
        c = t.sessions.c
        stmt = sa.delete(t.sessions).where(c.user_id == user_id)
        if keep_token_hash is not None:
            stmt = stmt.where(c.token_hash != keep_token_hash)
        return int(self.conn.execute(stmt).rowcount)

    def touch_session(self, token_hash: str, at: datetime) -> None:
        self.conn.execute(sa.update(t.sessions).where(t.sessions.c.token_hash == token_hash).values(last_seen_at=at))

    def delete_user_session(self, user_id: int, session_id: int) -> bool:
        c = t.sessions.c
        return bool(self.conn.execute(sa.delete(t.sessions).where(c.user_id == user_id, c.id == session_id)).rowcount)

    def delete_expired_sessions(self, now: datetime) -> int:
        return int(self.conn.execute(sa.delete(t.sessions).where(t.sessions.c.expires_at <= now)).rowcount)

    def set_protected_labels(self, project_id: int, labels: tuple[str, ...]) -> None:
        self.conn.execute(
            sa.update(t.projects).where(t.projects.c.id == project_id).values(protected_labels=json.dumps(list(labels)))
        )

    def set_admin_password(self, user_id: int, password_hash: str) -> None:
        self.conn.execute(
            sa.update(t.admin_users).where(t.admin_users.c.id == user_id).values(password_hash=password_hash)
        )

    def create_session(self, token_hash: str, user_id: int, csrf_token: str, expires_at: datetime) -> Session:
        now = _now()
        values = {
            "token_hash": token_hash,
            "user_id": user_id,
            "csrf_token": csrf_token,
            "created_at": now,
            "expires_at": expires_at,
        }
        session_id = self._insert(t.sessions, values, "session")
        return Session(
            id=session_id,
            token_hash=token_hash,
            user_id=user_id,
            csrf_token=csrf_token,
            created_at=now,
            expires_at=expires_at,
        )

    def delete_session(self, token_hash: str) -> None:
        self.conn.execute(sa.delete(t.sessions).where(t.sessions.c.token_hash == token_hash))

    def notify(self, payload: str) -> None:
        if self.dialect == "postgresql":
            self.conn.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, payload)))
        else:  # committed with the change; every server process polls the table
            self.conn.execute(sa.insert(t.change_notifications).values(payload=payload, created_at=_now()))

    def prune_notifications(self, keep: int) -> None:
        c = t.change_notifications.c
        newest = self.conn.execute(sa.select(sa.func.max(c.id))).scalar_one_or_none()
        if newest is not None:
            self.conn.execute(sa.delete(t.change_notifications).where(c.id <= int(newest) - keep))
