"""Setpoint: self-hosted managed variables for Python.

Typed, versioned runtime configuration defined in code with a safe default, changed at runtime per label,
percentage or segment, with every resolution visible in OpenTelemetry::

    import setpoint

    agent_config = setpoint.var("agent_config", type=AgentConfig, default=AgentConfig(...))
    setpoint.configure(config="variables.yaml")
    with agent_config.get(targeting_key=user_id) as config:
        config.value, config.label, config.version, config.reason
"""

from setpoint._core.templates import ComposedReference
from setpoint._remote.options import RemoteOptions
from setpoint._remote.report import ValidationReport
from setpoint._remote.sync import pull_config, push, push_config, push_types, validate
from setpoint._sdk.baggage_processor import BaggageSpanProcessor
from setpoint._sdk.configure import build_config, configure, shutdown
from setpoint._sdk.providers import FileProvider, LocalProvider, NoOpProvider, Provider
from setpoint._sdk.resolved import Reason, Resolved
from setpoint._sdk.targeting import targeting_context
from setpoint._sdk.template_variable import TemplateMismatchPolicy, TemplateVariable, template_var
from setpoint._sdk.variable import Variable, var
from setpoint.exceptions import (
    AuthenticationError,
    CompositionCycleError,
    CompositionDepthError,
    CompositionError,
    ConfigFileError,
    ConfigurationError,
    ConflictError,
    RemoteError,
    ServerResponseError,
    ServerUnreachableError,
    SetpointError,
    TemplateInputsMismatchError,
    VariableValueError,
)

__all__ = [
    "AuthenticationError",
    "BaggageSpanProcessor",
    "ComposedReference",
    "CompositionCycleError",
    "CompositionDepthError",
    "CompositionError",
    "ConfigFileError",
    "ConfigurationError",
    "ConflictError",
    "FileProvider",
    "LocalProvider",
    "NoOpProvider",
    "Provider",
    "Reason",
    "RemoteError",
    "RemoteOptions",
    "Resolved",
    "ServerResponseError",
    "ServerUnreachableError",
    "SetpointError",
    "TemplateInputsMismatchError",
    "TemplateMismatchPolicy",
    "TemplateVariable",
    "ValidationReport",
    "Variable",
    "VariableValueError",
    "build_config",
    "configure",
    "pull_config",
    "push",
    "push_config",
    "push_types",
    "shutdown",
    "targeting_context",
    "template_var",
    "validate",
    "var",
]
