"""``setpoint push | push-types | validate | pull | push-config | get``: manage a server's variables from a shell.

Every command talks to ``--url``/``--api-key`` (default ``SETPOINT_URL``/``SETPOINT_API_KEY``). Failures print
one line on stderr saying what to do and exit with status 1.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from setpoint._remote import hints
from setpoint.exceptions import SetpointError

__all__ = ["register"]

UrlOption = Annotated[
    str | None, typer.Option("--url", envvar="SETPOINT_URL", help="Server URL (default: $SETPOINT_URL).")
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key", envvar="SETPOINT_API_KEY", help="API key (default: $SETPOINT_API_KEY).", show_default=False
    ),
]
ModuleArg = Annotated[
    str, typer.Argument(help="The module defining your variables: a dotted name (myapp.settings) or a .py file.")
]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Show the diff; change nothing.")]
YesOption = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Apply without asking for confirmation (a declined prompt exits with status 1)."),
]
StrictOption = Annotated[
    bool, typer.Option("--strict", help="Refuse a schema change that existing label values would not validate against.")
]


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _fail(message: str) -> typer.Exit:
    """Print one line on stderr (newlines folded) and return the exit to raise."""
    line = " ".join(message.split())
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {escape(line)}")
    return typer.Exit(1)


def _confirm_or_exit(console: Console) -> bool:
    """The [y/N] prompt; a no ends the command with status 1 (so a script sees that nothing was applied)."""
    from setpoint._remote import sync

    if not sync.ask(console):
        raise typer.Exit(1)
    return True


def _apply(
    action: Callable[..., bool],
    subject: Any,
    *,
    dry_run: bool,
    yes: bool,
    url: str | None,
    api_key: str | None,
    **options: Any,
) -> None:
    """Run one of the push actions (``sync.push``, ``push_types``, ``push_config``) as every push command does:
    the diff on stdout, then unless --dry-run the [y/N] prompt (skipped by --yes; a no exits with status 1),
    errors as one line on stderr."""
    with _errors():
        action(
            subject,
            dry_run=dry_run,
            yes=yes,
            url=url,
            api_key=api_key,
            console=_console(),
            confirm=_confirm_or_exit,
            **options,
        )


def _first_validation_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    more = exc.error_count() - 1
    suffix = f" (and {more} more error(s))" if more > 0 else ""
    return f"{where}: {error['msg']}{suffix}" if where else f"{error['msg']}{suffix}"


@contextmanager
def _errors(source: str | None = None) -> Iterator[None]:
    """Turn Setpoint's errors into one line on stderr and exit status 1 (naming --url/--api-key, not the SDK's
    RemoteOptions)."""
    try:
        with hints.cli_hints():
            yield
    except ValidationError as exc:
        where = f"{source}: " if source else ""
        raise _fail(f"{where}invalid config: {_first_validation_error(exc)}; fix the file and try again") from None
    except SetpointError as exc:
        raise _fail(str(exc)) from None


def _import_app(module: str) -> None:
    """Import the user's module (so its ``setpoint.var()`` calls register their variables)."""
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        if module.endswith(".py") or "/" in module:
            path = Path(module).resolve()
            if not path.is_file():
                raise _fail(f"{module}: no such file; pass a module name (myapp.settings) or a .py file")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None:
                raise _fail(f"{module}: cannot be imported as a Python module")
            loaded = importlib.util.module_from_spec(spec)
            sys.modules.setdefault(path.stem, loaded)
            spec.loader.exec_module(loaded)
        else:
            importlib.import_module(module)
    except typer.Exit:
        raise
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise _fail(f"cannot import {module}: {type(exc).__name__}: {first_line}") from None


def _registered() -> list[Any]:
    from setpoint._sdk.registry import registered_variables

    return list(registered_variables())


def push(
    app_module: ModuleArg,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    strict: StrictOption = False,
    url: UrlOption = None,
    api_key: KeyOption = None,
) -> None:
    """Push the variables defined in APP_MODULE: create missing ones, update changed schemas."""
    from setpoint._remote import sync

    _import_app(app_module)
    variables = _registered()
    if not variables:
        raise _fail(f"{app_module} defines no variables (setpoint.var(...)); nothing to push")
    _apply(sync.push, variables, dry_run=dry_run, yes=yes, url=url, api_key=api_key, strict=strict)


def _types_of(variables: list[Any]) -> list[Any]:
    """The distinct named types of the variables (classes such as pydantic models and dataclasses)."""
    seen: dict[str, Any] = {}
    for variable in variables:
        tp = getattr(variable, "type", None)
        if isinstance(tp, type) and tp.__module__ != "builtins":
            seen.setdefault(tp.__name__, tp)
    return list(seen.values())


