"""Every exception Setpoint raises.

Write operations (configuring, pushing, editing a config, talking to a server) raise; resolving a
variable never does: `Variable.get()` returns the code default with the reason and the exception attached.

Hierarchy::

    SetpointError
    ├── ConfigurationError          setpoint.configure() / setpoint.var() called with bad arguments
    ├── ConfigFileError             a variables file that cannot be read or parsed (names the file)
    ├── VariableValueError          a value that does not fit a variable's type (names the variable)
    ├── CompositionError            an @{reference}@ could not be expanded (attached to a Resolved, not raised)
    │   ├── CompositionCycleError   references form a cycle (a -> b -> a)
    │   └── CompositionDepthError   references nest deeper than 20
    ├── TemplateInputsMismatchError a template uses {{fields}} its inputs type does not declare (raised by
    │                               TemplateVariable.get only under template_mismatch_policy='error')
    └── RemoteError                 talking to a Setpoint server failed
        ├── ServerUnreachableError  no connection, timeout
        ├── AuthenticationError     401 / 403: missing, wrong or under-scoped API key
        ├── ConflictError           409 / 412: someone else changed it first; 202: the change needs review
        │                           (the project reviews it: a change request was opened, nothing applied)
        └── ServerResponseError     any other non-2xx answer, or a body that is not what was expected

Configuration *validation* errors are pydantic's `ValidationError`, whose location names the variable and
the field (for example ``variables.agent_config.rollout``).
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "CompositionCycleError",
    "CompositionDepthError",
    "CompositionError",
    "ConfigFileError",
    "ConfigurationError",
    "ConflictError",
    "RemoteError",
    "ServerResponseError",
    "ServerUnreachableError",
    "SetpointError",
    "TemplateInputsMismatchError",
    "VariableValueError",
]


class SetpointError(Exception):
    """Base class of every exception raised by Setpoint."""


class ConfigurationError(SetpointError):
    """`setpoint.configure()` or `setpoint.var()` was called with arguments that cannot work."""


class ConfigFileError(SetpointError):
    """A variables file could not be read or parsed."""


class VariableValueError(SetpointError):
    """A value does not fit the type of the variable it is meant for."""


class CompositionError(SetpointError):
    """A value's ``@{reference}@`` could not be expanded (unresolved reference, template that does not parse).

    ``composed_from`` holds the expansions attempted (a `setpoint.ComposedReference` each) when known.
    """

    composed_from: tuple[object, ...] = ()


class CompositionCycleError(CompositionError):
    """``@{references}@`` form a cycle, e.g. ``a -> b -> a``."""


class CompositionDepthError(CompositionError):
    """``@{references}@`` nest deeper than the maximum composition depth (20)."""


class TemplateInputsMismatchError(SetpointError):
    """A template references ``{{fields}}`` that its variable's inputs type does not declare.

    Raised by `TemplateVariable.get()` only when ``template_mismatch_policy`` is ``'error'``.
    """


class RemoteError(SetpointError):
    """Talking to a Setpoint server failed."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ServerUnreachableError(RemoteError):
    """The server could not be reached (connection refused, DNS, timeout)."""


class AuthenticationError(RemoteError):
    """The server refused the API key (missing, wrong, revoked, or without the needed scope)."""


class ConflictError(RemoteError):
    """The server refused a write because the data changed since it was read; or (status 202) the project reviews
    the change: nothing was applied, a change request waits for approval (the message names it)."""


class ServerResponseError(RemoteError):
    """The server answered with an unexpected status or body."""
