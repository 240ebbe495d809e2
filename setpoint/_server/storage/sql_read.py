"""Reads over one SQLAlchemy connection inside an open transaction."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from setpoint._server.storage import schema as t
from setpoint._server.storage.base import ReadTx
from setpoint._server.storage.records import (
    AdminUser,
    ApiKey,
    AuditEntry,
    Invite,
    Label,
    LabelMove,
    Membership,
    Project,
    ProjectState,
    Segment,
    Session,
    Variable,
    VariableType,
    Version,
)
from setpoint._server.storage.sql_rows import (
    _FIND_KEY,
    _GET_VARIABLE,
    _GET_VERSION,
    _LATEST_VERSION,
    _LIST_LABELS,
    _api_key,
    _audit,
    _invite,
    _label,
    _load,
    _membership,
    _project,
    _segment,
    _session,
    _target,
    _type,
    _user,
    _utc,
    _variable,
    _version,
)

_IN_BATCH = 500
"""Names per ``IN (...)`` list: well under every supported database's bound-parameter limit."""


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

    def variables_mentioning(self, project_id: int, text: str) -> list[str]:
        v, vv = t.variables.c, t.variable_versions.c
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = (
            sa.select(v.name)
            .distinct()
            .select_from(t.variables.join(t.variable_versions, vv.variable_id == v.id))
            .where(v.project_id == project_id, vv.serialized_value.like(pattern, escape="\\"))
            .order_by(v.name)
        )
        return list(self.conn.execute(stmt).scalars())

    def variables_named_or_aliased(self, project_id: int, names: Collection[str]) -> dict[str, list[str]]:
        wanted = set(names)
        if not wanted:
            return {}
        c = t.variables.c
        # Aliases are a JSON list in a text column: a LIKE finds the candidates, the exact test is below.
        mentions = [c.aliases.contains(json.dumps(name), autoescape=True) for name in sorted(wanted)]
        by_name = sa.select(c.name, c.aliases).where(c.project_id == project_id, c.name.in_(wanted))
        by_alias = sa.select(c.name, c.aliases).where(  # reads only aliased variables (partial index)
            c.project_id == project_id, c.aliases.isnot(None), sa.or_(*mentions)
        )
        found: dict[str, list[str]] = {}
        for row in self.conn.execute(sa.union(by_name, by_alias)):
            aliases = _load(row.aliases) or []
            if row.name in wanted or wanted.intersection(aliases):
                found[row.name] = aliases
        return found

    def variables_targeting(self, project_id: int, names: Collection[str]) -> dict[str, dict[str, Any]]:
        v = t.variables.c
        ordered = sorted(set(names))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ordered), _IN_BATCH):
            stmt = sa.select(v.name, v.rollout, v.overrides).where(
                v.project_id == project_id, v.name.in_(ordered[start : start + _IN_BATCH])
            )
            for row in self.conn.execute(stmt):
                found[row.name] = {"rollout": json.loads(row.rollout), "overrides": json.loads(row.overrides)}
        return found

    def segment_referrers(self, project_id: int, key: str) -> tuple[list[str], list[str]]:
        v = t.variables.c
        stmt = sa.select(v.name, v.overrides).where(
            v.project_id == project_id, v.overrides.contains(json.dumps(key), autoescape=True)
        )
        variables = sorted(
            row.name
            for row in self.conn.execute(stmt)
            if any(
                condition.get("kind") in ("in-segment", "not-in-segment") and condition.get("segment") == key
                for override in json.loads(row.overrides)
                for condition in override.get("conditions") or []
            )
        )
        s = t.segments.c
        stmt = sa.select(s.key, s.data).where(
            s.project_id == project_id, s.key != key, s.data.contains(json.dumps(key), autoescape=True)
        )
        segments = sorted(
            row.key
            for row in self.conn.execute(stmt)
            if any(
                clause.get("op") == "segmentMatch" and key in (clause.get("values") or [])
                for rule in json.loads(row.data).get("rules") or []
                for clause in rule.get("clauses") or []
            )
        )
        return variables, segments

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
        self,
        project_id: int | None,
        *,
        entity_type: str | None = None,
        entity_name: str | None = None,
        limit: int = 100,
        user_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AuditEntry]:
        c = t.audit_log.c
        where = c.project_id.is_(None) if project_id is None else c.project_id == project_id
        stmt = sa.select(t.audit_log).where(where)
        if user_id is not None:
            stmt = stmt.where(c.user_id == user_id)
        if since is not None:
            stmt = stmt.where(c.at >= since)
        if until is not None:
            stmt = stmt.where(c.at < until)
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

    def notifications_since(self, after_id: int, limit: int = 1000) -> list[tuple[int, str]]:
        c = t.change_notifications.c
        stmt = sa.select(c.id, c.payload).where(c.id > after_id).order_by(c.id).limit(limit)
        return [(int(row.id), str(row.payload)) for row in self.conn.execute(stmt)]

    def last_notification_id(self) -> int:
        c = t.change_notifications.c
        return int(self.conn.execute(sa.select(sa.func.coalesce(sa.func.max(c.id), 0))).scalar_one())

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

    def list_people(self) -> list[AdminUser]:
        return [_user(r) for r in self.conn.execute(sa.select(t.admin_users).order_by(t.admin_users.c.username))]

    def count_owners(self) -> int:
        c = t.admin_users.c
        stmt = sa.select(sa.func.count()).where(c.is_owner.is_(True), c.deactivated_at.is_(None))
        return int(self.conn.execute(stmt).scalar_one())

    def list_memberships(self, *, project_id: int | None = None, user_id: int | None = None) -> list[Membership]:
        c = t.memberships.c
        stmt = sa.select(t.memberships).order_by(c.id)
        if project_id is not None:
            stmt = stmt.where(c.project_id == project_id)
        if user_id is not None:
            stmt = stmt.where(c.user_id == user_id)
        return [_membership(r) for r in self.conn.execute(stmt)]

    def get_membership(self, project_id: int, user_id: int) -> Membership | None:
        c = t.memberships.c
        row = self._one(sa.select(t.memberships).where(c.project_id == project_id, c.user_id == user_id))
        return None if row is None else _membership(row)

    def get_invite(self, token_hash: str) -> Invite | None:
        row = self._one(sa.select(t.invites).where(t.invites.c.token_hash == token_hash))
        return None if row is None else _invite(row)

    def list_user_api_keys(self, user_id: int) -> list[ApiKey]:
        c = t.api_keys.c
        return [
            _api_key(r) for r in self.conn.execute(sa.select(t.api_keys).where(c.user_id == user_id).order_by(c.id))
        ]

    def list_user_sessions(self, user_id: int) -> list[Session]:
        c = t.sessions.c
        stmt = sa.select(t.sessions).where(c.user_id == user_id).order_by(c.id.desc())
        return [_session(r) for r in self.conn.execute(stmt)]

    def get_session(self, token_hash: str) -> Session | None:
        row = self._one(sa.select(t.sessions).where(t.sessions.c.token_hash == token_hash))
        return None if row is None else _session(row)

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
