"""Server settings, defaulting from ``SETPOINT_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from setpoint._server.services.limits import Limits
from setpoint._server.storage import sqlite_url

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_DATA_DIR = ".setpoint-data"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if not value > 0:
        raise ValueError(f"{name}={raw!r} must be a positive number")
    return value


@dataclass
class Settings:
    """Everything ``setpoint serve`` can be told."""

    host: str = field(default_factory=lambda: os.environ.get("SETPOINT_HOST") or DEFAULT_HOST)
    port: int = field(default_factory=lambda: _env_int("SETPOINT_PORT", DEFAULT_PORT))
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("SETPOINT_DATA_DIR") or DEFAULT_DATA_DIR))
    database_url: str | None = field(default_factory=lambda: os.environ.get("SETPOINT_DATABASE_URL") or None)
    admin_password: str | None = field(default_factory=lambda: os.environ.get("SETPOINT_ADMIN_PASSWORD") or None)
    max_body_bytes: int = field(default_factory=lambda: _env_int("SETPOINT_MAX_BODY_BYTES", 1024 * 1024))
    sse_keepalive_seconds: float = field(
        default_factory=lambda: float(os.environ.get("SETPOINT_SSE_KEEPALIVE_SECONDS") or 15.0)
    )
    forwarded_allow_ips: str | None = field(
        default_factory=lambda: os.environ.get("SETPOINT_FORWARDED_ALLOW_IPS") or None
    )
    """Comma-separated proxy addresses/networks (or ``*``) whose ``X-Forwarded-For``/``-Proto`` are trusted;
    None: forwarded headers are ignored."""
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    session_absolute_timeout: int = field(
        default_factory=lambda: _env_int("SETPOINT_SESSION_ABSOLUTE_TIMEOUT", 12 * 3600)
    )
    """Seconds a UI session lasts at most from its login."""
    session_idle_timeout: int = field(default_factory=lambda: _env_int("SETPOINT_SESSION_IDLE_TIMEOUT", 2 * 3600))
    """Seconds of inactivity after which a UI session ends."""
    oidc_issuer: str | None = field(default_factory=lambda: os.environ.get("SETPOINT_OIDC_ISSUER") or None)
    """Single sign-on: the OpenID Connect issuer URL (discovery at ``<issuer>/.well-known/openid-configuration``)."""
    oidc_client_id: str = field(default_factory=lambda: os.environ.get("SETPOINT_OIDC_CLIENT_ID", ""))
    oidc_client_secret: str = field(default_factory=lambda: os.environ.get("SETPOINT_OIDC_CLIENT_SECRET", ""))
    oidc_name: str = field(default_factory=lambda: os.environ.get("SETPOINT_OIDC_NAME") or "single sign-on")
    """Shown on the login page as "Log in with <name>"."""
    oidc_allowed_domains: str = field(default_factory=lambda: os.environ.get("SETPOINT_OIDC_ALLOWED_DOMAINS", ""))
    """Comma-separated email domains whose people are created at their first login (empty: only people who
    already exist may log in)."""
    oidc_groups_claim: str = field(default_factory=lambda: os.environ.get("SETPOINT_OIDC_GROUPS_CLAIM", ""))
    oidc_role_mapping: str = field(default_factory=lambda: os.environ.get("SETPOINT_OIDC_ROLE_MAPPING", ""))
    """``group=project:role`` or ``group=owner`` pairs, separated by ``;`` (applied at every SSO login)."""
    password_login: bool = field(
        default_factory=lambda: os.environ.get("SETPOINT_PASSWORD_LOGIN", "on").lower() not in ("off", "0", "false")
    )
    """Password login; can be turned off only when single sign-on is configured."""
    migrate_on_start: bool = True
    stale_days: int = field(default_factory=lambda: _env_int("SETPOINT_STALE_DAYS", 30))
    """A variable nobody evaluated for this many days (or served one way this long) is flagged stale."""
    usage_hourly_days: int = field(default_factory=lambda: _env_int("SETPOINT_USAGE_HOURLY_DAYS", 30))
    """Hourly evaluation counts are kept this many days, then rolled up into days."""
    usage_retention_days: int = field(default_factory=lambda: _env_int("SETPOINT_USAGE_RETENTION_DAYS", 400))
    """Evaluation counts older than this are deleted."""
    webhooks_allow_private: bool = field(
        default_factory=lambda: os.environ.get("SETPOINT_WEBHOOKS_ALLOW_PRIVATE", "").lower() in ("1", "true", "on")
    )
    """Let webhooks call private, loopback and link-local addresses (off: such targets are refused, SSRF)."""
    webhooks_timeout_seconds: float = field(default_factory=lambda: _env_float("SETPOINT_WEBHOOKS_TIMEOUT", 10.0))
    """How long one webhook attempt may take in all (connecting: at most 5 s of it)."""
    webhooks_retry_base_seconds: float = field(default_factory=lambda: _env_float("SETPOINT_WEBHOOKS_RETRY_BASE", 5.0))
    """The first retry's delay; each next one doubles (with jitter), up to an hour."""
    webhooks_retry_window_seconds: float = field(
        default_factory=lambda: _env_float("SETPOINT_WEBHOOKS_RETRY_WINDOW", 24 * 3600.0)
    )
    """How long after its event a delivery is retried before it is marked failed."""
    webhooks_log_days: int = field(default_factory=lambda: _env_int("SETPOINT_WEBHOOKS_LOG_DAYS", 30))
    """Finished webhook deliveries are kept in the log this many days."""
    limits: Limits = field(
        default_factory=lambda: Limits(
            max_segment_keys=_env_int("SETPOINT_MAX_SEGMENT_KEYS", Limits.max_segment_keys),
            max_segment_rules=_env_int("SETPOINT_MAX_SEGMENT_RULES", Limits.max_segment_rules),
            max_segment_clauses=_env_int("SETPOINT_MAX_SEGMENT_CLAUSES", Limits.max_segment_clauses),
            max_clause_values=_env_int("SETPOINT_MAX_CLAUSE_VALUES", Limits.max_clause_values),
        )
    )

    @property
    def effective_database_url(self) -> str:
        """``--database-url`` if given, else the SQLite file in the data directory."""
        return self.database_url or sqlite_url(self.data_dir)

    @property
    def public_url(self) -> str:
        """Where the server can be reached (for the startup message)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.ssl_certfile else "http"
        return f"{scheme}://{host}:{self.port}"
