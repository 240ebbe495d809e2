"""The on-disk last-known-good cache: written atomically, read when the server cannot be reached at start."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from setpoint.config import VariablesConfig

__all__ = ["load_cache", "save_cache"]

_FORMAT = 1


def save_cache(path: Path, config: VariablesConfig, url: str) -> None:
    """Write ``config`` to ``path`` atomically (a crash never leaves half a file)."""
    document = {
        "format": _FORMAT,
        "url": url,
        "saved_at": datetime.now(UTC).isoformat(),
        "config": config.to_dict(),
    }
    text = json.dumps(document, ensure_ascii=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_cache(path: Path) -> VariablesConfig | None:
    """The cached config, or None when there is no usable cache file (missing, unreadable, invalid)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        return None
    try:
        return VariablesConfig.model_validate(document.get("config"), context={"allow_unknown_conditions": True})
    except ValidationError:
        return None
