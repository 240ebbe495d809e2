"""Targeting key priority (seed 000): call site > variable-specific context > default context > trace id."""

from __future__ import annotations

import asyncio
import threading

from opentelemetry.sdk.trace import TracerProvider

import setpoint
from setpoint._core.bucketing import bucket
from tests.sdk.helpers import config_of, rollout_config


def _key_echo(name: str) -> setpoint.Variable[str]:
    """A variable whose default function returns the targeting key it was resolved with."""
    return setpoint.var(name, type=str, default=lambda key, attributes: f"key={key}")


def test_call_site_key_wins_over_every_context() -> None:
    personalization = _key_echo("personalization")
    with setpoint.targeting_context("ctx-default"), setpoint.targeting_context("ctx-specific", [personalization]):
        assert personalization.get(targeting_key="explicit").value == "key=explicit"
        assert personalization.get().value == "key=ctx-specific"


def test_default_context_applies_to_all_variables() -> None:
    agent_config = _key_echo("agent_config")
    another = _key_echo("another_variable")
    with setpoint.targeting_context("user-1"):
        assert agent_config.get().value == "key=user-1"
        assert another.get().value == "key=user-1"
    assert agent_config.get().value == "key=None"


def test_variable_specific_contexts() -> None:
    personalization = _key_echo("personalization")
    billing = _key_echo("billing")
    with (
        setpoint.targeting_context("org-1", variables=[billing]),
        setpoint.targeting_context("user-1", variables=[personalization]),
    ):
        assert billing.get().value == "key=org-1"
        assert personalization.get().value == "key=user-1"


def test_variable_specific_beats_default_in_both_nesting_orders() -> None:
    billing = _key_echo("billing")
    other = _key_echo("other")
    with setpoint.targeting_context("user-1"), setpoint.targeting_context("org-1", variables=[billing]):
        assert billing.get().value == "key=org-1"
        assert other.get().value == "key=user-1"
    with setpoint.targeting_context("org-1", variables=[billing]), setpoint.targeting_context("user-1"):
        assert billing.get().value == "key=org-1"
        assert other.get().value == "key=user-1"


def test_variables_can_be_named_by_string() -> None:
    billing = _key_echo("billing")
    with setpoint.targeting_context("org-9", variables=["billing"]):
        assert billing.get().value == "key=org-9"


def test_contexts_are_restored_on_exit_even_after_an_error() -> None:
    billing = _key_echo("billing")
    try:
        with setpoint.targeting_context("org-1", variables=[billing]):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert billing.get().value == "key=None"


def test_trace_id_is_the_fallback_key_inside_a_span(tracer_provider: TracerProvider) -> None:
    echo = _key_echo("echo")
    tracer = tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        trace_id = span.get_span_context().trace_id
        assert echo.get().value == f"key=trace_id:{trace_id:032x}"
        with setpoint.targeting_context("user-1"):
            assert echo.get().value == "key=user-1"
    assert echo.get().value == "key=None"


def test_trace_id_drives_bucketing_of_a_dynamic_rollout(tracer_provider: TracerProvider) -> None:
    setpoint.configure(config=config_of(rollout_config("ab", {"a": 0.5, "b": 0.5})))
    ab = setpoint.var("ab", type=str, default="none")
    tracer = tracer_provider.get_tracer("test")
    for _ in range(20):
        with tracer.start_as_current_span("request") as span:
            key = f"trace_id:{span.get_span_context().trace_id:032x}"
            expected = "a" if bucket("ab", key) < 0.5 else "b"
            assert ab.get().label == expected


def test_same_key_same_label_and_rollout_targets_by_key() -> None:
    setpoint.configure(config=config_of(rollout_config("ab", {"a": 0.5, "b": 0.5})))
    ab = setpoint.var("ab", type=str, default="none")
    for index in range(200):
        key = f"user-{index}"
        expected = "a" if bucket("ab", key) < 0.5 else "b"
        assert ab.get(key).label == expected
        with setpoint.targeting_context(key):
            assert ab.get().label == expected


def test_asyncio_tasks_keep_their_own_targeting_context() -> None:
    echo = _key_echo("echo")

    async def handle(user: str) -> list[str]:
        seen = []
        with setpoint.targeting_context(user):
            for _ in range(5):
                await asyncio.sleep(0)
                seen.append(echo.get().value)
        return seen

    async def main() -> list[list[str]]:
        return await asyncio.gather(*(handle(f"user-{i}") for i in range(10)))

    results = asyncio.run(main())
    for index, seen in enumerate(results):
        assert seen == [f"key=user-{index}"] * 5


def test_threads_keep_their_own_targeting_context() -> None:
    echo = _key_echo("echo")
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def work(user: str) -> None:
        with setpoint.targeting_context(user):
            barrier.wait()
            for _ in range(200):
                got = echo.get().value
                if got != f"key={user}":
                    errors.append(got)

    threads = [threading.Thread(target=work, args=(f"user-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
