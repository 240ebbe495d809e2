"""Translate LaunchDarkly's published server-side evaluation test data into Setpoint's segment vectors.

Source: the ``launchdarkly/sdk-test-harness`` repository (Apache-2.0), ``data/data-files/server-side-eval/``.
Each of its cases evaluates a flag for a context; the flag's rules are made of clauses. This script keeps the
cases about clauses, operators, context kinds, attribute references and segments, and writes each as a compact
vector: the flag's rules (each becomes a Setpoint segment that a variable's override uses through an
``in-segment`` condition), the LaunchDarkly segments they reference, the context both as LaunchDarkly has it
and as Setpoint's (targeting key, attributes), and the expected outcome: the index of the rule that matches,
null for none, or ``"refused"`` for a config that Setpoint refuses when it is written. Cases about flag
features Setpoint does not have are skipped, and the reasons counted.

    git -C sdk-test-harness archive <commit> data/data-files/server-side-eval | tar -x -C /tmp/ld
    python scripts/ld_eval_vectors.py /tmp/ld/data/data-files/server-side-eval --commit <commit> \\
        --output tests/segments/ld_eval_vectors.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

SOURCE = "https://github.com/launchdarkly/sdk-test-harness"
SOURCE_PATH = "data/data-files/server-side-eval/"
LICENCE = "Apache-2.0 (Copyright 2021 Catamorphic, Co.)"
LEGACY_USER_BUILTINS = ("name", "firstName", "lastName", "email", "avatar", "ip", "country", "anonymous")


class _Loader(yaml.SafeLoader):
    """YAML 1.2 as the harness reads it (Go yaml.v3): ``on``/``yes`` are strings and dates stay text."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def _replace(text: str, substitutions: dict[str, Any]) -> str:
    """The harness's textual substitution: ``"<NAME>"`` becomes the JSON value, a bare ``<NAME>`` its text."""
    for name, value in substitutions.items():
        typed = json.dumps(value, separators=(",", ":"))
        text = text.replace(f'"<{name}>"', typed)
        text = text.replace(f"<{name}>", value if isinstance(value, str) else typed)
    return text


def _parameter_sets(parameters: list[Any]) -> list[dict[str, Any]]:
    if not parameters:
        return []
    if isinstance(parameters[0], dict):
        return [dict(p) for p in parameters]
    sets = []
    # The harness varies the first list fastest; the order only affects vector order.
    for combination in itertools.product(*reversed(parameters)):
        merged: dict[str, Any] = {}
        for part in reversed(combination):
            merged.update(part)
        sets.append(merged)
    return sets


def expand(text: str) -> list[dict[str, Any]]:
    """The test suites in one data file, after constant and parameter substitution."""
    header = _load(text) or {}
    constants = header.get("constants") or {}
    sets = _parameter_sets(header.get("parameters") or [])
    if not sets:
        return [_load(_replace(text, constants))]
    suites = []
    for params in sets:
        expanded = _replace(_replace(_replace(text, constants), params), constants)
        suites.append(_load(expanded))
    return suites


def setpoint_context(context: dict[str, Any]) -> dict[str, Any]:
    """A LaunchDarkly context as Setpoint's targeting key and attributes (kind ``k`` -> ``k.<name>``)."""
    if "kind" not in context:  # a legacy user: built-in attributes plus "custom"
        legacy = {name: context[name] for name in LEGACY_USER_BUILTINS if name in context}
        legacy.update(context.get("custom") or {})
        return {"key": context.get("key"), "attributes": legacy}
    parts = (
        {kind: part for kind, part in context.items() if kind != "kind"}
        if context["kind"] == "multi"
        else {context["kind"]: context}
    )
    key = None
    attributes: dict[str, Any] = {}
    for kind, part in parts.items():
        own = {name: value for name, value in part.items() if name not in ("kind", "key", "_meta")}
        if kind == "user":
            key = part.get("key")
            attributes.update(own)
        else:
            attributes[f"{kind}.key"] = part.get("key")
            attributes.update({f"{kind}.{name}": value for name, value in own.items()})
    return {"key": key, "attributes": attributes}


def _segment_keys(clauses: list[dict[str, Any]]) -> set[str]:
    return {str(v) for c in clauses if c.get("op") == "segmentMatch" for v in c.get("values") or []}


