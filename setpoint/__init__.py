"""Setpoint: self-hosted managed variables for Python."""

__all__: list[str] = []
