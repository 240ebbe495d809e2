"""Service errors in the UI's words: the API's messages name wire fields and 0-based paths (``rules[1].clauses[0]``)
that a client fixes its request by; the UI says the same in sentences, numbered as it shows things (rule #2)."""

from __future__ import annotations

import re

__all__ = ["for_ui"]

_NOT_JSON = re.compile(r"serialized_value is not valid JSON \((?P<why>.*)\); send the value JSON-encoded")
_INDEXED = re.compile(r"\.?\b(?P<what>rules|clauses|overrides|conditions)(?:\[(?P<index>\d+)\]|\.(?P<dotted>\d+)\b)")
_FIELD_AFTER_NUMBER = re.compile(r"(#\d+)\.(\w)")
_WORDS = {"rules": "rule", "clauses": "clause", "overrides": "rule", "conditions": "condition"}


def _numbered(match: re.Match[str]) -> str:
    word = _WORDS[match.group("what")]
    separator = ", " if match.group(0).startswith(".") else ""
    index = match.group("index") or match.group("dotted")
    return f"{separator}{word} #{int(index) + 1}"


def for_ui(message: str) -> str:
    """``message`` for a person: 1-based "rule #2, clause #1" for list paths, no wire field names, a capital
    first letter and a full stop."""
    text = _NOT_JSON.sub(lambda m: f"the value is not valid JSON ({m.group('why')}); check quotes and commas", message)
    text = _FIELD_AFTER_NUMBER.sub(r"\1 \2", _INDEXED.sub(_numbered, text)).strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?", ")")) else text + "."
