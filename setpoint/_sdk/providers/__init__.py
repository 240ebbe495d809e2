"""Where configuration comes from: `Provider` and the built-in local, file and no-op providers."""

from setpoint._sdk.providers.base import Provider
from setpoint._sdk.providers.file import FileProvider
from setpoint._sdk.providers.local import LocalProvider
from setpoint._sdk.providers.noop import NoOpProvider

__all__ = ["FileProvider", "LocalProvider", "NoOpProvider", "Provider"]
