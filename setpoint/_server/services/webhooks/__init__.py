"""Webhooks: per project, signed HTTP deliveries of its events (Standard Webhooks, or a Slack payload).

- ``events.py``: which audit entries are which event types, and the payloads (standard JSON and Slack).
- ``signing.py``: ``whsec_`` secrets and the Standard Webhooks signature.
- ``targets.py``: URL rules and the SSRF guard (every resolved address must be public unless allowed).
- ``service.py``: configuration (admins), the delivery log, redeliver, test events, and :func:`enqueue`,
  called by ``audit.record`` inside every write transaction (the outbox).
- ``worker.py``: the delivery thread of each server process (claims due deliveries, sends, retries).
"""

from __future__ import annotations

from typing import Any

from setpoint._server.storage import WriteTx


def enqueue(
    tx: WriteTx, project_id: int | None, actor: str, action: str, entity_type: str, name: str, before: Any, after: Any
) -> int:
    """Queue the webhook deliveries of one audit entry in its transaction (see ``service.enqueue``)."""
    from setpoint._server.services.webhooks.service import enqueue as _enqueue

    return _enqueue(tx, project_id, actor, action, entity_type, name, before, after)
