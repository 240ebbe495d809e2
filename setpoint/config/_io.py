"""Reading and writing config files (YAML or JSON, chosen by extension)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from setpoint.exceptions import ConfigFileError

__all__ = ["dump_yaml", "load_yaml", "read_config_data", "write_config_data"]

_YAML_SUFFIXES = {".yaml", ".yml"}


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _YAML_SUFFIXES:
        return "yaml"
    if suffix == ".json":
        return "json"
    raise ConfigFileError(f"{path}: unknown config file type {suffix!r}; use .yaml, .yml or .json")


def load_yaml(text: str, *, source: str) -> Any:
    """Parse YAML text (safe loader), naming ``source`` in the error."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{source}: not valid YAML: {exc}") from None


def dump_yaml(data: Any) -> str:
    """YAML text for plain data, keeping key order."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def read_config_data(path: Path) -> Any:
    """The parsed content of a config file."""
    kind = _format(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    if kind == "yaml":
        data = load_yaml(text, source=str(path))
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigFileError(f"{path}: not valid JSON: {exc}") from None
    if data is None:
        return {"variables": {}}
    return data


def write_config_data(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` atomically (a reader never sees half a file)."""
    kind = _format(path)
    text = dump_yaml(data) if kind == "yaml" else json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
