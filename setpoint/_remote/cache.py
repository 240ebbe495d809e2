"""The on-disk last-known-good cache, read when the server cannot be reached at start.

Two files: the snapshot (``path``: every variable and segment as the server sent them, written atomically —
beside the target, fsynced, renamed) and a journal beside it (``<path>.journal``) to which each change is
appended as one line: ``<crc32 hex> <json>`` holding the changed variables and segments and the names removed,
fsynced. So a change costs what it carries, not a rewrite of the project. When the journal outgrows the
snapshot, the two are folded into a new snapshot (amortized, the cost still follows the changes).

Crash safety: a snapshot is replaced in one rename, so it is always a whole old or a whole new one. Each
snapshot has a random ``generation`` that its journal lines carry: lines of an older snapshot (a crash between
writing a snapshot and emptying the journal) are ignored. Reading stops at the first line that is torn (no
newline, wrong checksum, not JSON): everything before it is a state that was served. Before appending after
such a tear, the journal is cut back to its last whole line.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from setpoint.config import VariablesConfig

__all__ = ["CacheFile", "load_cache", "save_cache"]

_FORMAT = 2
_OLD_FORMAT = 1  # one file, no journal: still read
_MIN_COMPACT_BYTES = 64 * 1024


def _record_line(record: Mapping[str, Any]) -> bytes:
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
    return b"%08x %s\n" % (zlib.crc32(text), text)


def _parse_line(line: bytes) -> dict[str, Any] | None:
    checksum, _, text = line.partition(b" ")
    try:
        if int(checksum, 16) != zlib.crc32(text):
            return None
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


class CacheFile:
    """A snapshot plus a journal of changes, for one remote provider (see the module's docstring)."""

    def __init__(self, path: Path, url: str) -> None:
        self.path = path
        self.journal = path.with_name(path.name + ".journal")
        self.url = url
        self._generation: str | None = None
        """The generation of the snapshot this process wrote last (None: append needs a snapshot first)."""
        self._snapshot_bytes = 0
        self._journal_bytes = 0
        self.bytes_written = 0
        """Bytes written so far (snapshots and journal lines): what tests count."""
        self.snapshots_written = 0

    # --- writing -------------------------------------------------------------------------------------

    def write_snapshot(self, variables: Mapping[str, Any], segments: Mapping[str, Any]) -> None:
        """Replace everything with this config (the JSON documents as the server sent them); empties the
        journal."""
        generation = uuid.uuid4().hex
        document = {
            "format": _FORMAT,
            "url": self.url,
            "saved_at": datetime.now(UTC).isoformat(),
            "generation": generation,
            "config": {"variables": variables, "segments": segments},
        }
        data = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        _write_atomically(self.path, data)
        with contextlib.suppress(FileNotFoundError), self.journal.open("r+b") as handle:
            handle.truncate(0)  # lines of the old generation would be ignored anyway: this frees the space
        self._generation = generation
        self._snapshot_bytes = len(data)
        self._journal_bytes = 0
        self.bytes_written += len(data)
        self.snapshots_written += 1

    def append(
        self,
        variables: Mapping[str, Any],
        removed: list[str],
        segments: Mapping[str, Any],
        removed_segments: list[str],
    ) -> bool:
        """Append one change; False when there is no snapshot of this process to append to (write one)."""
        if self._generation is None or not self.path.exists():
            return False
        record: dict[str, Any] = {"generation": self._generation, "variables": variables}
        if removed:
            record["removed"] = removed
        if segments:
            record["segments"] = segments
        if removed_segments:
            record["removed_segments"] = removed_segments
        line = _record_line(record)
        with self.journal.open("ab") as handle:
            _cut_torn_tail(handle)
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self._journal_bytes += len(line)
        self.bytes_written += len(line)
        if self._journal_bytes > max(self._snapshot_bytes, _MIN_COMPACT_BYTES):
            self.compact()
        return True

    def forget_snapshot(self) -> None:
        """Make the next `append` decline (so the caller writes a whole snapshot): after a failed write."""
        self._generation = None

    def compact(self) -> None:
        """Fold the journal into a new snapshot."""
        data = self.read()
        if data is not None:
            self.write_snapshot(data["variables"], data["segments"])

    # --- reading -------------------------------------------------------------------------------------

    def read(self) -> dict[str, Any] | None:
        """The cached config as JSON data (``{"variables": ..., "segments": ...}``, not validated): the
        snapshot with every whole journal line of its generation applied; None when there is no usable
        snapshot."""
        try:
            document = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(document, dict) or document.get("format") not in (_FORMAT, _OLD_FORMAT):
            return None
        config = document.get("config")
        if not isinstance(config, dict) or not isinstance(config.get("variables"), dict):
            return None
        variables: dict[str, Any] = config["variables"]
        segments = config.get("segments")
        segments = dict(segments) if isinstance(segments, dict) else {}
        generation = document.get("generation")
        if document["format"] == _FORMAT and isinstance(generation, str):
            for record in self._records(generation):
                variables.update(record.get("variables") or {})
                for name in record.get("removed") or ():
                    variables.pop(name, None)
                segments.update(record.get("segments") or {})
                for key in record.get("removed_segments") or ():
                    segments.pop(key, None)
        return {"variables": variables, "segments": segments}

    def _records(self, generation: str) -> list[dict[str, Any]]:
        try:
            content = self.journal.read_bytes()
        except OSError:
            return []
        records: list[dict[str, Any]] = []
        for line in content.split(b"\n")[:-1]:  # the part after the last newline is torn (or empty)
            record = _parse_line(line)
            if record is None:
                break  # torn or damaged: what follows cannot be trusted to follow it
            if record.get("generation") != generation:
                continue
            if not isinstance(record.get("variables", {}), dict) or not isinstance(record.get("segments", {}), dict):
                break
            records.append(record)
        return records


def _cut_torn_tail(handle: Any) -> None:
    """Cut a journal opened for appending back to its last whole line (after a crash mid-append)."""
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        return
    with open(handle.name, "rb") as reader:
        reader.seek(size - 1)
        if reader.read(1) == b"\n":
            return
        reader.seek(0)
        content = reader.read(size)
    handle.truncate(content.rfind(b"\n") + 1)
    handle.seek(0, os.SEEK_END)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_cache(path: Path, config: VariablesConfig, url: str) -> None:
    """Write ``config`` to ``path`` as a new snapshot (atomically; a crash never leaves half a file)."""
    document = config.to_dict()
    CacheFile(path, url).write_snapshot(document["variables"], document["segments"])


def load_cache(path: Path) -> VariablesConfig | None:
    """The cached config, validated, or None when there is no usable cache (missing, unreadable, invalid)."""
    data = CacheFile(path, "").read()
    if data is None:
        return None
    try:
        return VariablesConfig.model_validate(data, context={"allow_unknown_conditions": True})
    except ValidationError:
        return None
