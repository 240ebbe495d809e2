"""The segment page's form: to and from the `Segment` JSON document the segments service takes.

The form lists its fields in document order, which the browser keeps when posting: the details (``name``,
``description``, ``tags``), then per context kind a ``target_kind`` field followed by its ``included`` and
``excluded`` textareas (one key per line), then per rule a ``rule`` marker (``rule_id``,
``rule_description``, ``rule_weight`` as a percentage, ``rule_bucket_by``, ``rule_rollout_context_kind``) and
its clauses, each starting with ``clause_negate``. The segment's ``salt`` is not in the form: it is kept.
Reordering or deleting a rule or clause in the page is moving or removing its block, so no indexes need
renumbering.

A list longer than :data:`SHOWN_KEYS` is not rendered in full: the page shows its first keys and its count,
and two textareas (``included_add``/``included_remove``, same for ``excluded``) that are applied to the
stored list when saving.

Parsing never fails: :func:`from_form` returns a :class:`Draft` holding exactly what the user typed (so a
refused save can show it again), and :meth:`Draft.to_data` raises `InvalidError` naming the field that is
not valid; the segments service then validates the document and the whole project config.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from setpoint._core.operators import is_number
from setpoint._server.services.errors import InvalidError
from setpoint._server.services.simulate import literal
from setpoint.config import SEGMENT_OPS, Segment

SHOWN_KEYS = 200
"""How many keys of a list the page renders (the count is always shown)."""

USER = "user"

OP_LABELS: dict[str, str] = {
    "in": "is one of",
    "startsWith": "starts with",
    "endsWith": "ends with",
    "contains": "contains",
    "matches": "matches regex",
    "greaterThan": "greater than",
    "greaterThanOrEqual": "greater than or equal to",
    "lessThan": "less than",
    "lessThanOrEqual": "less than or equal to",
    "before": "is before (date)",
    "after": "is after (date)",
    "semVerEqual": "semver equals",
    "semVerLessThan": "semver less than",
    "semVerGreaterThan": "semver greater than",
    "segmentMatch": "is in segment",
}
"""A readable name for every segment clause operator (the builder offers all of them)."""

assert set(OP_LABELS) == set(SEGMENT_OPS), "every segment operator needs a label in the builder"

NUMBER_OPS = frozenset({"greaterThan", "greaterThanOrEqual", "lessThan", "lessThanOrEqual"})
DATE_OPS = frozenset({"before", "after"})


def keys_of(text: str) -> list[str]:
    """The keys of a textarea: one per line, surrounding whitespace and empty lines dropped, duplicates
    dropped (the first occurrence keeps its place)."""
    seen: dict[str, None] = {}
    for line in text.splitlines():
        key = line.strip()
        if key:
            seen.setdefault(key, None)
    return list(seen)


def tags_of(text: str) -> list[str]:
    """Comma- or newline-separated tags, trimmed, without empties and duplicates."""
    return keys_of(text.replace(",", "\n"))


def value_text(op: str, value: Any) -> str:
    """One clause value as its line in the values textarea (parsed back by :func:`clause_values`)."""
    if isinstance(value, str):
        if op == "in" and literal(value) != value:
            return json.dumps(value)  # "123" stays a string: shown quoted
        return value
    return json.dumps(value)


def clause_values(op: str, text: str, where: str) -> list[Any]:
    """The values of a clause: one per line; numbers for the number operators, numbers or text for dates,
    JSON literals (numbers, true, false, "quoted") or text for ``is one of``, text otherwise."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise InvalidError(f"{where}: enter at least one value")
    out: list[Any] = []
    for line in lines:
        if op in NUMBER_OPS:
            number = literal(line)
            if not is_number(number):
                raise InvalidError(f"{where}: {line!r} is not a number")
            out.append(number)
        elif op in DATE_OPS:
            number = literal(line)
            out.append(number if is_number(number) else line)
        elif op == "in":
            out.append(literal(line))
        else:
            out.append(line)
    return out


