"""Server-side resolution with composition: what `/v1/resolve/`, OFREP and the simulator serve. Pure, no I/O.

`evaluate_composed` evaluates a variable with `CompiledConfig.evaluate`, then expands its ``@{references}@``
with `templates.compose` exactly as the SDK does for a stored value (strictly; each reference evaluated with
the same targeting key and attributes), and optionally renders ``{{fields}}`` with template inputs. The server
does not know the code defaults, so where the SDK would fall back to the code default, the result says so
(``serialized_value`` None, ``error`` set).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from setpoint._core import templates
from setpoint._core.evaluator import CompiledConfig, Evaluation

__all__ = ["ComposedEvaluation", "ConfigResolver", "evaluate_composed"]


@dataclass(frozen=True, slots=True)
class ComposedEvaluation:
    """An `Evaluation` with its value composed (and rendered, when inputs were given)."""

    evaluation: Evaluation
    serialized_value: str | None
    """The composed value; None when the code default is served (by the config, or because of ``error``)."""
    composed_from: tuple[templates.ComposedReference, ...] = ()
    error: str | None = None
    """Why the configured value cannot be served (composition or rendering failed): the SDK serves the code
    default with reason ``other_error``."""

    @property
    def reason(self) -> str:
        """``resolved`` | ``code_default`` | ``other_error``."""
        return "other_error" if self.error is not None else self.evaluation.reason


class ConfigResolver:
    """Resolves ``@{references}@`` against a compiled config for one targeting key and attributes.

    With ``external_only`` (an evaluation for a ``read_external`` key) a variable not marked external has no
    value: an external variable cannot leak an internal fragment's text to a client-side key.
    """

    __slots__ = ("attributes", "compiled", "external_only", "targeting_key")

    def __init__(
        self,
        compiled: CompiledConfig,
        targeting_key: str | None,
        attributes: Mapping[str, Any] | None,
        *,
        external_only: bool = False,
    ):
        self.compiled = compiled
        self.targeting_key = targeting_key
        self.attributes = attributes
        self.external_only = external_only

    def __call__(self, name: str) -> templates.RefResolution:
        if self.external_only:
            variable = self.compiled.get(name)
            if variable is None or not variable.external:
                return templates.RefResolution(None, reason="other_error")
        ev = self.compiled.evaluate(name, self.targeting_key, self.attributes)
        if ev.serialized_value is None:
            return templates.RefResolution(None, reason="code_default")
        return templates.RefResolution(ev.serialized_value, ev.label, ev.version)


def evaluate_composed(
    compiled: CompiledConfig,
    name: str,
    targeting_key: str | None,
    attributes: Mapping[str, Any] | None,
    *,
    label: str | None = None,
    inputs: Mapping[str, Any] | None = None,
    external_only: bool = False,
) -> ComposedEvaluation:
    """Evaluate ``name`` and compose its value; with ``inputs``, also render its ``{{fields}}``. With
    ``external_only``, references to variables not marked external cannot be expanded (`ConfigResolver`)."""
    ev = compiled.evaluate(name, targeting_key, attributes, label=label)
    serialized = ev.serialized_value
    if serialized is None:
        return ComposedEvaluation(ev, None)
    composed: tuple[templates.ComposedReference, ...] = ()
    if templates.has_references(serialized):
        try:
            serialized, composed = templates.compose(
                serialized,
                name,
                ConfigResolver(compiled, targeting_key, attributes, external_only=external_only),
                strict=True,
            )
        except Exception as exc:  # CompositionError; never let a stored value break an evaluation
            attempted = getattr(exc, "composed_from", ())
            return ComposedEvaluation(ev, None, attempted, f"composition failed: {exc}")
        fatal = templates.first_fatal_error(composed)
        if fatal is not None:
            return ComposedEvaluation(ev, None, composed, f"composition failed: {fatal}")
    if inputs is not None and templates.has_template(serialized):
        try:
            serialized = templates.render(serialized, inputs)
        except Exception as exc:
            return ComposedEvaluation(ev, None, composed, f"template rendering failed: {exc}")
    return ComposedEvaluation(ev, serialized, composed)
