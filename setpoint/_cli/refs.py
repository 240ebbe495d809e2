"""``setpoint refs PATH``: list (or upload) where code defines variables, for CI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from setpoint._cli.refs_scan import Ref, scan
from setpoint._cli.variables import KeyOption, UrlOption, _console, _errors, _fail

__all__ = ["register"]


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    value = done.stdout.strip()
    return value if done.returncode == 0 and value and value != "HEAD" else None


def _ci_env(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def _default_repository(root: Path) -> str:
    remote = _git(root, "config", "--get", "remote.origin.url")
    if remote:
        return remote.removesuffix(".git").rstrip("/").split("/")[-1].split(":")[-1] or remote
    top = _git(root, "rev-parse", "--show-toplevel")
    return Path(top).name if top else root.resolve().name


def _ref_json(ref: Ref) -> dict[str, object]:
    return {"variable": ref.variable, "path": ref.path, "line": ref.line, "call": ref.call}


def refs(
    path: Annotated[Path, typer.Argument(help="The code base to scan (a folder or one .py file).")] = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the references as JSON.")] = False,
    upload: Annotated[
        bool, typer.Option("--upload", help="Send them to the server (replaces this repository's previous upload).")
    ] = False,
    repository: Annotated[
        str | None, typer.Option("--repository", help="Repository name (default: from git, else the folder name).")
    ] = None,
    commit: Annotated[
        str | None, typer.Option("--commit", help="Commit (default: $GITHUB_SHA / $CI_COMMIT_SHA / git HEAD).")
    ] = None,
    branch: Annotated[
        str | None, typer.Option("--branch", help="Branch (default: $GITHUB_REF_NAME / $CI_COMMIT_REF_NAME / git).")
    ] = None,
    url: UrlOption = None,
    api_key: KeyOption = None,
) -> None:
    """Find setpoint.var / template_var and logfire.var / template_var calls in PATH (read from the Python AST)."""
    if not path.exists():
        raise _fail(f"{path}: no such file or folder; pass the root of your code base")
    found, problems = scan(path)
    console = _console()
    for problem in problems:
        console.print(f"warning: {problem.path}: not scanned ({problem.message})", style="yellow", markup=False)
    if as_json:
        console.print(json.dumps([_ref_json(r) for r in found], indent=2), markup=False)
    elif not upload:
        for ref in found:
            name = ref.variable if ref.variable is not None else f"? (name is not a literal: {ref.expression})"
            console.print(f"{name}  {ref.path}:{ref.line}  {ref.call}", markup=False)
        unknown = sum(r.variable is None for r in found)
        console.print(f"{len(found)} reference(s), {unknown} with a name that is not a literal", markup=False)
    if not upload:
        return
    root = path if path.is_dir() else path.parent
    body = {
        "repository": repository or _default_repository(root),
        "commit": commit or _ci_env("GITHUB_SHA", "CI_COMMIT_SHA") or _git(root, "rev-parse", "HEAD"),
        "branch": branch
        or _ci_env("GITHUB_REF_NAME", "CI_COMMIT_REF_NAME")
        or _git(root, "rev-parse", "--abbrev-ref", "HEAD"),
        "refs": [_ref_json(r) for r in found],
    }
    from setpoint._remote.client import RemoteClient, check
    from setpoint._remote.options import RemoteOptions

    with _errors(), RemoteClient(RemoteOptions(url=url, api_key=api_key)) as client:
        answer = check(client._send("POST", "/v1/code-refs/", json=body), "uploading code references").json()
    if not as_json:
        console.print(f"uploaded {answer['stored']} reference(s) of {answer['repository']}", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``setpoint refs``."""
    app.command("refs")(refs)
