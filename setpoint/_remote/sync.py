"""Managing a server's variables from code: `push`, `push_types`, `validate`, `push_config`, `pull_config`.

Each talks to the server of the current ``setpoint.configure(remote=...)`` (or ``url=``/``api_key=``, else
``SETPOINT_URL``/``SETPOINT_API_KEY``), shows the diff before changing anything, asks for confirmation unless
``yes=True`` (a ``[y/N]`` prompt on the console, or the ``confirm=`` callable), and changes nothing with
``dry_run=True``. Network and authentication failures raise `setpoint.exceptions.RemoteError` subclasses whose
message says what to do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape

from setpoint._remote.client import RemoteClient
from setpoint._remote.diff import (
    VariableLike,
    composition_problems,
    incompatible_values,
    plan_config,
    plan_push,
    plan_types,
    pushed_config,
    reference_order,
    segment_order,
)
from setpoint._remote.options import RemoteOptions
from setpoint._remote.report import DescriptionDifference, LabelValidationError, ValidationReport
from setpoint.config import VariablesConfig
from setpoint.exceptions import VariableValueError

__all__ = ["pull_config", "push", "push_config", "push_types", "validate"]

TypeSpec = type[Any] | tuple[type[Any], str] | Any


def _options(url: str | None, api_key: str | None) -> RemoteOptions:
    configured = _configured_options()
    if configured is None:
        return RemoteOptions(url=url, api_key=api_key)
    return RemoteOptions(
        url=url or configured.url,
        api_key=api_key or configured.api_key,
        request_timeout=configured.request_timeout,
    )


def _configured_options() -> RemoteOptions | None:
    """The RemoteOptions of the current ``setpoint.configure(remote=...)``, if any."""
    from setpoint._remote.provider import RemoteProvider
    from setpoint._sdk import state

    provider = state.CURRENT.provider
    return provider.options if isinstance(provider, RemoteProvider) else None


def _refresh_current() -> None:
    """Read-after-write: a remote provider in this process fetches the change now (SSE would, a bit later)."""
    from setpoint._remote.provider import RemoteProvider
    from setpoint._sdk import state

    provider = state.CURRENT.provider
    if isinstance(provider, RemoteProvider):
        provider.refresh(force=True)


def _registered() -> list[VariableLike]:
    from setpoint._sdk.registry import registered_variables

    return list(registered_variables())


def _console(console: Console | None) -> Console:
    return console if console is not None else Console(highlight=False, soft_wrap=True)


Confirm = Callable[[Console], bool]
"""Asks whether to apply the changes just shown on the console; True applies them."""


def ask(console: Console) -> bool:
    """The default `Confirm`: a ``[y/N]`` prompt on the console (no answer, or end of input, is no)."""
    try:
        answer = console.input("Apply these changes? \\[y/N] ")  # escaped: [y/N] is not Rich markup
    except (EOFError, KeyboardInterrupt):
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        return True
    console.print("Aborted: nothing changed.")
    return False


def _gate(console: Console, has_changes: bool, dry_run: bool, yes: bool, confirm: Confirm | None) -> bool:
    """Whether to apply: False when there is nothing to do, in a dry run, or when the user says no."""
    if not has_changes:
        console.print("[green]No changes needed: the server is up to date.[/]")
        return False
    if dry_run:
        console.print("[yellow]Dry run: nothing changed.[/]")
        return False
    return yes or (confirm or ask)(console)


def push(
    variables: Sequence[VariableLike] | None = None,
    *,
    dry_run: bool = False,
    yes: bool = False,
    strict: bool = False,
    url: str | None = None,
    api_key: str | None = None,
    console: Console | None = None,
    confirm: Confirm | None = None,
) -> bool:
    """Push variables defined in code (all registered ones by default): create the missing ones (no labels,
    the code default as the ``example``) and update changed JSON schemas, keeping labels and rollouts.

    ``strict=True`` refuses (raising `VariableValueError`) a schema change that existing label values would
    not validate against; otherwise they are shown as a warning. Returns True if changes were applied (or, in a
    dry run, would be).
    """
    out = _console(console)
    chosen = list(variables) if variables is not None else _registered()
    if not chosen:
        out.print("No variables to push: define them with setpoint.var() first (is the module imported?).")
        return False
    with RemoteClient(_options(url, api_key)) as client:
        server = client.get_config()
        plan = plan_push(chosen, server)
        out.print(plan.to_markup())
        problems = composition_problems(chosen, server)
        if problems:
            for _, problem in problems:
                out.print(f"[red]  {escape(problem)}[/]")
            raise VariableValueError(
                "refusing to push: templates or @{references}@ are invalid (nothing was written): "
                + "; ".join(problem for _, problem in problems)
            )
        if plan.breaking:
            names = ", ".join(sorted({i.variable for i in plan.breaking}))
            if strict:
                raise VariableValueError(
                    f"refusing the schema change of {names}: existing label values would not validate "
                    "(fix or move those labels first, or push without strict)"
                )
            out.print(f"[yellow]Warning: existing values of {names} will not validate against the new schema.[/]")
        if plan.constraint_changes:
            names = ", ".join(sorted({name for name, _ in plan.constraint_changes}))
            out.print(
                f"[yellow]Warning: this push replaces validation rules set on the server for {names} "
                "(see narrows/widens above) with the schema derived from the code.[/]"
            )
        if not _gate(out, plan.has_changes, dry_run, yes, confirm):
            return dry_run and plan.has_changes
        out.print("Applying changes...")
        for change in plan.changes:
            if change.kind == "create":
                client.create_variable(pushed_config(change))
                out.print(f"  [green]Created {change.name}[/]")
            elif change.kind == "update_schema":
                client.replace_variable(pushed_config(change))
                out.print(f"  [yellow]Updated the schema of {change.name}[/]")
    _refresh_current()
    out.print("[green]Done: variables pushed.[/]")
    return True


def push_types(
    types: Sequence[TypeSpec],
    *,
    dry_run: bool = False,
    yes: bool = False,
    strict: bool = False,
    url: str | None = None,
    api_key: str | None = None,
    console: Console | None = None,
    confirm: Confirm | None = None,
) -> bool:
    """Push types as named, shared JSON schemas (``/v1/variable-types/``). Each item is a type (named by its
    ``__name__``) or ``(type, name)``. ``strict=True`` refuses an update that values of variables using the
    type would not validate against. Returns True if changes were applied (or, in a dry run, would be)."""
    out = _console(console)
    if not types:
        out.print("No types to push.")
        return False
    with RemoteClient(_options(url, api_key)) as client:
        plan = plan_types(types, client.list_types(), client.get_config())
        out.print(plan.to_markup())
        if plan.breaking:
            names = ", ".join(sorted({i.variable for i in plan.breaking}))
            if strict:
                raise VariableValueError(
                    f"refusing the type update: existing values of {names} would not validate against it"
                )
            out.print(f"[yellow]Warning: existing values of {names} will not validate against the new types.[/]")
        if not _gate(out, plan.has_changes, dry_run, yes, confirm):
            return dry_run and plan.has_changes
        for config in plan.types:
            if config.name in plan.creates or config.name in plan.updates:
                client.upsert_type(config)
    out.print("[green]Done: variable types pushed.[/]")
    return True


def validate(
    variables: Sequence[VariableLike] | None = None, *, url: str | None = None, api_key: str | None = None
) -> ValidationReport:
    """Check that every value on the server (each label's and the latest version) validates against the type
    of the variable in code, and that templates and ``@{references}@`` pass the server's write-time checks
    (as `push` would); report variables missing from the server and differing descriptions."""
    chosen = list(variables) if variables is not None else _registered()
    with RemoteClient(_options(url, api_key)) as client:
        server = client.get_config()
    report = ValidationReport(variables_checked=len(chosen))
    for variable in chosen:
        existing = server.variables.get(variable.name)
        if existing is None:
            report.variables_not_on_server.append(variable.name)
            continue
        for item in incompatible_values(variable.type_adapter, existing):
            report.errors.append(LabelValidationError(variable.name, item.label, item.error, item.version))
        if (variable.description or None) != (existing.description or None):
            report.description_differences.append(
                DescriptionDifference(variable.name, variable.description, existing.description)
            )
    for name, problem in composition_problems(chosen, server):
        report.errors.append(LabelValidationError(name, None, problem))
    return report


def push_config(
    config: VariablesConfig | str | os.PathLike[str],
    *,
    mode: Literal["merge", "replace"] = "merge",
    dry_run: bool = False,
    yes: bool = False,
    url: str | None = None,
    api_key: str | None = None,
    console: Console | None = None,
    confirm: Confirm | None = None,
) -> bool:
    """Make the server's variables match ``config`` (a `VariablesConfig` or a YAML/JSON file).

    Labels with inline values become versions; the segments in ``config`` are created or replaced first.
    ``mode="merge"`` leaves other variables and segments alone; ``"replace"`` deletes the server's ones that
    ``config`` lacks. Returns True if changes were applied (or, in a dry run, would be).
    """
    if mode not in ("merge", "replace"):
        raise ValueError(f"mode must be 'merge' or 'replace', not {mode!r}")
    out = _console(console)
    local = config if isinstance(config, VariablesConfig) else VariablesConfig.read(config)
    with RemoteClient(_options(url, api_key)) as client:
        server = client.get_config()
        plan = plan_config(local, server, mode)
        out.print(plan.to_markup())
        if not _gate(out, plan.has_changes, dry_run, yes, confirm):
            return dry_run and plan.has_changes
        out.print("Applying changes...")
        for key in segment_order(local.segments, [*plan.segment_creates, *plan.segment_updates]):
            if key in plan.segment_creates:
                client.create_segment(local.segments[key])
            else:
                client.replace_segment(local.segments[key])
            out.print(f"  [green]Saved segment {key}[/]")
        # Referenced variables are written first and deleted last (the server refuses dangling references).
        for name in reference_order([*plan.updates, *plan.creates], local.variables):
            if name in plan.creates:
                client.create_variable(local.variables[name])
                out.print(f"  [green]Created {name}[/]")
            else:
                client.replace_variable(local.variables[name])
                out.print(f"  [yellow]Updated {name}[/]")
        for name in reversed(reference_order(plan.deletes, server.variables)):
            client.delete_variable(name)
            out.print(f"  [red]Deleted {name}[/]")
        for key in reversed(segment_order(server.segments, plan.segment_deletes)):
            client.delete_segment(key)
            out.print(f"  [red]Deleted segment {key}[/]")
    _refresh_current()
    out.print("[green]Done: config pushed.[/]")
    return True


def pull_config(*, url: str | None = None, api_key: str | None = None) -> VariablesConfig:
    """The server's whole current config (for a backup, a file to edit, or `VariablesConfig.merge`)."""
    with RemoteClient(_options(url, api_key)) as client:
        return client.get_config()
