"""The database tables (SQLAlchemy Core). Migrations in ``migrations/versions`` create exactly these.

JSON documents are stored as text (``json.dumps``) so both backends keep key order byte for byte.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _project_fk() -> sa.Column[object]:
    return sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)


def _variable_fk() -> sa.Column[object]:
    return sa.Column("variable_id", sa.Integer, sa.ForeignKey("variables.id", ondelete="CASCADE"), nullable=False)


projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    _ts("created_at"),
    sa.Column("protected_labels", sa.Text, nullable=False, server_default='["production"]'),
)

variables = sa.Table(
    "variables",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _project_fk(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("json_schema", sa.Text, nullable=True),
    sa.Column("type_name", sa.String(200), nullable=True),
    sa.Column("aliases", sa.Text, nullable=True),
    sa.Column("example", sa.Text, nullable=True),
    sa.Column("template_inputs_schema", sa.Text, nullable=True),
    sa.Column("rollout", sa.Text, nullable=False),
    sa.Column("overrides", sa.Text, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("external", sa.Boolean, nullable=False, server_default=sa.false()),
    _ts("created_at"),
    _ts("updated_at"),
    sa.UniqueConstraint("project_id", "name", name="uq_variables_project_name"),
)
# Only the variables that have aliases: checking a write's aliases reads those, not the whole project.
sa.Index(
    "ix_variables_aliased",
    variables.c.project_id,
    sqlite_where=variables.c.aliases.isnot(None),
    postgresql_where=variables.c.aliases.isnot(None),
)

variable_versions = sa.Table(
    "variable_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _variable_fk(),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("serialized_value", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ts("created_at"),
    sa.Column("description", sa.Text, nullable=True),
    sa.UniqueConstraint("variable_id", "version", name="uq_variable_versions_variable_version"),
)

labels = sa.Table(
    "labels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _variable_fk(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("target_type", sa.String(20), nullable=False),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("target_label", sa.String(200), nullable=True),
    _ts("updated_at"),
    sa.UniqueConstraint("variable_id", "name", name="uq_labels_variable_name"),
)

label_history = sa.Table(
    "label_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _variable_fk(),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("target_type", sa.String(20), nullable=True),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("target_label", sa.String(200), nullable=True),
    sa.Column("moved_by", sa.String(200), nullable=False),
    _ts("moved_at"),
)

variable_types = sa.Table(
    "variable_types",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _project_fk(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("json_schema", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("source_hint", sa.Text, nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
    sa.UniqueConstraint("project_id", "name", name="uq_variable_types_project_name"),
)

segments = sa.Table(
    "segments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _project_fk(),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    _ts("updated_at"),
    sa.UniqueConstraint("project_id", "key", name="uq_segments_project_key"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # NULL: an event of the instance rather than of one project (a failed or throttled login).
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    _ts("at"),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(50), nullable=False),
    sa.Column("entity_type", sa.String(50), nullable=False),
    sa.Column("entity_name", sa.String(200), nullable=False),
    sa.Column("before", sa.Text, nullable=True),
    sa.Column("after", sa.Text, nullable=True),
    sa.Column("user_id", sa.Integer, nullable=True),
    sa.Index("ix_audit_log_project_entity", "project_id", "entity_type", "entity_name"),
    sa.Index("ix_audit_log_user_id", "user_id"),
    sa.Index("ix_audit_log_at", "at"),
)

change_notifications = sa.Table(
    "change_notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("payload", sa.Text, nullable=False),
    _ts("created_at"),
)
"""SQLite's stand-in for PostgreSQL's NOTIFY: committed change payloads that every server process polls."""

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _project_fk(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(20), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.String(100), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ts("created_at"),
    _ts("revoked_at", nullable=True),
    _ts("last_used_at", nullable=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("admin_users.id", ondelete="SET NULL"), nullable=True),
)

admin_users = sa.Table(
    "admin_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(200), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(300), nullable=False),
    _ts("created_at"),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("is_owner", sa.Boolean, nullable=False, server_default=sa.false()),
    _ts("deactivated_at", nullable=True),
)
"""People (the table keeps its first name): ``username`` is the login (an email address, or ``admin`` for the
owner created at first start). ``password_hash`` is "" until an invited person sets a password: NOT NULL,
because making it nullable would rebuild the table on SQLite."""

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("admin_users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf_token", sa.String(100), nullable=False),
    _ts("created_at"),
    _ts("expires_at"),
    _ts("last_seen_at", nullable=True),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _project_fk(),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("admin_users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    _ts("created_at"),
    sa.UniqueConstraint("project_id", "user_id", name="uq_memberships_project_user"),
)

invites = sa.Table(
    "invites",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("admin_users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("purpose", sa.String(20), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ts("created_at"),
    _ts("expires_at"),
    _ts("used_at", nullable=True),
)

# Evaluation counts reported by SDKs: one row per project, variable, label, version, reason and time bucket
# (hourly, rolled up to days after `Settings.usage_hourly_days`). "No label" is '' and "no version" is 0 so
# that the unique key (and with it the upsert) works the same on both databases.
usage_counts = sa.Table(
    "usage_counts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _project_fk(),
    sa.Column("variable", sa.String(200), nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("granularity", sa.String(4), nullable=False),
    _ts("bucket_start"),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.UniqueConstraint(
        *("project_id", "variable", "label", "version", "reason", "granularity", "bucket_start"),
        name="uq_usage_counts_key",
    ),
    sa.Index("ix_usage_counts_bucket", "granularity", "bucket_start"),
)

# Which SDK processes read a variable, and when one last did.
usage_instances = sa.Table(
    "usage_instances",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _project_fk(),
    sa.Column("variable", sa.String(200), nullable=False),
    sa.Column("instance_id", sa.String(64), nullable=False),
    sa.Column("sdk", sa.String(100), nullable=False),
    _ts("last_seen_at"),
    sa.UniqueConstraint("project_id", "variable", "instance_id", name="uq_usage_instances_key"),
)

# Where code defines variables, as uploaded by `setpoint refs --upload` (one upload replaces a repository's rows).
code_refs = sa.Table(
    "code_refs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _project_fk(),
    sa.Column("repository", sa.String(300), nullable=False),
    sa.Column("variable", sa.String(200), nullable=True),
    sa.Column("path", sa.String(1000), nullable=False),
    sa.Column("line", sa.Integer, nullable=False),
    sa.Column("call", sa.String(100), nullable=False),
    sa.Column("commit_sha", sa.String(100), nullable=True),
    sa.Column("branch", sa.String(300), nullable=True),
    _ts("uploaded_at"),
    sa.Index("ix_code_refs_project_repository", "project_id", "repository"),
)

# Failed logins per account ("account:<name, casefolded>") and per client address ("address:<ip>"), shared by
# every server process on the database (`storage/login_failures.py`). A row is forgotten at `expires_at`.
login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    _ts("last_failure"),
    _ts("blocked_until"),
    _ts("announced_until"),
    _ts("expires_at"),
    sa.Index("ix_login_failures_expires_at", "expires_at"),
)

# Four-eyes review (change requests): per-project settings; no row = review off.
review_settings = sa.Table(
    "review_settings",
    metadata,
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("protected_labels", sa.Boolean, nullable=False),
    sa.Column("all_targeting", sa.Boolean, nullable=False),
    sa.Column("approver_role", sa.String(20), nullable=False),
    sa.Column("admins_bypass", sa.Boolean, nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
    _ts("updated_at"),
)

# A proposed change of one variable's targeting (rollout, override rules, label targets), applied once approved.
# `diff` is JSON: {"rollout"?: {"before", "after"}, "overrides"?: {...}, "labels"?: {name: {"before", "after"}}}.
change_requests = sa.Table(
    "change_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _project_fk(),
    sa.Column("variable", sa.String(200), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("base_revision", sa.Integer, nullable=False),
    sa.Column("diff", sa.Text, nullable=False),
    sa.Column("bypassed", sa.Boolean, nullable=False, server_default=sa.false()),
    _ts("created_at"),
    _ts("updated_at"),
    sa.Column("reviewed_by", sa.String(200), nullable=True),
    _ts("reviewed_at", nullable=True),
    sa.Column("applied_by", sa.String(200), nullable=True),
    _ts("applied_at", nullable=True),
    sa.Index("ix_change_requests_project_state", "project_id", "state"),
)

change_request_comments = sa.Table(
    "change_request_comments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "request_id", sa.Integer, sa.ForeignKey("change_requests.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    _ts("created_at"),
)

# Webhooks (`services/webhooks/`): where a project's events are sent. The signing secret is kept as given
# (`whsec_...`): the server signs with it, so it cannot be hashed; only admins see it.
webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _project_fk(),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("description", sa.String(200), nullable=False, server_default=""),
    sa.Column("events", sa.Text, nullable=False),
    sa.Column("secret", sa.String(100), nullable=False),
    sa.Column("format", sa.String(20), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    sa.Index("ix_webhooks_project_enabled", "project_id", "enabled"),
)

# The outbox and the delivery log in one: a row is written in the transaction of the change that caused it,
# claimed by a delivery worker when due (`next_attempt_at`), and kept as the log (pruned after some days).
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("webhook_id", sa.Integer, sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    _ts("created_at"),
    _ts("next_attempt_at", nullable=True),
    _ts("last_attempt_at", nullable=True),
    sa.Column("response_status", sa.Integer, nullable=True),
    sa.Column("response_ms", sa.Integer, nullable=True),
    sa.Column("response_body", sa.Text, nullable=True),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Column("redelivery_of", sa.Integer, nullable=True),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
)

# Progressive rollouts: raise one label's weight in a variable's default rollout from `start_weight` to
# `target_weight` in `steps` steps, one every `interval_seconds` (each step is a `schedules` row).
# `next_step` is the step the next run applies (0 = the start weight); `weight` the last weight applied.
progressive_rollouts = sa.Table(
    "progressive_rollouts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _project_fk(),
    sa.Column("variable", sa.String(200), nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("start_weight", sa.Float, nullable=False),
    sa.Column("target_weight", sa.Float, nullable=False),
    sa.Column("steps", sa.Integer, nullable=False),
    sa.Column("interval_seconds", sa.Integer, nullable=False),
    sa.Column("next_step", sa.Integer, nullable=False),
    sa.Column("weight", sa.Float, nullable=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    sa.Index("ix_progressive_rollouts_project_id", "project_id", "variable"),
)

# Scheduled changes: one row per piece of work (kind + JSON payload) due at `due_at` (UTC), done once by the
# runner on behalf of `created_by`. `late_seconds`: how late it ran; `error`: why it failed.
schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _project_fk(),
    sa.Column("variable", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    _ts("due_at"),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ts("created_at"),
    _ts("ran_at", nullable=True),
    sa.Column("late_seconds", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("rollout_id", sa.Integer, sa.ForeignKey("progressive_rollouts.id", ondelete="CASCADE"), nullable=True),
    sa.Index("ix_schedules_state", "state", "due_at"),
    sa.Index("ix_schedules_project_id", "project_id", "due_at"),
)
