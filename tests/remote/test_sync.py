"""The Python API of push / push_types / validate / push_config / pull_config against a real server."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from rich.console import Console

from setpoint._remote.options import RemoteOptions
from setpoint._remote.report import ValidationReport
from setpoint._remote.sync import pull_config, push, push_config, push_types, validate
from setpoint._sdk.configure import configure, shutdown
from setpoint._sdk.variable import Variable, var
from setpoint.config import LabeledValue, Rollout, VariableConfig, VariablesConfig
from setpoint.exceptions import AuthenticationError, VariableValueError
from tests.remote.support import Project

pytestmark = pytest.mark.slow


class Settings(BaseModel):
    """Settings shared by variables."""

    depth: int
    mode: str = "fast"


class SettingsV2(BaseModel):
    depth: int
    mode: str = "fast"
    budget: float


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200, no_color=True)


def text(console: Console) -> str:
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def auth(project: Project) -> dict[str, Any]:
    return {"url": project.server.url, "api_key": project.key}


def test_push_uses_the_configured_remote_options(project: Project) -> None:
    settings = var("settings", type=Settings, default=Settings(depth=1))
    configure(remote=RemoteOptions(url=project.server.url, api_key=project.key, sse=False), instrument=False)
    try:
        out = quiet()
        assert push(dry_run=True, console=out) is True  # would change
        assert "+ settings" in text(out)
        assert pull_config().variables == {}
        assert push(yes=True, console=quiet()) is True
        assert push([settings], yes=True, console=quiet()) is False  # nothing to do
        report = validate()
        assert isinstance(report, ValidationReport)
        assert not report.has_errors and report.variables_checked == 1
        config = pull_config()
        current = config.variables["settings"]
        served = current.model_copy(
            update={
                "labels": {"prod": LabeledValue(version=1, serialized_value='{"depth": 9}')},
                "rollout": Rollout(labels={"prod": 1.0}),
            }
        )
        assert push_config(VariablesConfig(variables={"settings": served}), yes=True, console=quiet())
        assert settings.get().value == Settings(depth=9)  # read-after-write without SSE (sse=False here)
    finally:
        shutdown(5)


def test_validation_report_fields_and_format(project: Project) -> None:
    depth = var("depth", type=int, default=3, description="in code")
    missing = var("missing", type=bool, default=False)
    config = VariablesConfig(
        variables={
            "depth": VariableConfig(
                name="depth",
                description="on server",
                labels={"a": LabeledValue(version=1, serialized_value='"deep"')},
                rollout=Rollout(labels={"a": 1.0}),
            )
        }
    )
    push_config(config, yes=True, console=quiet(), **auth(project))
    report = validate([depth, missing], **auth(project))
    assert report.has_errors and not report.is_valid
    assert report.variables_checked == 2
    assert report.variables_not_on_server == ["missing"]
    assert [(e.variable_name, e.label) for e in report.errors] == [("depth", "a"), ("depth", "latest")]
    assert report.description_differences[0].server_description == "on server"
    plain = report.format()
    assert "depth (label: a)" in plain and "? missing" in plain and "Validation failed" in plain
    assert "\x1b[" not in plain and "\x1b[" in report.format(colors=True)


def test_push_types_with_names_and_strict(project: Project) -> None:
    assert push_types([(Settings, "settings_type"), SettingsV2], yes=True, console=quiet(), **auth(project))
    variable = VariableConfig(
        name="uses_type",
        type_name="settings_type",
        labels={"prod": LabeledValue(version=1, serialized_value=json.dumps({"depth": 2}))},
        rollout=Rollout(labels={"prod": 1.0}),
    )
    push_config(VariablesConfig(variables={"uses_type": variable}), yes=True, console=quiet(), **auth(project))
    out = quiet()
    with pytest.raises(VariableValueError, match="uses_type"):
        push_types([(SettingsV2, "settings_type")], yes=True, strict=True, console=out, **auth(project))
    assert "Schema updates (1)" in text(out) and "budget" in text(out)
    assert push_types([(SettingsV2, "settings_type")], dry_run=True, console=quiet(), **auth(project)) is True
    assert push_types([(SettingsV2, "settings_type")], yes=True, console=quiet(), **auth(project)) is True


def test_push_config_accepts_a_path_and_validates_mode(project: Project, tmp_path: Any) -> None:
    path = tmp_path / "v.json"
    VariablesConfig(variables={"n": VariableConfig(name="n", json_schema={"type": "integer"})}).write(path)
    assert push_config(path, yes=True, console=quiet(), **auth(project)) is True
    assert "n" in pull_config(**auth(project)).variables
    with pytest.raises(ValueError, match="mode"):
        push_config(path, mode="overwrite", console=quiet(), **auth(project))  # type: ignore[arg-type]


def test_write_with_read_only_key_raises_authentication_error(project: Project) -> None:
    flag = var("flag", type=bool, default=True)
    with pytest.raises(AuthenticationError, match="write scope"):
        push([flag], yes=True, console=quiet(), url=project.server.url, api_key=project.read_key)


def test_variables_keep_serving_during_push(project: Project) -> None:
    """Pushing metadata from code does not disturb a running app's values."""
    flag: Variable[bool] = var("flag2", type=bool, default=False)
    push([flag], yes=True, console=quiet(), **auth(project))
    configure(
        remote=RemoteOptions(url=project.server.url, api_key=project.key, polling_interval=timedelta(seconds=60)),
        instrument=False,
    )
    try:
        assert flag.get().value is False and flag.get().reason == "code_default"
    finally:
        shutdown(5)


def test_push_config_with_segments(project: Project) -> None:
    data = {
        "segments": {
            "staff": {"key": "staff", "name": "Staff", "included": ["alice"]},
            "beta": {
                "key": "beta",
                "name": "Beta",
                "rules": [{"clauses": [{"attribute": "x", "op": "segmentMatch", "values": ["staff"]}]}],
            },
        },
        "variables": {
            "banner": {
                "name": "banner",
                "labels": {"on": {"version": 1, "serialized_value": "true"}},
                "overrides": [
                    {"conditions": [{"kind": "in-segment", "segment": "beta"}], "rollout": {"labels": {"on": 1.0}}}
                ],
            }
        },
    }
    config = VariablesConfig.model_validate(data)
    out = quiet()
    assert push_config(config, yes=True, console=out, **auth(project)) is True
    assert "+ staff" in text(out) and "+ beta" in text(out)
    pulled = pull_config(**auth(project))
    assert sorted(pulled.segments) == ["beta", "staff"]
    assert pulled.segments["beta"].referenced_segments() == {"staff"}
    assert push_config(pulled, yes=True, console=quiet(), **auth(project)) is False  # round trip: no change

    empty = VariablesConfig()
    out = quiet()
    assert push_config(empty, mode="replace", yes=True, console=out, **auth(project)) is True
    assert "Deleted banner" in text(out) and "Deleted segment staff" in text(out)
    after = pull_config(**auth(project))
    assert after.variables == {} and after.segments == {}
