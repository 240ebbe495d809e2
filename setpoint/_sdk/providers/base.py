"""`Provider`: where the configuration comes from (in-memory, a file, a Setpoint server, nothing).

The hot path reads exactly one thing from a provider: the plain attribute ``compiled``. A provider replaces
it with a new `CompiledConfig` in one assignment (atomic under the GIL), so readers need no lock and never
see half a config. Everything else (threads, I/O, locks) is the provider's business, off the hot path.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager

from setpoint._core.evaluator import CompiledConfig, compile_config
from setpoint.config import VariablesConfig

__all__ = ["Provider", "gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around a bulk load (parsing and compiling thousands of variables
    allocates millions of objects, each allocation burst triggering collections that rescan everything built
    so far: super-linear). Nothing of a load is cyclic garbage, so nothing is lost by waiting."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Provider(ABC):
    """Base class of configuration providers.

    Subclasses call `_install` (or assign ``compiled`` themselves) whenever a new valid config arrives, and
    override the lifecycle methods they need. ``start`` is called by `setpoint.configure`, ``shutdown`` when
    the provider is replaced or `setpoint.shutdown` is called.
    """

    name: str = "provider"
    compiled: CompiledConfig | None = None
    """The compiled config being served; None serves every variable's code default."""

    def __init__(self) -> None:
        self.compiled = None
        self._ready = threading.Event()

    @property
    def config(self) -> VariablesConfig | None:
        """The config being served, if any."""
        compiled = self.compiled
        return compiled.config if compiled is not None else None

    def _install(self, config: VariablesConfig) -> CompiledConfig:
        """Compile ``config`` and serve it from now on."""
        with gc_paused():
            compiled = compile_config(config)
        self.compiled = compiled
        self._ready.set()
        return compiled

    def start(self) -> None:  # noqa: B027 - optional hook
        """Begin serving (load a file, start background threads). Idempotent."""

    def shutdown(self, timeout: float | None = None) -> None:  # noqa: B027 - optional hook
        """Stop background work, waiting at most ``timeout`` seconds. Idempotent."""

    @abstractmethod
    def refresh(self, force: bool = False) -> None:
        """Fetch or reload the config now (``force`` skips any "recently refreshed" shortcut)."""

    async def refresh_async(self, force: bool = False) -> None:
        """`refresh` without blocking the event loop."""
        await asyncio.to_thread(self.refresh, force)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait at most ``timeout`` seconds for a first config; True if one is served."""
        self._ready.wait(timeout)
        return self.compiled is not None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
