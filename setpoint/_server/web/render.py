"""Rendering helpers shared by the UI views: templates, the page context, the current project, form reading."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from setpoint._server.api.deps import server_state
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import NotFoundError
from setpoint._server.services.input_limits import check_db_int
from setpoint._server.services.people import actors, roles
from setpoint._server.services.people.service import project_role
from setpoint._server.storage.records import Project
from setpoint._server.web import session as sessions
from setpoint._server.web.messages import for_ui
from setpoint._server.web.session import UiSession

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def _pretty(text: str | None) -> str:
    if text is None:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _short(text: str | None, limit: int = 80) -> str:
    if text is None:
        return ""
    with contextlib.suppress(ValueError):
        text = json.dumps(json.loads(text), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else ""


def _ago(value: Any) -> str:
    """How long ago ``value`` was, in the largest whole unit (``3 min ago``, ``2 days ago``)."""
    if value is None:
        return ""
    seconds = max(0, int((datetime.now(UTC) - value).total_seconds()))
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if unit == 'day' and n != 1 else ''} ago"
    return "just now"


def _actor(actor: str) -> str:
    return actors.display(actor)


def _initials(actor: str) -> str:
    found = actors.parse(actor)
    if found.user_id is not None:
        return actors.initials(found.user_name or "")
    return "K" if found.key_id is not None else actors.initials(actors.display(actor))


def _sentence(text: object) -> str:
    """A message as a sentence: capitalised first letter (the rest as it is)."""
    value = str(text).strip()
    return value[:1].upper() + value[1:]


ROLLOUT_COLOURS = ("#3b5bdb", "#0ca678", "#f08c00", "#ae3ec9", "#e8590c", "#1098ad", "#d6336c", "#5c940d")
"""The colour of each label in a rollout bar, in the order of the labels (the legend and app.js use these)."""

templates.env.globals["rollout_colours"] = ROLLOUT_COLOURS
templates.env.filters["pretty"] = _pretty
templates.env.filters["sentence"] = _sentence
templates.env.filters["short"] = _short
templates.env.filters["when"] = _when
templates.env.filters["actor"] = _actor
templates.env.filters["ago"] = _ago
templates.env.filters["initials"] = _initials
templates.env.filters["avatar"] = lambda actor: Markup('<span class="avatar" aria-hidden="true">{}</span>').format(
    _initials(actor)
)
templates.env.filters["pct"] = lambda w: f"{float(w) * 100:g}"
templates.env.filters["urlpart"] = lambda s: quote(str(s), safe="")


@dataclass(frozen=True)
class Page:
    """What every logged-in view needs: the service context, the session and the current project."""

    request: Request
    ctx: ServiceContext
    session: UiSession
    project: Project
    projects: list[Project]
    role: str | None = None
    """The person's role in this project (``owner`` for owners)."""
    open_requests: int = 0
    """Change requests waiting for someone (open, approved, stale): the count in the nav."""

    def can(self, need: str) -> bool:
        """Whether the person's role includes ``need`` (templates hide what they cannot do)."""
        return roles.allows(self.role, need)

    def require(self, need: str) -> None:
        """403 (a page naming the role needed) unless the person's role includes ``need``."""
        roles.require(self.role, need, where=self.project.name)

    @property
    def base(self) -> str:
        """The URL prefix of the current project's pages."""
        return f"/p/{quote(self.project.name, safe='')}"

    def render(self, template: str, status_code: int = 200, **context: Any) -> Response:
        """Render a template with the page context."""
        context.update(
            page=self,
            session=self.session,
            csrf_token=self.session.csrf_token,
            project=self.project,
            projects=self.projects,
            base=self.base,
            notice=context.get("notice") or self.request.query_params.get("notice", "")[:300],
        )
        if isinstance(context.get("error"), str) and context["error"]:
            context["error"] = for_ui(context["error"])
        return templates.TemplateResponse(self.request, template, context, status_code=status_code)

    def redirect(self, path: str, notice: str = "") -> RedirectResponse:
        """A 303 to a page of this project, with an optional notice shown there."""
        url = self.base + path
        if notice:
            url += ("&" if "?" in url else "?") + "notice=" + quote(notice)
        return RedirectResponse(url, status_code=303)

    async def form(self, need: str = roles.EDITOR) -> FormData:
        """The posted form, after checking its CSRF token and that the person's role includes ``need``
        (``editor`` unless told otherwise: every change needs at least an editor)."""
        self.require(need)
        form = await self.request.form()
        token = form.get("csrf_token")
        sessions.check_csrf(self.session, token if isinstance(token, str) else None)
        return form


def visible_projects(ctx: ServiceContext, session: UiSession) -> list[Project]:
    """The projects a person sees: every one for owners, the ones they are a member of otherwise."""
    with ctx.storage.read() as tx:
        projects = tx.list_projects()
        if session.user.is_owner:
            return projects
        mine = {m.project_id for m in tx.list_memberships(user_id=session.user.id)}
    return [p for p in projects if p.id in mine]


def _load_page(request: Request, project_name: str) -> Page:
    ctx = server_state(request).ctx
    ui = sessions.require(request, ctx)
    projects = visible_projects(ctx, ui)
    project = next((p for p in projects if p.name == project_name), None)
    if project is None:  # the same answer whether it exists or not: members only see their projects
        raise NotFoundError(f"project {project_name!r} does not exist or you are not a member of it")
    from setpoint._server.storage import change_requests

    with ctx.storage.read() as tx:
        role = project_role(tx, ui.user, project.id)
        waiting = change_requests.count_active(tx, project.id)
    return Page(
        request=request, ctx=ctx, session=ui, project=project, projects=projects, role=role, open_requests=waiting
    )


async def page(request: Request, project: str) -> Page:
    """Dependency: the logged-in page context of ``/p/{project}/...``."""
    return await run_in_threadpool(_load_page, request, project)


def field(form: FormData, name: str, default: str = "") -> str:
    """A text field of a form (``default`` when missing or a file)."""
    value = form.get(name)
    return value if isinstance(value, str) else default


def revision(form: FormData) -> int | None:
    """The ``revision`` hidden field of an edit form (the optimistic-concurrency check)."""
    raw = field(form, "revision")
    if not (raw.isdigit() and raw.isascii()):
        return None
    check_db_int(int(raw), "revision")
    return int(raw)
