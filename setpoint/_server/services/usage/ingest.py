"""Validate and store one batch of SDK evaluation counts (``POST /v1/usage/``).

A batch is validated whole before anything is stored: a bad batch is a 4xx and is not partly stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from setpoint._server.services.context import ServiceContext
from setpoint._server.storage.usage import CountRow

MAX_COUNTS_PER_BATCH = 10_000
"""More (variable, label, version, reason) rows than this in one batch are refused."""
MAX_COUNT = 10**12
"""One row's count above this is refused (no process resolves a trillion times a minute)."""

VariableName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]
Reason = Literal["resolved", "context_override", "code_default", "validation_error", "other_error"]


class UsageCount(BaseModel):
    """How often one variable resolved to one label and version with one reason."""

    model_config = ConfigDict(extra="forbid")

    variable: VariableName
    label: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    version: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    reason: Reason
    count: Annotated[int, Field(ge=1, le=MAX_COUNT)]


class UsageBatch(BaseModel):
    """One report of an SDK process: what it resolved since its previous report."""

    model_config = ConfigDict(extra="forbid")

    sdk: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")] = Field(
        description="SDK name and version, e.g. `setpoint-python/0.1.0`"
    )
    instance_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = Field(
        description="A random id per application process (a forked worker gets its own)"
    )
    counts: list[UsageCount] = Field(max_length=MAX_COUNTS_PER_BATCH)


def record_batch(ctx: ServiceContext, project_id: int, batch: UsageBatch, now: datetime | None = None) -> int:
    """Store ``batch`` in the current hour's bucket; the number of resolutions it added."""
    rows = [CountRow(c.variable, c.label, c.version, c.reason, c.count) for c in batch.counts]
    ctx.storage.usage.record(
        project_id, rows, instance_id=batch.instance_id, sdk=batch.sdk, at=now or datetime.now(UTC)
    )
    return sum(row.count for row in rows)
