"""segment clause literals in LaunchDarkly's strict forms

Segment clauses now parse as LaunchDarkly does: ``before``/``after`` values must be RFC 3339 timestamps (or
Unix millis), ``semVer*`` values strict SemVer, and an attribute starting with ``/`` is an attribute
reference. Stored segments written before that may hold values the old, lenient parsers accepted (a bare date,
a time without an offset, ``v2.0.0``, `` 2.0.0``) or an attribute such as ``/a//b`` that is not a valid
reference; they would no longer load. This rewrites each such value into the strict form that means what it
meant before (a bare date or a time without an offset was UTC; ``v`` and spaces were ignored; an attribute was
one literal name) and leaves everything else untouched.

Revision ID: 0010
Revises: 0011
Create Date: 2026-11-30 09:00:00
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import semver
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0011"
branch_labels = None
depends_on = None

_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_NUMERIC = r"(?:0|[1-9][0-9]*)"
_PRERELEASE = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER = re.compile(
    rf"{_NUMERIC}(?:\.{_NUMERIC}(?:\.{_NUMERIC})?)?(?:-{_PRERELEASE}(?:\.{_PRERELEASE})*)?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
_ATTRIBUTE_REF = re.compile(r"(?:/(?:[^/~]|~[01])+)+")


def _timestamp(value: Any) -> Any:
    if not isinstance(value, str) or _RFC3339.fullmatch(value):
        return value
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    fraction = f".{parsed.microsecond:06d}" if parsed.microsecond else ""
    return f"{parsed:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def _version(value: Any) -> Any:
    if not isinstance(value, str) or _SEMVER.fullmatch(value):
        return value
    try:
        return str(semver.Version.parse(value.strip().removeprefix("v"), optional_minor_and_patch=True))
    except (ValueError, TypeError):
        return value


def _attribute(attribute: Any) -> Any:
    if not isinstance(attribute, str) or not attribute.startswith("/") or _ATTRIBUTE_REF.fullmatch(attribute):
        return attribute
    return "/" + attribute.replace("~", "~0").replace("/", "~1")


def _rewrite(doc: dict[str, Any]) -> bool:
    changed = False
    for rule in doc.get("rules") or []:
        for clause in rule.get("clauses") or []:
            op_name = clause.get("op")
            fix = {"before": _timestamp, "after": _timestamp}.get(op_name)
            if op_name in ("semVerEqual", "semVerLessThan", "semVerGreaterThan"):
                fix = _version
            values = clause.get("values")
            if fix is not None and isinstance(values, list):
                fixed = [fix(v) for v in values]
                if fixed != values:
                    clause["values"], changed = fixed, True
            if op_name != "segmentMatch":
                attribute = _attribute(clause.get("attribute"))
                if attribute != clause.get("attribute"):
                    clause["attribute"], changed = attribute, True
    return changed


def upgrade() -> None:
    segments = sa.table("segments", sa.column("id", sa.Integer), sa.column("data", sa.Text))
    conn = op.get_bind()
    for row_id, data in conn.execute(sa.select(segments.c.id, segments.c.data)).all():
        try:
            doc = json.loads(data)
        except ValueError:
            continue
        if isinstance(doc, dict) and _rewrite(doc):
            conn.execute(segments.update().where(segments.c.id == row_id).values(data=json.dumps(doc)))


def downgrade() -> None:
    pass  # the rewritten values mean what they meant, and the old parsers accept them
