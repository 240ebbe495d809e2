"""`setpoint.configure()`, `setpoint.shutdown()` and `setpoint.build_config()`."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry import trace

from setpoint._sdk import state as sdk_state
from setpoint._sdk.providers.base import Provider
from setpoint._sdk.providers.file import FileProvider
from setpoint._sdk.providers.local import LocalProvider
from setpoint._sdk.providers.noop import NoOpProvider
from setpoint._sdk.registry import registered_variables
from setpoint.config import VariablesConfig
from setpoint.exceptions import ConfigurationError

if TYPE_CHECKING:
    from setpoint._remote.options import RemoteOptions
    from setpoint._sdk.variable import Variable

__all__ = ["build_config", "configure", "current_provider", "shutdown"]

_LOCK = threading.Lock()


def configure(
    *,
    config: VariablesConfig | str | os.PathLike[str] | None = None,
    remote: RemoteOptions | None = None,
    provider: Provider | None = None,
    include_resource_attributes_in_context: bool = True,
    include_baggage_in_context: bool = True,
    instrument: bool = True,
    template_mismatch_policy: Literal["warn", "error", "ignore"] = "warn",
) -> Provider:
    """Choose where variable values come from; returns the provider now in use.

    Give at most one source:

    * ``config``: a `VariablesConfig` (served from memory by a `LocalProvider`), or the path of a YAML/JSON
      file (a `FileProvider` that reloads it when it changes);
    * ``remote``: `setpoint.RemoteOptions` for a Setpoint server (nothing connects unless this is given, even
      when ``SETPOINT_URL`` is set);
    * ``provider``: any `Provider`.

    With none of them every variable serves its code default. A later call replaces the earlier one (its
    provider is shut down). ``include_resource_attributes_in_context`` and ``include_baggage_in_context``
    control which OpenTelemetry context the targeting rules see; ``instrument=False`` records no spans.
    ``template_mismatch_policy`` says what `TemplateVariable.get()` does when a template uses a ``{{field}}``
    its inputs type does not declare: ``warn`` (a `RuntimeWarning`, the field renders empty), ``error`` (raise
    `TemplateInputsMismatchError`) or ``ignore``; a variable's own ``template_mismatch_policy`` wins.
    """
    if template_mismatch_policy not in ("warn", "error", "ignore"):
        raise ConfigurationError(
            f"template_mismatch_policy must be 'warn', 'error' or 'ignore', not {template_mismatch_policy!r}"
        )
    sources = [
        name for name, value in (("config", config), ("remote", remote), ("provider", provider)) if value is not None
    ]
    if len(sources) > 1:
        raise ConfigurationError(f"configure() takes one source of configuration; got {' and '.join(sources)}")
    new = _make_provider(config, remote, provider)
    new.start()
    if remote is not None and remote.block_before_first_resolve:
        new.wait_ready(remote.first_fetch_timeout.total_seconds())
    trace.get_tracer_provider()  # materializes a provider named by OTEL_PYTHON_TRACER_PROVIDER, if any
    resource = sdk_state.resource_attributes() if include_resource_attributes_in_context else None
    state = sdk_state.SdkState(
        new,
        instrument=instrument,
        include_resource=include_resource_attributes_in_context,
        include_baggage=include_baggage_in_context,
        resource=resource,
        template_mismatch_policy=template_mismatch_policy,
    )
    with _LOCK:
        previous = sdk_state.replace_state(state)
    if previous.provider is not new:
        previous.provider.shutdown()
    return new


def _make_provider(
    config: VariablesConfig | str | os.PathLike[str] | None, remote: RemoteOptions | None, provider: Provider | None
) -> Provider:
    if provider is not None:
        if not isinstance(provider, Provider) and not _looks_like_provider(provider):
            raise ConfigurationError(f"provider must be a setpoint Provider, not {type(provider).__name__}")
        return provider
    if remote is not None:
        from setpoint._remote.provider import RemoteProvider

        remote_provider: Any = RemoteProvider(remote)
        return remote_provider  # type: ignore[no-any-return]
    if isinstance(config, VariablesConfig):
        return LocalProvider(config)
    if isinstance(config, str | os.PathLike):
        return FileProvider(config)
    if config is not None:
        raise ConfigurationError(f"config must be a VariablesConfig or a file path, not {type(config).__name__}")
    return NoOpProvider()


def _looks_like_provider(candidate: object) -> bool:
    return all(hasattr(candidate, name) for name in ("compiled", "start", "shutdown", "refresh", "wait_ready"))


def current_provider() -> Provider:
    """The provider in use."""
    return sdk_state.CURRENT.provider


def shutdown(timeout: float | None = None) -> None:
    """Stop the current provider's background work; every variable serves its code default afterwards."""
    with _LOCK:
        previous = sdk_state.replace_state(sdk_state.SdkState(NoOpProvider()))
    previous.provider.shutdown(timeout)


def build_config(variables: Iterable[Variable[Any]] | None = None) -> VariablesConfig:
    """A template config (name, description, JSON schema, example) for ``variables``, by default every one
    defined with `setpoint.var()`; no labels or rollouts. Edit it, write it, push it."""
    chosen = registered_variables() if variables is None else list(variables)
    return VariablesConfig.from_variables(chosen)
