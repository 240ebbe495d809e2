"""Service errors: each carries the HTTP status the API answers with and a message saying what to fix."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A request that cannot be carried out; ``message`` tells the caller what to change."""

    status_code = 400

    def __init__(self, message: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class NotFoundError(ServiceError):
    """The named project, variable, type, label or key does not exist."""

    status_code = 404


class ConflictError(ServiceError):
    """The name is taken, or the data changed since it was read."""

    status_code = 409


class PreconditionFailedError(ServiceError):
    """An ``If-Match`` revision does not match the current one."""

    status_code = 412


class InvalidError(ServiceError):
    """The body is well-formed but its content is invalid (schema, references, reserved names)."""

    status_code = 422


class ForbiddenError(ServiceError):
    """The caller is known but their role does not allow this; the message names the role needed."""

    status_code = 403


class GoneError(ServiceError):
    """A one-time link that expired or was already used."""

    status_code = 410
