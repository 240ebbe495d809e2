"""`LocalProvider`: an in-memory config, editable at runtime (tests, local development, optimization loops)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from setpoint._sdk.providers.base import Provider
from setpoint._sdk.registry import lookup
from setpoint.config import LabeledValue, LabelRef, LatestVersion, VariableConfig, VariablesConfig
from setpoint.exceptions import ConfigurationError, VariableValueError

__all__ = ["LocalProvider"]


class LocalProvider(Provider):
    """Serves a `VariablesConfig` held in memory.

    The editing methods (`create_variable`, `update_variable`, `delete_variable`, `set_label`,
    `delete_label`, `set_rollout`, `set_config`) validate the whole new config and recompile it; on invalid
    input they raise (a pydantic ``ValidationError`` whose location names the variable and the field, a
    `ConfigurationError`, or a `VariableValueError` when a value does not fit the type of the registered
    variable of that name) and the last good config keeps being served. Safe to call from any thread.
    """

    name = "local"

    def __init__(self, config: VariablesConfig | None = None) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._install(config if config is not None else VariablesConfig())

    @property
    def config(self) -> VariablesConfig:
        """The config being served."""
        compiled = self.compiled
        assert compiled is not None  # always set in __init__
        return compiled.config

    def refresh(self, force: bool = False) -> None:
        """Nothing to refresh: the config is in memory."""

    def set_config(self, config: VariablesConfig) -> None:
        """Serve ``config`` instead of the current one."""
        for variable in config.variables.values():
            _check_values(variable)
        with self._lock:
            self._install(config)

    def create_variable(self, variable: VariableConfig | Mapping[str, Any]) -> VariableConfig:
        """Add a variable; raises `ConfigurationError` if one of that name exists."""
        data = variable if isinstance(variable, VariableConfig) else dict(variable)
        name = data.name if isinstance(data, VariableConfig) else data.get("name")
        with self._lock:
            if not isinstance(name, str):
                raise ConfigurationError("create_variable: the variable needs a `name`")
            if name in self.config.variables:
                raise ConfigurationError(f"variable {name!r} already exists; use update_variable()")
            return self._replace(name, data)

    def update_variable(self, name: str, /, **fields: Any) -> VariableConfig:
        """Change fields of variable ``name`` (e.g. ``rollout=Rollout(...)``, ``overrides=[...]``, ``labels=...``)."""
        with self._lock:
            current = self._existing(name)
            if "name" in fields and fields["name"] != name:
                raise ConfigurationError(f"update_variable({name!r}): renaming is not supported; create a new one")
            data = {field: getattr(current, field) for field in VariableConfig.model_fields}
            data.update(fields)
            return self._replace(name, data)

    def delete_variable(self, name: str) -> None:
        """Remove variable ``name`` (its code default is served from now on)."""
        with self._lock:
            self._existing(name)
            config = self.config
            variables = {key: value for key, value in config.variables.items() if key != name}
            self._install(VariablesConfig(variables=variables, segments=config.segments))

    def set_label(
        self,
        variable: str,
        label: str,
        serialized_value: str | None = None,
        *,
        ref: str | None = None,
        version: int | None = None,
    ) -> int | None:
        """Point ``label`` of ``variable`` at a new value or at a ref; returns the version it now serves.

        With ``serialized_value`` (JSON text) a new version is created (``version`` or one above the highest
        known) and becomes ``latest``. With ``ref`` (``"latest"``, ``"code_default"`` or another label) the
        label becomes a ref. Give exactly one of them.
        """
        if (serialized_value is None) == (ref is None):
            raise ConfigurationError(f"set_label({variable!r}, {label!r}): give exactly one of serialized_value or ref")
        with self._lock:
            current = self._existing(variable)
            labels: dict[str, LabeledValue | LabelRef] = dict(current.labels)
            latest = current.latest_version
            if serialized_value is not None:
                new_version = version if version is not None else _highest_version(current) + 1
                labels[label] = LabeledValue(version=new_version, serialized_value=serialized_value)
                if latest is None or new_version >= latest.version:
                    latest = LatestVersion(version=new_version, serialized_value=serialized_value)
            else:
                labels[label] = LabelRef(ref=str(ref), version=version)
            data = {field: getattr(current, field) for field in VariableConfig.model_fields}
            data.update(labels=labels, latest_version=latest)
            self._replace(variable, data)
            if serialized_value is not None:
                return new_version
            compiled = self.compiled
            assert compiled is not None
            compiled_variable = compiled.get(variable)
            assert compiled_variable is not None
            served = compiled_variable.evaluate(None, None, label)
            return served.version if served.detail == "explicit_label" else None

    def delete_label(self, variable: str, label: str) -> None:
        """Remove ``label`` (refused while a rollout, override or ref still names it)."""
        with self._lock:
            current = self._existing(variable)
            if label not in current.labels:
                raise ConfigurationError(f"variable {variable!r} has no label {label!r}")
            data = {field: getattr(current, field) for field in VariableConfig.model_fields}
            data["labels"] = {key: value for key, value in current.labels.items() if key != label}
            self._replace(variable, data)

    def set_rollout(self, variable: str, labels: Mapping[str, float]) -> None:
        """Set the default rollout of ``variable`` (label -> weight; the remainder is the code default)."""
        self.update_variable(variable, rollout={"labels": dict(labels)})

    # --- internals ---------------------------------------------------------------------------------------

    def _existing(self, name: str) -> VariableConfig:
        found = self.config.variables.get(name)
        if found is None:
            raise ConfigurationError(f"no variable named {name!r} in the local config")
        return found

    def _replace(self, name: str, data: VariableConfig | Mapping[str, Any]) -> VariableConfig:
        config = self.config
        # Validating the whole config (not the variable alone) makes error locations read
        # ``variables.<name>.<field>`` and re-checks cross-variable rules (aliases, segments).
        new = VariablesConfig.model_validate(
            {"variables": {**config.variables, name: data}, "segments": config.segments}
        )
        variable = new.variables[name]
        _check_values(variable)
        self._install(new)
        return variable


def _highest_version(variable: VariableConfig) -> int:
    versions = [target.version or 0 for target in variable.labels.values()]
    if variable.latest_version is not None:
        versions.append(variable.latest_version.version)
    return max(versions, default=0)


def _check_values(variable: VariableConfig) -> None:
    """Raise `VariableValueError` if an inline value does not fit the registered variable's type."""
    registered = lookup(variable.name)
    if registered is None:
        return
    candidates: list[tuple[str, int, str]] = [
        (f"label {label!r}", target.version, target.serialized_value)
        for label, target in variable.labels.items()
        if isinstance(target, LabeledValue)
    ]
    if variable.latest_version is not None:
        latest = variable.latest_version
        candidates.append(("latest_version", latest.version, latest.serialized_value))
    for where, version, serialized in candidates:
        ok, error = registered.parse_serialized(version, serialized)
        if not ok:
            raise VariableValueError(
                f"variable {variable.name!r}, {where} (version {version}): the value does not fit the "
                f"variable's type: {error}"
            ) from None