def push_types(
    app_module: ModuleArg,
    type_names: Annotated[
        list[str] | None,
        typer.Option("--type", help="Only this type (by class name, or module attribute); repeatable."),
    ] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    strict: StrictOption = False,
    url: UrlOption = None,
    api_key: KeyOption = None,
) -> None:
    """Push the types used by APP_MODULE's variables (pydantic models, dataclasses) as shared schemas."""
    from setpoint._remote import sync

    _import_app(app_module)
    types = _types_of(_registered())
    if type_names:
        module = sys.modules.get(app_module)
        by_name = {t.__name__: t for t in types}
        chosen = []
        for name in type_names:
            found = by_name.get(name) or getattr(module, name, None)
            if found is None:
                raise _fail(f"{app_module} has no type {name!r}")
            chosen.append(found)
        types = chosen
    if not types:
        raise _fail(f"{app_module} uses no named types (classes); nothing to push")
    _apply(sync.push_types, types, dry_run=dry_run, yes=yes, url=url, api_key=api_key, strict=strict)


def validate(app_module: ModuleArg, url: UrlOption = None, api_key: KeyOption = None) -> None:
    """Check the server's values against the types in APP_MODULE; exit status 1 on any problem (for CI)."""
    from setpoint._remote import sync

    _import_app(app_module)
    variables = _registered()
    if not variables:
        raise _fail(f"{app_module} defines no variables (setpoint.var(...)); nothing to validate")
    with _errors():
        report = sync.validate(variables, url=url, api_key=api_key)
    _console().print(report.to_markup())
    if report.has_errors:
        raise typer.Exit(1)


def pull(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (.yaml/.yml/.json); default: YAML on stdout.")
    ] = None,
    url: UrlOption = None,
    api_key: KeyOption = None,
) -> None:
    """Download the server's whole config (for a backup, or a file to edit and push-config)."""
    from setpoint._remote import sync

    with _errors(str(output) if output else None):
        config = sync.pull_config(url=url, api_key=api_key)
        if output is None:
            typer.echo(config.to_yaml(), nl=False)
            return
        config.write(output)
    Console(stderr=True, highlight=False).print(f"Wrote {len(config.variables)} variable(s) to {escape(str(output))}")


def push_config(
    file: Annotated[Path, typer.Argument(help="A config file (.yaml/.yml/.json), e.g. from `setpoint pull`.")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Also delete the server's variables that FILE does not have.")
    ] = False,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    url: UrlOption = None,
    api_key: KeyOption = None,
) -> None:
    """Make the server's variables match FILE (labels, versions, rollouts, overrides)."""
    from setpoint._remote import sync
    from setpoint.config import VariablesConfig

    with _errors(str(file)):
        config = VariablesConfig.read(file)
    mode: Literal["merge", "replace"] = "replace" if replace else "merge"
    _apply(sync.push_config, config, dry_run=dry_run, yes=yes, url=url, api_key=api_key, mode=mode)


def _parse_attr(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise _fail(f"--attr {text!r}: use NAME=VALUE (VALUE is JSON if it parses, e.g. age=30, beta=true)")
    try:
        return name, json.loads(raw)
    except ValueError:
        return name, raw


def get(
    name: Annotated[str, typer.Argument(help="The variable to resolve.")],
    key: Annotated[str | None, typer.Option("--key", "-k", help="Targeting key (e.g. a user id).")] = None,
    attr: Annotated[
        list[str] | None,
        typer.Option("--attr", "-a", help="Attribute NAME=VALUE (JSON value if it parses); repeatable."),
    ] = None,
    label: Annotated[str | None, typer.Option("--label", help="Ask for this label explicitly.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
    url: UrlOption = None,
    api_key: KeyOption = None,
) -> None:
    """Resolve NAME for a key and attributes with the server's config, and explain the answer."""
    from setpoint._core.evaluator import compile_config
    from setpoint._remote import sync

    attributes = dict(_parse_attr(a) for a in attr or [])
    with _errors():
        config = sync.pull_config(url=url, api_key=api_key)
    compiled = compile_config(config)
    if compiled.get(name) is None:
        known = ", ".join(sorted(config.variables)) or "none"
        raise _fail(f"the server has no variable {name!r} (it has: {known})")
    ev = compiled.evaluate(name, key, attributes, label=label)
    value: Any = None if ev.serialized_value is None else json.loads(ev.serialized_value)
    result = {
        "name": ev.name,
        "label": ev.label,
        "version": ev.version,
        "value": value,
        "reason": ev.reason,
        "detail": ev.detail,
        "override": ev.override_index,
        "explanation": ev.explain(),
    }
    if as_json:
        typer.echo(json.dumps(result))
        return
    out = _console()
    out.print(f"[bold]{escape(name)}[/]")
    out.print(f"  label:   {escape(str(ev.label)) if ev.label is not None else '[dim](none)[/]'}")
    out.print(f"  version: {ev.version if ev.version is not None else '[dim](none)[/]'}")
    shown = escape(ev.serialized_value) if ev.serialized_value is not None else "[dim](code default)[/]"
    out.print(f"  value:   {shown}")
    out.print(f"  reason:  {ev.reason} ({ev.detail})")
    out.print(f"  why:     {escape(ev.explain())}")


_COMMANDS: dict[str, Callable[..., None]] = {
    "push": push,
    "push-types": push_types,
    "validate": validate,
    "pull": pull,
    "push-config": push_config,
    "get": get,
}


def register(app: typer.Typer) -> None:
    """Add the variable management commands to the ``setpoint`` app."""
    for command_name, function in _COMMANDS.items():
        app.command(command_name)(function)
