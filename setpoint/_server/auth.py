"""API key authentication: ``Authorization: bearer <key>``; keys are cached in memory by hash, so an
authenticated config fetch does no database work. Revocation clears the cache in every process."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from setpoint._server.security import hash_token
from setpoint._server.storage import Storage

READ = "read"
WRITE = "write"


@dataclass(frozen=True)
class Principal:
    """Who is calling: one API key of one project."""

    key_id: int
    key_name: str
    project_id: int
    project_name: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        """How the audit history names this caller."""
        return f"api_key:{self.key_id}:{self.key_name}"


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
    """Valid keys by token hash (bounded); misses read the database."""

    def __init__(self, storage: Storage, max_entries: int = 10_000) -> None:
        self._storage = storage
        self._max_entries = max_entries
        self._principals: dict[str, Principal] = {}
        self._lock = threading.Lock()

    def cached(self, token_hash: str) -> Principal | None:
        """A cached principal (no I/O)."""
        return self._principals.get(token_hash)

    def load(self, token_hash: str) -> Principal | None:
        """The principal of a key hash from the database; None when unknown or revoked (blocking)."""
        with self._storage.read() as tx:
            key = tx.find_api_key(token_hash)
            if key is None or key.revoked_at is not None:
                return None
            project = tx.get_project_by_id(key.project_id)
        if project is None:
            return None
        principal = Principal(key.id, key.name, project.id, project.name, key.scopes)
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
    """The principal of a key hash; 401 when unknown or revoked (blocking on a cache miss)."""
    principal = cache.cached(token_hash) or cache.load(token_hash)
    if principal is None:
        raise AuthError(401, "invalid or revoked API key; check the key or create a new one")
    return principal


def require_scope(principal: Principal, scope: str) -> None:
    """403 unless the key has ``scope``."""
    if scope not in principal.scopes:
        have = ",".join(sorted(principal.scopes)) or "none"
        raise AuthError(
            403,
            f"this API key has scope(s) {have} but this request needs {scope!r}; "
            f"use a key created with --scopes {','.join(sorted({*principal.scopes, scope}))}",
        )
