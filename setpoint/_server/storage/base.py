"""The storage interface. One SQL implementation serves SQLite and PostgreSQL (see ``sql.py``); both pass
``tests/server/test_storage_contract.py``.

Services compose the primitives of a :class:`WriteTx` inside one transaction. ``write()`` takes the locks
that make version numbering gapless and unique (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: the variable row
``FOR UPDATE`` in :meth:`WriteTx.lock_variable`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from setpoint._server.storage.login_failures import LoginFailureStore
from setpoint._server.storage.records import (
    AdminUser,
    ApiKey,
    AuditEntry,
    Invite,
    Label,
    LabelMove,
    LabelTarget,
    Membership,
    Project,
    ProjectState,
    Segment,
    Session,
    Variable,
    VariableFields,
    VariableType,
    Version,
)
from setpoint._server.storage.usage import UsageStore
from setpoint._server.storage.webhooks import WebhookStore


class StorageError(Exception):
    """Base class of storage failures."""


class AlreadyExistsError(StorageError):
    """A unique name is taken (project, variable, type, segment, user)."""


class StaleRevisionError(StorageError):
    """The row changed since it was read (optimistic concurrency)."""


class DatabaseInUseError(StorageError):
    """Another Setpoint process holds the SQLite database that an operation needs alone (restore)."""


class ReadTx(ABC):
    """Reads inside one transaction."""

    @abstractmethod
    def get_project(self, name: str) -> Project | None:
        """The project called ``name``."""

    @abstractmethod
    def get_project_by_id(self, project_id: int) -> Project | None:
        """The project with this id."""

    @abstractmethod
    def list_projects(self) -> list[Project]:
        """All projects, by name."""

    @abstractmethod
    def list_variables(self, project_id: int) -> list[Variable]:
        """A project's variables, by name."""

    @abstractmethod
    def get_variable(self, project_id: int, name: str) -> Variable | None:
        """One variable by name."""

    @abstractmethod
    def list_versions(self, variable_id: int) -> list[Version]:
        """Every version of a variable, oldest first."""

    @abstractmethod
    def get_version(self, variable_id: int, version: int) -> Version | None:
        """One version."""

    @abstractmethod
    def latest_version(self, variable_id: int) -> Version | None:
        """The highest-numbered version."""

    @abstractmethod
    def list_labels(self, variable_id: int) -> list[Label]:
        """A variable's labels in the order they were first created."""

    @abstractmethod
    def label_history(self, variable_id: int, label: str | None = None) -> list[LabelMove]:
        """Label moves, oldest first; one label's when ``label`` is given."""

    @abstractmethod
    def list_types(self, project_id: int) -> list[VariableType]:
        """A project's variable types, by name."""

    @abstractmethod
    def get_type(self, project_id: int, name: str) -> VariableType | None:
        """One variable type."""

    @abstractmethod
    def variable_aliases(self, project_id: int) -> dict[str, list[str]]:
        """Every variable name of a project with its aliases (cheap: two columns)."""

    @abstractmethod
    def variables_mentioning(self, project_id: int, text: str) -> list[str]:
        """Names of the project's variables with a version whose value contains ``text`` (sorted). A cheap
        pre-filter (one query): callers confirm each candidate by parsing its served values."""

    @abstractmethod
    def variables_named_or_aliased(self, project_id: int, names: Collection[str]) -> dict[str, list[str]]:
        """The variables (name -> aliases) that are called one of ``names`` or list one of them as an alias.

        Reads only those variables, so checking one variable's names costs the same in any project size."""

    @abstractmethod
    def segment_referrers(self, project_id: int, key: str) -> tuple[list[str], list[str]]:
        """(variables whose overrides name segment ``key``, other segments whose rules name it), each sorted.

        Reads only the rows that mention ``key``."""

    @abstractmethod
    def variables_targeting(self, project_id: int, names: Collection[str]) -> dict[str, dict[str, Any]]:
        """``{name: {"rollout": ..., "overrides": ...}}`` of the variables called one of ``names`` (missing ones
        left out), read in batches: the cost follows ``len(names)``, not the project's size."""

    @abstractmethod
    def segment_keys(self, project_id: int) -> set[str]:
        """The keys of a project's segments."""

    @abstractmethod
    def list_segments(self, project_id: int) -> list[Segment]:
        """A project's segments, by key."""

    @abstractmethod
    def get_segment(self, project_id: int, key: str) -> Segment | None:
        """One segment."""

    @abstractmethod
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
        """Audit entries of a project (``None``: the instance events), newest first, optionally only one
        person's and those with ``since <= at < until``."""

    @abstractmethod
    def audit_since(self, after_id: int, limit: int = 1000) -> list[AuditEntry]:
        """Audit entries of every project with an id above ``after_id``, oldest first."""

    @abstractmethod
    def notifications_since(self, after_id: int, limit: int = 1000) -> list[tuple[int, str]]:
        """(id, payload) of the change notifications stored after ``after_id``, oldest first (where the
        database has no NOTIFY: SQLite)."""

    @abstractmethod
    def last_notification_id(self) -> int:
        """The id of the newest stored change notification (0 when there is none)."""

    @abstractmethod
    def last_audit_id(self) -> int:
        """The id of the newest audit entry (0 when there is none)."""

    @abstractmethod
    def find_api_key(self, key_hash: str) -> ApiKey | None:
        """The key whose token hashes to ``key_hash`` (revoked keys included: callers check)."""

    @abstractmethod
    def list_api_keys(self, project_id: int) -> list[ApiKey]:
        """A project's keys, oldest first."""

    @abstractmethod
    def get_admin_user(self, username: str) -> AdminUser | None:
        """A UI user by name."""

    @abstractmethod
    def get_admin_user_by_id(self, user_id: int) -> AdminUser | None:
        """A UI user by id."""

    @abstractmethod
    def count_admin_users(self) -> int:
        """How many UI users exist."""

    @abstractmethod
    def list_people(self) -> list[AdminUser]:
        """Every person, by login."""

    @abstractmethod
    def count_owners(self) -> int:
        """How many active owners exist."""

    @abstractmethod
    def list_memberships(self, *, project_id: int | None = None, user_id: int | None = None) -> list[Membership]:
        """Memberships of one project or of one person (or all), oldest first."""

    @abstractmethod
    def get_membership(self, project_id: int, user_id: int) -> Membership | None:
        """A person's membership of a project."""

    @abstractmethod
    def get_invite(self, token_hash: str) -> Invite | None:
        """An invite or password-reset link by the hash of its token."""

    @abstractmethod
    def list_user_api_keys(self, user_id: int) -> list[ApiKey]:
        """The keys a person made, in every project."""

    @abstractmethod
    def list_user_sessions(self, user_id: int) -> list[Session]:
        """A person's sessions, newest first."""

    @abstractmethod
    def get_session(self, token_hash: str) -> Session | None:
        """A UI session by the hash of its token."""

    @abstractmethod
    def load_project_state(self, project_id: int) -> ProjectState:
        """Everything a project's served config is built from, in a handful of queries."""


