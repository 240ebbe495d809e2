"""Plain records that storage returns: immutable, no behaviour, no database types."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

TargetType = Literal["version", "latest", "code_default", "label"]
TARGET_TYPES: tuple[TargetType, ...] = ("version", "latest", "code_default", "label")


@dataclass(frozen=True)
class Project:
    """A project: the unit of isolation (variables, types, segments and keys belong to one project)."""

    id: int
    name: str
    created_at: datetime
    protected_labels: tuple[str, ...] = ("production",)
    """Labels that only a project ``admin`` may move, or whose targeting only an admin may change."""


@dataclass(frozen=True)
class VariableFields:
    """The editable fields of a variable (everything but its versions and labels)."""

    description: str | None = None
    json_schema: dict[str, Any] | None = None
    type_name: str | None = None
    aliases: list[str] | None = None
    example: str | None = None
    template_inputs_schema: dict[str, Any] | None = None
    rollout: dict[str, Any] = field(default_factory=lambda: {"labels": {}})
    overrides: list[dict[str, Any]] = field(default_factory=list)
    external: bool = False
    """Readable by ``read_external`` keys (through OFREP only)."""


@dataclass(frozen=True)
class Variable:
    """A stored variable. ``revision`` increases on every change (optimistic concurrency)."""

    id: int
    project_id: int
    name: str
    fields: VariableFields
    revision: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Version:
    """An immutable numbered value of a variable."""

    variable_id: int
    version: int
    serialized_value: str
    created_by: str
    created_at: datetime
    description: str | None = None
    """What changed and why, as its author wrote it (optional)."""


@dataclass(frozen=True)
class LabelTarget:
    """Where a label points: a version number, ``latest``, ``code_default`` or another label."""

    target_type: TargetType
    version: int | None = None
    target_label: str | None = None


@dataclass(frozen=True)
class Label:
    """A movable name pointing at a :class:`LabelTarget`."""

    variable_id: int
    name: str
    target: LabelTarget
    updated_at: datetime


@dataclass(frozen=True)
class LabelMove:
    """One entry of a label's history; ``target`` is None when the label was removed."""

    variable_id: int
    label: str
    target: LabelTarget | None
    moved_by: str
    moved_at: datetime


@dataclass(frozen=True)
class VariableType:
    """A named JSON schema that variables can share."""

    project_id: int
    name: str
    json_schema: dict[str, Any]
    description: str | None
    source_hint: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Segment:
    """A segment stored as its JSON document (the segments API owns its shape)."""

    project_id: int
    key: str
    data: dict[str, Any]
    revision: int
    updated_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    """Who changed what, when, with the JSON before and after (None for a create or a delete)."""

    id: int
    project_id: int | None
    """None for an instance event (people, logins)."""
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_name: str
    before: Any
    after: Any
    user_id: int | None = None
    """The person who made the change (directly or through one of their API keys), when known."""


@dataclass(frozen=True)
class ApiKey:
    """An API key's stored form: only the sha256 of the token is kept."""

    id: int
    project_id: int
    name: str
    prefix: str
    key_hash: str
    scopes: frozenset[str]
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None = None
    """When a server last accepted the key (recorded at most about once a minute per key and process)."""
    user_id: int | None = None
    """The person who made the key (None: made by the operator with `setpoint keys create`)."""


@dataclass(frozen=True)
class AdminUser:
    """A person: ``username`` is their login (an email address, or ``admin`` for the owner made at first
    start); ``password_hash`` is None until an invited person sets their password."""

    id: int
    username: str
    password_hash: str | None
    created_at: datetime
    name: str = ""
    is_owner: bool = False
    deactivated_at: datetime | None = None

    @property
    def display_name(self) -> str:
        """The name shown in the UI and the audit (the login when no name was given)."""
        return self.name or self.username

    @property
    def active(self) -> bool:
        """Not deactivated."""
        return self.deactivated_at is None


Person = AdminUser


@dataclass(frozen=True)
class Membership:
    """A person's role in one project."""

    project_id: int
    user_id: int
    role: str
    created_at: datetime


@dataclass(frozen=True)
class Invite:
    """A one-time link (``purpose`` ``invite`` or ``reset``) to set a password; only its sha256 is kept."""

    id: int
    user_id: int
    token_hash: str
    purpose: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True)
class Session:
    """A logged-in UI session; only the sha256 of the session token is kept."""

    id: int
    token_hash: str
    user_id: int
    csrf_token: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime | None = None


@dataclass(frozen=True)
class ProjectState:
    """Everything needed to build a project's served config, read in one transaction."""

    variables: list[Variable]
    labels: dict[int, list[Label]]
    latest: dict[int, Version]
    label_versions: dict[tuple[int, int], Version]
    types: list[VariableType]
    segments: list[Segment]
