"""Each project's served config, held in memory and updated per change: a fetch does no database work.

A project's snapshot is assembled from parts kept per variable and per segment: each variable's JSON in
Setpoint's form and in the form served to Logfire SDK clients (with that variable's warnings), and its
validated `VariableConfig`. A change of a variable re-reads and re-serializes that variable only; a change of
a segment re-reads the segment and re-serializes (Logfire form) only the variables whose overrides name it.
The bodies are then joined from the parts, their ETags are hashes of the parts' hashes (so they change
exactly when the content does, and every server process computes the same ones), and each compressed body
(gzip, brotli) is built at most once per snapshot, when a client first asks for it.

Changes are queued (`mark`) and applied by the next `get` (in a worker thread, never on the event loop);
`cached` returns None while changes are pending or being applied, so a stale snapshot is never served.

Server-side evaluation (OFREP, ``/v1/resolve/``, the simulator) uses the snapshot's compiled config
(`Snapshot.compiled`), built on first use from the last compiled config before it with
`CompiledConfig.updated` (only the variables that changed since are compiled again), or in full when there is
none or most of the project changed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import brotli

from setpoint._core.evaluator import CompiledConfig, compile_config
from setpoint._core.jsonvalues import STORED_CONFIG
from setpoint._server.services.logfire_compat import variable_to_logfire
from setpoint._server.services.wire import project_wire, read_variable_wire, segment_wire
from setpoint._server.storage import ReadTx, Storage
from setpoint.config import Segment, VariableConfig, VariablesConfig

Encoding = Literal["gzip", "br"]
MIN_COMPRESSED_SIZE = 1024
"""Bodies smaller than this are always sent as they are."""
GZIP_LEVEL = 6
BROTLI_QUALITY = 5
"""Brotli's default (11) is far slower for a few percent smaller output; 5 beats gzip -6 on size and speed."""


_STORED = {STORED_CONFIG: True}
"""Read what storage holds leniently (values and patterns from before stricter checks must not break a project)."""


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _mix(kind: bytes, key: bytes, data: bytes) -> int:
    """A part's contribution to its snapshot's ETag: the ETag is the XOR of its parts' (so a change updates it
    in O(1), and every process computes the same one for the same content)."""
    return int.from_bytes(hashlib.sha256(kind + key + b"\x00" + data).digest()[:16], "big")


@dataclass(frozen=True, slots=True)
class VariablePart:
    """One variable as served: both forms' JSON with their ETag contributions, the Logfire warnings, the
    config."""

    key: bytes
    """The name as a JSON string."""
    native: bytes
    native_digest: bytes
    native_mix: int
    logfire: bytes
    logfire_mix: int
    warnings: tuple[str, ...]
    config: VariableConfig
    segments: frozenset[str]
    """The segments its overrides name (whose change re-serializes its Logfire form)."""


@dataclass(frozen=True, slots=True)
class SegmentPart:
    """One segment as served."""

    key: bytes
    wire: dict[str, Any]
    json: bytes
    digest: bytes
    mix: int
    model: Segment


class Variant:
    """One serialized form of a config: its ETag (always), and its body, warnings and compressed bodies, each
    built on first use (``ready``/``encoded`` return what is built without doing work, for the event loop;
    ``build``/``encode`` build it, in a worker thread)."""

    __slots__ = ("_body", "_builder", "_encoded", "_lock", "_warnings", "etag")

    def __init__(self, etag: str, builder: Callable[[], tuple[bytes, tuple[str, ...]]]) -> None:
        self.etag = etag
        self._builder = builder
        self._body: bytes | None = None
        self._warnings: tuple[str, ...] = ()
        self._encoded: dict[Encoding, bytes] = {}
        self._lock = threading.Lock()

    def ready(self) -> bytes | None:
        """The body if it is built (no work: safe on the event loop)."""
        return self._body

    def build(self) -> bytes:
        """The body, joined from the parts on the first call (blocking: call from a worker thread)."""
        body = self._body
        if body is None:
            with self._lock:
                body = self._body
                if body is None:
                    body, self._warnings = self._builder()
                    self._body = body
        return body

    @property
    def body(self) -> bytes:
        """The body (built if needed)."""
        return self.build()

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the body leaves out (Logfire form), known once the body is built."""
        self.build()
        return self._warnings

    def encoded(self, encoding: Encoding) -> bytes | None:
        """The body compressed with ``encoding`` if it was built already (no work: safe on the event loop)."""
        return self._encoded.get(encoding)

    def encode(self, encoding: Encoding) -> bytes:
        """The body compressed with ``encoding``, built on the first call (blocking: call from a worker)."""
        body = self.build()
        with self._lock:
            found = self._encoded.get(encoding)
            if found is None:
                if encoding == "gzip":
                    found = gzip.compress(body, GZIP_LEVEL, mtime=0)
                else:
                    found = brotli.compress(body, quality=BROTLI_QUALITY)
                self._encoded[encoding] = found
            return found


def _assemble(variables: Iterable[tuple[bytes, bytes]], segments: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The body ``{"variables":{...}[,"segments":{...}]}`` joined from (JSON key, JSON value) parts."""
    chunks: list[bytes] = [b'{"variables":{', b",".join(key + b":" + data for key, data in variables), b"}"]
    segment_chunks = [key + b":" + data for key, data in segments]
    if segment_chunks:
        chunks.extend((b',"segments":{', b",".join(segment_chunks), b"}"))
    chunks.append(b"}")
    return b"".join(chunks)