class WriteTx(ReadTx):
    """Reads and writes inside one transaction, committed when the ``with`` block exits normally."""

    _after_commit: list[Callable[[], None]] | None = None

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the transaction has committed (never when it rolls back), e.g. to wake the
        webhook delivery worker."""
        if self._after_commit is None:
            self._after_commit = []
        if callback not in self._after_commit:
            self._after_commit.append(callback)

    def run_after_commit(self) -> None:
        """Run the :meth:`after_commit` callbacks (the storage calls this after the commit)."""
        callbacks, self._after_commit = self._after_commit or [], None
        for callback in callbacks:
            callback()

    @abstractmethod
    def create_project(self, name: str) -> Project:
        """Create a project; :class:`AlreadyExistsError` when the name is taken."""

    @abstractmethod
    def ensure_project(self, name: str) -> tuple[Project, bool]:
        """The project called ``name``, created if missing; the flag says whether it was created."""

    @abstractmethod
    def lock_variable(self, project_id: int, name: str) -> Variable | None:
        """Read a variable and lock its row until the transaction ends (serializes writers of it)."""

    @abstractmethod
    def insert_variable(self, project_id: int, name: str, fields: VariableFields) -> Variable:
        """Create a variable at revision 1; :class:`AlreadyExistsError` when the name is taken."""

    @abstractmethod
    def update_variable(self, variable: Variable, fields: VariableFields) -> Variable:
        """Replace a variable's fields; :class:`StaleRevisionError` if its revision moved since ``variable``."""

    @abstractmethod
    def touch_variable(self, variable: Variable) -> Variable:
        """Bump the revision (after a version or label change); stale-checked like ``update_variable``."""

    @abstractmethod
    def rename_variable(self, variable: Variable, new_name: str, fields: VariableFields) -> Variable:
        """Rename a variable in place (its versions, labels and label history stay) and replace its fields;
        :class:`AlreadyExistsError` when the name is taken, :class:`StaleRevisionError` if its revision moved."""

    @abstractmethod
    def delete_variable(self, variable: Variable) -> None:
        """Delete a variable with its versions, labels and label history."""

    @abstractmethod
    def create_version(
        self, variable_id: int, serialized_value: str, created_by: str, description: str | None = None
    ) -> Version:
        """Store the next version (max + 1), with an optional ``description`` of what changed. Call
        :meth:`lock_variable` first in the same transaction."""

    @abstractmethod
    def set_label(self, variable_id: int, name: str, target: LabelTarget, moved_by: str) -> Label:
        """Create or move a label and record the move (no history entry when the target is unchanged)."""

    @abstractmethod
    def delete_label(self, variable_id: int, name: str, moved_by: str) -> bool:
        """Remove a label and record it; False when it did not exist."""

    @abstractmethod
    def upsert_type(
        self, project_id: int, name: str, json_schema: dict[str, Any], description: str | None, source_hint: str | None
    ) -> tuple[VariableType, VariableType | None]:
        """Create or replace a variable type; returns (new, previous)."""

    @abstractmethod
    def delete_type(self, project_id: int, name: str) -> bool:
        """Delete a variable type; False when it did not exist."""

    @abstractmethod
    def put_segment(self, project_id: int, key: str, data: dict[str, Any], expected_revision: int | None) -> Segment:
        """Create (``expected_revision`` None) or replace a segment; stale revision -> :class:`StaleRevisionError`."""

    @abstractmethod
    def delete_segment(self, project_id: int, key: str) -> bool:
        """Delete a segment; False when it did not exist."""

    @abstractmethod
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
        """Append to the audit history (``project_id`` None: an instance event)."""

    @abstractmethod
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
        """Store a new key (its hash only), made by person ``user_id`` (None: the operator)."""

    @abstractmethod
    def revoke_api_key(self, project_id: int, key_id: int) -> ApiKey | None:
        """Mark a key revoked; None when no such key exists in this project."""

    @abstractmethod
    def record_api_key_use(self, key_id: int, at: datetime) -> None:
        """Set a key's ``last_used_at`` to ``at``, unless it already holds a later time."""

    @abstractmethod
    def create_admin_user(
        self, username: str, password_hash: str | None, *, name: str = "", is_owner: bool = False
    ) -> AdminUser:
        """Create a person; :class:`AlreadyExistsError` when the login is taken."""

    @abstractmethod
    def set_person(
        self, user_id: int, *, name: str | None = None, is_owner: bool | None = None, deactivated: bool | None = None
    ) -> AdminUser | None:
        """Change a person's name, owner flag or deactivation (now / lifted); None when no such person."""

    @abstractmethod
    def set_membership(self, project_id: int, user_id: int, role: str) -> tuple[Membership, Membership | None]:
        """Add a person to a project or change their role; returns (new, previous)."""

    @abstractmethod
    def delete_membership(self, project_id: int, user_id: int) -> Membership | None:
        """Remove a person from a project; the removed membership, or None."""

    @abstractmethod
    def create_invite(
        self, user_id: int, token_hash: str, purpose: str, created_by: str, expires_at: datetime
    ) -> Invite:
        """Store a one-time link (its hash only)."""

    @abstractmethod
    def use_invite(self, invite_id: int) -> bool:
        """Mark a link used; False when it already was (so a link works once, even under a race)."""

    @abstractmethod
    def delete_user_sessions(self, user_id: int, *, keep_token_hash: str | None = None) -> int:
        """End a person's sessions (all, or all but one); how many ended."""

    @abstractmethod
    def touch_session(self, token_hash: str, at: datetime) -> None:
        """Record that a session was used at ``at`` (for the idle timeout)."""

    @abstractmethod
    def delete_user_session(self, user_id: int, session_id: int) -> bool:
        """End one of a person's sessions; False when they have no such session."""

    @abstractmethod
    def delete_expired_sessions(self, now: datetime) -> int:
        """Purge sessions that expired before ``now``; how many."""

    @abstractmethod
    def set_protected_labels(self, project_id: int, labels: tuple[str, ...]) -> None:
        """Set a project's protected labels."""

    @abstractmethod
    def set_admin_password(self, user_id: int, password_hash: str) -> None:
        """Change a UI user's password hash."""

    @abstractmethod
    def create_session(self, token_hash: str, user_id: int, csrf_token: str, expires_at: datetime) -> Session:
        """Store a UI session."""

    @abstractmethod
    def delete_session(self, token_hash: str) -> None:
        """End a UI session."""

    @abstractmethod
    def notify(self, payload: str) -> None:
        """Tell other server processes about a change once this transaction commits (PostgreSQL: NOTIFY;
        SQLite: a row that `notifications_since` returns)."""

    @abstractmethod
    def prune_notifications(self, keep: int) -> None:
        """Delete stored change notifications but the newest ``keep`` (the newest one is always kept)."""


class Storage(ABC):
    """A database holding any number of projects."""

    dialect: str
    """``"sqlite"`` or ``"postgresql"``."""

    url: str
    """The database URL (with any password masked)."""

    usage: UsageStore
    """SDK evaluation counts and code references (``storage/usage.py``)."""

    login_failures: LoginFailureStore
    """Failed logins per account and client address (``storage/login_failures.py``)."""

    webhooks: WebhookStore
    """The webhook delivery workers' claims and outcomes (``storage/webhooks.py``)."""

    @abstractmethod
    def read(self) -> AbstractContextManager[ReadTx]:
        """A read transaction."""

    @abstractmethod
    def write(self) -> AbstractContextManager[WriteTx]:
        """A write transaction: committed on normal exit, rolled back on an exception."""

    @abstractmethod
    def migrate(self) -> None:
        """Bring the schema to the newest migration."""

    @abstractmethod
    def is_migrated(self) -> bool:
        """Whether the schema is at the newest migration."""

    @abstractmethod
    def ping(self) -> None:
        """Raise if the database cannot be reached."""

    @abstractmethod
    def dispose(self) -> None:
        """Close every connection."""
