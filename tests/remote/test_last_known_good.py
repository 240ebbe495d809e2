"""Last known good: bad, partial or half-invalid responses never replace what works.

`merge_response` is tested directly; the provider is pointed at a tiny stub HTTP server that serves whatever
the test says (the real server cannot be made to misbehave), so the whole fetch path is exercised.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from setpoint._remote.cache import load_cache, save_cache
from setpoint._remote.lkg import InvalidResponseError, load_response, merge_response
from setpoint._remote.options import RemoteOptions
from setpoint._remote.provider import RemoteProvider
from setpoint.config import VariablesConfig


def variable(name: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {"main": {"version": 1, "serialized_value": json.dumps(value)}},
        "rollout": {"labels": {"main": 1.0}},
        **extra,
    }


def config_data(**variables: dict[str, Any]) -> dict[str, Any]:
    return {"variables": variables}


GOOD = config_data(a=variable("a", 1), b=variable("b", "x"))


def test_valid_response_is_taken_whole() -> None:
    merged = merge_response(None, GOOD)
    assert sorted(merged.config.variables) == ["a", "b"] and merged.problems == []


@pytest.mark.parametrize(
    "data",
    [None, [], "text", {}, {"variables": []}, {"variables": {}, "segments": []}],
    ids=["null", "list", "string", "no-variables", "variables-not-object", "segments-not-object"],
)
def test_response_that_is_not_a_config_is_refused(data: Any) -> None:
    with pytest.raises(InvalidResponseError):
        merge_response(VariablesConfig.model_validate(GOOD), data)


def test_one_invalid_variable_keeps_its_last_good_version_and_the_others_update() -> None:
    previous = merge_response(None, GOOD).config
    bad_b = variable("b", "y", rollout={"labels": {"missing": 1.0}})
    merged = merge_response(previous, config_data(a=variable("a", 2), b=bad_b, c=variable("c", True)))
    assert merged.config.variables["a"].labels["main"].serialized_value == "2"  # type: ignore[union-attr]
    assert merged.config.variables["b"] == previous.variables["b"]
    assert "c" in merged.config.variables
    assert len(merged.problems) == 1 and "'b'" in merged.problems[0] and "last good" in merged.problems[0]


def test_new_invalid_variable_is_left_out() -> None:
    merged = merge_response(None, config_data(a=variable("a", 1), bad=variable("bad", 1, rollout={"labels": {"x": 2}})))
    assert list(merged.config.variables) == ["a"]
    assert "left out" in merged.problems[0]


def test_unknown_condition_kind_from_a_newer_server_is_accepted() -> None:
    override = {"conditions": [{"kind": "value-is-prime", "attribute": "n"}], "rollout": {"labels": {"main": 1.0}}}
    merged = merge_response(None, config_data(a=variable("a", 1, overrides=[override])))
    assert merged.problems == [] and "a" in merged.config.variables


def test_inconsistent_parts_fall_back_to_the_previous_segments() -> None:
    segment = {"key": "beta", "name": "Beta", "included": ["u1"]}
    uses = {"conditions": [{"kind": "in-segment", "segment": "beta"}], "rollout": {"labels": {"main": 1.0}}}
    previous = merge_response(
        None, {"variables": {"a": variable("a", 1, overrides=[uses])}, "segments": {"beta": segment}}
    )
    broken = {"variables": {"a": variable("a", 2, overrides=[uses])}, "segments": {"beta": {"key": "beta", "rules": 5}}}
    merged = merge_response(previous.config, broken)
    assert "beta" in merged.config.segments
    assert merged.config.variables["a"].labels["main"].serialized_value == "2"  # type: ignore[union-attr]
    assert merged.problems


SEGMENT = {"key": "beta", "name": "Beta", "included": ["u1"]}
USES_BETA = {"conditions": [{"kind": "in-segment", "segment": "beta"}], "rollout": {"labels": {"main": 1.0}}}


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, GOOD),
        (GOOD, config_data(a=variable("a", 2), b=variable("b", "y", rollout={"labels": {"missing": 1.0}}))),
        (None, config_data(a=variable("a", 1), bad=variable("bad", 1, rollout={"labels": {"x": 2}}))),
        (GOOD, config_data(a=variable("a", 1, overrides=[{"conditions": [{"kind": "new-kind"}], "rollout": {}}]))),
        (
            {"variables": {"a": variable("a", 1, overrides=[USES_BETA])}, "segments": {"beta": SEGMENT}},
            {
                "variables": {"a": variable("a", 2, overrides=[USES_BETA])},
                "segments": {"beta": {"key": "beta", "rules": 5}},
            },
        ),
        (GOOD, {"variables": {"a": variable("a", 3, overrides=[USES_BETA])}}),  # names a segment that is not there
        (GOOD, config_data(a=variable("a", 1, aliases=["b"]), b=variable("b", 2))),  # an alias clashes with a name
        (GOOD, config_data(a=variable("a", 1), b={**variable("b", 2), "name": "c"})),  # key and name differ
    ],
    ids=["valid", "one-invalid", "new-invalid", "unknown-kind", "bad-segment", "missing-segment", "alias", "name"],
)
def test_the_compiled_path_serves_what_the_model_path_does(before: Any, after: Any) -> None:
    """`load_response` (what the provider uses) = `merge_response` + `compile_config` (the reference)."""
    reference_before = merge_response(None, before).config if before is not None else None
    compiled_before = load_response(None, before).compiled if before is not None else None
    try:
        reference = merge_response(reference_before, after)
    except InvalidResponseError:
        with pytest.raises(InvalidResponseError):
            load_response(compiled_before, after)
        return
    loaded = load_response(compiled_before, after)
    assert loaded.compiled.config.model_dump(mode="json") == reference.config.model_dump(mode="json")
    assert loaded.problems == reference.problems
    assert loaded.variables.keys() == reference.config.variables.keys()  # what the cache file gets


def test_cache_round_trip_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    assert load_cache(path) is None
    config = VariablesConfig.model_validate(GOOD)
    save_cache(path, config, "http://x")
    assert load_cache(path) == config
    path.write_text("{not json")
    assert load_cache(path) is None
    path.write_text(json.dumps({"format": 99, "config": GOOD}))
    assert load_cache(path) is None
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind


class Stub:
    """What the stub server answers next: (status, body bytes, headers)."""

    def __init__(self) -> None:
        self.status = 200
        self.body = json.dumps(GOOD).encode()
        self.headers: dict[str, str] = {}
        self.requests = 0
        self.delay = 0.0

    def serve(self, data: Any = None, *, raw: bytes | None = None, status: int = 200) -> None:
        self.status = status
        self.body = raw if raw is not None else json.dumps(data).encode()


@pytest.fixture
def stub() -> Iterator[tuple[Stub, str]]:
    state = Stub()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests += 1
            if self.path.startswith("/v1/variable-updates/"):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            time.sleep(state.delay)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def served(provider: RemoteProvider, name: str) -> Any:
    assert provider.compiled is not None
    value = provider.compiled.evaluate(name, "k").serialized_value
    return None if value is None else json.loads(value)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"{not json", 200),
        (json.dumps(GOOD).encode()[:40], 200),  # truncated
        (b"null", 200),
        (b'{"detail": "boom"}', 500),
        (b"<html>proxy error</html>", 502),
        (json.dumps({"variables": "nope"}).encode(), 200),
    ],
    ids=["not-json", "truncated", "null", "500", "html-502", "wrong-shape"],
)
def test_corrupt_response_keeps_the_last_good_config(stub: tuple[Stub, str], raw: bytes, status: int) -> None:
    state, url = stub
    provider = RemoteProvider(RemoteOptions(url=url, api_key="k", polling_interval=timedelta(seconds=60), sse=False))
    provider.refresh(force=True)
    assert served(provider, "a") == 1
    good = provider.compiled
    state.serve(raw=raw, status=status)
    provider.refresh(force=True)
    assert provider.compiled is good
    assert served(provider, "a") == 1 and served(provider, "b") == "x"
    assert provider.last_error is not None
    state.serve(config_data(a=variable("a", 5)))
    provider.refresh(force=True)
    assert served(provider, "a") == 5 and provider.last_error is None
    provider.shutdown(5)


def test_half_invalid_response_updates_the_valid_variables(stub: tuple[Stub, str], tmp_path: Path) -> None:
    state, url = stub
    cache = tmp_path / "cache.json"
    options = RemoteOptions(url=url, api_key="k", polling_interval=timedelta(seconds=60), sse=False, cache_path=cache)
    provider = RemoteProvider(options)
    provider.refresh(force=True)
    state.serve(config_data(a=variable("a", 2), b={"name": "b", "labels": {"main": {"version": "x"}}}))
    provider.refresh(force=True)
    assert served(provider, "a") == 2 and served(provider, "b") == "x"
    cached = load_cache(cache)
    assert cached is not None and sorted(cached.variables) == ["a", "b"]
    provider.shutdown(5)


@pytest.mark.parametrize("block", [True, False])
def test_first_fetch_wait_is_bounded(stub: tuple[Stub, str], block: bool) -> None:
    from setpoint._sdk.configure import configure, shutdown
    from setpoint._sdk.variable import var

    state, url = stub
    state.delay = 1.5
    a = var("a", type=int, default=-1)
    options = RemoteOptions(
        url=url, api_key="k", sse=False, block_before_first_resolve=block, first_fetch_timeout=timedelta(seconds=0.3)
    )
    started = time.monotonic()
    configure(remote=options, instrument=False)
    try:
        waited = time.monotonic() - started
        assert (0.25 < waited < 1.2) if block else (waited < 0.25)
        assert a.get().value == -1 and a.get().reason == "code_default"  # defaults until the first answer
        deadline = time.monotonic() + 5
        while a.get().value != 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert a.get().value == 1
    finally:
        shutdown(5)