@dataclass
class KeyList:
    """The included or excluded keys of one context kind, as the page shows and posts them."""

    stored: list[str] = field(default_factory=list)
    """The saved keys (what ``add``/``remove`` apply to when the list is large)."""
    text: str = ""
    """The textarea (one key per line) of a list small enough to be edited in full."""
    add: str = ""
    remove: str = ""
    large: bool = False

    @property
    def count(self) -> int:
        """How many keys the list has (saved ones for a large list, typed ones otherwise)."""
        return len(self.stored) if self.large else len(keys_of(self.text))

    @property
    def preview(self) -> list[str]:
        """The first keys of a large list."""
        return self.stored[:SHOWN_KEYS]

    def keys(self) -> list[str]:
        """The list to save."""
        if not self.large:
            return keys_of(self.text)
        removed = set(keys_of(self.remove))
        kept = [k for k in self.stored if k not in removed]
        present = set(kept)
        return kept + [k for k in keys_of(self.add) if k not in present and k not in removed]


def _key_list(stored: list[str]) -> KeyList:
    if len(stored) > SHOWN_KEYS:
        return KeyList(stored=list(stored), large=True)
    return KeyList(stored=list(stored), text="\n".join(stored))


@dataclass
class Target:
    """The included and excluded keys of one context kind."""

    kind: str
    included: KeyList = field(default_factory=KeyList)
    excluded: KeyList = field(default_factory=KeyList)


@dataclass
class Clause:
    """One clause as typed."""

    attribute: str = ""
    op: str = "in"
    values: str = ""
    context_kind: str = USER
    negate: bool = False


@dataclass
class Rule:
    """One rule as typed."""

    id: str = ""
    description: str = ""
    weight: str = ""
    """A percentage of the matching contexts (empty: all)."""
    bucket_by: str = ""
    rollout_context_kind: str = ""
    clauses: list[Clause] = field(default_factory=list)


@dataclass
class Draft:
    """Everything the segment form holds."""

    key: str
    name: str = ""
    description: str = ""
    tags: str = ""
    targets: list[Target] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    salt: str = ""

    def to_data(self) -> dict[str, Any]:
        """The segment's JSON document (the `Segment` shape); `InvalidError` naming what is wrong."""
        included: dict[str, list[str]] = {}
        excluded: dict[str, list[str]] = {}
        for number, target in enumerate(self.targets, 1):
            kind = target.kind.strip()
            inc, exc = target.included.keys(), target.excluded.keys()
            if not kind:
                if inc or exc:
                    raise InvalidError(f"context kind #{number}: enter the context kind of these keys")
                continue
            included.setdefault(kind, []).extend(k for k in inc if k not in included.get(kind, []))
            excluded.setdefault(kind, []).extend(k for k in exc if k not in excluded.get(kind, []))
        rules: list[dict[str, Any]] = []
        for r_number, rule in enumerate(self.rules, 1):
            clauses: list[dict[str, Any]] = []
            for c_number, clause in enumerate(rule.clauses, 1):
                where = f"rule #{r_number}, clause #{c_number}"
                if clause.op not in OP_LABELS:
                    raise InvalidError(f"{where}: unknown operator {clause.op!r}")
                attribute = clause.attribute.strip()
                if not attribute and clause.op != "segmentMatch":
                    raise InvalidError(f"{where}: enter the attribute name")
                clauses.append(
                    {
                        "attribute": attribute or "key",
                        "op": clause.op,
                        "values": clause_values(clause.op, clause.values, where),
                        "context_kind": clause.context_kind.strip() or USER,
                        "negate": clause.negate,
                    }
                )
            if not clauses:
                raise InvalidError(f"rule #{r_number}: add at least one clause (or delete the rule)")
            out: dict[str, Any] = {"clauses": clauses}
            if rule.id.strip():
                out["id"] = rule.id.strip()
            if rule.description.strip():
                out["description"] = rule.description.strip()
            out.update(_rollout(rule, f"rule #{r_number}"))
            rules.append(out)
        return {
            "key": self.key,
            "name": self.name.strip(),
            "description": self.description.strip() or None,
            "tags": tags_of(self.tags),
            "included": included.pop(USER, []),
            "excluded": excluded.pop(USER, []),
            "included_contexts": [{"context_kind": k, "values": v} for k, v in included.items() if v],
            "excluded_contexts": [{"context_kind": k, "values": v} for k, v in excluded.items() if v],
            "rules": rules,
            "salt": self.salt,
        }


