"""``setpoint keys create|list|revoke``: API keys for scripts (``create`` prints the key alone on stdout)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from setpoint._server.cli_options import DEFAULT_DATA_DIR_PATH, DatabaseUrlOption, DataDirOption

if TYPE_CHECKING:
    from setpoint._server.services.context import ServiceContext

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)

_SCOPES_HELP = "Comma-separated: read, write, read_external (OFREP evaluation of external variables only)."
ProjectOption = Annotated[str, typer.Option("--project", help="Project name.")]


def _context(data_dir: DataDirOption, database_url: DatabaseUrlOption) -> ServiceContext:
    from setpoint._server.services.changes import ChangeSink
    from setpoint._server.services.context import ServiceContext
    from setpoint._server.settings import Settings
    from setpoint._server.storage import open_storage

    storage = open_storage(Settings(data_dir=data_dir, database_url=database_url).effective_database_url)
    storage.migrate()
    return ServiceContext(storage=storage, sink=ChangeSink(origin="cli"))


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@keys_app.command("create")
def create(
    project: ProjectOption,
    scopes: Annotated[
        str,
        typer.Option("--scopes", help=_SCOPES_HELP),
    ] = "read",
    name: Annotated[str, typer.Option("--name", help="A name to recognize the key by.")] = "",
    data_dir: DataDirOption = DEFAULT_DATA_DIR_PATH,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Create a key for PROJECT (creating the project if needed) and print only the key."""
    from setpoint._server.services import keys
    from setpoint._server.services.errors import ServiceError

    ctx = _context(data_dir, database_url)
    try:
        created = keys.create_key(ctx, project, keys.parse_scopes(scopes), "cli", name=name)
    except ServiceError as exc:
        raise _fail(exc.message) from None
    finally:
        ctx.storage.dispose()
    typer.echo(created.token)


@keys_app.command("list")
def list_keys(
    project: ProjectOption, data_dir: DataDirOption = DEFAULT_DATA_DIR_PATH, database_url: DatabaseUrlOption = None
) -> None:
    """List PROJECT's keys (id, prefix, scopes, state, last used, name); the secrets are never stored."""
    from setpoint._server.services import keys
    from setpoint._server.services.errors import ServiceError

    ctx = _context(data_dir, database_url)
    try:
        for key in keys.list_keys(ctx, keys.get_project(ctx, project).id):
            state = "revoked" if key.revoked_at else "active"
            used = "never" if key.last_used_at is None else key.last_used_at.strftime("%Y-%m-%d %H:%M:%S UTC")
            scopes = ",".join(sorted(key.scopes))
            typer.echo(f"{key.id}\t{key.prefix}…\t{scopes}\t{state}\tlast used {used}\t{key.name}")
    except ServiceError as exc:
        raise _fail(exc.message) from None
    finally:
        ctx.storage.dispose()


@keys_app.command("revoke")
def revoke(
    project: ProjectOption,
    key_id: Annotated[int, typer.Option("--id", help="The key id (see `setpoint keys list`).")],
    data_dir: DataDirOption = DEFAULT_DATA_DIR_PATH,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Revoke a key; running servers stop accepting it within about a second."""
    from setpoint._server.services import keys
    from setpoint._server.services.errors import ServiceError

    ctx = _context(data_dir, database_url)
    try:
        key = keys.revoke_key(ctx, keys.get_project(ctx, project).id, key_id, "cli")
    except ServiceError as exc:
        raise _fail(exc.message) from None
    finally:
        ctx.storage.dispose()
    typer.echo(f"revoked key {key.id} ({key.prefix}…)")


def register(app: typer.Typer) -> None:
    """Add ``setpoint keys``."""
    app.add_typer(keys_app, name="keys")
