"""`ValidationReport`: do the values on the server fit the types in code? (`setpoint.validate()`)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape

__all__ = ["DescriptionDifference", "LabelValidationError", "ValidationReport"]


@dataclass(frozen=True)
class LabelValidationError:
    """A value on the server that does not validate against the variable's type in code."""

    variable_name: str
    label: str | None
    """The label whose value fails (``latest`` for the latest version); None for a variable-level problem."""
    error: str
    version: int | None = None


@dataclass(frozen=True)
class DescriptionDifference:
    """A variable whose description in code differs from the server's (informational)."""

    variable_name: str
    local_description: str | None
    server_description: str | None


@dataclass
class ValidationReport:
    """What `setpoint.validate()` found. ``has_errors`` is what CI should fail on."""

    errors: list[LabelValidationError] = field(default_factory=list)
    """Label values (and the latest version) that do not fit the variable's type in code."""
    variables_checked: int = 0
    """How many variables were checked."""
    variables_not_on_server: list[str] = field(default_factory=list)
    """Variables defined in code that the server does not have (push them with ``setpoint push``)."""
    description_differences: list[DescriptionDifference] = field(default_factory=list)
    """Variables whose descriptions differ (informational: not an error)."""

    @property
    def has_errors(self) -> bool:
        """True if a value does not validate or a variable is missing from the server."""
        return bool(self.errors or self.variables_not_on_server)

    @property
    def is_valid(self) -> bool:
        """The opposite of `has_errors`."""
        return not self.has_errors

    def to_markup(self) -> str:
        """The report as Rich console markup."""
        lines: list[str] = []
        if self.errors:
            lines.append("[bold red]=== Validation errors ===[/]")
            for error in self.errors:
                where = "" if error.label is None else f" (label: {escape(error.label)})"
                version = "" if error.version is None else f" version {error.version}"
                lines.append(f"  [red]✗ {escape(error.variable_name)}{where}{version}[/]")
                detail = error.error.splitlines()
                lines.extend(f"      {escape(line)}" for line in detail[:5])
                if len(detail) > 5:
                    lines.append(f"      ... ({len(detail) - 5} more lines)")
        if self.variables_not_on_server:
            lines.append("[bold yellow]=== Variables not found on the server ===[/]")
            lines.extend(f"  [yellow]? {escape(name)}[/]" for name in self.variables_not_on_server)
        if self.description_differences:
            lines.append("[cyan]=== Description differences (informational) ===[/]")
            for diff in self.description_differences:
                lines.append(f"  [cyan]! {escape(diff.variable_name)}[/]")
                lines.append(f"    Local:  {escape(diff.local_description or '(none)')}")
                lines.append(f"    Server: {escape(diff.server_description or '(none)')}")
        if self.has_errors:
            failing = len({e.variable_name for e in self.errors}) + len(self.variables_not_on_server)
            lines.append(f"[bold red]Validation failed: {failing} variable(s) with problems.[/]")
        else:
            lines.append(f"[bold green]Validation passed: all {self.variables_checked} variable(s) are valid.[/]")
        return "\n".join(lines)

    def format(self, *, colors: bool = False) -> str:
        """The report as text a human can read (ANSI colours when ``colors``)."""
        console = Console(
            width=200,
            record=True,
            force_terminal=colors,
            no_color=not colors,
            color_system="standard",
            file=io.StringIO(),
        )
        console.print(self.to_markup(), highlight=False, soft_wrap=True)
        return console.export_text(styles=colors).rstrip("\n")

    def __str__(self) -> str:
        return self.format()
