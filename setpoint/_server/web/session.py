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

from setpoint._server.security import hash_token, verify_password
from setpoint._server.services.context import ServiceContext
from setpoint._server.storage.records import AdminUser

COOKIE = "setpoint_session"
_DUMMY_HASH = "scrypt$16384$8$1$" + "A" * 22 + "==$" + "A" * 43 + "="
SESSION_LIFETIME = timedelta(hours=12)


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

    @property
    def actor(self) -> str:
        """How the audit history names this user."""
        return f"user:{self.user.username}"


def login(ctx: ServiceContext, username: str, password: str) -> str | None:
    """A new session token when the credentials are right, else None (the same answer for an unknown user)."""
    with ctx.storage.read() as tx:
        user = tx.get_admin_user(username.strip())
    if user is None:
        verify_password(password, _DUMMY_HASH)  # same work as a real check: no user enumeration by timing
        return None
    if not verify_password(password, user.password_hash):
        return None
    token = secrets.token_urlsafe(32)
    with ctx.storage.write() as tx:
        tx.create_session(hash_token(token), user.id, secrets.token_urlsafe(32), datetime.now(UTC) + SESSION_LIFETIME)
    return token


def logout(ctx: ServiceContext, token: str | None) -> None:
    """End a session (nothing happens for an unknown token)."""
    if token:
        with ctx.storage.write() as tx:
            tx.delete_session(hash_token(token))


def load(ctx: ServiceContext, token: str | None) -> UiSession | None:
    """The session of a cookie value, or None when missing, unknown or expired."""
    if not token:
        return None
    with ctx.storage.read() as tx:
        session = tx.get_session(hash_token(token))
        if session is None or session.expires_at <= datetime.now(UTC):
            return None
        user = tx.get_admin_user_by_id(session.user_id)
    return None if user is None else UiSession(user=user, csrf_token=session.csrf_token)


def require(request: Request, ctx: ServiceContext) -> UiSession:
    """The request's session; :class:`LoginRequiredError` when there is none."""
    found = load(ctx, request.cookies.get(COOKIE))
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequiredError(target if request.method == "GET" else "/")
    return found


def check_csrf(session: UiSession, submitted: str | None) -> None:
    """:class:`CsrfError` unless ``submitted`` is the session's CSRF token."""
    if not submitted or not hmac.compare_digest(submitted.encode(), session.csrf_token.encode()):
        raise CsrfError


def set_cookie(request: Request, response: Response, token: str) -> None:
    """Attach the session cookie (Secure when the request came over HTTPS)."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
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
