"""``setpoint serve``: the server on one port (SQLite in the data directory unless --database-url)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from setpoint._server.cli_options import DEFAULT_DATA_DIR_PATH, DatabaseUrlOption, DataDirOption
from setpoint._server.settings import DEFAULT_HOST, DEFAULT_PORT

DEFAULT_BACKLOG = 4096

if TYPE_CHECKING:
    from setpoint._server.services.bootstrap import BootstrapResult
    from setpoint._server.settings import Settings


def _announce(settings: Settings, url: str, database: str, result: BootstrapResult) -> None:
    from setpoint._server.services.bootstrap import ADMIN_USERNAME, DEFAULT_PROJECT

    lines = [f"Setpoint is listening on {url}", f"  database: {database}"]
    if result.generated_password:
        lines.append(f"  log in at {url}/ as {ADMIN_USERNAME!r} with password {result.generated_password}")
        lines.append("  (shown once; set SETPOINT_ADMIN_PASSWORD to choose it)")
    elif result.password_from_env:
        lines.append(f"  log in at {url}/ as {ADMIN_USERNAME!r} with the password in SETPOINT_ADMIN_PASSWORD")
    else:
        lines.append(f"  log in at {url}/ as {ADMIN_USERNAME!r} with the password printed at first start")
    if result.first_key is not None:
        lines.append(f"  API key for project {DEFAULT_PROJECT!r} (read,write; shown once): {result.first_key.token}")
    lines.append("  more keys: setpoint keys create --project NAME --scopes read,write")
    lines.append(f"  Logfire SDK: LOGFIRE_BASE_URL={url} LOGFIRE_API_KEY=<key>")
    typer.echo("\n".join(lines))


def serve(
    host: Annotated[str, typer.Option("--host", envvar="SETPOINT_HOST", help="Interface to bind.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option("--port", envvar="SETPOINT_PORT", help="Port to listen on.")] = DEFAULT_PORT,
    data_dir: DataDirOption = DEFAULT_DATA_DIR_PATH,
    database_url: DatabaseUrlOption = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            envvar="SETPOINT_FORWARDED_ALLOW_IPS",
            help="Comma-separated addresses or networks of TLS-terminating proxies (or '*') whose "
            "X-Forwarded-For and X-Forwarded-Proto headers are trusted (default: none, headers ignored).",
        ),
    ] = None,
    ssl_certfile: Annotated[
        Path | None,
        typer.Option("--ssl-certfile", envvar="SETPOINT_SSL_CERTFILE", help="Serve HTTPS with this PEM certificate."),
    ] = None,
    ssl_keyfile: Annotated[
        Path | None,
        typer.Option("--ssl-keyfile", envvar="SETPOINT_SSL_KEYFILE", help="The PEM private key of --ssl-certfile."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            envvar="SETPOINT_WORKERS",
            min=1,
            help="Server processes sharing the port (each change reaches the live-update clients of all of them).",
        ),
    ] = 1,
    backlog: Annotated[
        int,
        typer.Option(
            "--backlog",
            envvar="SETPOINT_BACKLOG",
            min=1,
            help="Listen backlog: connections the kernel queues before they are accepted (capped by "
            "net.core.somaxconn). Raise it when many clients connect at once.",
        ),
    ] = DEFAULT_BACKLOG,
) -> None:
    """Run the Setpoint server (API, live updates, UI) until interrupted."""
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise typer.BadParameter("give both --ssl-certfile and --ssl-keyfile (or neither)")
    from setpoint._server.services.bootstrap import bootstrap
    from setpoint._server.settings import Settings
    from setpoint._server.storage import open_storage

    settings = Settings(
        host=host,
        port=port,
        data_dir=data_dir,
        database_url=database_url,
        forwarded_allow_ips=forwarded_allow_ips or None,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
    settings.migrate_on_start = False
    logging.getLogger("setpoint").setLevel(log_level.upper())
    if workers == 1:
        _serve_one(settings, log_level, backlog, None)
        return
    # Several processes on one listening socket: migrate and bootstrap once, bind, then fork the workers
    # (each opens its own database connections and event hub).
    storage = open_storage(settings.effective_database_url)
    storage.migrate()
    from setpoint._server.services.changes import ChangeSink
    from setpoint._server.services.context import ServiceContext

    result = bootstrap(ServiceContext(storage=storage, sink=ChangeSink(origin="serve")), settings.admin_password)
    database = storage.url
    storage.dispose()
    sock = socket.create_server((host, port), backlog=backlog, reuse_port=False)
    settings.port = int(sock.getsockname()[1])
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the forked worker (tested through subprocesses)
            code = 0
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _serve_one(settings, log_level, backlog, sock, quiet=True)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    sock.close()
    _announce(settings, settings.public_url, database, result)
    typer.echo(f"  {workers} worker processes: {', '.join(str(pid) for pid in children)}")

    def forward(sig: int, _frame: FrameType | None) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        while True:
            try:
                os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break
    typer.echo("Setpoint stopped.")


def _serve_one(
    settings: Settings, log_level: str, backlog: int, sock: socket.socket | None, *, quiet: bool = False
) -> None:
    """One server process: on ``sock`` (a worker) or binding host:port itself."""
    import uvicorn

    from setpoint._server.app import create_app
    from setpoint._server.services.bootstrap import bootstrap
    from setpoint._server.storage import open_storage

    storage = open_storage(settings.effective_database_url)
    if sock is None:
        storage.migrate()
    app = create_app(settings, storage)
    state = app.state.setpoint
    result = None if quiet else bootstrap(state.ctx, settings.admin_password)
    host, port = settings.host, settings.port

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and result is not None:
                bound = self.servers[0].sockets[0].getsockname() if self.servers else (host, port)
                settings.port = int(bound[1])
                _announce(settings, settings.public_url, storage.url, result)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            state.hub.close()  # end SSE streams so the shutdown does not wait for them
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=5,
        # Forwarded headers only from the configured proxies (uvicorn would trust 127.0.0.1 by default).
        proxy_headers=settings.forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.forwarded_allow_ips or "",
        ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
        ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
        backlog=backlog,
    )
    try:
        _Server(config).run(sockets=None if sock is None else [sock])
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the signal after a clean shutdown
    finally:
        storage.dispose()
    if not quiet:
        typer.echo("Setpoint stopped.")


def register(app: typer.Typer) -> None:
    """Add ``setpoint serve``."""
    app.command("serve")(serve)
