"""Every example of Logfire's "Template Variables and Composition" page, rewritten to setpoint.

The page is ``docs/reference/advanced/managed-variables/templates-and-composition.md`` in pydantic/logfire;
each test names the section it comes from and asserts what the page prints.
"""

from __future__ import annotations

import logging
import warnings

import pytest
from pydantic import BaseModel
from pydantic_handlebars import render

import setpoint
from setpoint import CompositionError


class PromptInputs(BaseModel):
    user_name: str
    is_premium: bool = False


def test_template_variables() -> None:
    prompt = setpoint.template_var(
        "system_prompt",
        type=str,
        default="Hello {{user_name}}!{{#if is_premium}} Thank you for being a premium member.{{/if}}",
        inputs_type=PromptInputs,
    )
    setpoint.configure()
    with prompt.get(PromptInputs(user_name="Alice", is_premium=True)) as resolved:
        assert resolved.value == "Hello Alice! Thank you for being a premium member."
    with prompt.get(PromptInputs(user_name="Bob")) as resolved:
        assert resolved.value == "Hello Bob!"


class UserContext(BaseModel):
    user_name: str
    tier: str


class AgentConfig(BaseModel):
    instructions: str
    model: str
    temperature: float


def test_structured_template_variables() -> None:
    agent_config = setpoint.template_var(
        "agent_config",
        type=AgentConfig,
        default=AgentConfig(
            instructions="You are helping {{user_name}}, a {{tier}} customer.",
            model="openai:gpt-4o-mini",
            temperature=0.7,
        ),
        inputs_type=UserContext,
    )
    with agent_config.get(UserContext(user_name="Alice", tier="premium")) as resolved:
        assert resolved.value.instructions == "You are helping Alice, a premium customer."
        assert resolved.value.model == "openai:gpt-4o-mini"
        assert resolved.value.temperature == 0.7


class NameOnly(BaseModel):
    user_name: str


def test_render_time_mismatch_policy_error() -> None:
    prompt = setpoint.template_var(
        "system_prompt",
        default="Hello {{user_name}} {{unknown_field}}",
        inputs_type=NameOnly,
        template_mismatch_policy="error",
    )
    with pytest.raises(setpoint.TemplateInputsMismatchError, match="unknown_field"):
        prompt.get(NameOnly(user_name="Alice"))


def test_render_time_mismatch_policy_warn_is_the_default_and_renders_empty() -> None:
    prompt = setpoint.template_var(
        "system_prompt", default="Hello {{user_name}}{{unknown_field}}!", inputs_type=NameOnly
    )
    with pytest.warns(RuntimeWarning, match="unknown_field"):
        resolved = prompt.get(NameOnly(user_name="Alice"))
    assert resolved.value == "Hello Alice!"
    assert resolved.reason == "code_default"


