"""UI sessions and CSRF protection.

A session token is 256 random bits, sent only in an ``HttpOnly; SameSite=Lax`` cookie (``Secure`` over
HTTPS) and stored as its sha256. Each session has a CSRF token that every form POST carries in a hidden
``csrf_token`` field (and every fetch in an ``X-CSRF-Token`` header); it is compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request
from starlette.responses import Response

from setpoint._server.security import hash_password, hash_token, needs_rehash, verify_password
from setpoint._server.services import audit
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.people import actors
from setpoint._server.storage import ReadTx
from setpoint._server.storage.records import AdminUser, Session

COOKIE = "setpoint_session"
_DUMMY_HASH = hash_password("no such person: the same work as a real check")
SESSION_LIFETIME = timedelta(hours=12)
"""The default absolute timeout (``SETPOINT_SESSION_ABSOLUTE_TIMEOUT`` seconds changes it)."""
SESSION_IDLE = timedelta(hours=2)
"""The default idle timeout (``SETPOINT_SESSION_IDLE_TIMEOUT`` seconds changes it)."""
TOUCH_INTERVAL = timedelta(seconds=60)
"""A session's ``last_seen_at`` is written at most this often."""


class LoginRequiredError(Exception):
    """The request needs a logged-in user; the UI answers with a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class CsrfError(Exception):
    """A state-changing request without the session's CSRF token."""


@dataclass(frozen=True)
class UiSession:
    """The logged-in user of a request and the CSRF token of their session."""

    user: AdminUser
    csrf_token: str
    session_id: int = 0

    @property
    def actor(self) -> str:
        """How the audit history names this person."""
        return actors.person(self.user.id, self.user.display_name)

    @property
    def initials(self) -> str:
        """The letters of the person's avatar."""
        return actors.initials(self.user.display_name)


def login(ctx: ServiceContext, username: str, password: str, *, lifetime: timedelta = SESSION_LIFETIME) -> str | None:
    """A new session token when the credentials are right, else None (the same answer for an unknown or
    deactivated person). A success is in the instance audit (the login view records failures with the
    client's address); an older password hash is upgraded."""
    login_name = username.strip()[:200]
    with ctx.storage.read() as tx:
        user = tx.get_admin_user(login_name) or tx.get_admin_user(login_name.lower())
    # The same work whether the login exists, has no password yet or is deactivated: no enumeration by timing.
    ok = verify_password(password, user.password_hash if user is not None and user.password_hash else _DUMMY_HASH)
    ok = ok and user is not None and user.active and user.password_hash is not None
    if not ok or user is None:
        return None  # the caller records the failure (`login_throttle.failed`: address, counts, delay)
    with ctx.storage.write() as tx:
        now = datetime.now(UTC)
        tx.delete_expired_sessions(now)
        if user.password_hash is not None and needs_rehash(user.password_hash):
            tx.set_admin_password(user.id, hash_password(password))
        token = secrets.token_urlsafe(32)
        tx.create_session(hash_token(token), user.id, secrets.token_urlsafe(32), now + lifetime)
        audit.record(tx, None, actors.person(user.id, user.display_name), "login", "session", user.username, None, None)
    return token


def start_session(ctx: ServiceContext, user_id: int, *, lifetime: timedelta = SESSION_LIFETIME) -> str:
    """A new session token for a person who just proved who they are (an invite link, single sign-on)."""
    token = secrets.token_urlsafe(32)
    with ctx.storage.write() as tx:
        tx.create_session(hash_token(token), user_id, secrets.token_urlsafe(32), datetime.now(UTC) + lifetime)
    return token


def logout(ctx: ServiceContext, token: str | None) -> None:
    """End a session (nothing happens for an unknown token)."""
    if token:
        with ctx.storage.write() as tx:
            tx.delete_session(hash_token(token))


def load(ctx: ServiceContext, token: str | None, *, idle: timedelta = SESSION_IDLE) -> UiSession | None:
    """The session of a cookie value, or None when missing, unknown, expired (absolute timeout), idle for
    longer than ``idle``, or of a deactivated person. Notes the use (at most once per :data:`TOUCH_INTERVAL`)."""
    if not token:
        return None
    now = datetime.now(UTC)
    token_hash = hash_token(token)
    with ctx.storage.read() as tx:
        session = tx.get_session(token_hash)
        if session is None or session.expires_at <= now:
            return None
        last_seen = session.last_seen_at or session.created_at
        if last_seen + idle <= now:
            return None
        user = tx.get_admin_user_by_id(session.user_id)
    if user is None or not user.active:
        return None
    if now - last_seen >= TOUCH_INTERVAL:
        with ctx.storage.write() as tx:
            tx.touch_session(token_hash, now)
    return UiSession(user=user, csrf_token=session.csrf_token, session_id=session.id)


def require(request: Request, ctx: ServiceContext) -> UiSession:
    """The request's session; :class:`LoginRequiredError` when there is none."""
    found = load(ctx, request.cookies.get(COOKIE), idle=policy(request)[1])
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequiredError(target if request.method == "GET" else "/")
    return found


def check_csrf(session: UiSession, submitted: str | None) -> None:
    """:class:`CsrfError` unless ``submitted`` is the session's CSRF token."""
    if not submitted or not hmac.compare_digest(submitted.encode(), session.csrf_token.encode()):
        raise CsrfError


def policy(request: Request) -> tuple[timedelta, timedelta]:
    """The server's (absolute, idle) session timeouts."""
    state = getattr(request.app.state, "setpoint", None)
    settings = getattr(state, "settings", None)
    if settings is None:
        return SESSION_LIFETIME, SESSION_IDLE
    return timedelta(seconds=settings.session_absolute_timeout), timedelta(seconds=settings.session_idle_timeout)


def list_own(ctx: ServiceContext, session: UiSession) -> list[Session]:
    """The person's sessions that have not expired, newest first."""
    now = datetime.now(UTC)
    with ctx.storage.read() as tx:
        return [s for s in tx.list_user_sessions(session.user.id) if s.expires_at > now]


def revoke_own(ctx: ServiceContext, session: UiSession, session_id: int | None) -> int:
    """End one of the person's sessions (``None``: all but the current one); how many ended."""
    with ctx.storage.write() as tx:
        if session_id is None:
            count = tx.delete_user_sessions(session.user.id, keep_token_hash=_current_hash(tx, session))
        else:
            count = int(tx.delete_user_session(session.user.id, session_id))
        if count:
            audit.record(
                tx, None, session.actor, "revoke_sessions", "session", session.user.username, None, {"ended": count}
            )
    return count


def _current_hash(tx: ReadTx, session: UiSession) -> str | None:
    found = [s.token_hash for s in tx.list_user_sessions(session.user.id) if s.id == session.session_id]
    return found[0] if found else None


def set_cookie(request: Request, response: Response, token: str) -> None:
    """Attach the session cookie (Secure when the request came over HTTPS)."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(policy(request)[0].total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_cookie(response: Response) -> None:
    """Remove the session cookie."""
    response.delete_cookie(COOKIE, path="/")


def safe_next(next_url: str | None) -> str:
    """A local path to go to after login (never another site)."""
    if next_url and next_url.startswith("/") and not next_url.startswith("//") and "\\" not in next_url:
        return next_url
    return "/"