def _etag(mix: int) -> str:
    return f'"{mix:032x}"'


HISTORY = 64
"""How many changes back a delta (``GET /v1/variables/?since=<ETag>``) can start from."""


@dataclass(frozen=True, slots=True)
class Step:
    """One change between two snapshots: the ETag (Setpoint form) before it and what it touched."""

    etag: str
    variables: frozenset[str]
    segments: frozenset[str]


@dataclass(frozen=True, slots=True)
class _CompileBase:
    """The last compiled config before a snapshot, and what changed since (the variables and segments that
    ``CompiledConfig.updated`` must compile again)."""

    compiled: CompiledConfig
    variables: frozenset[str]
    segments: frozenset[str]


@dataclass
class _Counters:
    """What the cache did: variable parts serialized, segment parts serialized, full project loads; variables
    compiled for server-side evaluation, and how many of those compiles were of the whole project."""

    variables: int = 0
    segments: int = 0
    full_loads: int = 0
    compiled: int = 0
    full_compiles: int = 0


class Snapshot:
    """A project's config as served: Setpoint's form and the Logfire-compatible form, the parts they were
    assembled from (the next snapshot reuses every part that did not change), the recent changes that led
    to it (`delta`), and its compiled config (`compiled`)."""

    __slots__ = (
        "_base",
        "_compile_lock",
        "_compiled",
        "_config",
        "_counters",
        "history",
        "logfire",
        "mixes",
        "native",
        "project_id",
        "segments",
        "variables",
    )

    def __init__(
        self,
        project_id: int,
        variables: Mapping[str, VariablePart],
        segments: Mapping[str, SegmentPart],
        history: tuple[Step, ...] = (),
        mixes: tuple[int, int] | None = None,
        counters: _Counters | None = None,
    ) -> None:
        self.project_id = project_id
        self.variables = variables
        self.segments = segments
        self.history = history
        if mixes is None:
            native_mix = logfire_mix = 0
            for part in variables.values():
                native_mix ^= part.native_mix
                logfire_mix ^= part.logfire_mix
            for segment in segments.values():
                native_mix ^= segment.mix
            mixes = (native_mix, logfire_mix)
        self.mixes = mixes
        self.native = Variant(_etag(mixes[0]), self._native_body)
        self.logfire = Variant(_etag(mixes[1]), self._logfire_body)
        self._config: VariablesConfig | None = None
        self._compiled: CompiledConfig | None = None
        self._base: _CompileBase | None = None
        self._compile_lock = threading.Lock()
        self._counters = counters if counters is not None else _Counters()

    def _native_body(self) -> tuple[bytes, tuple[str, ...]]:
        variables, segments = self.variables, self.segments
        body = _assemble(
            ((variables[n].key, variables[n].native) for n in sorted(variables)),
            ((segments[k].key, segments[k].json) for k in sorted(segments)),
        )
        return body, ()

    def _logfire_body(self) -> tuple[bytes, tuple[str, ...]]:
        variables = self.variables
        names = sorted(variables)
        body = _assemble(((variables[n].key, variables[n].logfire) for n in names), ())
        return body, tuple(w for n in names for w in variables[n].warnings)

    def delta(self, since: str) -> bytes | None:
        """What changed since the snapshot whose Setpoint-form ETag is ``since``, as JSON:
        ``{"delta": {"since": ...}, "variables": {changed}, "removed": [names], "segments": {changed},
        "removed_segments": [keys]}``; None when ``since`` is not among the recent snapshots (send it all)."""
        for index in range(len(self.history) - 1, -1, -1):
            if self.history[index].etag == since:
                break
        else:
            return None
        names: set[str] = set()
        keys: set[str] = set()
        for step in self.history[index:]:
            names |= step.variables
            keys |= step.segments
        changed = [(self.variables[n].key, self.variables[n].native) for n in sorted(names) if n in self.variables]
        removed = sorted(n for n in names if n not in self.variables)
        changed_segments = [(self.segments[k].key, self.segments[k].json) for k in sorted(keys) if k in self.segments]
        removed_segments = sorted(k for k in keys if k not in self.segments)
        chunks = [b'{"delta":{"since":', _json(since), b'},"variables":{']
        chunks.append(b",".join(key + b":" + data for key, data in changed))
        chunks.extend((b'},"removed":', _json(removed), b',"segments":{'))
        chunks.append(b",".join(key + b":" + data for key, data in changed_segments))
        chunks.extend((b'},"removed_segments":', _json(removed_segments), b"}"))
        return b"".join(chunks)

    @property
    def config(self) -> VariablesConfig:
        """The validated config (assembled from the per-variable configs without validating them again)."""
        if self._config is None:
            self._config = VariablesConfig.model_construct(
                variables={n: self.variables[n].config for n in sorted(self.variables)},
                segments={k: self.segments[k].model for k in sorted(self.segments)},
            )
        return self._config

    def compiled_ready(self) -> CompiledConfig | None:
        """The compiled config if it is built (no work: safe on the event loop)."""
        return self._compiled

    def compiled(self) -> CompiledConfig:
        """The config compiled for evaluation, built on the first call (blocking: call from a worker thread):
        from the last compiled config before this snapshot, compiling again only what changed since, or in
        full when there is none or when more than half of the variables changed."""
        compiled = self._compiled
        if compiled is not None:
            return compiled
        with self._compile_lock:
            compiled = self._compiled
            if compiled is None:
                base = self._base
                if base is None or len(base.variables) > len(self.variables) // 2:
                    compiled = compile_config(self.config)
                    self._counters.full_compiles += 1
                else:
                    compiled = base.compiled.updated(self.config, base.variables, base.segments)
                self._counters.compiled += compiled.recompiled
                self._compiled = compiled
                self._base = None  # the previous compiled config is no longer needed
        return compiled

    def _compile_base(self, variables: Iterable[str], segments: Iterable[str]) -> _CompileBase | None:
        """What the snapshot following this one, with ``variables`` and ``segments`` changed, compiles from."""
        base = self._base  # read before the compiled config: a compile finishing meanwhile sets it first
        compiled = self._compiled
        if compiled is not None:
            return _CompileBase(compiled, frozenset(variables), frozenset(segments))
        if base is not None:
            return _CompileBase(base.compiled, base.variables.union(variables), base.segments.union(segments))
        return None


