"""Conversions between SQL rows and storage records, and the hot statements built once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from setpoint._server.storage import schema as t
from setpoint._server.storage.records import (
    AdminUser,
    ApiKey,
    AuditEntry,
    Invite,
    Label,
    LabelTarget,
    Membership,
    Project,
    Segment,
    Session,
    TargetType,
    Variable,
    VariableFields,
    VariableType,
    Version,
)


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _load(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _project(row: Row[Any]) -> Project:
    return Project(
        id=row.id,
        name=row.name,
        created_at=_utc(row.created_at),
        protected_labels=tuple(json.loads(row.protected_labels)),
    )


def _opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


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
        external=bool(row.external),
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
        description=row._mapping.get("description"),
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
        last_used_at=None if row.last_used_at is None else _utc(row.last_used_at),
        user_id=row.user_id,
    )


def _user(row: Row[Any]) -> AdminUser:
    return AdminUser(
        id=row.id,
        username=row.username,
        password_hash=row.password_hash or None,
        created_at=_utc(row.created_at),
        name=row.name,
        is_owner=bool(row.is_owner),
        deactivated_at=_opt_utc(row.deactivated_at),
    )


def _membership(row: Row[Any]) -> Membership:
    return Membership(project_id=row.project_id, user_id=row.user_id, role=row.role, created_at=_utc(row.created_at))


def _invite(row: Row[Any]) -> Invite:
    return Invite(
        id=row.id,
        user_id=row.user_id,
        token_hash=row.token_hash,
        purpose=row.purpose,
        created_by=row.created_by,
        created_at=_utc(row.created_at),
        expires_at=_utc(row.expires_at),
        used_at=_opt_utc(row.used_at),
    )


def _session(row: Row[Any]) -> Session:
    return Session(
        id=row.id,
        token_hash=row.token_hash,
        user_id=row.user_id,
        csrf_token=row.csrf_token,
        created_at=_utc(row.created_at),
        expires_at=_utc(row.expires_at),
        last_seen_at=_opt_utc(row.last_seen_at),
    )


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
        user_id=row.user_id,
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
        "external": fields.external,
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
