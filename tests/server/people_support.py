"""Helpers of the people tests: real people made through the invite flow, their memberships and keys."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import httpx

from setpoint._server.services import keys
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.people import members
from setpoint._server.services.people import service as people

PASSWORD = "a long enough password"


@dataclass(frozen=True)
class Person:
    """A person who accepted their invite; ``key`` is their read,write key of ``project`` (if any)."""

    id: int
    email: str
    name: str
    key: str = ""

    def headers(self, key: str | None = None) -> dict[str, str]:
        """Authorization headers with their key."""
        return {"Authorization": f"bearer {key or self.key}"}


def make_person(
    ctx: ServiceContext, name: str, *, project: str | None = None, role: str | None = None, scopes: str = "read,write"
) -> Person:
    """Invite a person, accept the invite (choosing :data:`PASSWORD`), add them to ``project`` with ``role`` and
    give them a key there."""
    email = f"{name.lower().replace(' ', '.')}.{uuid.uuid4().hex[:6]}@example.com"
    link = people.invite(ctx, email, name, "tests")
    person = people.accept_link(ctx, link.token, PASSWORD)
    token = ""
    if project is not None and role is not None:
        project_id = keys.get_project(ctx, project).id
        members.set_member(ctx, project_id, email, role, "tests")
        created = keys.create_key(
            ctx, project, keys.parse_scopes(scopes), f"user:{person.id}:{name}", name=f"{name} key", user_id=person.id
        )
        token = created.token
    return Person(id=person.id, email=email, name=name, key=token)


def ui_login(client: httpx.Client, login: str, password: str) -> httpx.Response:
    """Log in through the login form (with its CSRF cookie)."""
    form = client.get("/login").text
    token = re.search(r'name="login_csrf" value="([^"]+)"', form)
    assert token is not None
    return client.post("/login", data={"username": login, "password": password, "login_csrf": token.group(1)})
