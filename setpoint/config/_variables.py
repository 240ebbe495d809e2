"""Variables, labels, versions, rollouts and overrides: the wire format of ``GET /v1/variables/``.

The JSON shape is the one the Logfire Python SDK reads, so that SDK can use a Setpoint server. Validation
happens here, once, with messages that name the variable and the field.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from pydantic import BaseModel, Field, ValidationInfo, WithJsonSchema, field_validator, model_validator

from setpoint._core.jsonvalues import check_finite, check_serialized, lenient_context
from setpoint.config._conditions import Condition, InSegment, NotInSegment
from setpoint.config._segments import Segment

if TYPE_CHECKING:
    from os import PathLike

    from pydantic import TypeAdapter

__all__ = [
    "RESERVED_LABELS",
    "LabelRef",
    "LabeledValue",
    "LatestVersion",
    "Rollout",
    "RolloutOverride",
    "VariableConfig",
    "VariableLike",
    "VariableName",
    "VariableTypeConfig",
    "VariablesConfig",
]

WEIGHT_TOLERANCE = 1e-9
RESERVED_LABELS = frozenset({"latest", "code_default"})

VariableName = Annotated[
    str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=128), WithJsonSchema({"type": "string"})
]
"""A variable name: a Python identifier (letters, digits and underscores, not starting with a digit)."""

LabelName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")]


def _lenient(info: ValidationInfo) -> bool:
    return lenient_context(info.context)


class LabeledValue(BaseModel):
    """A label pointing at a version, with that version's value inline."""

    version: int = Field(ge=1)
    serialized_value: str
    """The version's value, serialized as JSON."""

    @field_validator("serialized_value")
    @classmethod
    def _finite(cls, value: str, info: ValidationInfo) -> str:
        if not _lenient(info):
            check_serialized(value, "serialized_value")
        return value


class LabelRef(BaseModel):
    """A label pointing at ``latest``, at ``code_default`` or at another label."""

    version: int | None = None
    """The version the ref reached when the config was built (informational)."""
    ref: str = Field(min_length=1)
    """``latest``, ``code_default`` or the name of another label."""


class LatestVersion(BaseModel):
    """The highest version of a variable."""

    version: int = Field(ge=1)
    serialized_value: str

    @field_validator("serialized_value")
    @classmethod
    def _finite(cls, value: str, info: ValidationInfo) -> str:
        if not _lenient(info):
            check_serialized(value, "serialized_value")
        return value


class Rollout(BaseModel):
    """Label weights: each in 0..1, summing to at most 1; the remainder is served the code default.

    Labels take cumulative ranges of the bucket space in the order they are listed here.
    """

    labels: dict[str, float] = {}

    @field_validator("labels")
    @classmethod
    def _check_weights(cls, labels: dict[str, float]) -> dict[str, float]:
        for label, weight in labels.items():
            if not math.isfinite(weight) or weight < 0 or weight > 1:
                raise ValueError(f"weight of label {label!r} is {weight}; each weight must be between 0 and 1")
        total = sum(labels.values())
        if total > 1 + WEIGHT_TOLERANCE:
            raise ValueError(
                f"label weights sum to {total:.12g}; they must sum to at most 1 (the rest is the code default)"
            )
        return labels


class RolloutOverride(BaseModel):
    """A rollout used instead of the default one when all ``conditions`` match."""

    conditions: list[Condition]
    rollout: Rollout


