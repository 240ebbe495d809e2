"""push_config never sends NaN, Infinity or patterns that cannot run alike (issue 9, items 2 and 3)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from rich.console import Console

from setpoint._remote.sync import pull_config, push_config
from tests.remote.support import Project


def _auth(project: Project) -> dict[str, Any]:
    return {"url": project.server.url, "api_key": project.key}


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200, no_color=True)


def _variables_file(path: Path, serialized_value: str, pattern: str = "^a") -> Path:
    variable = {
        "name": "limit",
        "labels": {"prod": {"version": 1, "serialized_value": serialized_value}},
        "overrides": [
            {
                "conditions": [{"kind": "value-matches-regex", "attribute": "x", "pattern": pattern}],
                "rollout": {"labels": {"prod": 1.0}},
            }
        ],
    }
    path.write_text(json.dumps({"variables": {"limit": variable}}))
    return path


@pytest.mark.parametrize(("value", "pattern", "message"), [("NaN", "^a", "finite"), ("1", r"(?=a)", "lookahead")])
def test_push_config_refuses_a_file_before_sending(
    project: Project, tmp_path: Path, value: str, pattern: str, message: str
) -> None:
    path = _variables_file(tmp_path / "variables.json", value, pattern)
    with pytest.raises(ValidationError) as caught:
        push_config(path, yes=True, console=_quiet(), **_auth(project))
    assert "variables.limit" in str(caught.value) and message in str(caught.value)
    assert pull_config(**_auth(project)).variables == {}