def _segment_part(wire: dict[str, Any]) -> SegmentPart:
    model = Segment.model_validate(wire, context=_STORED)
    data = _json(wire)
    key = _json(model.key)
    return SegmentPart(key=key, wire=wire, json=data, digest=_digest(data), mix=_mix(b"s", key, data), model=model)


def _variable_part(wire: dict[str, Any], segments: Mapping[str, SegmentPart]) -> VariablePart:
    config = VariableConfig.model_validate(wire, context=_STORED)
    native = _json(wire)
    logfire_wire, warnings = variable_to_logfire(config.name, wire, {k: s.wire for k, s in segments.items()})
    logfire = _json(logfire_wire)
    key = _json(config.name)
    return VariablePart(
        key=key,
        native=native,
        native_digest=_digest(native),
        native_mix=_mix(b"v", key, native),
        logfire=logfire,
        logfire_mix=_mix(b"v", key, logfire),
        warnings=tuple(warnings),
        config=config,
        segments=frozenset(config.segment_references()),
    )


def _changed(before: Mapping[str, Any], after: Mapping[str, Any], names: Iterable[str], digest: Any) -> frozenset[str]:
    """Which of ``names`` were added, removed or changed (Setpoint form) between two snapshots' parts."""
    changed = set()
    for name in names:
        old, new = before.get(name), after.get(name)
        if old is None or new is None:
            if old is not new:
                changed.add(name)
        elif digest(old) != digest(new):
            changed.add(name)
    return frozenset(changed)


@dataclass
class _Pending:
    variables: set[str] = field(default_factory=set)
    segments: set[str] = field(default_factory=set)


