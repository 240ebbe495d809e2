"""The application SDK: variables, resolution, targeting, providers and OpenTelemetry (public names in `setpoint`)."""