def _referenced(rules: list[dict[str, Any]], segments: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The segments the rules reach (transitively), and the referenced keys that do not exist."""
    found: dict[str, Any] = {}
    missing: set[str] = set()
    pending = sorted(set().union(*(_segment_keys(r.get("clauses") or []) for r in rules)))
    while pending:
        key = pending.pop()
        if key in found or key in missing:
            continue
        segment = segments.get(key)
        if segment is None:
            missing.add(key)
            continue
        found[key] = segment
        for rule in segment.get("rules") or []:
            pending.extend(sorted(_segment_keys(rule.get("clauses") or [])))
    return found, missing


def _ld_segment(key: str, segment: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"key": key}
    for name in ("included", "excluded", "includedContexts", "excludedContexts", "salt"):
        if segment.get(name):
            out[name] = segment[name]
    rules = []
    for rule in segment.get("rules") or []:
        entry = {"clauses": rule.get("clauses") or []}
        for name in ("weight", "bucketBy", "rolloutContextKind"):
            if rule.get(name) is not None:
                entry[name] = rule[name]
        rules.append(entry)
    if rules:
        out["rules"] = rules
    return out


def _cycle(segments: dict[str, Any]) -> bool:
    def visit(key: str, stack: tuple[str, ...]) -> bool:
        if key in stack:
            return True
        segment = segments.get(key) or {}
        children = set().union(*(_segment_keys(r.get("clauses") or []) for r in segment.get("rules") or []))
        return any(visit(child, (*stack, key)) for child in sorted(children))

    return any(visit(key, ()) for key in segments)


def _skip_reason(flag: dict[str, Any], expect: dict[str, Any], segments: dict[str, Any]) -> str | None:
    """Why this case tests something other than segments and clauses (None: it does not)."""
    if flag.get("prerequisites"):
        return "prerequisites"
    if flag.get("targets") or flag.get("contextTargets"):
        return "flag targets"
    rules = flag.get("rules") or []
    if "rollout" in (flag.get("fallthrough") or {}) or any("rollout" in rule for rule in rules):
        return "flag rollouts"
    if not flag.get("on", False):
        return "flag off"
    if not rules:
        return "flag without rules (variation values)"
    if any(s.get("unbounded") for s in segments.values()):
        return "big segments"
    reason = expect.get("reason") or {}
    if reason.get("kind") not in ("RULE_MATCH", "FALLTHROUGH", "ERROR"):
        return f"reason {reason.get('kind')}"
    if reason.get("kind") == "ERROR" and reason.get("errorKind") != "MALFORMED_FLAG":
        return f"flag evaluation error {reason.get('errorKind')}"
    variations = range(len(flag.get("variations") or []))
    if any(rule.get("variation") not in variations for rule in rules):
        return "flag variation index out of range"
    return None


def convert(suites: list[tuple[str, dict[str, Any]]]) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Vectors from the expanded test suites, and the skip reasons counted."""
    vectors: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    for file_name, suite in suites:
        data = suite.get("sdkData") or {}
        flags, segments = data.get("flags") or {}, data.get("segments") or {}
        for case in suite.get("evaluations") or []:
            flag = flags.get(case.get("flagKey"))
            context = case.get("context") or case.get("user")
            if flag is None or not isinstance(context, dict):
                skipped["no flag or no context"] += 1
                continue
            rules = flag.get("rules") or []
            reached, missing = _referenced(rules, segments)
            expect = case.get("expect") or {}
            reason = _skip_reason(flag, expect, reached)
            if reason is not None:
                skipped[reason] += 1
                continue
            kind = expect["reason"]["kind"]
            outcome: int | str | None
            if kind == "ERROR" or missing or _cycle(reached):
                outcome = "refused"  # LaunchDarkly: malformed flag, unknown segment (non-match) or a cycle
            elif kind == "RULE_MATCH":
                outcome = int(expect["reason"]["ruleIndex"])
            else:
                outcome = None
            vectors.append(
                {
                    "file": file_name,
                    "name": f"{suite.get('name')}: {case.get('name') or case.get('flagKey')}",
                    "rules": [rule.get("clauses") or [] for rule in rules],
                    "segments": [_ld_segment(key, reached[key]) for key in sorted(reached)],
                    "ld_context": context,
                    **setpoint_context(context),
                    "expect": outcome,
                }
            )
    return vectors, skipped


def main() -> None:
    """Read the data files, write the vectors."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a checkout's data/data-files/server-side-eval directory")
    parser.add_argument("--commit", required=True, help="the sdk-test-harness commit the files come from")
    parser.add_argument("--output", type=Path, default=Path("tests/segments/ld_eval_vectors.json"))
    args = parser.parse_args()
    suites = [(path.name, suite) for path in sorted(args.source.glob("*.yml")) for suite in expand(path.read_text())]
    vectors, skipped = convert(suites)
    header = {
        "source": SOURCE,
        "path": SOURCE_PATH,
        "commit": args.commit,
        "licence": LICENCE,
        "generated_by": "scripts/ld_eval_vectors.py",
        "format": "rules: each flag rule's clauses (LaunchDarkly shape); segments: the LaunchDarkly segments they "
        "reference; key + attributes: the context as Setpoint sees it (ld_context: as LaunchDarkly does); expect: "
        "index of the first matching rule, null for none, 'refused' when Setpoint refuses the config at write time",
        "skipped": dict(sorted(skipped.items())),
    }
    lines = ['{"header": ' + json.dumps(header, sort_keys=True) + ",", ' "vectors": [']
    rows = [json.dumps(v, sort_keys=True, separators=(",", ":")) for v in vectors]
    lines.append(",\n".join(rows))
    lines.append("]}")
    args.output.write_text("\n".join(lines) + "\n")
    print(f"{len(vectors)} vectors, skipped: {dict(skipped)} -> {args.output}")


if __name__ == "__main__":
    main()
