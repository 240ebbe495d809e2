"""Request bodies of the write endpoints (the shapes the Logfire SDK sends)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from setpoint._server.services.input_limits import DB_INT_MAX


class LabelTargetIn(BaseModel):
    """Where a label should point: ``version`` (an existing number, or a value that becomes a version),
    ``latest``, ``code_default`` or another ``label``."""

    model_config = ConfigDict(extra="forbid")

    target_type: Literal["version", "latest", "code_default", "label"]
    version: int | None = Field(default=None, ge=1, le=DB_INT_MAX)
    serialized_value: str | None = None
    target_label: str | None = None

    @model_validator(mode="after")
    def _check_target(self) -> LabelTargetIn:
        if self.target_type == "version" and self.version is None and self.serialized_value is None:
            raise ValueError("target_type 'version' needs `version` (an existing version) or `serialized_value`")
        if self.target_type == "label" and not self.target_label:
            raise ValueError("target_type 'label' needs `target_label` (the name of another label)")
        return self


class VariableIn(BaseModel):
    """A variable as ``POST /v1/variables/`` and ``PUT /v1/variables/{name}/`` take it (PUT replaces it)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str | None = None
    json_schema: dict[str, Any] | None = None
    type_name: str | None = None
    rollout: dict[str, Any] = Field(default_factory=lambda: {"labels": {}})
    overrides: list[dict[str, Any]] = Field(default_factory=list)
    aliases: list[str] | None = None
    example: str | None = None
    template_inputs_schema: dict[str, Any] | None = None
    labels: dict[str, LabelTargetIn] = Field(default_factory=dict)
    external: bool | None = None
    """Readable by ``read_external`` keys through OFREP. Omitted: false on create, unchanged on replace."""


class BulkVariableIn(VariableIn):
    """One item of ``POST /v1/variables/bulk/``: a variable body, plus an optional expected ``revision``."""

    revision: int | None = Field(default=None, ge=1)
    """The revision you read (the variable's ``ETag``): the whole request fails with 412 if it changed since."""


class VariableTypeIn(BaseModel):
    """A variable type as ``POST /v1/variable-types/`` takes it (an upsert by name)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    json_schema: dict[str, Any]
    description: str | None = None
    source_hint: str | None = None


class VersionIn(BaseModel):
    """A new version: its JSON-serialized value, optionally moving ``label`` onto it."""

    model_config = ConfigDict(extra="forbid")

    serialized_value: str
    label: str | None = None
    """The label to point at the new version, if any."""
