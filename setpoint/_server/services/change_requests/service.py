"""The change-request lifecycle: open -> approved -> applied, or rejected / withdrawn (by the author) / stale.

Every transition is one write transaction that locks the request row, checks the caller's role at that moment
and records an audit entry (entity type ``change_request``; the webhooks turn them into events). Applying
locks the variable and compares its revision with the request's base revision: a variable changed since is
never merged, the request is marked stale (409) and its author refreshes it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from setpoint._server.services import audit
from setpoint._server.services.change_requests import review
from setpoint._server.services.changes import Change
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    PreconditionFailedError,
)
from setpoint._server.services.people import actors, roles
from setpoint._server.storage import ReadTx, WriteTx
from setpoint._server.storage import change_requests as store
from setpoint._server.storage.change_requests import (
    APPLIED,
    APPROVED,
    OPEN,
    REJECTED,
    STALE,
    STATES,
    WITHDRAWN,
    ChangeRequest,
    Comment,
    ReviewSettings,
)
from setpoint._server.storage.records import LabelTarget, Variable

MAX_TITLE = 200
MAX_COMMENT = 10_000
APPROVER_ROLES = (roles.EDITOR, roles.ADMIN)


# -- settings -----------------------------------------------------------------------------------------------


def settings_json(settings: ReviewSettings) -> dict[str, Any]:
    """The review settings as the API returns them."""
    return {
        "review_protected_labels": settings.protected_labels,
        "review_all_targeting": settings.all_targeting,
        "approver_role": settings.approver_role,
        "admins_may_bypass": settings.admins_bypass,
    }


def get_settings(ctx: ServiceContext, project_id: int) -> ReviewSettings:
    """A project's review settings."""
    with ctx.storage.read() as tx:
        return store.get_settings(tx, project_id)


def set_settings(ctx: ServiceContext, project_id: int, settings: ReviewSettings, actor: str) -> ReviewSettings:
    """Replace a project's review settings (admins; audited). 422 for an approver role other than editor/admin."""
    if settings.approver_role not in APPROVER_ROLES:
        raise InvalidError(
            f"approver_role {settings.approver_role!r} is not allowed; use 'editor' or 'admin' "
            "(viewers never approve, and an author never approves their own request)"
        )
    with ctx.storage.write() as tx:
        roles.require(_role(tx, project_id, actor), roles.ADMIN, who=actors.display(actor))
        before = settings_json(store.get_settings(tx, project_id))
        store.put_settings(tx, project_id, settings, actor, ctx.clock())
        project = tx.get_project_by_id(project_id)
        name = project.name if project else ""
        audit.record(tx, project_id, actor, "set_review_settings", "project", name, before, settings_json(settings))
    return settings


# -- reading ------------------------------------------------------------------------------------------------


