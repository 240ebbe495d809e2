"""Fixtures of the usage tests: one real server per module, a fresh project (with keys) per test (shared with
the remote tests)."""

from __future__ import annotations

from tests.remote.fixtures import project, server

__all__ = ["project", "server"]
