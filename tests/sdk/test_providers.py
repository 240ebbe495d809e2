"""configure(), shutdown(), and the local, file and no-op providers."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

import setpoint
from setpoint._sdk import state as sdk_state
from setpoint._sdk.providers.base import Provider
from setpoint.config import (
    LabeledValue,
    Rollout,
    RolloutOverride,
    ValueEquals,
    VariableConfig,
    VariablesConfig,
)
from tests.sdk.helpers import config_of, rollout_config, support_agent_config


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


# --- configure -------------------------------------------------------------------------------------------


def test_configure_with_a_config_object_uses_a_local_provider() -> None:
    provider = setpoint.configure(config=support_agent_config())
    assert isinstance(provider, setpoint.LocalProvider)
    assert setpoint.var("support_agent_config", type=dict, default={}).get().label == "standard"


def test_a_later_configure_replaces_the_earlier_one_and_shuts_it_down() -> None:
    class Recording(setpoint.LocalProvider):
        shut = False

        def shutdown(self, timeout: float | None = None) -> None:
            self.shut = True

    first = Recording(config_of(rollout_config("ab", {"a": 1.0})))
    setpoint.configure(provider=first)
    ab = setpoint.var("ab", type=str, default="code")
    assert ab.get().value == "a"
    setpoint.configure(config=config_of(rollout_config("ab", {"b": 1.0})))
    assert first.shut
    assert ab.get().value == "b"
    setpoint.configure()
    assert ab.get().reason == "code_default"


def test_configuring_the_same_provider_again_does_not_shut_it_down() -> None:
    provider = setpoint.LocalProvider(config_of(rollout_config("ab", {"a": 1.0})))
    setpoint.configure(provider=provider)
    setpoint.configure(provider=provider, instrument=False)
    assert sdk_state.CURRENT.provider is provider


def test_configure_rejects_two_sources() -> None:
    with pytest.raises(setpoint.ConfigurationError, match="one source"):
        setpoint.configure(config=VariablesConfig(), provider=setpoint.NoOpProvider())


def test_configure_rejects_bad_arguments() -> None:
    with pytest.raises(setpoint.ConfigurationError):
        setpoint.configure(config=42)  # type: ignore[arg-type]
    with pytest.raises(setpoint.ConfigurationError):
        setpoint.configure(provider=object())  # type: ignore[arg-type]


def test_configure_does_not_auto_connect_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SETPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SETPOINT_API_KEY", "key")
    provider = setpoint.configure()
    assert isinstance(provider, setpoint.NoOpProvider)


def test_configure_with_remote_builds_the_remote_provider_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    import setpoint._remote.provider as remote_module

    created: list[object] = []

    class FakeRemote(setpoint.LocalProvider):
        def __init__(self, options: setpoint.RemoteOptions) -> None:
            super().__init__(support_agent_config())
            self.options = options
            self.waited: float | None = None
            created.append(self)

        def wait_ready(self, timeout: float | None = None) -> bool:
            self.waited = timeout
            return True

    monkeypatch.setattr(remote_module, "RemoteProvider", FakeRemote)
    options = setpoint.RemoteOptions(url="http://example.invalid", api_key="k")
    provider = setpoint.configure(remote=options)
    assert created == [provider]
    assert isinstance(provider, FakeRemote) and provider.waited == 10.0
    quick = setpoint.RemoteOptions(url="http://example.invalid", api_key="k", block_before_first_resolve=False)
    provider = setpoint.configure(remote=quick)
    assert isinstance(provider, FakeRemote) and provider.waited is None


def test_shutdown_serves_code_defaults_afterwards() -> None:
    setpoint.configure(config=support_agent_config())
    agent = setpoint.var("support_agent_config", type=dict, default={"d": 1})
    assert agent.get().reason == "resolved"
    setpoint.shutdown()
    assert (agent.get().value, agent.get().reason) == ({"d": 1}, "code_default")


def test_refresh_delegates_to_the_current_provider() -> None:
    calls: list[tuple[str, bool]] = []

    class Counting(Provider):
        def refresh(self, force: bool = False) -> None:
            calls.append(("sync", force))

        async def refresh_async(self, force: bool = False) -> None:
            calls.append(("async", force))

    setpoint.configure(provider=Counting())
    flag = setpoint.var("flag", type=bool, default=False)
    flag.refresh_sync(force=True)
    asyncio.run(flag.refresh())
    assert calls == [("sync", True), ("async", False)]


def test_default_refresh_async_runs_refresh_in_a_thread() -> None:
    calls: list[bool] = []

    class Sync(Provider):
        def refresh(self, force: bool = False) -> None:
            calls.append(force)

    asyncio.run(Sync().refresh_async(force=True))
    assert calls == [True]


def test_build_config_from_registered_variables() -> None:
    from pydantic import BaseModel

    class AgentConfig(BaseModel):
        instructions: str
        max_tokens: int

    setpoint.var(
        "agent_config", type=AgentConfig, default=AgentConfig(instructions="hi", max_tokens=5), description="d"
    )
    setpoint.var("feature_enabled", type=bool, default=False)
    setpoint.var("dynamic", type=str, default=lambda key, attributes: "x")
    config = setpoint.build_config()
    assert list(config.variables) == ["agent_config", "feature_enabled", "dynamic"]
    agent = config.variables["agent_config"]
    assert agent.description == "d"
    assert json.loads(agent.example or "") == {"instructions": "hi", "max_tokens": 5}
    assert agent.json_schema is not None and set(agent.json_schema["properties"]) == {"instructions", "max_tokens"}
    assert config.variables["feature_enabled"].json_schema == {"type": "boolean"}
    assert config.variables["feature_enabled"].example == "false"
    assert config.variables["dynamic"].example is None
    assert list(setpoint.build_config([])) == list(VariablesConfig())


# --- LocalProvider ------------------------------------------------------------------------------------------


def test_local_provider_editing_methods() -> None:
    provider = setpoint.LocalProvider()
    setpoint.configure(provider=provider)
    prompt = setpoint.var("prompt", type=str, default="code")
    assert prompt.get().reason == "code_default"

    provider.create_variable(VariableConfig(name="prompt"))
    assert provider.set_label("prompt", "candidate", '"try this"') == 1
    provider.set_rollout("prompt", {"candidate": 1.0})
    assert (prompt.get().value, prompt.get().version) == ("try this", 1)

    assert provider.set_label("prompt", "candidate", '"try that"') == 2
    assert (prompt.get().value, prompt.get().version) == ("try that", 2)
    assert provider.config.variables["prompt"].latest_version is not None
    assert provider.config.variables["prompt"].latest_version.version == 2

    assert provider.set_label("prompt", "stable", ref="candidate") == 2
    provider.update_variable(
        "prompt",
        overrides=[
            RolloutOverride(
                conditions=[ValueEquals(attribute="plan", value="free")], rollout=Rollout(labels={"stable": 1.0})
            )
        ],
    )
    assert prompt.get(attributes={"plan": "free"}).label == "stable"
    provider.set_rollout("prompt", {})
    assert prompt.get().reason == "code_default"
    provider.delete_variable("prompt")
    assert provider.config.variables == {}
    assert prompt.get().value == "code"


def test_local_provider_rejects_bad_edits_and_keeps_the_last_good_config() -> None:
    provider = setpoint.LocalProvider(config_of(rollout_config("ab", {"a": 1.0})))
    setpoint.configure(provider=provider)
    ab = setpoint.var("ab", type=str, default="code")
    with pytest.raises(ValidationError) as info:
        provider.set_rollout("ab", {"missing": 1.0})
    assert "variables.ab" in str(info.value) and "missing" in str(info.value)
    with pytest.raises(ValidationError, match="sum"):
        provider.set_rollout("ab", {"a": 0.8, "b": 0.8})
    with pytest.raises(setpoint.ConfigurationError, match="already exists"):
        provider.create_variable(VariableConfig(name="ab"))
    with pytest.raises(setpoint.ConfigurationError, match="no variable named 'nope'"):
        provider.update_variable("nope", description="x")
    with pytest.raises(setpoint.ConfigurationError, match="no variable named 'nope'"):
        provider.delete_variable("nope")
    with pytest.raises(setpoint.ConfigurationError, match="exactly one"):
        provider.set_label("ab", "x")
    with pytest.raises(setpoint.ConfigurationError, match="renaming"):
        provider.update_variable("ab", name="other")
    with pytest.raises(ValidationError, match="not in `labels`"):
        provider.delete_label("ab", "a")
    with pytest.raises(setpoint.ConfigurationError, match="no label"):
        provider.delete_label("ab", "zzz")
    assert ab.get().value == "a"


def test_local_provider_checks_values_against_the_registered_type() -> None:
    provider = setpoint.LocalProvider()
    setpoint.var("limit", type=int, default=3)
    provider.create_variable({"name": "limit"})
    with pytest.raises(setpoint.VariableValueError, match=r"variable 'limit', label 'big' \(version 1\)"):
        provider.set_label("limit", "big", '"a lot"')
    provider.set_label("limit", "big", "100")
    provider.create_variable({"name": "unregistered", "labels": {"x": {"version": 1, "serialized_value": "[1]"}}})
    with pytest.raises(setpoint.VariableValueError):
        provider.set_config(
            config_of(
                VariableConfig(name="limit", labels={"x": LabeledValue(version=1, serialized_value="{}")}),
            )
        )
    assert set(provider.config.variables) == {"limit", "unregistered"}


# --- FileProvider ----------------------------------------------------------------------------------------------


def _write(path: Path, config: VariablesConfig) -> None:
    config.write(path)


def test_configure_with_a_yaml_path_reloads_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "variables.yaml"
    _write(path, config_of(rollout_config("ab", {"a": 1.0})))
    provider = setpoint.configure(config=path)
    assert isinstance(provider, setpoint.FileProvider)
    ab = setpoint.var("ab", type=str, default="code")
    assert ab.get().value == "a"
    _write(path, config_of(rollout_config("ab", {"b": 1.0}, {"a": "a", "b": "b"})))
    _wait_for(lambda: ab.get().value == "b")


def test_file_provider_keeps_the_last_good_config_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "variables.json"
    _write(path, config_of(rollout_config("ab", {"a": 1.0})))
    provider = setpoint.FileProvider(path, poll_interval=0.02)
    setpoint.configure(provider=provider)
    ab = setpoint.var("ab", type=str, default="code")
    caplog.set_level(logging.WARNING, logger="setpoint")

    path.write_text('{"variables": {"ab": {"name": "ab", "rollout": {"labels": {"zzz": 1}}}}}')
    _wait_for(lambda: provider.last_error is not None)
    time.sleep(0.2)  # several more polls of the same bad file
    assert ab.get().value == "a"
    assert isinstance(provider.last_error, ValidationError)
    warnings = [r for r in caplog.records if "still serving the last good config" in r.getMessage()]
    assert len(warnings) == 1

    path.write_text("{ not json")
    _wait_for(lambda: isinstance(provider.last_error, setpoint.ConfigFileError))
    assert ab.get().value == "a"
    path.unlink()
    _wait_for(lambda: "does not exist" in str(provider.last_error))
    assert ab.get().value == "a"

    _write(path, config_of(rollout_config("ab", {"b": 1.0}, {"a": "a", "b": "b"})))
    _wait_for(lambda: ab.get().value == "b")
    assert provider.last_error is None


def test_file_provider_refresh_and_errors_at_start(tmp_path: Path) -> None:
    with pytest.raises(setpoint.ConfigFileError, match="unknown config file type"):
        setpoint.FileProvider(tmp_path / "variables.txt")
    with pytest.raises(setpoint.ConfigFileError, match="does not exist"):
        setpoint.configure(config=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("variables: {ab: {name: ab, rollout: {labels: {x: 2}}}}")
    with pytest.raises(ValidationError):
        setpoint.configure(config=bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    provider = setpoint.FileProvider(empty, poll_interval=60)
    setpoint.configure(provider=provider)
    assert provider.config is not None and provider.config.variables == {}
    _write(empty, config_of(rollout_config("ab", {"a": 1.0})))
    provider.refresh(force=True)
    assert setpoint.var("ab", type=str, default="code").get().value == "a"


def test_file_provider_thread_stops_on_replace(tmp_path: Path) -> None:
    path = tmp_path / "variables.yaml"
    _write(path, VariablesConfig())
    provider = setpoint.configure(config=path)
    assert isinstance(provider, setpoint.FileProvider)
    thread = provider._thread
    assert thread is not None and thread.is_alive()
    setpoint.configure()
    thread.join(2)
    assert not thread.is_alive()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_file_provider_watches_again_in_a_forked_child(tmp_path: Path) -> None:
    path = tmp_path / "variables.yaml"
    script = textwrap.dedent(
        f"""
        import os, sys, time
        import setpoint
        from setpoint.config import LabeledValue, Rollout, VariableConfig, VariablesConfig

        def config(label):
            return VariablesConfig(variables={{"ab": VariableConfig(
                name="ab", labels={{label: LabeledValue(version=1, serialized_value='"' + label + '"')}},
                rollout=Rollout(labels={{label: 1.0}}))}})

        path = {str(path)!r}
        config("a").write(path)
        provider = setpoint.FileProvider(path, poll_interval=0.02)
        setpoint.configure(provider=provider)
        ab = setpoint.var("ab", type=str, default="code")
        assert ab.get().value == "a"
        pid = os.fork()
        if pid == 0:
            config("b").write(path)
            deadline = time.monotonic() + 5
            while ab.get().value != "b" and time.monotonic() < deadline:
                time.sleep(0.02)
            os._exit(0 if ab.get().value == "b" else 1)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_resolving_in_threads_while_the_config_changes() -> None:
    import threading

    provider = setpoint.LocalProvider(config_of(rollout_config("ab", {"a": 0.5, "b": 0.5}, {"a": 1, "b": 2})))
    setpoint.configure(provider=provider)
    ab = setpoint.var("ab", type=int, default=0)
    stop = threading.Event()
    bad: list[object] = []

    def resolve(worker: int) -> None:
        index = 0
        while not stop.is_set():
            index += 1
            resolved = ab.get(f"user-{worker}-{index}")
            if resolved.reason not in {"resolved", "code_default"} or resolved.value not in {0, 1, 2, 3}:
                bad.append(resolved)

    threads = [threading.Thread(target=resolve, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    try:
        for round_ in range(30):
            provider.set_label("ab", "a", "3" if round_ % 2 else "1")
            provider.set_rollout("ab", {"a": 0.5, "b": 0.5} if round_ % 3 else {"a": 0.2})
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert bad == []


def test_configure_with_a_json_path_string(tmp_path: Path) -> None:
    path = tmp_path / "variables.json"
    _write(path, config_of(rollout_config("ab", {"a": 1.0})))
    setpoint.configure(config=str(path))
    assert setpoint.var("ab", type=str, default="code").get().value == "a"
