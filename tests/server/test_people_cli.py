"""``setpoint users`` and ``setpoint members`` against a real database (SQLite and PostgreSQL), as an operator
runs them, including their refusals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from setpoint._cli import keys as keys_cli
from setpoint._cli import people as people_cli
from setpoint._server.services.changes import ChangeSink
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.people import service as people
from setpoint._server.storage import open_storage
from tests.server.conftest import BACKENDS


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    for module in (keys_cli, people_cli):
        module.register(app)
    return app


@pytest.mark.parametrize("storage", BACKENDS, indirect=True)
def test_users_and_members_commands(app: typer.Typer, storage: object, tmp_path: Path) -> None:
    from setpoint._server.storage import Storage

    assert isinstance(storage, Storage)
    db = ["--data-dir", str(tmp_path), "--database-url", _unmasked(storage)]
    run = CliRunner().invoke
    suffix = re.sub(r"\W", "", str(tmp_path.name))[-8:]
    email = f"cli.{suffix}@example.com"

    invited = run(app, ["users", "invite", email, "--name", "Cleo Cli", "--url", "https://sp.example", *db])
    assert invited.exit_code == 0, invited.output
    link = invited.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"https://sp\.example/invite/[A-Za-z0-9_-]{40,}", link)
    again = run(app, ["users", "invite", email.upper(), *db])
    assert again.exit_code == 1 and "already exists" in again.output

    listed = run(app, ["users", "list", *db])
    assert re.search(rf"\t{re.escape(email)}\tCleo Cli\tinvited\t-", listed.stdout), listed.stdout

    assert run(app, ["keys", "create", "--project", f"shop{suffix}", *db]).exit_code == 0
    added = run(app, ["members", "add", "--project", f"shop{suffix}", email, "--role", "editor", *db])
    assert added.exit_code == 0 and f"{email} is editor in shop{suffix}" in added.stdout
    bad_role = run(app, ["members", "add", "--project", f"shop{suffix}", email, "--role", "god", *db])
    assert bad_role.exit_code == 1 and "unknown role 'god'" in bad_role.output
    members = run(app, ["members", "list", "--project", f"shop{suffix}", *db])
    assert members.stdout.strip() == f"{email}\tCleo Cli\teditor"
    no_project = run(app, ["members", "list", "--project", "nope-nope", *db])
    assert no_project.exit_code == 1 and "does not exist" in no_project.output

    reset = run(app, ["users", "reset-password", email, *db])
    assert reset.exit_code == 0 and "/invite/" in reset.stdout
    removed = run(app, ["members", "remove", "--project", f"shop{suffix}", email, *db])
    assert removed.exit_code == 0
    assert run(app, ["members", "remove", "--project", f"shop{suffix}", email, *db]).exit_code == 1

    deactivated = run(app, ["users", "deactivate", email, *db])
    assert deactivated.exit_code == 0 and f"deactivated {email}" in deactivated.stdout
    twice = run(app, ["users", "deactivate", email, *db])
    assert twice.exit_code == 1 and "already deactivated" in twice.output

    if storage.dialect != "sqlite":
        return  # the PostgreSQL database is shared by the session: its owners are left alone
    ctx = ServiceContext(storage=open_storage(_unmasked(storage)), sink=ChangeSink(origin="tests"))
    try:
        owner = people.invite(ctx, f"owner.{suffix}@example.com", "Only Owner", "tests", owner=True)
        assert [p.id for p in people.list_people(ctx) if p.is_owner] == [owner.person.id]
    finally:
        ctx.storage.dispose()
    last = run(app, ["users", "owner", owner.person.username, "--remove", *db])
    assert last.exit_code == 1 and "last owner" in last.output
    last = run(app, ["users", "deactivate", owner.person.username, *db])
    assert last.exit_code == 1 and "last owner" in last.output


def _unmasked(storage: object) -> str:
    from setpoint._server.storage.sql import SqlStorage

    assert isinstance(storage, SqlStorage)
    return storage.engine.url.render_as_string(hide_password=False)
