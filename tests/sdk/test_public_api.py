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
        "ValidationReport",
        "push",
        "push_types",
        "validate",
        "push_config",
        "pull_config",
    ):
        assert name in setpoint.__all__


def test_the_public_surface_is_exactly_the_documented_one() -> None:
    public = {name for name in vars(setpoint) if not name.startswith("_")}
    modules = {"config", "exceptions", "openfeature"}  # public submodules, imported on demand
    assert public - modules - {"annotations"} == set(setpoint.__all__)
