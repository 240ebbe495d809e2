"""Signing secrets and signatures in the shape of the Standard Webhooks specification.

A secret is ``whsec_`` + base64 of 24 random bytes; the key is the decoded bytes. The signature of a
message is ``v1,`` + base64(HMAC-SHA256(key, f"{msg_id}.{timestamp}.{body}")), sent in ``webhook-signature``
beside ``webhook-id`` and ``webhook-timestamp`` (Unix seconds), which ``standardwebhooks``/``svix`` verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def generate_secret() -> str:
    """A new signing secret (``whsec_...``)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value of one message."""
    key = base64.b64decode(secret.removeprefix(PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers of one message."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