class VariableConfig(BaseModel):
    """One managed variable: its labels, latest version, rollout, ordered overrides and schema."""

    name: VariableName
    description: str | None = None
    labels: dict[LabelName, LabeledValue | LabelRef] = {}
    rollout: Rollout = Rollout()
    overrides: list[RolloutOverride] = []
    latest_version: LatestVersion | None = None
    json_schema: dict[str, Any] | None = None
    type_name: str | None = None
    """The name of the shared variable type (``/v1/variable-types/``) this variable uses, if any."""
    aliases: list[VariableName] | None = None
    """Other names that resolve to this variable (for renames)."""
    example: str | None = None
    """A JSON-serialized example value from code, used as a template when creating versions."""
    template_inputs_schema: dict[str, Any] | None = None
    """JSON schema of the inputs of a templated value (kept for Logfire SDK compatibility)."""
    external: bool = False
    """Whether keys with only the ``read_external`` scope may evaluate it (through OFREP); served only when true."""

    @field_validator("example")
    @classmethod
    def _finite_example(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not _lenient(info):
            check_serialized(value, "example")
        return value

    @field_validator("json_schema", "template_inputs_schema")
    @classmethod
    def _finite_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        check_finite(value, "schema")
        return value

    @model_validator(mode="after")
    def _check_references(self) -> VariableConfig:
        for label in self.labels:
            if label in RESERVED_LABELS:
                raise ValueError(f"label name {label!r} is reserved; choose another name")
        for label in self.rollout.labels:
            if label not in self.labels:
                raise ValueError(f"rollout names label {label!r}, which is not in `labels`")
        for index, override in enumerate(self.overrides):
            for label in override.rollout.labels:
                if label not in self.labels:
                    raise ValueError(f"overrides[{index}].rollout names label {label!r}, which is not in `labels`")
        for label, target in self.labels.items():
            if isinstance(target, LabelRef):
                self._check_ref_chain(label, target)
        return self

    def _check_ref_chain(self, start: str, ref: LabelRef) -> None:
        seen = [start]
        current: LabeledValue | LabelRef = ref
        while isinstance(current, LabelRef) and current.ref not in RESERVED_LABELS:
            if current.ref not in self.labels:
                raise ValueError(f"label {seen[-1]!r} refers to label {current.ref!r}, which is not in `labels`")
            if current.ref in seen:
                cycle = " -> ".join([*seen, current.ref])
                raise ValueError(f"label refs form a cycle: {cycle}")
            seen.append(current.ref)
            current = self.labels[current.ref]

    def segment_references(self) -> set[str]:
        """Keys of the segments named by this variable's override conditions."""
        return {
            condition.segment
            for override in self.overrides
            for condition in override.conditions
            if isinstance(condition, InSegment | NotInSegment)
        }


class VariableTypeConfig(BaseModel):
    """A named JSON schema that several variables can share."""

    name: str = Field(min_length=1, max_length=256)
    json_schema: dict[str, Any]
    description: str | None = None
    source_hint: str | None = None
    """Where the type is defined in code, e.g. ``myapp.config.AgentConfig``."""


class VariableLike(Protocol):
    """What the config model (and pushing / validating) need of an SDK variable: `setpoint.Variable` is one."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def type_adapter(self) -> TypeAdapter[Any]: ...
    @property
    def default(self) -> Any: ...


class VariablesConfig(BaseModel):
    """Every variable (and segment) of a project: what a Setpoint server serves and a file holds."""

    variables: dict[VariableName, VariableConfig] = {}
    segments: dict[str, Segment] = {}

    @model_validator(mode="after")
    def _check_consistency(self) -> VariablesConfig:
        for key, variable in self.variables.items():
            if variable.name != key:
                raise ValueError(f"variable stored under key {key!r} is named {variable.name!r}; they must match")
        for key, segment in self.segments.items():
            if segment.key != key:
                raise ValueError(f"segment stored under key {key!r} has key {segment.key!r}; they must match")
        owners: dict[str, str] = {}
        for variable in self.variables.values():
            for alias in variable.aliases or ():
                if alias in self.variables:
                    raise ValueError(f"alias {alias!r} of variable {variable.name!r} is the name of another variable")
                if alias in owners:
                    raise ValueError(f"alias {alias!r} is used by both {owners[alias]!r} and {variable.name!r}")
                owners[alias] = variable.name
            missing = sorted(variable.segment_references() - self.segments.keys())
            if missing:
                raise ValueError(f"variable {variable.name!r} refers to unknown segment(s): {', '.join(missing)}")
        self._check_segment_graph()
        return self

    def _check_segment_graph(self) -> None:
        for key, segment in self.segments.items():
            missing = sorted(segment.referenced_segments() - self.segments.keys())
            if missing:
                raise ValueError(f"segment {key!r} refers to unknown segment(s): {', '.join(missing)}")
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done

        def visit(key: str, path: list[str]) -> None:
            if state.get(key) == 2:
                return
            if state.get(key) == 1:
                cycle = " -> ".join([*path[path.index(key) :], key])
                raise ValueError(f"segments refer to each other in a cycle: {cycle}")
            state[key] = 1
            for child in sorted(self.segments[key].referenced_segments()):
                visit(child, [*path, key])
            state[key] = 2

        for key in sorted(self.segments):
            visit(key, [])

    # --- conversions -------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON-compatible data."""
        return self.model_dump(mode="json")

    def to_json(self, *, indent: int | None = 2) -> str:
        """The config as JSON text."""
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> VariablesConfig:
        """Parse and validate a config from JSON text."""
        return cls.model_validate_json(text)

    def to_yaml(self) -> str:
        """The config as YAML text, for a human to edit: optional fields that are unset (None) are left out, so
        reading it back gives the same config (`to_json` keeps every field, as the Logfire SDK reads it)."""
        from setpoint.config._io import dump_yaml

        return dump_yaml(_without_unset(self, self.to_dict()))

    @classmethod
    def from_yaml(cls, text: str) -> VariablesConfig:
        """Parse and validate a config from YAML text."""
        from setpoint.config._io import load_yaml

        return cls.model_validate(load_yaml(text, source="<yaml text>"))

    @classmethod
    def read(cls, path: str | PathLike[str]) -> VariablesConfig:
        """Read a config file: YAML for ``.yaml``/``.yml``, JSON for ``.json``."""
        from setpoint.config._io import read_config_data

        return cls.model_validate(read_config_data(Path(path)))

    def write(self, path: str | PathLike[str]) -> None:
        """Write the config to a file: YAML for ``.yaml``/``.yml``, JSON for ``.json`` (atomically)."""
        from setpoint.config._io import write_config_data

        path = Path(path)
        data = self.to_dict()
        write_config_data(path, data if path.suffix.lower() == ".json" else _without_unset(self, data))

    def merge(self, other: VariablesConfig) -> VariablesConfig:
        """A new config with the variables and segments of both; ``other`` wins on a name clash."""
        return VariablesConfig(
            variables={**self.variables, **other.variables},
            segments={**self.segments, **other.segments},
        )

    @classmethod
    def from_variables(cls, variables: Iterable[VariableLike]) -> VariablesConfig:
        """A template config for code-defined variables: name, description, JSON schema and example, no labels."""
        configs: dict[str, VariableConfig] = {}
        for variable in variables:
            example = None
            if not callable(variable.default):
                example = variable.type_adapter.dump_json(variable.default).decode()
            configs[variable.name] = VariableConfig(
                name=variable.name,
                description=variable.description,
                json_schema=variable.type_adapter.json_schema(),
                example=example,
                template_inputs_schema=getattr(variable, "template_inputs_schema", None),
            )
        return cls(variables=configs)

    def get_variable(self, name: str) -> VariableConfig | None:
        """The config of ``name``, following aliases."""
        found = self.variables.get(name)
        if found is not None:
            return found
        for variable in self.variables.values():
            if variable.aliases and name in variable.aliases:
                return variable
        return None


def _without_unset(value: Any, data: Any) -> Any:
    """``data`` (the JSON dump of ``value``) without the fields of models that are None where None is the
    default; None elsewhere (a required field, a value inside a JSON value) stays."""
    if isinstance(value, BaseModel) and isinstance(data, dict):
        fields = type(value).model_fields
        out: dict[str, Any] = {}
        for key, item in data.items():
            name = next((n for n, f in fields.items() if (f.serialization_alias or f.alias or n) == key), None)
            info = fields.get(name) if name is not None else None
            if info is None:
                out[key] = item
                continue
            attr = getattr(value, name) if name is not None else None
            if attr is None and not info.is_required() and info.default is None:
                continue
            out[key] = _without_unset(attr, item)
        return out
    if isinstance(value, dict) and isinstance(data, dict) and len(value) == len(data):
        return {key: _without_unset(v, item) for (key, item), v in zip(data.items(), value.values(), strict=True)}
    if isinstance(value, list | tuple) and isinstance(data, list) and len(value) == len(data):
        return [_without_unset(v, item) for v, item in zip(value, data, strict=True)]
    return data
