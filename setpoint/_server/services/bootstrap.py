"""First start: the first owner (login ``admin``) and a default project with its first API key."""

from __future__ import annotations

from dataclasses import dataclass

from setpoint._server.security import generate_password, hash_password, verify_password
from setpoint._server.services import keys
from setpoint._server.services.context import ServiceContext

ADMIN_USERNAME = "admin"
DEFAULT_PROJECT = "default"


@dataclass(frozen=True)
class BootstrapResult:
    """What a first start created; the secrets here are shown once and never stored in clear."""

    admin_created: bool
    generated_password: str | None
    password_from_env: bool
    first_key: keys.CreatedKey | None


def bootstrap(ctx: ServiceContext, admin_password: str | None) -> BootstrapResult:
    """Create the admin (password from ``admin_password`` or generated) and, with no project yet, a default
    project with a read,write key. An ``admin_password`` different from the stored one replaces it."""
    generated: str | None = None
    created = False
    with ctx.storage.write() as tx:
        user = tx.get_admin_user(ADMIN_USERNAME)
        if user is None:
            created = True
            if admin_password is None:
                generated = admin_password = generate_password()
            tx.create_admin_user(ADMIN_USERNAME, hash_password(admin_password), name="Admin", is_owner=True)
        elif admin_password is not None and not verify_password(admin_password, user.password_hash):
            tx.set_admin_password(user.id, hash_password(admin_password))
        has_projects = bool(tx.list_projects())
    first_key = None
    if not has_projects:
        first_key = keys.create_key(
            ctx, DEFAULT_PROJECT, frozenset({"read", "write"}), "setpoint serve (first start)", name="first key"
        )
    return BootstrapResult(
        admin_created=created,
        generated_password=generated,
        password_from_env=admin_password is not None and generated is None,
        first_key=first_key,
    )
