"""Every variables command of the CLI against a real server, including the error paths (one line, exit 1)."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from setpoint._cli.variables import register
from setpoint._sdk.registry import clear_registry
from setpoint.config import VariablesConfig
from tests.remote.support import Project
from tests.server.support import CLI, free_port
from tests.server.support import subprocess_env as child_env

pytestmark = pytest.mark.slow

APP = textwrap.dedent(
    '''
    from pydantic import BaseModel
    from setpoint._sdk.variable import var


    class AgentConfig(BaseModel):
        """How the support agent behaves."""

        instructions: str
        temperature: float = 0.5


    agent = var("agent_config", type=AgentConfig, default=AgentConfig(instructions="Be nice."), description="Agent")
    new_ui = var("new_ui", type=bool, default=False)
    '''
)

APP_V2 = APP.replace("temperature: float = 0.5", "temperature: float = 0.5\n    max_tokens: int").replace(
    'AgentConfig(instructions="Be nice.")', 'AgentConfig(instructions="Be nice.", max_tokens=100)'
)


@pytest.fixture
def app_file(tmp_path: Path) -> Path:
    path = tmp_path / "myapp_vars.py"
    path.write_text(APP)
    return path


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def run(cli: typer.Typer, project: Project | None, *args: str, input: str | None = None, key: str | None = None) -> Any:
    env = {"SETPOINT_URL": "", "SETPOINT_API_KEY": "", "NO_COLOR": "1", "COLUMNS": "200"}
    if project is not None:
        env |= {"SETPOINT_URL": project.server.url, "SETPOINT_API_KEY": key or project.key}
    result = CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)
    return result


def server_config(project: Project) -> VariablesConfig:
    with project.api() as api:
        return VariablesConfig.model_validate(api.get("/v1/variables/").json())


def test_push_dry_run_then_apply_then_nothing_to_do(cli: typer.Typer, project: Project, app_file: Path) -> None:
    result = run(cli, project, "push", str(app_file), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Variables to CREATE" in result.output and "+ agent_config" in result.output
    assert "Dry run: nothing changed" in result.output
    assert server_config(project).variables == {}

    clear_registry()
    result = run(cli, project, "push", str(app_file), "--yes")
    assert result.exit_code == 0, result.output
    config = server_config(project)
    assert sorted(config.variables) == ["agent_config", "new_ui"]
    agent = config.variables["agent_config"]
    assert agent.description == "Agent" and agent.labels == {}
    assert json.loads(agent.example or "") == {"instructions": "Be nice.", "temperature": 0.5}
    assert agent.json_schema is not None and "instructions" in agent.json_schema["properties"]

    clear_registry()
    result = run(cli, project, "push", str(app_file), "--yes")
    assert result.exit_code == 0 and "No changes needed" in result.output


def test_push_asks_for_confirmation(cli: typer.Typer, project: Project, app_file: Path) -> None:
    result = run(cli, project, "push", str(app_file), input="n\n")
    assert result.exit_code == 1  # a script sees that nothing was applied
    assert "Apply these changes? [y/N]" in result.output and "Aborted: nothing changed" in result.output
    assert server_config(project).variables == {}
    clear_registry()
    assert run(cli, project, "push", str(app_file), input="").exit_code == 1  # no answer (end of input) is no
    assert server_config(project).variables == {}
    clear_registry()
    result = run(cli, project, "push", str(app_file), input="y\n")
    assert result.exit_code == 0 and "Created agent_config" in result.output
    assert "agent_config" in server_config(project).variables


def put_agent_value(project: Project, value: dict[str, Any], *, keep_schema: bool = True) -> None:
    config = server_config(project).variables["agent_config"]
    body = {
        "name": "agent_config",
        "description": config.description,
        "json_schema": config.json_schema if keep_schema else None,
        "labels": {"prod": {"target_type": "version", "serialized_value": json.dumps(value)}},
        "rollout": {"labels": {"prod": 1.0}},
    }
    with project.api() as api:
        api.put("/v1/variables/agent_config/", json=body).raise_for_status()


def test_push_schema_change_strict_refuses_breaking_values(cli: typer.Typer, project: Project, app_file: Path) -> None:
    assert run(cli, project, "push", str(app_file), "--yes").exit_code == 0
    put_agent_value(project, {"instructions": "Be brief.", "temperature": 0.1})
    app_file.write_text(APP_V2)  # max_tokens is now required: the prod value lacks it

    clear_registry()
    result = run(cli, project, "push", str(app_file), "--yes", "--strict")
    assert result.exit_code == 1
    assert "Variables to UPDATE" in result.output and "prod" in result.output
    assert "refusing the schema change of agent_config" in result.output
    assert "max_tokens" not in json.dumps(server_config(project).variables["agent_config"].json_schema)

    clear_registry()
    result = run(cli, project, "push", str(app_file), "--yes")
    assert result.exit_code == 0, result.output
    assert "Warning" in result.output
    agent = server_config(project).variables["agent_config"]
    assert "max_tokens" in json.dumps(agent.json_schema)
    assert "prod" in agent.labels and agent.rollout.labels == {"prod": 1.0}  # labels and rollout kept


def test_push_shows_server_written_rules_it_replaces(cli: typer.Typer, project: Project, app_file: Path) -> None:
    """A schema tightened in the UI (minLength, maximum, additionalProperties) is not silently widened by a push."""
    assert run(cli, project, "push", str(app_file), "--yes").exit_code == 0
    config = server_config(project).variables["agent_config"]
    schema = json.loads(json.dumps(config.json_schema))
    schema["properties"]["instructions"]["minLength"] = 3
    schema["properties"]["temperature"]["maximum"] = 2
    schema["additionalProperties"] = False
    body = {"name": "agent_config", "description": config.description, "json_schema": schema}
    with project.api() as api:
        api.put("/v1/variables/agent_config/", json=body).raise_for_status()

    clear_registry()
    result = run(cli, project, "push", str(app_file), input="n\n")
    assert result.exit_code == 1, result.output
    assert "widens: instructions: minLength 3 -> (none)" in result.output
    assert "widens: temperature: maximum 2 -> (none)" in result.output
    assert "widens: (value): additionalProperties false -> (none)" in result.output
    assert "replaces validation rules set on the server for agent_config" in result.output
    assert server_config(project).variables["agent_config"].json_schema == schema  # declined: kept

    clear_registry()
    result = run(cli, project, "push", str(app_file), "--yes")
    assert result.exit_code == 0, result.output
    assert "minLength" not in json.dumps(server_config(project).variables["agent_config"].json_schema)


def test_help_shows_no_type_next_to_flags() -> None:
    env = child_env(NO_COLOR="1", COLUMNS="120")
    for args in ([], ["push"], ["keys", "create"]):
        done = subprocess.run([*CLI, *args, "--help"], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        help_line = next(line for line in done.stdout.splitlines() if "--help" in line)
        assert "<bool>" not in help_line and "Show this message and exit." in help_line
        assert "<bool>" not in done.stdout
    assert "<str>" in done.stdout  # options that take a value still show its type


def test_validate_passes_and_fails(cli: typer.Typer, project: Project, app_file: Path) -> None:
    result = run(cli, project, "validate", str(app_file))
    assert result.exit_code == 1 and "not found on the server" in result.output

    clear_registry()
    assert run(cli, project, "push", str(app_file), "--yes").exit_code == 0
    clear_registry()
    result = run(cli, project, "validate", str(app_file))
    assert result.exit_code == 0, result.output
    assert "Validation passed: all 2 variable(s) are valid" in result.output

    put_agent_value(project, {"instructions": 5}, keep_schema=False)  # edited elsewhere, schema dropped
    clear_registry()
    result = run(cli, project, "validate", str(app_file))
    assert result.exit_code == 1
    assert "agent_config (label: prod)" in result.output and "Validation failed" in result.output


def test_push_types(cli: typer.Typer, project: Project, app_file: Path) -> None:
    result = run(cli, project, "push-types", str(app_file), "--yes")
    assert result.exit_code == 0, result.output
    assert "New types (1)" in result.output and "+ AgentConfig" in result.output
    with project.api() as api:
        types = {t["name"]: t for t in api.get("/v1/variable-types/").json()}
    assert "instructions" in types["AgentConfig"]["json_schema"]["properties"]
    assert types["AgentConfig"]["source_hint"].endswith("AgentConfig")
    clear_registry()
    result = run(cli, project, "push-types", str(app_file), "--yes")
    assert result.exit_code == 0 and "Unchanged (1)" in result.output and "No changes needed" in result.output
    clear_registry()
    result = run(cli, project, "push-types", str(app_file), "--type", "Nope")
    assert result.exit_code == 1 and "has no type 'Nope'" in result.output


def test_every_push_command_asks_and_a_no_changes_nothing(
    cli: typer.Typer, project: Project, app_file: Path, tmp_path: Path
) -> None:
    for command, target in (("push-types", app_file), ("push-config", seeded_file(tmp_path))):
        clear_registry()
        declined = run(cli, project, command, str(target), input="n\n")
        assert declined.exit_code == 1, declined.output
        assert "Apply these changes? [y/N]" in declined.output and "Aborted: nothing changed" in declined.output
    with project.api() as api:
        assert api.get("/v1/variable-types/").json() == []
    assert server_config(project).variables == {}
    clear_registry()
    accepted = run(cli, project, "push-types", str(app_file), input="y\n")
    assert accepted.exit_code == 0, accepted.output
    with project.api() as api:
        assert [t["name"] for t in api.get("/v1/variable-types/").json()] == ["AgentConfig"]


def seeded_file(tmp_path: Path) -> Path:
    path = tmp_path / "variables.yaml"
    data = {
        "variables": {
            "support_prompt": {
                "name": "support_prompt",
                "description": "The prompt",
                "json_schema": {"type": "string"},
                "labels": {
                    "standard": {"version": 1, "serialized_value": '"Be concise."'},
                    "premium": {"version": 2, "serialized_value": '"Be thorough."'},
                },
                "rollout": {"labels": {"standard": 1.0}},
                "overrides": [
                    {
                        "conditions": [{"kind": "value-equals", "attribute": "plan", "value": "enterprise"}],
                        "rollout": {"labels": {"premium": 1.0}},
                    }
                ],
            },
            "max_items": {
                "name": "max_items",
                "labels": {"on": {"version": 1, "serialized_value": "25"}},
                "rollout": {"labels": {"on": 0.5}},
            },
        }
    }
    path.write_text(yaml.safe_dump(data))
    return path


def test_push_config_pull_and_get(cli: typer.Typer, project: Project, tmp_path: Path) -> None:
    file = seeded_file(tmp_path)
    result = run(cli, project, "push-config", str(file), "--dry-run")
    assert result.exit_code == 0 and "+ support_prompt" in result.output and "+ label premium" in result.output
    assert server_config(project).variables == {}

    result = run(cli, project, "push-config", str(file), "--yes")
    assert result.exit_code == 0, result.output
    assert sorted(server_config(project).variables) == ["max_items", "support_prompt"]

    result = run(cli, project, "push-config", str(file), "--yes")
    assert result.exit_code == 0 and "No changes needed" in result.output

    pulled = tmp_path / "pulled.yaml"
    result = run(cli, project, "pull", "-o", str(pulled))
    assert result.exit_code == 0, result.output
    config = VariablesConfig.read(pulled)
    assert config.variables["support_prompt"].overrides[0].rollout.labels == {"premium": 1.0}
    result = run(cli, project, "push-config", str(pulled), "--yes")  # round trip: nothing to change
    assert result.exit_code == 0 and "No changes needed" in result.output

    result = run(cli, project, "pull")
    assert result.exit_code == 0 and yaml.safe_load(result.stdout)["variables"]["max_items"]
    # YAML is for people: unset fields are left out and reading it back gives the same config ...
    assert "null" not in result.stdout and "type_name" not in result.stdout, result.stdout
    assert VariablesConfig.from_yaml(result.stdout) == server_config(project)
    # ... while JSON (what the Logfire SDK reads) keeps every field.
    pulled_json = tmp_path / "pulled.json"
    assert run(cli, project, "pull", "-o", str(pulled_json)).exit_code == 0
    raw = json.loads(pulled_json.read_text())["variables"]["max_items"]
    assert "type_name" in raw and raw["description"] is None

    result = run(cli, project, "get", "support_prompt", "--key", "u1", "--attr", "plan=enterprise")
    assert result.exit_code == 0, result.output
    assert "premium" in result.output and "Be thorough." in result.output and "override #1 matched" in result.output
    result = run(cli, project, "get", "support_prompt", "--key", "u1", "--json")
    data = json.loads(result.stdout)
    assert data["label"] == "standard" and data["value"] == "Be concise." and data["reason"] == "resolved"
    result = run(cli, project, "get", "support_prompt", "--label", "premium", "--json")
    assert json.loads(result.stdout)["value"] == "Be thorough."
    result = run(cli, project, "get", "nope")
    assert result.exit_code == 1 and "has no variable 'nope'" in result.output


def test_push_config_update_and_replace(cli: typer.Typer, project: Project, tmp_path: Path) -> None:
    file = seeded_file(tmp_path)
    assert run(cli, project, "push-config", str(file), "--yes").exit_code == 0
    config = VariablesConfig.read(file)
    prompt = config.variables["support_prompt"]
    changed = prompt.model_copy(update={"rollout": prompt.rollout.model_copy(update={"labels": {"premium": 1.0}})})
    only_prompt = VariablesConfig(variables={"support_prompt": changed})
    only_prompt.write(file)

    result = run(cli, project, "push-config", str(file), "--yes")  # merge: max_items stays
    assert result.exit_code == 0 and "~ support_prompt" in result.output and "rollout" in result.output
    server = server_config(project)
    assert server.variables["support_prompt"].rollout.labels == {"premium": 1.0} and "max_items" in server.variables

    result = run(cli, project, "push-config", str(file), "--replace", "--dry-run")
    assert result.exit_code == 0 and "Variables to DELETE" in result.output and "- max_items" in result.output
    assert "max_items" in server_config(project).variables
    result = run(cli, project, "push-config", str(file), "--replace", "--yes")
    assert result.exit_code == 0 and "Deleted max_items" in result.output
    assert list(server_config(project).variables) == ["support_prompt"]


# --- error paths ---------------------------------------------------------------------------------------------


def one_line_error(result: Any) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors: list[str] = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_server_unreachable(cli: typer.Typer, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["pull"], ["push-config", str(seeded_file(tmp_path))], ["get", "x"]):
        line = one_line_error(run(cli, None, *args, "--url", url, "--api-key", "k"))
        assert "cannot reach the Setpoint server" in line and "pass --url or set SETPOINT_URL" in line
        assert "RemoteOptions" not in line  # the CLI names its own options, not the SDK's


def test_bad_key_and_read_only_key(cli: typer.Typer, project: Project, app_file: Path, tmp_path: Path) -> None:
    line = one_line_error(run(cli, project, "pull", key="sp_not_a_real_key_0000000000000000"))
    assert "refused the API key" in line and "pass --api-key or set SETPOINT_API_KEY" in line
    line = one_line_error(run(cli, project, "push-config", str(seeded_file(tmp_path)), "--yes", key=project.read_key))
    assert "refused the API key" in line and "write scope" in line


def test_missing_url(cli: typer.Typer, tmp_path: Path) -> None:
    line = one_line_error(run(cli, None, "pull"))
    assert "no Setpoint server URL: pass --url or set SETPOINT_URL" in line


def test_invalid_files(cli: typer.Typer, project: Project, tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("variables: [unclosed")
    assert "not valid YAML" in one_line_error(run(cli, project, "push-config", str(bad_yaml)))
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"variables": {"x": {"name": "x", "rollout": {"labels": {"nope": 1}}}}}))
    line = one_line_error(run(cli, project, "push-config", str(invalid)))
    assert "invalid config" in line and "nope" in line and str(invalid) in line
    missing = tmp_path / "missing.yaml"
    assert "cannot read" in one_line_error(run(cli, project, "push-config", str(missing)))
    wrong_ext = tmp_path / "vars.txt"
    wrong_ext.write_text("{}")
    assert "unknown config file type" in one_line_error(run(cli, project, "push-config", str(wrong_ext)))


def test_bad_module_and_bad_attr(cli: typer.Typer, project: Project, tmp_path: Path) -> None:
    assert "cannot import" in one_line_error(run(cli, project, "push", "no_such_module_xyz"))
    assert "no such file" in one_line_error(run(cli, project, "validate", str(tmp_path / "nope.py")))
    empty = tmp_path / "empty_mod.py"
    empty.write_text("X = 1\n")
    assert "defines no variables" in one_line_error(run(cli, project, "push", str(empty)))
    assert "NAME=VALUE" in one_line_error(run(cli, project, "get", "x", "--attr", "novalue"))


def test_console_script_exit_codes(project: Project, app_file: Path) -> None:
    """The real `setpoint` entry point, in a subprocess: validate fails CI with status 1."""
    env = child_env(SETPOINT_URL=project.server.url, SETPOINT_API_KEY=project.key, NO_COLOR="1")
    done = subprocess.run([*CLI, "validate", str(app_file)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "not found on the server" in done.stdout
    done = subprocess.run([*CLI, "push", str(app_file), "--yes"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([*CLI, "validate", str(app_file)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Validation passed" in done.stdout
    done = subprocess.run([*CLI, "pull", "--url", "http://127.0.0.1:1"], env=env, capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.startswith("error: cannot reach")