def test_render_time_mismatch_policy_ignore_and_configure_level_policy() -> None:
    prompt = setpoint.template_var("system_prompt", default="Hi {{user_name}}{{nope}}", inputs_type=NameOnly)
    setpoint.configure(template_mismatch_policy="error")
    with pytest.raises(setpoint.TemplateInputsMismatchError):
        prompt.get(NameOnly(user_name="Al"))
    relaxed = setpoint.template_var(
        "relaxed", default="Hi {{user_name}}{{nope}}", inputs_type=NameOnly, template_mismatch_policy="ignore"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert relaxed.get(NameOnly(user_name="Al")).value == "Hi Al"  # the variable's own policy wins
    setpoint.configure(template_mismatch_policy="ignore")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert prompt.get(NameOnly(user_name="Al")).value == "Hi Al"


def test_variable_composition() -> None:
    setpoint.var("safety_rules", type=str, default="Never share personal data. Always be respectful.")
    agent_prompt = setpoint.var("agent_prompt", type=str, default="You are a helpful assistant. @{safety_rules}@")
    with agent_prompt.get() as resolved:
        assert resolved.value == "You are a helpful assistant. Never share personal data. Always be respectful."


def test_composition_control_flow() -> None:
    class User(BaseModel):
        name: str
        active: bool

    setpoint.var("user", type=User, default=User(name="Ada", active=True))
    setpoint.var("items", type=list[str], default=["a", "b"])
    setpoint.var("top", type=str, default="T")
    setpoint.var("empty", type=str, default="")
    shown = setpoint.var(
        "shown",
        type=str,
        default=(
            "@{user.name}@|@{#if user.active}@on@{/if}@|@{#if empty}@yes@{else}@no@{/if}@|"
            "@{#each items}@[@{this}@@{../top}@]@{/each}@"
        ),
    )
    assert shown.get().value == "Ada|on|no|[aT][bT]"


def test_composition_tracking() -> None:
    setpoint.var("city", type=str, default="Paris")
    report = setpoint.var("report", type=str, default="Weather in @{city}@: sunny.")
    with report.get() as resolved:
        assert [(ref.name, ref.value, ref.reason) for ref in resolved.composed_from] == [
            ("city", "Paris", "code_default")
        ]
        assert resolved.value == "Weather in Paris: sunny."


class ChatInputs(BaseModel):
    user_name: str
    language: str


def test_combining_templates_and_composition() -> None:
    setpoint.var("tone_instructions", type=str, default="Be friendly and concise.")
    chat_prompt = setpoint.template_var(
        "chat_prompt",
        type=str,
        default="You are helping {{user_name}}. Respond in {{language}}. @{tone_instructions}@",
        inputs_type=ChatInputs,
    )
    with chat_prompt.get(ChatInputs(user_name="Alice", language="French")) as resolved:
        assert resolved.value == "You are helping Alice. Respond in French. Be friendly and concise."


def test_plain_variable_composing_a_template_variable_warns_at_definition() -> None:
    setpoint.template_var("greeting_template", default="Hi {{user_name}}", inputs_type=NameOnly)
    with pytest.warns(RuntimeWarning, match="composes template variable 'greeting_template'"):
        setpoint.var("plain", type=str, default="@{greeting_template}@")


def test_recursive_resolution() -> None:
    setpoint.var("leaf", type=str, default="LEAF")
    setpoint.var("middle", type=str, default="middle wraps @{leaf}@")
    parent = setpoint.var("parent", type=str, default="top: @{middle}@")
    with parent.get() as resolved:
        assert resolved.value == "top: middle wraps LEAF"
        assert f"{resolved.composed_from[0].name} -> {resolved.composed_from[0].composed_from[0].name}" == (
            "middle -> leaf"
        )
    # plain Handlebars only substitutes
    assert render("{{greeting}}", {"greeting": "Hello, {{name}}!", "name": "Alice"}) == "Hello, {{name}}!"


def test_missing_reference_in_a_stored_value_falls_back_to_the_code_default(caplog: pytest.LogCaptureFixture) -> None:
    setpoint.var("persona", type=str, default="You are a helpful assistant.")
    system_prompt = setpoint.var(
        "system_prompt", type=str, default="You are a helpful assistant. Always follow the safety policy."
    )
    with (
        caplog.at_level(logging.WARNING, logger="setpoint"),
        system_prompt.override("@{persona}@ @{safety_rules}@"),
        system_prompt.get() as resolved,
    ):
        assert resolved.value == "You are a helpful assistant. Always follow the safety policy."
        assert resolved.reason == "other_error"
        assert isinstance(resolved.exception, CompositionError)
    assert "composition failed" in caplog.text


def test_missing_reference_in_the_code_default_renders_empty(caplog: pytest.LogCaptureFixture) -> None:
    greeting = setpoint.var("greeting_with_missing_ref", type=str, default="Hello @{absent_name}@, welcome!")
    with caplog.at_level(logging.WARNING, logger="setpoint"), greeting.get() as resolved:
        assert resolved.value == "Hello , welcome!"
        assert resolved.reason == "code_default"
    assert "code default has unresolved @{references}@" in caplog.text


def test_cycle_in_code_defaults_serves_the_raw_default(caplog: pytest.LogCaptureFixture) -> None:
    left = setpoint.var("cycle_left", type=str, default="@{cycle_right}@")
    setpoint.var("cycle_right", type=str, default="@{cycle_left}@")
    with caplog.at_level(logging.WARNING, logger="setpoint"), left.get() as resolved:
        assert resolved.reason == "other_error"
        assert isinstance(resolved.exception, CompositionError)
        assert isinstance(resolved.exception, setpoint.CompositionCycleError)
        assert resolved.value == "@{cycle_right}@"
    assert "composition of the code default failed" in caplog.text
