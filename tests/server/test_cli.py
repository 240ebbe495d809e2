"""``setpoint keys`` and ``setpoint migrate`` as scripts use them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from setpoint._cli import keys as keys_cli
from setpoint._cli import migrate as migrate_cli
from setpoint._cli import serve as serve_cli
from setpoint._server.security import hash_token
from setpoint._server.storage import open_storage
from tests.server.support import KEY_PATTERN, subprocess_env


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    for module in (serve_cli, keys_cli, migrate_cli):
        module.register(app)
    return app


def test_keys_create_prints_only_the_key_and_creates_the_project(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["keys", "create", "--project", "shop", "--scopes", "read,write", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert KEY_PATTERN.fullmatch(token)
    storage = open_storage(f"sqlite:///{tmp_path / 'setpoint.db'}")
    try:
        with storage.read() as tx:
            project = tx.get_project("shop")
            key = tx.find_api_key(hash_token(token))
    finally:
        storage.dispose()
    assert project is not None and key is not None
    assert key.project_id == project.id and key.scopes == frozenset({"read", "write"})


def test_keys_list_and_revoke(app: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    common = ["--data-dir", str(tmp_path)]
    token = runner.invoke(app, ["keys", "create", "--project", "shop", *common]).stdout.strip()
    listed = runner.invoke(app, ["keys", "list", "--project", "shop", *common])
    assert listed.exit_code == 0 and token[:10] in listed.stdout and "active" in listed.stdout
    assert token not in listed.stdout
    key_id = listed.stdout.split("\t")[0]
    revoked = runner.invoke(app, ["keys", "revoke", "--project", "shop", "--id", key_id, *common])
    assert revoked.exit_code == 0
    assert "revoked" in runner.invoke(app, ["keys", "list", "--project", "shop", *common]).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--project", "shop", "--scopes", "admin"], "read,write"),
        (["--project", "bad name!", "--scopes", "read"], "project name"),
    ],
)
def test_keys_create_refuses_bad_input(app: typer.Typer, tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["keys", "create", *args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and message in result.stderr and result.stdout == ""


def test_keys_revoke_unknown(app: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["keys", "create", "--project", "shop", "--data-dir", str(tmp_path)])
    result = runner.invoke(app, ["keys", "revoke", "--project", "shop", "--id", "999", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "does not exist" in result.stderr


def test_migrate_is_idempotent(app: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["migrate", "--data-dir", str(tmp_path)])
    assert first.exit_code == 0 and "migrated from empty" in first.stdout
    second = runner.invoke(app, ["migrate", "--data-dir", str(tmp_path)])
    assert second.exit_code == 0 and "already at the newest schema" in second.stdout


@pytest.mark.postgres
def test_migrate_postgres_from_the_environment(app: typer.Typer, postgres_database: str) -> None:
    result = CliRunner().invoke(app, ["migrate"], env={"SETPOINT_DATABASE_URL": postgres_database})
    assert result.exit_code == 0 and "migrated from empty" in result.stdout
    storage = open_storage(postgres_database)
    try:
        assert storage.is_migrated()
    finally:
        storage.dispose()


def test_keys_create_in_a_real_process(tmp_path: Path) -> None:
    code = (
        "import typer, sys; from setpoint._cli import keys; app = typer.Typer(); keys.register(app); "
        "app(['keys', 'create', '--project', 'ci', '--scopes', 'read'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=subprocess_env(SETPOINT_DATA_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert KEY_PATTERN.fullmatch(result.stdout.strip())
    assert result.stdout.count("\n") == 1
