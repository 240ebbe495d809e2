"""API key authentication: ``Authorization: bearer <key>``; keys are cached in memory by hash, so an
authenticated config fetch does no database work. Revocation clears the cache in every process.

Each key's ``last_used_at`` is written at most once per :data:`USE_RECORD_INTERVAL` per key (and process),
by a background thread: the request that triggers it does not wait for the write."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from setpoint._server.security import hash_token
from setpoint._server.services.people import actors
from setpoint._server.services.people.roles import OWNER, VIEWER, allows, lower, require
from setpoint._server.services.people.service import project_role
from setpoint._server.storage import Storage

READ = "read"
WRITE = "write"
USE_RECORD_INTERVAL = 60.0
"""Seconds between two writes of one key's ``last_used_at`` by one server process."""

log = logging.getLogger("setpoint.server")


@dataclass(frozen=True)
class Principal:
    """Who is calling: one API key of one project, acting for the person who made it (if any).

    ``role`` is the key's role now: its maker's current role in the project, capped by the key's scopes (a
    key without ``write`` is at most a viewer); keys made by the operator have no maker and are ``owner``."""

    key_id: int
    key_name: str
    project_id: int
    project_name: str
    scopes: frozenset[str]
    key_hash: str = ""
    user_id: int | None = None
    user_name: str | None = None
    role: str | None = OWNER

    @property
    def actor(self) -> str:
        """How the audit history names this caller ("key X of person Y")."""
        return actors.key(self.key_id, self.key_name, self.user_id, self.user_name)


class AuthError(Exception):
    """The request is not authenticated (401) or not allowed (403); ``message`` says what to do."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


_MISSING_HEADER = (
    "missing API key: send the header `Authorization: bearer <api key>` "
    "(create a key with `setpoint keys create --project NAME --scopes read,write`)"
)


def token_from_header(header: str | None) -> str:
    """The token of an ``Authorization`` header (``bearer <token>``, or the bare token)."""
    if not header or not header.strip():
        raise AuthError(401, _MISSING_HEADER)
    scheme, _, rest = header.strip().partition(" ")
    token = rest.strip() if rest else scheme
    if rest and scheme.lower() != "bearer":
        raise AuthError(401, f"unsupported authorization scheme {scheme!r}; use `Authorization: bearer <api key>`")
    if not token:
        raise AuthError(401, _MISSING_HEADER)
    return token


class KeyCache:
    """Valid keys by token hash (bounded); misses read the database. Also records when keys are used."""

    def __init__(self, storage: Storage, max_entries: int = 10_000, use_interval: float = USE_RECORD_INTERVAL) -> None:
        self._storage = storage
        self._max_entries = max_entries
        self._use_interval = use_interval
        self._principals: dict[str, Principal] = {}
        self._recorded: dict[int, float] = {}  # key id -> monotonic time of its last recorded use
        self._writer: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def cached(self, token_hash: str) -> Principal | None:
        """A cached principal (no I/O); a hit counts as a use of the key (see :meth:`used`)."""
        principal = self._principals.get(token_hash)
        if principal is not None:
            self.used(principal)
        return principal

    def is_cached(self, token_hash: str) -> bool:
        """Whether the key is cached (not a use)."""
        return token_hash in self._principals

    def used(self, principal: Principal) -> None:
        """Note a use of the key: memory only, except that at most once per ``use_interval`` per key a
        background thread stores the time as the key's ``last_used_at``."""
        now = time.monotonic()
        last = self._recorded.get(principal.key_id)
        if last is not None and now - last < self._use_interval:
            return
        with self._lock:
            last = self._recorded.get(principal.key_id)
            if last is not None and now - last < self._use_interval:
                return
            if len(self._recorded) >= self._max_entries:
                self._recorded.clear()
            self._recorded[principal.key_id] = now
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="setpoint-key-use")
            writer = self._writer
        with contextlib.suppress(RuntimeError):  # shutting down: the use goes unrecorded
            writer.submit(self._record_use, principal.key_id, datetime.now(UTC))

    def _record_use(self, key_id: int, at: datetime) -> None:
        try:
            with self._storage.write() as tx:
                tx.record_api_key_use(key_id, at)
        except Exception as exc:  # a lost "last used" time must never fail anything else
            log.warning("could not record the use of API key %s (%s)", key_id, exc)

    def close(self) -> None:
        """Wait for pending ``last_used_at`` writes (at shutdown)."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=True)

    def load(self, token_hash: str) -> Principal | None:
        """The principal of a key hash from the database; None when unknown or revoked (blocking)."""
        with self._storage.read() as tx:
            key = tx.find_api_key(token_hash)
            if key is None or key.revoked_at is not None:
                return None
            project = tx.get_project_by_id(key.project_id)
            maker = None if key.user_id is None else tx.get_admin_user_by_id(key.user_id)
            if key.user_id is not None and (maker is None or not maker.active):
                return None  # a deactivated person's keys stop working at once
            role: str | None = OWNER if maker is None else project_role(tx, maker, key.project_id)
        if project is None:
            return None
        if "write" not in key.scopes:
            role = lower(role, VIEWER)
        principal = Principal(
            key.id,
            key.name,
            project.id,
            project.name,
            key.scopes,
            token_hash,
            key.user_id,
            None if maker is None else maker.display_name,
            role,
        )
        with self._lock:
            if len(self._principals) >= self._max_entries:
                self._principals.clear()
            self._principals[token_hash] = principal
        return principal

    def invalidate(self, token_hash: str | None = None) -> None:
        """Forget one key (revoked) or all of them."""
        with self._lock:
            if token_hash is None:
                self._principals.clear()
            else:
                self._principals.pop(token_hash, None)


def authenticate(cache: KeyCache, header: str | None) -> Principal:
    """The caller of a request (blocking on a cache miss)."""
    return authenticate_hash(cache, hash_token(token_from_header(header)))


def authenticate_hash(cache: KeyCache, token_hash: str) -> Principal:
    """The principal of a key hash, noted as a use; 401 when unknown or revoked (blocking on a cache miss)."""
    principal = cache.cached(token_hash)
    if principal is None:
        principal = cache.load(token_hash)
        if principal is None:
            raise AuthError(401, "invalid or revoked API key; check the key or create a new one")
        cache.used(principal)
    return principal


def require_role(principal: Principal, need: str) -> None:
    """403 unless the key's current role includes ``need`` (naming the role needed and the maker's)."""
    if allows(principal.role, need):
        return
    who = "this API key" if principal.user_name is None else f"this API key (of {principal.user_name})"
    require(principal.role, need, who=who, where=principal.project_name)


def require_scope(principal: Principal, scope: str) -> None:
    """403 unless the key has ``scope``."""
    if scope not in principal.scopes:
        have = ",".join(sorted(principal.scopes)) or "none"
        raise AuthError(
            403,
            f"this API key has scope(s) {have} but this request needs {scope!r}; "
            f"use a key created with --scopes {','.join(sorted({*principal.scopes, scope}))}",
        )
