"""Find where code defines variables: ``setpoint.var(...)``, ``setpoint.template_var(...)``, ``logfire.var(...)``
and ``logfire.template_var(...)`` calls, read from the Python AST (not by regex), through any import form:
``import setpoint``, ``import setpoint as sp``, ``from setpoint import var``, ``from setpoint import var as v``.

A name that is not a string literal is reported with ``variable=None`` and the expression it was given.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MODULES = ("setpoint", "logfire")
FUNCTIONS = ("var", "template_var")
SKIP_DIRS = frozenset({".git", ".hg", ".venv", "venv", "env", "node_modules", "__pycache__", "site-packages", ".tox"})


@dataclass(frozen=True)
class Ref:
    """One call that defines a variable."""

    variable: str | None
    """The variable's name, or None when it is not a string literal."""
    path: str
    """The file, relative to the scanned root, with ``/`` separators."""
    line: int
    call: str
    """What was called, canonically: ``setpoint.var``, ``logfire.template_var``, ..."""
    expression: str | None = None
    """The source of the name argument when it is not a literal."""


@dataclass(frozen=True)
class ScanProblem:
    """A file that could not be read or parsed."""

    path: str
    message: str


class _Finder(ast.NodeVisitor):
    def __init__(self, source: str, path: str) -> None:
        self.source = source
        self.path = path
        self.module_aliases: dict[str, str] = {}  # local name -> "setpoint" | "logfire"
        self.function_aliases: dict[str, str] = {}  # local name -> "setpoint.var", ...
        self.refs: list[Ref] = []

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name in MODULES:
                self.module_aliases[alias.asname or alias.name] = alias.name

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module in MODULES and node.level == 0:
            for alias in node.names:
                if alias.name in FUNCTIONS:
                    self.function_aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        self.generic_visit(node)

    def _called(self, func: ast.expr) -> str | None:
        if isinstance(func, ast.Name):
            return self.function_aliases.get(func.id)
        if isinstance(func, ast.Attribute) and func.attr in FUNCTIONS and isinstance(func.value, ast.Name):
            module = self.module_aliases.get(func.value.id)
            if module is not None:
                return f"{module}.{func.attr}"
        return None

    def visit_Call(self, node: ast.Call) -> None:
        call = self._called(node.func)
        if call is not None:
            argument: ast.expr | None = next((k.value for k in node.keywords if k.arg == "name"), None)
            if argument is None and node.args:
                argument = node.args[0]
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                self.refs.append(Ref(argument.value, self.path, node.lineno, call))
            else:
                expression = ast.get_source_segment(self.source, argument) if argument is not None else None
                self.refs.append(Ref(None, self.path, node.lineno, call, expression or "(no name given)"))
        self.generic_visit(node)


def scan_source(source: str, path: str) -> list[Ref]:
    """The references in one module's source (raises `SyntaxError`)."""
    finder = _Finder(source, path)
    finder.visit(ast.parse(source, filename=path))
    return finder.refs


def python_files(root: Path) -> Iterator[Path]:
    """Every ``.py`` file under ``root`` (or ``root`` itself), skipping virtualenvs, VCS and cache folders."""
    if root.is_file():
        yield root
        return
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            if name.endswith(".py"):
                yield Path(folder) / name


def scan(root: Path) -> tuple[list[Ref], list[ScanProblem]]:
    """Every reference under ``root``, by path and line, and the files that could not be parsed."""
    refs: list[Ref] = []
    problems: list[ScanProblem] = []
    base = root if root.is_dir() else root.parent
    for file in python_files(root):
        relative = file.relative_to(base).as_posix()
        try:
            source = file.read_text(encoding="utf-8")
            refs.extend(scan_source(source, relative))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
            problems.append(ScanProblem(relative, str(exc)))
    return refs, problems
