"""The SQL implementation of the storage interface (SQLAlchemy 2 Core) for SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from setpoint._server.storage import schema as t
from setpoint._server.storage.base import AlreadyExistsError, ReadTx, StaleRevisionError, Storage, WriteTx
from setpoint._server.storage.records import (
    AdminUser,
    ApiKey,
    AuditEntry,
    Label,
    LabelMove,
    LabelTarget,
    Project,
    ProjectState,
    Segment,
    Session,
    TargetType,
    Variable,
    VariableFields,
    VariableType,
    Version,
)

NOTIFY_CHANNEL = "setpoint_changes"


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _load(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _project(row: Row[Any]) -> Project:
    return Project(id=row.id, name=row.name, created_at=_utc(row.created_at))


def _variable(row: Row[Any]) -> Variable:
    fields = VariableFields(
        description=row.description,
        json_schema=_load(row.json_schema),
        type_name=row.type_name,
        aliases=_load(row.aliases),
        example=row.example,
        template_inputs_schema=_load(row.template_inputs_schema),
        rollout=json.loads(row.rollout),
        overrides=json.loads(row.overrides),
    )
    return Variable(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        fields=fields,
        revision=row.revision,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )


def _version(row: Row[Any]) -> Version:
    return Version(
        variable_id=row.variable_id,
        version=row.version,
        serialized_value=row.serialized_value,
        created_by=row.created_by,
        created_at=_utc(row.created_at),
    )


def _target(target_type: TargetType, version: int | None, target_label: str | None) -> LabelTarget:
    return LabelTarget(target_type=target_type, version=version, target_label=target_label)


def _label(row: Row[Any]) -> Label:
    return Label(
        variable_id=row.variable_id,
        name=row.name,
        target=_target(row.target_type, row.version, row.target_label),
        updated_at=_utc(row.updated_at),
    )


def _type(row: Row[Any]) -> VariableType:
    return VariableType(
        project_id=row.project_id,
        name=row.name,
        json_schema=json.loads(row.json_schema),
        description=row.description,
        source_hint=row.source_hint,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )


def _segment(row: Row[Any]) -> Segment:
    return Segment(
        project_id=row.project_id,
        key=row.key,
        data=json.loads(row.data),
        revision=row.revision,
        updated_at=_utc(row.updated_at),
    )


def _api_key(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        prefix=row.prefix,
        key_hash=row.key_hash,
        scopes=frozenset(s for s in row.scopes.split(",") if s),
        created_by=row.created_by,
        created_at=_utc(row.created_at),
        revoked_at=None if row.revoked_at is None else _utc(row.revoked_at),
    )


def _user(row: Row[Any]) -> AdminUser:
    return AdminUser(id=row.id, username=row.username, password_hash=row.password_hash, created_at=_utc(row.created_at))


def _audit(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        project_id=row.project_id,
        at=_utc(row.at),
        actor=row.actor,
        action=row.action,
        entity_type=row.entity_type,
        entity_name=row.entity_name,
        before=_load(row.before),
        after=_load(row.after),
    )


def _fields_values(fields: VariableFields) -> dict[str, Any]:
    return {
        "description": fields.description,
        "json_schema": _dump(fields.json_schema),
        "type_name": fields.type_name,
        "aliases": _dump(fields.aliases),
        "example": fields.example,
        "template_inputs_schema": _dump(fields.template_inputs_schema),
        "rollout": json.dumps(fields.rollout),
        "overrides": json.dumps(fields.overrides),
    }


# Hot statements built once (building SQLAlchemy expressions costs more than running them on SQLite).
_V, _VV, _LB = t.variables.c, t.variable_versions.c, t.labels.c
_GET_VARIABLE = sa.select(t.variables).where(_V.project_id == sa.bindparam("pid"), _V.name == sa.bindparam("name"))
_LOCK_VARIABLE = _GET_VARIABLE.with_for_update()
_LOCK_VARIABLE_ID = sa.select(_V.id).where(_V.id == sa.bindparam("vid")).with_for_update()
_GET_VERSION = sa.select(t.variable_versions).where(
    _VV.variable_id == sa.bindparam("vid"), _VV.version == sa.bindparam("n")
)
_LATEST_VERSION = (
    sa.select(t.variable_versions).where(_VV.variable_id == sa.bindparam("vid")).order_by(_VV.version.desc()).limit(1)
)
_MAX_VERSION = sa.select(sa.func.coalesce(sa.func.max(_VV.version), 0)).where(_VV.variable_id == sa.bindparam("vid"))
_LIST_LABELS = sa.select(t.labels).where(_LB.variable_id == sa.bindparam("vid")).order_by(_LB.position, _LB.id)
_GET_LABEL = sa.select(t.labels).where(_LB.variable_id == sa.bindparam("vid"), _LB.name == sa.bindparam("name"))
_FIND_KEY = sa.select(t.api_keys).where(t.api_keys.c.key_hash == sa.bindparam("h"))


class SqlReadTx(ReadTx):
    """Reads over one SQLAlchemy connection inside an open transaction."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

    def _one(self, stmt: sa.Executable) -> Row[Any] | None:
        return self.conn.execute(stmt).first()

    def get_project(self, name: str) -> Project | None:
        row = self._one(sa.select(t.projects).where(t.projects.c.name == name))
        return None if row is None else _project(row)

    def get_project_by_id(self, project_id: int) -> Project | None:
        row = self._one(sa.select(t.projects).where(t.projects.c.id == project_id))
        return None if row is None else _project(row)

    def list_projects(self) -> list[Project]:
        return [_project(r) for r in self.conn.execute(sa.select(t.projects).order_by(t.projects.c.name))]

    def list_variables(self, project_id: int) -> list[Variable]:
        stmt = sa.select(t.variables).where(t.variables.c.project_id == project_id).order_by(t.variables.c.name)
        return [_variable(r) for r in self.conn.execute(stmt)]

    def get_variable(self, project_id: int, name: str) -> Variable | None:
        row = self.conn.execute(_GET_VARIABLE, {"pid": project_id, "name": name}).first()
        return None if row is None else _variable(row)

    def list_versions(self, variable_id: int) -> list[Version]:
        c = t.variable_versions.c
        stmt = sa.select(t.variable_versions).where(c.variable_id == variable_id).order_by(c.version)
        return [_version(r) for r in self.conn.execute(stmt)]

    def get_version(self, variable_id: int, version: int) -> Version | None:
        row = self.conn.execute(_GET_VERSION, {"vid": variable_id, "n": version}).first()
        return None if row is None else _version(row)

    def latest_version(self, variable_id: int) -> Version | None:
        row = self.conn.execute(_LATEST_VERSION, {"vid": variable_id}).first()
        return None if row is None else _version(row)

    def list_labels(self, variable_id: int) -> list[Label]:
        return [_label(r) for r in self.conn.execute(_LIST_LABELS, {"vid": variable_id})]

    def label_history(self, variable_id: int, label: str | None = None) -> list[LabelMove]:
        c = t.label_history.c
        stmt = sa.select(t.label_history).where(c.variable_id == variable_id).order_by(c.id)
        if label is not None:
            stmt = stmt.where(c.label == label)
        return [
            LabelMove(
                variable_id=r.variable_id,
                label=r.label,
                target=None if r.target_type is None else _target(r.target_type, r.version, r.target_label),
                moved_by=r.moved_by,
                moved_at=_utc(r.moved_at),
            )
            for r in self.conn.execute(stmt)
        ]

    def list_types(self, project_id: int) -> list[VariableType]:
        c = t.variable_types.c
        stmt = sa.select(t.variable_types).where(c.project_id == project_id).order_by(c.name)
        return [_type(r) for r in self.conn.execute(stmt)]

    def get_type(self, project_id: int, name: str) -> VariableType | None:
        c = t.variable_types.c
        row = self._one(sa.select(t.variable_types).where(c.project_id == project_id, c.name == name))
        return None if row is None else _type(row)

    def variable_aliases(self, project_id: int) -> dict[str, list[str]]:
        c = t.variables.c
        rows = self.conn.execute(sa.select(c.name, c.aliases).where(c.project_id == project_id))
        return {row.name: _load(row.aliases) or [] for row in rows}

    def segment_keys(self, project_id: int) -> set[str]:
        c = t.segments.c
        return set(self.conn.execute(sa.select(c.key).where(c.project_id == project_id)).scalars())

    def list_segments(self, project_id: int) -> list[Segment]:
        c = t.segments.c
        stmt = sa.select(t.segments).where(c.project_id == project_id).order_by(c.key)
        return [_segment(r) for r in self.conn.execute(stmt)]

    def get_segment(self, project_id: int, key: str) -> Segment | None:
        c = t.segments.c
        row = self._one(sa.select(t.segments).where(c.project_id == project_id, c.key == key))
        return None if row is None else _segment(row)

    def list_audit(
        self, project_id: int, *, entity_type: str | None = None, entity_name: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        c = t.audit_log.c
        stmt = sa.select(t.audit_log).where(c.project_id == project_id)
        if entity_type is not None:
            stmt = stmt.where(c.entity_type == entity_type)
        if entity_name is not None:
            stmt = stmt.where(c.entity_name == entity_name)
        stmt = stmt.order_by(c.id.desc()).limit(limit)
        return [_audit(r) for r in self.conn.execute(stmt)]

    def audit_since(self, after_id: int, limit: int = 1000) -> list[AuditEntry]:
        c = t.audit_log.c
        stmt = sa.select(t.audit_log).where(c.id > after_id).order_by(c.id).limit(limit)
        return [_audit(r) for r in self.conn.execute(stmt)]

    def last_audit_id(self) -> int:
        return int(self.conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.audit_log.c.id), 0))).scalar_one())

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        row = self.conn.execute(_FIND_KEY, {"h": key_hash}).first()
        return None if row is None else _api_key(row)

    def list_api_keys(self, project_id: int) -> list[ApiKey]:
        c = t.api_keys.c
        stmt = sa.select(t.api_keys).where(c.project_id == project_id).order_by(c.id)
        return [_api_key(r) for r in self.conn.execute(stmt)]

    def get_admin_user(self, username: str) -> AdminUser | None:
        row = self._one(sa.select(t.admin_users).where(t.admin_users.c.username == username))
        return None if row is None else _user(row)

    def get_admin_user_by_id(self, user_id: int) -> AdminUser | None:
        row = self._one(sa.select(t.admin_users).where(t.admin_users.c.id == user_id))
        return None if row is None else _user(row)

    def count_admin_users(self) -> int:
        return int(self.conn.execute(sa.select(sa.func.count()).select_from(t.admin_users)).scalar_one())

    def get_session(self, token_hash: str) -> Session | None:
        row = self._one(sa.select(t.sessions).where(t.sessions.c.token_hash == token_hash))
        if row is None:
            return None
        return Session(
            id=row.id,
            token_hash=row.token_hash,
            user_id=row.user_id,
            csrf_token=row.csrf_token,
            created_at=_utc(row.created_at),
            expires_at=_utc(row.expires_at),
        )

    def load_project_state(self, project_id: int) -> ProjectState:
        v, lb, vv = t.variables, t.labels, t.variable_versions
        variables = self.list_variables(project_id)
        labels: dict[int, list[Label]] = {}
        label_rows = self.conn.execute(
            sa.select(lb)
            .join(v, v.c.id == lb.c.variable_id)
            .where(v.c.project_id == project_id)
            .order_by(lb.c.variable_id, lb.c.position, lb.c.id)
        )
        for row in label_rows:
            labels.setdefault(row.variable_id, []).append(_label(row))
        newest = (
            sa.select(vv.c.variable_id, sa.func.max(vv.c.version).label("version"))
            .join(v, v.c.id == vv.c.variable_id)
            .where(v.c.project_id == project_id)
            .group_by(vv.c.variable_id)
            .subquery()
        )
        latest_rows = self.conn.execute(
            sa.select(vv).join(
                newest, sa.and_(newest.c.variable_id == vv.c.variable_id, newest.c.version == vv.c.version)
            )
        )
        latest = {row.variable_id: _version(row) for row in latest_rows}
        pinned_rows = self.conn.execute(
            sa.select(vv)
            .join(lb, sa.and_(lb.c.variable_id == vv.c.variable_id, lb.c.version == vv.c.version))
            .join(v, v.c.id == vv.c.variable_id)
            .where(v.c.project_id == project_id, lb.c.target_type == "version")
        )
        label_versions = {(row.variable_id, row.version): _version(row) for row in pinned_rows}
        return ProjectState(
            variables=variables,
            labels=labels,
            latest=latest,
            label_versions=label_versions,
            types=self.list_types(project_id),
            segments=self.list_segments(project_id),
        )


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
        project_id = self._insert(t.projects, {"name": name, "created_at": now}, f"project {name!r}")
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

    def delete_variable(self, variable: Variable) -> None:
        for table in (t.variable_versions, t.labels, t.label_history):
            self.conn.execute(sa.delete(table).where(table.c.variable_id == variable.id))
        self.conn.execute(sa.delete(t.variables).where(t.variables.c.id == variable.id))

    def create_version(self, variable_id: int, serialized_value: str, created_by: str) -> Version:
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
            )
        )
        return Version(
            variable_id=variable_id,
            version=number,
            serialized_value=serialized_value,
            created_by=created_by,
            created_at=now,
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
        self, project_id: int, actor: str, action: str, entity_type: str, entity_name: str, before: Any, after: Any
    ) -> None:
        self.conn.execute(
            sa.insert(t.audit_log).values(
                project_id=project_id,
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
        self, project_id: int, name: str, prefix: str, key_hash: str, scopes: frozenset[str], created_by: str
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
        )

    def revoke_api_key(self, project_id: int, key_id: int) -> ApiKey | None:
        c = t.api_keys.c
        where = sa.and_(c.id == key_id, c.project_id == project_id)
        self.conn.execute(sa.update(t.api_keys).where(where, c.revoked_at.is_(None)).values(revoked_at=_now()))
        row = self._one(sa.select(t.api_keys).where(where))
        return None if row is None else _api_key(row)

    def create_admin_user(self, username: str, password_hash: str) -> AdminUser:
        now = _now()
        values = {"username": username, "password_hash": password_hash, "created_at": now}
        user_id = self._insert(t.admin_users, values, f"user {username!r}")
        return AdminUser(id=user_id, username=username, password_hash=password_hash, created_at=now)

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


class SqlStorage(Storage):
    """Storage over a SQLAlchemy engine; ``SqliteStorage`` and ``PostgresStorage`` set the engine up."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.url = engine.url.render_as_string(hide_password=True)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(setpoint_write=write)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[ReadTx]:
        """A read transaction."""
        with self._transaction(write=False) as conn:
            yield SqlReadTx(conn, self.dialect)

    @contextmanager
    def write(self) -> Iterator[WriteTx]:
        """A write transaction, committed on normal exit."""
        with self._transaction(write=True) as conn:
            yield SqlWriteTx(conn, self.dialect)

    def migrate(self) -> None:
        """Run the Alembic migrations up to head."""
        from setpoint._server.storage.migrate import upgrade

        upgrade(self.engine)

    def is_migrated(self) -> bool:
        """Whether the schema is at head."""
        from setpoint._server.storage.migrate import is_at_head

        return is_at_head(self.engine)

    def ping(self) -> None:
        """Raise if the database cannot answer ``SELECT 1``."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        """Close all pooled connections."""
        self.engine.dispose()
