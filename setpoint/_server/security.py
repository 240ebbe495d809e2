"""Secrets: API key, session and invite tokens (only their sha256 is stored) and passwords (argon2id; hashes
made by earlier versions with scrypt are still verified, and replaced at the next login)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

API_KEY_PREFIX = "sp_"
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def generate_api_key() -> str:
    """A new API key: ``sp_`` and 256 random bits, URL-safe."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a key or session token (sha256 hex; the tokens are high-entropy)."""
    return hashlib.sha256(token.encode()).hexdigest()


def display_prefix(token: str) -> str:
    """The first characters of a key, shown in listings so a key can be recognized."""
    return token[:10]


def generate_password() -> str:
    """A random admin password (about 120 bits)."""
    return secrets.token_urlsafe(15)


_ARGON2 = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
"""argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): memory-hard, yet a login costs tens
of milliseconds on a small shared machine. Hashes made with other parameters are verified and re-hashed."""


def hash_password(password: str) -> str:
    """An argon2id hash (random salt, the library's current parameters)."""
    return _ARGON2.hash(password)


def needs_rehash(stored: str) -> bool:
    """Whether a stored hash should be replaced (an older scheme or weaker parameters)."""
    if not stored.startswith("$argon2"):
        return True
    try:
        return _ARGON2.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def scrypt_hash(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` with a random salt (the scheme before argon2; kept to test the upgrade)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches a stored hash (argon2id, or the older scrypt); False for no hash."""
    if not stored:
        return False
    if stored.startswith("$argon2"):
        try:
            return _ARGON2.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)