class SnapshotCache:
    """Snapshots by project id. ``mark`` queues a change of one variable or segment, ``invalidate`` drops a
    project's snapshot (the next ``get`` loads the project in full); ``get`` applies what is queued."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._snapshots: dict[int, Snapshot] = {}
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()
        self._build_locks: dict[int, threading.Lock] = {}
        self._building: set[int] = set()
        self._epochs: dict[int, int] = {}
        self.counters = _Counters()

    def cached(self, project_id: int) -> Snapshot | None:
        """The snapshot if it is built and current (no I/O, safe on the event loop). None while changes are
        queued *or being applied* by a ``get``: the stored snapshot predates them until that ``get`` stores its
        result, and a client told of a change (SSE) must not be answered from before it."""
        with self._lock:
            if project_id in self._pending or project_id in self._building:
                return None
            return self._snapshots.get(project_id)

    def get(self, project_id: int) -> Snapshot:
        """The current snapshot: built from the database when missing, updated with the queued changes
        (blocking: call from a worker thread)."""
        snapshot = self.cached(project_id)
        if snapshot is not None:
            return snapshot
        with self._lock:
            build_lock = self._build_locks.setdefault(project_id, threading.Lock())
        with build_lock:
            with self._lock:
                snapshot = self._snapshots.get(project_id)
                pending = self._pending.pop(project_id, None)
                if snapshot is not None and pending is None:
                    return snapshot
                epoch = self._epochs.get(project_id, 0)
                self._building.add(project_id)  # changes marked from now on are queued for the next get
            stored = False
            try:
                with self._storage.read() as tx:
                    if snapshot is None:
                        snapshot = self._load(tx, project_id)
                    elif pending is not None:
                        snapshot = self._update(tx, snapshot, pending)
                with self._lock:
                    if self._epochs.get(project_id, 0) == epoch:  # not invalidated meanwhile
                        self._snapshots[project_id] = snapshot
                        stored = True
                return snapshot
            finally:
                with self._lock:
                    self._building.discard(project_id)
                    if not stored and pending is not None and project_id in self._snapshots:
                        queued = self._pending.setdefault(project_id, _Pending())  # try again next time
                        queued.variables |= pending.variables
                        queued.segments |= pending.segments

    def _load(self, tx: ReadTx, project_id: int) -> Snapshot:
        self.counters.full_loads += 1
        data = project_wire(tx.load_project_state(project_id))
        segments = {key: _segment_part(wire) for key, wire in data.get("segments", {}).items()}
        self.counters.segments += len(segments)
        variables = {name: _variable_part(wire, segments) for name, wire in data["variables"].items()}
        self.counters.variables += len(variables)
        return Snapshot(project_id, variables, segments, counters=self.counters)

    def _update(self, tx: ReadTx, snapshot: Snapshot, pending: _Pending) -> Snapshot:
        project_id = snapshot.project_id
        segments = dict(snapshot.segments)
        for key in pending.segments:
            record = tx.get_segment(project_id, key)
            if record is None:
                segments.pop(key, None)
            else:
                segments[key] = _segment_part(segment_wire(record))
                self.counters.segments += 1
        variables = dict(snapshot.variables)
        names = set(pending.variables)
        if pending.segments:  # the Logfire form of a variable depends on the segments it names
            names |= {name for name, part in variables.items() if part.segments & pending.segments}
        for name in names:
            variable = tx.get_variable(project_id, name)
            if variable is None:
                variables.pop(name, None)
                continue
            variables[name] = _variable_part(read_variable_wire(tx, variable), segments)
            self.counters.variables += 1
        native_mix, logfire_mix = snapshot.mixes
        for key in pending.segments:
            for part in (snapshot.segments.get(key), segments.get(key)):
                if part is not None:
                    native_mix ^= part.mix
        for name in names:
            for vpart in (snapshot.variables.get(name), variables.get(name)):
                if vpart is not None:
                    native_mix ^= vpart.native_mix
                    logfire_mix ^= vpart.logfire_mix
        updated = Snapshot(
            project_id, variables, segments, snapshot.history, (native_mix, logfire_mix), counters=self.counters
        )
        updated._base = snapshot._compile_base(names, pending.segments)
        if updated.native.etag != snapshot.native.etag:
            step = Step(
                snapshot.native.etag,
                _changed(snapshot.variables, variables, names, lambda part: part.native_digest),
                _changed(snapshot.segments, segments, pending.segments, lambda part: part.digest),
            )
            updated.history = (*snapshot.history[-(HISTORY - 1) :], step)
        return updated

    def mark(self, project_id: int, entity: str, name: str) -> None:
        """Queue a change of variable or segment ``name`` (any thread; no I/O). Nothing to do for a project
        whose snapshot is not built: its first ``get`` loads it in full."""
        with self._lock:
            if project_id not in self._snapshots and project_id not in self._building:
                return
            pending = self._pending.setdefault(project_id, _Pending())
            (pending.segments if entity == "segment" else pending.variables).add(name)

    def invalidate(self, project_id: int) -> None:
        """Forget a project's snapshot (the next ``get`` loads it in full)."""
        with self._lock:
            self._epochs[project_id] = self._epochs.get(project_id, 0) + 1
            self._snapshots.pop(project_id, None)
            self._pending.pop(project_id, None)

    def invalidate_all(self) -> None:
        """Forget every snapshot (e.g. after missing notifications while disconnected)."""
        with self._lock:
            for project_id in set(self._snapshots) | set(self._pending) | self._building:
                self._epochs[project_id] = self._epochs.get(project_id, 0) + 1
            self._snapshots.clear()
            self._pending.clear()
