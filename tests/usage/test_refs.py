"""``setpoint refs``: the AST scanner on a small sample package (aliases, imports under other names, names that
are not literals), and the upload to a real server that the variables list then flags."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from setpoint._cli.refs_scan import Ref, scan, scan_source
from tests.remote.support import Project
from tests.server.support import CLI, subprocess_env

SAMPLE = {
    "app/__init__.py": "",
    "app/settings.py": """
        import setpoint
        from pydantic import BaseModel

        class Config(BaseModel):
            model: str

        agent = setpoint.var(name="agent_config", type=Config, default=Config(model="m"))
        limit = setpoint.var("rate_limit", type=int, default=10)
        """,
    "app/prompts.py": """
        import setpoint as sp
        from setpoint import template_var as tv, var

        NAME = "dynamic"
        greeting = tv(name="greeting", type=str, default="hi", inputs_type=dict)
        dyn = var(name=NAME, type=str, default="x")
        made = sp.var(name=f"flag_{NAME}", type=bool, default=False)
        """,
    "app/legacy.py": """
        import logfire
        from logfire import var as lf_var

        old = logfire.var(name="legacy_flag", type=bool, default=False)
        other = lf_var(name="legacy_prompt", type=str, default="")
        tmpl = logfire.template_var(name="legacy_template", type=str, default="", inputs_type=dict)
        """,
    "app/not_setpoint.py": """
        import os

        def var(name: str) -> str:
            return name

        value = var(name="not_a_variable")
        env = os.environ.get("var")
        """,
    "app/broken.py": "def broken(:\n",
    ".venv/lib/site.py": "import setpoint\nx = setpoint.var(name='in_venv', type=int, default=1)\n",
}


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for path, text in SAMPLE.items():
        file = root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(textwrap.dedent(text))
    return root


def test_scanner_finds_every_import_form_and_reports_non_literals(sample: Path) -> None:
    refs, problems = scan(sample)
    found = {(r.variable, r.path, r.call) for r in refs}
    assert found == {
        ("agent_config", "app/settings.py", "setpoint.var"),
        ("rate_limit", "app/settings.py", "setpoint.var"),
        ("greeting", "app/prompts.py", "setpoint.template_var"),
        (None, "app/prompts.py", "setpoint.var"),
        ("legacy_flag", "app/legacy.py", "logfire.var"),
        ("legacy_prompt", "app/legacy.py", "logfire.var"),
        ("legacy_template", "app/legacy.py", "logfire.template_var"),
    }
    assert len(refs) == 8
    unknown = sorted(r.expression or "" for r in refs if r.variable is None)
    assert unknown == ["NAME", 'f"flag_{NAME}"']
    assert [p.path for p in problems] == ["app/broken.py"]
    assert next(r for r in refs if r.variable == "agent_config").line == 8


def test_scan_source_lines_and_shadowing() -> None:
    source = "from setpoint import var\n\n\ndef f():\n    return var('inner', type=int, default=1)\n"
    assert scan_source(source, "m.py") == [Ref("inner", "m.py", 5, "setpoint.var")]
    assert scan_source("var('x')\n", "m.py") == []  # not imported from setpoint
    assert scan_source("import setpoint\nsetpoint.var()\n", "m.py")[0].expression == "(no name given)"


def test_cli_prints_and_uploads(sample: Path, project: Project) -> None:
    project.put_variable("agent_config", {"model": "m"}, create=True)
    project.put_variable("removed_from_code", 1, create=True)
    printed = subprocess.run(
        [*CLI, "refs", str(sample)], env=subprocess_env(), capture_output=True, text=True, timeout=60, check=True
    )
    assert "agent_config  app/settings.py:8  setpoint.var" in printed.stdout
    assert "? (name is not a literal: NAME)  app/prompts.py:7  setpoint.var" in printed.stdout
    assert "app/broken.py: not scanned" in printed.stdout
    as_json = subprocess.run(
        [*CLI, "refs", str(sample), "--json"], env=subprocess_env(), capture_output=True, text=True, timeout=60
    )
    assert len(json.loads(as_json.stdout[as_json.stdout.index("[") :])) == 8

    env = subprocess_env(SETPOINT_URL=project.server.url, SETPOINT_API_KEY=project.key)
    uploaded = subprocess.run(
        [*CLI, "refs", str(sample), "--upload", "--repository", "shop-api", "--commit", "c0ffee", "--branch", "main"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert uploaded.returncode == 0, uploaded.stderr
    assert "uploaded 8 reference(s) of shop-api" in uploaded.stdout
    with project.api() as api:
        refs = api.get("/v1/code-refs/", params={"variable": "agent_config"}).json()
    assert [(r["repository"], r["path"], r["line"], r["commit"], r["branch"]) for r in refs] == [
        ("shop-api", "app/settings.py", 8, "c0ffee", "main")
    ]

    refused = subprocess.run(
        [*CLI, "refs", str(sample), "--upload"],
        env=subprocess_env(SETPOINT_URL=project.server.url, SETPOINT_API_KEY=project.read_key),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("error:") and "write scope" in refused.stderr