def request_json(request: ChangeRequest, comments: list[Comment] | None = None) -> dict[str, Any]:
    """A request as the API returns it (and as its audit entries carry it)."""

    def when(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    data: dict[str, Any] = {
        "id": request.id,
        "title": request.title,
        "state": request.state,
        "variable": request.variable,
        "author": request.author,
        "author_name": actors.display(request.author),
        "base_revision": request.base_revision,
        "diff": request.diff,
        "bypassed": request.bypassed,
        "created_at": when(request.created_at),
        "updated_at": when(request.updated_at),
        "reviewed_by": request.reviewed_by,
        "reviewed_at": when(request.reviewed_at),
        "applied_by": request.applied_by,
        "applied_at": when(request.applied_at),
        "url": f"/v1/change-requests/{request.id}/",
    }
    if comments is not None:
        data["comments"] = [comment_json(c) for c in comments]
    return data


def comment_json(comment: Comment) -> dict[str, Any]:
    """A comment as the API returns it."""
    return {
        "id": comment.id,
        "author": comment.author,
        "author_name": actors.display(comment.author),
        "body": comment.body,
        "created_at": comment.created_at.isoformat(),
    }


def parse_state(text: str | None) -> tuple[str, ...]:
    """A state filter (``None``/empty: every state); 422 naming the states otherwise."""
    if not text:
        return ()
    states = tuple(s.strip().lower() for s in text.split(",") if s.strip())
    unknown = [s for s in states if s not in STATES]
    if unknown:
        raise InvalidError(f"unknown state {unknown[0]!r}; use one of {', '.join(STATES)} (comma-separated)")
    return states


def list_requests(
    ctx: ServiceContext, project_id: int, states: tuple[str, ...] = (), variable: str | None = None
) -> list[ChangeRequest]:
    """A project's requests, newest first."""
    with ctx.storage.read() as tx:
        return store.list_requests(tx, project_id, states=states, variable=variable)


def get_request(ctx: ServiceContext, project_id: int, request_id: int) -> tuple[ChangeRequest, list[Comment]]:
    """One request with its comments; 404 when the project has no such request."""
    with ctx.storage.read() as tx:
        found = store.get(tx, project_id, request_id)
        if found is None:
            raise NotFoundError(f"change request #{request_id} does not exist in this project")
        return found, store.list_comments(tx, request_id)


def count_active(ctx: ServiceContext, project_id: int) -> int:
    """Requests waiting for someone (open, approved, stale)."""
    with ctx.storage.read() as tx:
        return store.count_active(tx, project_id)


# -- helpers ------------------------------------------------------------------------------------------------


def _role(tx: WriteTx, project_id: int, actor: str) -> str | None:
    from setpoint._server.services.people.service import actor_role

    return actor_role(tx, project_id, actor)


def same_person(a: str, b: str) -> bool:
    """Whether two actors are the same person (a person's API key is that person)."""
    pa, pb = actors.parse(a), actors.parse(b)
    if pa.user_id is not None or pb.user_id is not None:
        return pa.user_id == pb.user_id
    return a == b


def title_for(variable: str, diff: dict[str, Any]) -> str:
    """A default title naming what the request changes."""
    parts = []
    if "labels" in diff:
        names = ", ".join(diff["labels"])
        parts.append(f"label{'s' if len(diff['labels']) > 1 else ''} {names}")
    if "rollout" in diff:
        parts.append("the default rollout")
    if "overrides" in diff:
        parts.append("the override rules")
    return f"{variable}: change {' and '.join(parts) or 'nothing'}"[:MAX_TITLE]


def _audit(tx: WriteTx, actor: str, action: str, before: ChangeRequest | None, after: ChangeRequest) -> None:
    audit.record(
        tx,
        after.project_id,
        actor,
        action,
        "change_request",
        after.variable,
        None if before is None else request_json(before),
        request_json(after),
    )


def _locked(tx: WriteTx, project_id: int, request_id: int) -> ChangeRequest:
    found = store.get(tx, project_id, request_id, lock=True)
    if found is None:
        raise NotFoundError(f"change request #{request_id} does not exist in this project")
    return found


def _wrong_state(request: ChangeRequest, doing: str) -> ConflictError:
    hints = {
        APPLIED: f"it was already applied by {actors.display(request.applied_by or '')}",
        REJECTED: "it was rejected; open a new request",
        WITHDRAWN: "it was withdrawn by its author; open a new request",
        STALE: "the variable changed since it was opened; its author must refresh it first",
        OPEN: "it has not been approved yet",
        APPROVED: "it is already approved",
    }
    return ConflictError(f"change request #{request.id} cannot be {doing}: {hints[request.state]}")


def _stale_message(request: ChangeRequest, current: int | None) -> str:
    now = "was deleted" if current is None else f"is at revision {current}"
    return (
        f"change request #{request.id} is stale: {request.variable!r} {now}, the request was based on revision "
        f"{request.base_revision}; nothing was applied. Refresh the request (its author re-bases it on the current "
        "state) and have it approved again"
    )


def _check_fresh(ctx: ServiceContext, tx: WriteTx, request: ChangeRequest, actor: str) -> str | None:
    """None when the variable is still at the base revision; else marks the request stale (audited) and returns
    the message for the 409 raised once the transaction committed."""
    variable = tx.lock_variable(request.project_id, request.variable)
    current = None if variable is None else variable.revision
    if current == request.base_revision:
        return None
    stale = store.update(tx, request, ctx.clock(), state=STALE)
    _audit(tx, actor, "stale", request, stale)
    return _stale_message(request, current)


# -- the diff: validated and applied --------------------------------------------------------------------------


def label_target_in(name: str, value: Any, tx: WriteTx, variable: Variable) -> dict[str, Any] | None:
    """A label target as an explicit request sends it -> the stored state: ``{"version": N}``,
    ``{"serialized_value": "..."}`` (a new version when applied), ``{"ref": "latest"|"code_default"|<label>}``
    or ``null`` (remove the label)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidError(f"labels.{name}: send an object such as {{'version': 3}} or {{'ref': 'latest'}}, or null")
    if value.get("ref") is not None:
        return {"ref": str(value["ref"])}
    if value.get("version") is not None:
        number = value["version"]
        usable = isinstance(number, int) and not isinstance(number, bool) and 0 < number < 2**31
        found = tx.get_version(variable.id, number) if usable else None
        if found is None:
            raise InvalidError(f"labels.{name}: version {number!r} of {variable.name!r} does not exist")
        return {"version": found.version, "serialized_value": found.serialized_value}
    if isinstance(value.get("serialized_value"), str):
        return {"version": None, "serialized_value": value["serialized_value"]}
    raise InvalidError(f"labels.{name}: give 'version', 'serialized_value' or 'ref'")


def apply_diff(tx: WriteTx, project_id: int, variable: Variable, diff: dict[str, Any], actor: str) -> Variable:
    """Set the variable's rollout, override rules and labels to the diff's ``after`` side; a label pinned to a
    value gets a new version when no version with that number and value exists any more."""
    from setpoint._server.services.editing import check_label_name, check_targeting, write_targeting
    from setpoint._server.services.validation import check_value
    from setpoint._server.services.variables import effective_schema

    if "rollout" in diff or "overrides" in diff:
        rollout = diff["rollout"]["after"] if "rollout" in diff else variable.fields.rollout
        overrides = diff["overrides"]["after"] if "overrides" in diff else variable.fields.overrides
        check_targeting(rollout, overrides)
        variable = write_targeting(tx, variable, rollout, overrides)
    else:
        variable = tx.touch_variable(variable)
    for name, change in (diff.get("labels") or {}).items():
        after = change["after"]
        if after is None:
            tx.delete_label(variable.id, name, actor)
            continue
        check_label_name(name)
        ref = after.get("ref")
        if ref is None:
            number = after.get("version")
            value = after["serialized_value"]
            existing = tx.get_version(variable.id, number) if isinstance(number, int) else None
            if existing is None or existing.serialized_value != value:
                schema = effective_schema(tx, project_id, variable.fields.json_schema, variable.fields.type_name)
                check_value(value, schema, f"label {name!r} of {variable.name!r}")
                existing = tx.create_version(variable.id, value, actor, f"Created by change request for {name!r}")
            target = LabelTarget("version", version=existing.version)
        elif ref in ("latest", "code_default"):
            target = LabelTarget(ref)
        else:
            if ref == name:
                raise InvalidError(f"label {name!r} cannot point at itself")
            target = LabelTarget("label", target_label=ref)
        tx.set_label(variable.id, name, target, actor)
    return variable


def _validated(tx: WriteTx, project_id: int, variable: Variable, diff: dict[str, Any], actor: str) -> None:
    """Apply ``diff`` in a savepoint, run the write checks, roll back: 422 now rather than at apply time."""
    from setpoint._server.services.templates import check_composition
    from setpoint._server.services.validation import check_variable_write
    from setpoint._server.services.wire import read_variable_wire

    nested = store._conn(tx).begin_nested()
    try:
        changed = apply_diff(tx, project_id, variable, diff, actor)
        after = read_variable_wire(tx, changed)
        check_variable_write(tx, project_id, after)
        check_composition(tx, project_id, after)
    finally:
        nested.rollback()


def _open(
    ctx: ServiceContext, tx: WriteTx, project_id: int, variable: Variable, actor: str, diff: dict[str, Any], title: str
) -> ChangeRequest:
    request = store.insert(
        tx,
        project_id,
        variable=variable.name,
        title=(title.strip() or title_for(variable.name, diff))[:MAX_TITLE],
        author=actor[:200],
        state=OPEN,
        base_revision=variable.revision,
        diff=diff,
        at=ctx.clock(),
    )
    _audit(tx, actor, "opened", None, request)
    return request


# -- the lifecycle ------------------------------------------------------------------------------------------


def open_from(ctx: ServiceContext, signal: review.ReviewRequired, title: str = "") -> review.RequestOpened:
    """Store the change that needed review as an open request, based on the variable's current revision
    (412 when the variable changed between the refused change and now)."""
    from setpoint._server.services.wire import read_variable_wire

    with ctx.storage.write() as tx:
        variable = tx.lock_variable(signal.project_id, signal.variable)
        if variable is None:
            raise NotFoundError(f"variable {signal.variable!r} does not exist in this project")
        if review.state(read_variable_wire(tx, variable)) != signal.before:
            raise PreconditionFailedError(
                f"variable {signal.variable!r} was changed by someone else while your change was being saved; "
                "nothing was saved: reload, then make your change again"
            )
        request = _open(ctx, tx, signal.project_id, variable, signal.actor, signal.diff, title)
    message = (
        f"Your change needs review ({signal.reason}): it was not applied; change request #{request.id} was opened "
        "for another person to approve."
    )
    return review.RequestOpened(request_json(request), message)


def create(
    ctx: ServiceContext,
    project_id: int,
    actor: str,
    variable_name: str,
    *,
    title: str = "",
    rollout: dict[str, Any] | None = None,
    overrides: list[dict[str, Any]] | None = None,
    labels: dict[str, Any] | None = None,
) -> ChangeRequest:
    """Open a request explicitly (whatever the settings): the given targeting against the current state."""
    from setpoint._server.services.wire import read_variable_wire

    if len(title) > MAX_TITLE:
        raise InvalidError(f"the title is {len(title)} characters long; keep it to {MAX_TITLE}")
    with ctx.storage.write() as tx:
        roles.require(_role(tx, project_id, actor), roles.EDITOR, who=actors.display(actor))
        variable = tx.lock_variable(project_id, variable_name)
        if variable is None:
            raise NotFoundError(f"variable {variable_name!r} does not exist in this project")
        before = review.state(read_variable_wire(tx, variable))
        after = _proposed(tx, variable, before, rollout, overrides, labels)
        diff = review.compute_diff(before, after)
        if not diff:
            raise InvalidError(f"this request would change nothing: {variable_name!r} already has this targeting")
        _validated(tx, project_id, variable, diff, actor)
        return _open(ctx, tx, project_id, variable, actor, diff, title)


def _proposed(
    tx: WriteTx,
    variable: Variable,
    current: dict[str, Any],
    rollout: dict[str, Any] | None,
    overrides: list[dict[str, Any]] | None,
    labels: dict[str, Any] | None,
) -> dict[str, Any]:
    from setpoint._server.services.editing import check_targeting, normal_targeting

    after = {"rollout": current["rollout"], "overrides": current["overrides"], "labels": dict(current["labels"])}
    if rollout is not None or overrides is not None:
        # Normalized as a direct write would store them (1 and 1.0 are one weight), so the diff shows real changes.
        wanted_rollout = after["rollout"] if rollout is None else rollout
        wanted_overrides = after["overrides"] if overrides is None else overrides
        check_targeting(wanted_rollout, wanted_overrides)
        after["rollout"], after["overrides"] = normal_targeting(tx, variable, wanted_rollout, wanted_overrides)
    for name, value in (labels or {}).items():
        state = label_target_in(name, value, tx, variable)
        if state is None:
            after["labels"].pop(name, None)
        else:
            after["labels"][name] = state
    return after


def record_bypass(tx: WriteTx, project_id: int, variable: str, actor: str, diff: dict[str, Any]) -> None:
    """An admin applied a change that needs review without one (the project allows it): stored as an applied,
    bypassed request and audited as such, inside the change's own transaction."""
    current = tx.lock_variable(project_id, variable)
    request = store.insert(
        tx,
        project_id,
        variable=variable,
        title=f"{title_for(variable, diff)} (review bypassed by an admin)"[:MAX_TITLE],
        author=actor[:200],
        state=APPLIED,
        base_revision=0 if current is None else current.revision,
        diff=diff,
        at=datetime.now(UTC),  # no ServiceContext inside audit.record; the audit entry itself is stamped alike
        bypassed=True,
    )
    _audit(tx, actor, "applied", None, request)


def approver_role_for(tx: ReadTx, request: ChangeRequest) -> str:
    """The role that approves ``request``: the project's approver role; but a request touching a protected label
    while review is off (opened explicitly) needs an admin, as the change itself would."""
    settings = store.get_settings(tx, request.project_id)
    need = settings.approver_role if settings.approver_role in APPROVER_ROLES else roles.EDITOR
    if not settings.enabled:
        project = tx.get_project_by_id(request.project_id)
        if set(project.protected_labels if project else ()) & set(review.touched_labels(request.diff)):
            return roles.ADMIN
    return need


def _require_reviewer(tx: WriteTx, request: ChangeRequest, actor: str, doing: str) -> None:
    need = approver_role_for(tx, request)
    role = _role(tx, request.project_id, actor)
    if same_person(actor, request.author):
        raise ForbiddenError(
            f"you opened change request #{request.id}, so you cannot {doing} it yourself: another person with the "
            f"{need} role must review it (you may withdraw it)"
        )
    if not roles.allows(role, need):
        held = f"the {role} role" if role else "no role"
        raise ForbiddenError(f"to {doing} change requests you need the {need} role; {actors.display(actor)} has {held}")


def approve(
    ctx: ServiceContext, project_id: int, request_id: int, actor: str, *, comment: str = "", apply: bool = False
) -> ChangeRequest:
    """Approve an open request (another person with the approver role); ``apply``: apply it at once."""
    stale: str | None = None
    with ctx.storage.write() as tx:
        request = _locked(tx, project_id, request_id)
        _require_reviewer(tx, request, actor, "approve")
        if request.state != OPEN:
            raise _wrong_state(request, "approved")
        stale = _check_fresh(ctx, tx, request, actor)
        if stale is None:
            if comment.strip():
                _comment(ctx, tx, request, actor, comment)
            now = ctx.clock()
            approved = store.update(tx, request, now, state=APPROVED, reviewed_by=actor[:200], reviewed_at=now)
            _audit(tx, actor, "approved", request, approved)
    if stale is not None:
        raise ConflictError(stale)
    if apply:
        return apply_request(ctx, project_id, request_id, actor)
    return approved


def reject(ctx: ServiceContext, project_id: int, request_id: int, actor: str, *, comment: str = "") -> ChangeRequest:
    """Reject a request that has not been applied (a reviewer; the author withdraws instead)."""
    with ctx.storage.write() as tx:
        request = _locked(tx, project_id, request_id)
        _require_reviewer(tx, request, actor, "reject")
        if request.state not in (OPEN, APPROVED, STALE):
            raise _wrong_state(request, "rejected")
        if comment.strip():
            _comment(ctx, tx, request, actor, comment)
        now = ctx.clock()
        rejected = store.update(tx, request, now, state=REJECTED, reviewed_by=actor[:200], reviewed_at=now)
        _audit(tx, actor, "rejected", request, rejected)
    return rejected


def withdraw(ctx: ServiceContext, project_id: int, request_id: int, actor: str) -> ChangeRequest:
    """The author takes back a request that has not been applied."""
    with ctx.storage.write() as tx:
        request = _locked(tx, project_id, request_id)
        if not same_person(actor, request.author):
            raise ForbiddenError(
                f"only the author ({actors.display(request.author)}) can withdraw change request #{request.id}; "
                "a reviewer can reject it"
            )
        if request.state not in (OPEN, APPROVED, STALE):
            raise _wrong_state(request, "withdrawn")
        withdrawn = store.update(tx, request, ctx.clock(), state=WITHDRAWN)
        _audit(tx, actor, "withdrawn", request, withdrawn)
    return withdrawn


def apply_request(ctx: ServiceContext, project_id: int, request_id: int, actor: str) -> ChangeRequest:
    """Apply an approved request atomically, by its author or a person with the approver role: exactly its diff,
    at its base revision (else it is marked stale: 409), validated like any change, audited as
    "<actor> applying change request #N by <author>, approved by <approver>". 409 unless approved (a request
    applies once)."""
    from setpoint._server.services.templates import check_composition
    from setpoint._server.services.validation import check_variable_write
    from setpoint._server.services.wire import read_variable_wire

    stale: str | None = None
    change: Change | None = None
    with ctx.storage.write() as tx:
        request = _locked(tx, project_id, request_id)
        role = _role(tx, project_id, actor)
        need = approver_role_for(tx, request)
        if not same_person(actor, request.author) and not roles.allows(role, need):
            held = f"the {role} role" if role else "no role"
            raise ForbiddenError(
                f"change request #{request.id} is applied by its author or a person with the {need} role; "
                f"{actors.display(actor)} has {held}"
            )
        roles.require(role, roles.EDITOR, who=actors.display(actor))
        if request.state != APPROVED:
            raise _wrong_state(request, "applied")
        stale = _check_fresh(ctx, tx, request, actor)
        if stale is None:
            variable = tx.lock_variable(project_id, request.variable)
            assert variable is not None  # _check_fresh: same revision, so it exists
            approver = actors.display(request.reviewed_by or "")
            as_actor = (
                f"{actor} applying change request #{request.id} by {actors.display(request.author)}, "
                f"approved by {approver}"
            )[:200]
            before = read_variable_wire(tx, variable)
            changed = apply_diff(tx, project_id, variable, request.diff, as_actor)
            after = read_variable_wire(tx, changed)
            check_variable_write(tx, project_id, after)
            check_composition(tx, project_id, after)
            with review.applying(project_id, request.variable):
                audit.record(
                    tx, project_id, as_actor, "apply_change_request", "variable", request.variable, before, after
                )
            change = Change(project_id=project_id, entity="variable", event="updated", name=request.variable)
            ctx.sink.record(tx, change)
            applied = store.update(
                tx, request, ctx.clock(), state=APPLIED, applied_by=actor[:200], applied_at=ctx.clock()
            )
            _audit(tx, actor, "applied", request, applied)
    if stale is not None:
        raise ConflictError(stale)
    assert change is not None
    ctx.sink.applied(change)
    return applied


def refresh(
    ctx: ServiceContext,
    project_id: int,
    request_id: int,
    actor: str,
    *,
    rollout: dict[str, Any] | None = None,
    overrides: list[dict[str, Any]] | None = None,
    labels: dict[str, Any] | None = None,
) -> ChangeRequest:
    """The author re-bases a request on the variable's current revision: the same ``after`` (or the one sent),
    the diff recomputed against the current state, validated; it goes back to open (to be approved again)."""
    from setpoint._server.services.wire import read_variable_wire

    with ctx.storage.write() as tx:
        request = _locked(tx, project_id, request_id)
        if not same_person(actor, request.author):
            raise ForbiddenError(
                f"only the author ({actors.display(request.author)}) can refresh change request #{request.id}"
            )
        if request.state not in (OPEN, APPROVED, STALE):
            raise _wrong_state(request, "refreshed")
        roles.require(_role(tx, project_id, actor), roles.EDITOR, who=actors.display(actor))
        variable = tx.lock_variable(project_id, request.variable)
        if variable is None:
            raise ConflictError(f"variable {request.variable!r} was deleted; withdraw change request #{request.id}")
        current = review.state(read_variable_wire(tx, variable))
        wanted = dict(current, labels=dict(current["labels"]))
        for key in ("rollout", "overrides"):
            if key in request.diff:
                wanted[key] = request.diff[key]["after"]
        for name, change in (request.diff.get("labels") or {}).items():
            if change["after"] is None:
                wanted["labels"].pop(name, None)
            else:
                wanted["labels"][name] = change["after"]
        wanted = _proposed(tx, variable, wanted, rollout, overrides, labels)
        diff = review.compute_diff(current, wanted)
        if not diff:
            raise ConflictError(
                f"{request.variable!r} already has every change of request #{request.id}; withdraw it instead"
            )
        _validated(tx, project_id, variable, diff, actor)
        refreshed = store.update(
            tx,
            request,
            ctx.clock(),
            state=OPEN,
            base_revision=variable.revision,
            diff=diff,
            reviewed_by=None,
            reviewed_at=None,
        )
        _audit(tx, actor, "refreshed", request, refreshed)
    return refreshed


def _comment(ctx: ServiceContext, tx: WriteTx, request: ChangeRequest, actor: str, body: str) -> Comment:
    text = body.strip()
    if not text:
        raise InvalidError("the comment is empty; write something")
    if len(text) > MAX_COMMENT:
        raise InvalidError(f"the comment is {len(text)} characters long; keep it to {MAX_COMMENT}")
    comment = store.add_comment(tx, request.id, actor[:200], text, ctx.clock())
    after = {**request_json(request), "comment": comment_json(comment)}
    audit.record(tx, request.project_id, actor, "commented", "change_request", request.variable, None, after)
    return comment


def add_comment(ctx: ServiceContext, project_id: int, request_id: int, actor: str, body: str) -> Comment:
    """A comment on a request (any member of the project)."""
    with ctx.storage.write() as tx:
        request = _locked(tx, project_id, request_id)
        roles.require(_role(tx, project_id, actor), roles.VIEWER, who=actors.display(actor))
        return _comment(ctx, tx, request, actor, body)
