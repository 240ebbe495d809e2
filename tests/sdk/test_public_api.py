from __future__ import annotations

import setpoint


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert setpoint.__all__ == sorted(setpoint.__all__)
    assert len(set(setpoint.__all__)) == len(setpoint.__all__)
    for name in setpoint.__all__:
        assert getattr(setpoint, name) is not None, name


def test_user_api_names_are_exported() -> None:
    for name in (
        "BaggageSpanProcessor",
        "RemoteOptions",
        "Resolved",
        "Variable",
        "build_config",
        "configure",
        "shutdown",
        "targeting_context",
        "var",
        "ConfigurationError",
        "SetpointError",
    ):
        assert name in setpoint.__all__
