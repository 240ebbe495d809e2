"""`FileProvider`: a YAML or JSON variables file, reloaded when it changes.

A daemon thread stats the file about every ``poll_interval`` seconds (mtime, size, inode: cheap, and an
atomic replace by an editor or `VariablesConfig.write` changes the inode) and reloads it on change. A file
that cannot be read or does not validate never replaces the config being served; it is logged once per
distinct bad content. After ``fork()`` the child starts its own polling thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import weakref
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from setpoint._sdk.providers.base import Provider
from setpoint.config import VariablesConfig
from setpoint.config._io import load_yaml
from setpoint.exceptions import ConfigFileError

__all__ = ["FileProvider"]

logger = logging.getLogger("setpoint")

_Signature = tuple[int, int, int]
_LIVE: weakref.WeakSet[FileProvider] = weakref.WeakSet()


class FileProvider(Provider):
    """Serves the variables file at ``path`` (``.yaml``, ``.yml`` or ``.json``) and follows its changes."""

    name = "file"

    def __init__(self, path: str | os.PathLike[str], *, poll_interval: float = 0.5) -> None:
        super().__init__()
        self.path = Path(path)
        if self.path.suffix.lower() not in {".yaml", ".yml", ".json"}:
            raise ConfigFileError(
                f"{self.path}: unknown config file type {self.path.suffix!r}; use .yaml, .yml or .json"
            )
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.poll_interval = poll_interval
        self.last_error: Exception | None = None
        """Why the last reload attempt failed (None after a good load)."""
        self._signature: _Signature | None = None
        self._last_bad: str | None = None
        self._content_digest = "<unread>"
        self._started = False
        self._stopped = False
        self._init_threading()
        _LIVE.add(self)

    def _init_threading(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"FileProvider({str(self.path)!r})"

    def start(self) -> None:
        """Load the file (raising `ConfigFileError` or a ``ValidationError`` if it is bad) and start watching it."""
        if self._started:
            return
        signature = self._stat()
        if signature is None:
            raise ConfigFileError(f"{self.path}: config file does not exist")
        with self._lock:
            self._install(self._load())
            self._signature = signature
        self._started = True
        self._start_thread()

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._watch, name=f"setpoint-file-{self.path.name}", daemon=True)
        self._thread.start()

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop watching the file."""
        self._stopped = True
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def refresh(self, force: bool = False) -> None:
        """Reload the file now if it changed (always, with ``force``); a bad file keeps the last good config."""
        with self._lock:
            signature = self._stat()
            if signature is None:
                self._bad("<missing>", ConfigFileError(f"{self.path}: config file does not exist"))
                return
            if not force and signature == self._signature:
                return
            try:
                config = self._load()
            except (ConfigFileError, ValidationError) as exc:
                self._signature = signature
                self._bad(self._content_digest, exc)
                return
            self._signature = signature
            self._install(config)
            self.last_error = None
            self._last_bad = None
            logger.info("setpoint: reloaded %s", self.path)

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.refresh()
            except Exception:  # the watcher must survive anything, e.g. a transient OS error
                logger.exception("setpoint: watching %s failed; will retry", self.path)

    def _stat(self) -> _Signature | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _load(self) -> VariablesConfig:
        self._content_digest = "<unreadable>"
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise ConfigFileError(f"{self.path}: cannot read config file: {exc.strerror or exc}") from None
        self._content_digest = hashlib.sha256(raw).hexdigest()
        text = raw.decode("utf-8", errors="replace")
        data: Any
        if self.path.suffix.lower() == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigFileError(f"{self.path}: not valid JSON: {exc}") from None
        else:
            data = load_yaml(text, source=str(self.path))
        if data is None:
            data = {"variables": {}}
        return VariablesConfig.model_validate(data)

    def _bad(self, digest: str, exc: Exception) -> None:
        self.last_error = exc
        if digest == self._last_bad:
            return
        self._last_bad = digest
        logger.warning("setpoint: %s is invalid; still serving the last good config: %s", self.path, exc)

    def _after_fork(self) -> None:
        self._init_threading()
        if self._started and not self._stopped:
            self._start_thread()


def _after_fork_in_child() -> None:  # pragma: no cover - runs in forked children (tested in a subprocess)
    for provider in list(_LIVE):
        provider._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
