"""Code references: where code defines each variable, uploaded per repository by ``setpoint refs --upload``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from setpoint._server.services.context import ServiceContext
from setpoint._server.storage.usage import CodeRef

MAX_REFS_PER_UPLOAD = 50_000

Text = Annotated[str, StringConstraints(min_length=1, max_length=300)]


class CodeRefIn(BaseModel):
    """One place that defines a variable; ``variable`` is None when the name is not a literal."""

    model_config = ConfigDict(extra="forbid")

    variable: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)] | None
    path: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    line: Annotated[int, Field(ge=1, le=2**31 - 1)]
    call: Annotated[str, StringConstraints(min_length=1, max_length=100)]


class CodeRefsUpload(BaseModel):
    """Every reference found in one repository (replaces that repository's previous upload)."""

    model_config = ConfigDict(extra="forbid")

    repository: Text
    commit: Annotated[str, StringConstraints(max_length=100)] | None = None
    branch: Annotated[str, StringConstraints(max_length=300)] | None = None
    refs: list[CodeRefIn] = Field(max_length=MAX_REFS_PER_UPLOAD)


def upload(ctx: ServiceContext, project_id: int, body: CodeRefsUpload) -> int:
    """Replace ``body.repository``'s references; how many were stored."""
    return ctx.storage.usage.replace_code_refs(
        project_id,
        body.repository,
        [(r.variable, r.path, r.line, r.call) for r in body.refs],
        commit_sha=body.commit,
        branch=body.branch,
        at=datetime.now(UTC),
    )


def list_refs(ctx: ServiceContext, project_id: int, variable: str | None = None) -> list[CodeRef]:
    """A project's references (one variable's when given)."""
    return ctx.storage.usage.code_refs(project_id, variable)


def ref_json(ref: CodeRef) -> dict[str, object]:
    """The API's JSON form of a reference."""
    return {
        "repository": ref.repository,
        "variable": ref.variable,
        "path": ref.path,
        "line": ref.line,
        "call": ref.call,
        "commit": ref.commit_sha,
        "branch": ref.branch,
        "uploaded_at": ref.uploaded_at.isoformat(),
    }


def defined_names(ctx: ServiceContext, project_id: int) -> set[str] | None:
    """Variable names some uploaded code defines, or None when no code references were ever uploaded."""
    refs = ctx.storage.usage.code_refs(project_id)
    if not refs:
        return None
    return {r.variable for r in refs if r.variable is not None}