def _rollout(rule: Rule, where: str) -> dict[str, Any]:
    """A rule's weight (a percentage typed, thousandths of a percent stored), bucket-by and its context kind."""
    text = rule.weight.strip().removesuffix("%").strip()
    bucket_by, kind = rule.bucket_by.strip(), rule.rollout_context_kind.strip()
    if not text:
        if bucket_by or kind:
            raise InvalidError(f"{where}: enter the percentage of matching contexts to bucket (or clear bucket by)")
        return {}
    try:
        percent = float(text)
    except ValueError:
        percent = -1.0
    weight = round(percent * 1000)
    if not 0 <= percent <= 100 or abs(weight - percent * 1000) > 1e-6:
        raise InvalidError(f"{where}: the percentage must be a number from 0 to 100 (at most 3 decimals), got {text!r}")
    out: dict[str, Any] = {"weight": weight}
    if bucket_by:
        out["bucket_by"] = bucket_by
    if kind:
        out["rollout_context_kind"] = kind
    return out


def _percent(weight: int | None) -> str:
    return "" if weight is None else f"{weight / 1000:g}"


def _stored_targets(segment: Segment | None) -> dict[str, tuple[list[str], list[str]]]:
    """Per context kind (``user`` first), the saved included and excluded keys."""
    out: dict[str, tuple[list[str], list[str]]] = {USER: ([], [])}
    if segment is None:
        return out
    out[USER] = (list(segment.included), list(segment.excluded))
    for target in segment.included_contexts:
        out.setdefault(target.context_kind, ([], []))[0].extend(target.values)
    for target in segment.excluded_contexts:
        out.setdefault(target.context_kind, ([], []))[1].extend(target.values)
    return out


def from_segment(segment: Segment) -> Draft:
    """The form of a saved segment."""
    targets = [Target(kind, _key_list(inc), _key_list(exc)) for kind, (inc, exc) in _stored_targets(segment).items()]
    rules = [
        Rule(
            id=rule.id or "",
            description=rule.description or "",
            weight=_percent(rule.weight),
            bucket_by=rule.bucket_by or "",
            rollout_context_kind=rule.rollout_context_kind or "",
            clauses=[
                Clause(
                    attribute=c.attribute,
                    op=c.op,
                    values="\n".join(value_text(c.op, v) for v in c.values),
                    context_kind=c.context_kind,
                    negate=c.negate,
                )
                for c in rule.clauses
            ],
        )
        for rule in segment.rules
    ]
    return Draft(
        key=segment.key,
        name=segment.name,
        description=segment.description or "",
        tags=", ".join(segment.tags),
        targets=targets,
        rules=rules,
        salt=segment.salt,
    )


def from_form(key: str, items: Iterable[tuple[str, Any]], current: Segment | None = None) -> Draft:
    """What a posted segment form holds (``current`` is the saved segment large lists are edited against)."""
    stored = _stored_targets(current)
    draft = Draft(key=key, salt=current.salt if current is not None else "")
    clause: Clause | None = None
    for name, raw in items:
        value = raw if isinstance(raw, str) else ""
        if name in ("name", "description", "tags"):
            setattr(draft, name, value)
        elif name == "target_kind":
            kind = value.strip()
            inc, exc = stored.get(kind, ([], []))
            draft.targets.append(Target(value, KeyList(stored=list(inc)), KeyList(stored=list(exc))))
        elif draft.targets and name.startswith(("included", "excluded")):
            which, _, part = name.partition("_")
            keys: KeyList = getattr(draft.targets[-1], which)
            if part in ("add", "remove"):
                keys.large = True
                setattr(keys, part, value)
            elif not part:
                keys.text = value
        elif name == "rule":
            draft.rules.append(Rule())
            clause = None
        elif name in ("rule_id", "rule_description", "rule_weight", "rule_bucket_by", "rule_rollout_context_kind"):
            if draft.rules:
                setattr(draft.rules[-1], name[5:], value)
        elif name == "clause_negate" and draft.rules:
            clause = Clause(negate=value == "yes")
            draft.rules[-1].clauses.append(clause)
        elif name.startswith("clause_") and clause is not None and name[7:] in ("attribute", "op", "values"):
            setattr(clause, name[7:], value)
        elif name == "clause_context_kind" and clause is not None:
            clause.context_kind = value
    return draft


def new_segment_data(key: str, name: str, description: str, tags: str) -> dict[str, Any]:
    """The document of a new segment (no keys, no rules yet)."""
    return {
        "key": key.strip(),
        "name": name.strip(),
        "description": description.strip() or None,
        "tags": tags_of(tags),
    }
