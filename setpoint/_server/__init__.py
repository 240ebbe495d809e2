"""The Setpoint server: storage, services, the Logfire-compatible API, live updates over SSE."""
