"""``setpoint users invite|list|deactivate|reactivate|reset-password|owner`` and
``setpoint members add|remove|list --project``: people and roles, run by the operator against the database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from setpoint._server.cli_options import DEFAULT_DATA_DIR_PATH, DatabaseUrlOption, DataDirOption

if TYPE_CHECKING:
    from setpoint._server.services.context import ServiceContext

users_app = typer.Typer(help="Invite, list, deactivate people and reset their passwords.", no_args_is_help=True)
members_app = typer.Typer(help="A project's members and their roles (viewer, editor, admin).", no_args_is_help=True)

ACTOR = "cli"
ProjectOption = Annotated[str, typer.Option("--project", help="Project name.")]
UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="SETPOINT_PUBLIC_URL", help="The server's address, to print the one-time link."),
]
_DEFAULT_URL = "http://127.0.0.1:8000"


@contextmanager
def _context(data_dir: DataDirOption, database_url: DatabaseUrlOption) -> Iterator[ServiceContext]:
    from setpoint._cli.keys import _context as open_context
    from setpoint._server.services.errors import ServiceError

    ctx = open_context(data_dir, database_url)
    try:
        yield ctx
    except ServiceError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        ctx.storage.dispose()


def _print_link(url: str, path: str, who: str, expires: str) -> None:
    typer.echo(f"one-time link for {who} (valid until {expires}; shown once):")
    typer.echo(url.rstrip("/") + path)


@users_app.command("invite")
def invite(
    email: Annotated[str, typer.Argument(help="Their email address (their login).")],
    name: Annotated[str, typer.Option("--name", help="Their name.")] = "",
    owner: Annotated[bool, typer.Option("--owner", help="Make them an owner (every project, people).")] = False,
    url: UrlOption = _DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR_PATH,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Invite a person; prints their one-time link (valid 7 days) to choose a password."""
    from setpoint._server.services.people import service as people

    with _context(data_dir, database_url) as ctx:
        link = people.invite(ctx, email, name, ACTOR, owner=owner)
    _print_link(url, link.path, link.person.username, f"{link.expires_at:%Y-%m-%d %H:%M} UTC")


@users_app.command("list")
def list_users(data_dir: DataDirOption = DEFAULT_DATA_DIR_PATH, database_url: DatabaseUrlOption = None) -> None:
    """Everyone: id, login, name, state, and their project roles."""
    from setpoint._server.services.people import service as people

    with _context(data_dir, database_url) as ctx:
        everyone = people.list_people(ctx)
        with ctx.storage.read() as tx:
            names = {p.id: p.name for p in tx.list_projects()}
            roles = {
                p.id: [f"{names.get(m.project_id, m.project_id)}:{m.role}" for m in tx.list_memberships(user_id=p.id)]
                for p in everyone
            }
    for person in everyone:
        state = "deactivated" if not person.active else ("invited" if person.password_hash is None else "active")
        owner = "owner" if person.is_owner else ",".join(roles[person.id]) or "-"
        typer.echo(f"{person.id}\t{person.username}\t{person.display_name}\t{state}\t{owner}")


def _person_command(action: Callable[[ServiceContext, str], str]) -> Callable[..., None]:
    def command(
        person: Annotated[str, typer.Argument(help="Their email (login) or id.")],
        data_dir: DataDirOption = DEFAULT_DATA_DIR_PATH,
        database_url: DatabaseUrlOption = None,
    ) -> None:
        with _context(data_dir, database_url) as ctx:
            typer.echo(action(ctx, person))

    command.__doc__ = action.__doc__
    return command


def _deactivate(ctx: ServiceContext, login: str) -> str:
    """Deactivate a person: their sessions end and their API keys are revoked at once."""
    from setpoint._server.services.people import service as people

    return f"deactivated {people.deactivate(ctx, login, ACTOR).username}"


def _reactivate(ctx: ServiceContext, login: str) -> str:
    """Let a deactivated person log in again (their revoked keys stay revoked)."""
    from setpoint._server.services.people import service as people

    return f"reactivated {people.reactivate(ctx, login, ACTOR).username}"


users_app.command("deactivate")(_person_command(_deactivate))
users_app.command("reactivate")(_person_command(_reactivate))


@users_app.command("reset-password")
def reset_password(
    person: Annotated[str, typer.Argument(help="Their email (login) or id.")],
    url: UrlOption = _DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR_PATH,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Print a one-time link (valid 7 days) for a person to choose a new password."""
    from setpoint._server.services.people import service as people

    with _context(data_dir, database_url) as ctx:
        link = people.reset_password(ctx, person, ACTOR)
    _print_link(url, link.path, link.person.username, f"{link.expires_at:%Y-%m-%d %H:%M} UTC")


@users_app.command("owner")
def owner(
    person: Annotated[str, typer.Argument(help="Their email (login) or id.")],
    remove: Annotated[bool, typer.Option("--remove", help="Take the owner role away (never the last owner).")] = False,
    data_dir: DataDirOption = DEFAULT_DATA_DIR_PATH,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Make a person an owner (or, with --remove, not)."""
    from setpoint._server.services.people import service as people

    with _context(data_dir, database_url) as ctx:
        found = people.set_owner(ctx, person, not remove, ACTOR)
    typer.echo(f"{found.username} is {'an owner' if found.is_owner else 'not an owner'}")


@members_app.command("add")
def add_member(
    project: ProjectOption,
    person: Annotated[str, typer.Argument(help="Their email (login) or id.")],
    role: Annotated[str, typer.Option("--role", help="viewer, editor or admin.")] = "viewer",
    data_dir: DataDirOption = DEFAULT_DATA_DIR_PATH,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Add a person to PROJECT with a role (or change their role)."""
    from setpoint._server.services.keys import get_project
    from setpoint._server.services.people import members

    with _context(data_dir, database_url) as ctx:
        member = members.set_member(ctx, get_project(ctx, project).id, person, role, ACTOR)
    typer.echo(f"{member.person.username} is {member.role} in {project}")


@members_app.command("remove")
def remove_member(
    project: ProjectOption,
    person: Annotated[str, typer.Argument(help="Their email (login) or id.")],
    data_dir: DataDirOption = DEFAULT_DATA_DIR_PATH,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Take a person out of PROJECT."""
    from setpoint._server.services.keys import get_project
    from setpoint._server.services.people import members

    with _context(data_dir, database_url) as ctx:
        member = members.remove_member(ctx, get_project(ctx, project).id, person, ACTOR)
    typer.echo(f"removed {member.person.username} from {project}")


@members_app.command("list")
def list_members(
    project: ProjectOption, data_dir: DataDirOption = DEFAULT_DATA_DIR_PATH, database_url: DatabaseUrlOption = None
) -> None:
    """PROJECT's members: login, name, role."""
    from setpoint._server.services.keys import get_project
    from setpoint._server.services.people import members

    with _context(data_dir, database_url) as ctx:
        found = members.list_members(ctx, get_project(ctx, project).id)
    for member in found:
        typer.echo(f"{member.person.username}\t{member.person.display_name}\t{member.role}")


def register(app: typer.Typer) -> None:
    """Add ``setpoint users`` and ``setpoint members``."""
    app.add_typer(users_app, name="users")
    app.add_typer(members_app, name="members")
