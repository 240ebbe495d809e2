"""`NoOpProvider`: no configuration; every variable serves its code default."""

from __future__ import annotations

from setpoint._sdk.providers.base import Provider

__all__ = ["NoOpProvider"]


class NoOpProvider(Provider):
    """Serves nothing: every resolution gets the code default with reason ``code_default``."""

    name = "noop"

    def __init__(self) -> None:
        super().__init__()
        self._ready.set()

    def refresh(self, force: bool = False) -> None:
        """Nothing to refresh."""
