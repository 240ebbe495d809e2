"""Remote variables: a Setpoint server as the source of configuration, and managing it from code.

- `options`: `RemoteOptions` (public as ``setpoint.RemoteOptions``).
- `client`: the HTTP client of the ``/v1`` API (decisions I/O-free; the sync and async requests beside them).
- `lkg`: last known good: merge a response into the served config without losing what works.
- `cache`: the on-disk copy of the last good config.
- `sse`: the ``/v1/variable-updates/`` listener and its reconnect backoff.
- `provider`: `RemoteProvider` (polling with ETags + SSE, fork-safe).
- `diff`, `report`, `sync`: push, push_types, validate, push_config, pull_config and what they show.
"""
