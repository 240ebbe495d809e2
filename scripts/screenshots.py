"""Regenerate the PNG screenshots of the web UI's main pages into ``docs/screenshots/``.

Starts a real server on a free port with a temporary SQLite database, fills it with example variables
through the same service functions the API and the UI use, logs in with headless Chromium (Playwright,
Debian's ``chromium``) and captures each page.

    python scripts/screenshots.py [--chromium /usr/bin/chromium] [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from setpoint._server.app import create_app  # noqa: E402
from setpoint._server.services import editing, lifecycle  # noqa: E402
from setpoint._server.services import types as type_service  # noqa: E402
from setpoint._server.services.bootstrap import bootstrap  # noqa: E402
from setpoint._server.services.context import ServiceContext  # noqa: E402
from setpoint._server.services.models import VariableTypeIn  # noqa: E402
from setpoint._server.services.schedules import rollouts  # noqa: E402
from setpoint._server.services.schedules import service as schedules  # noqa: E402
from setpoint._server.services.segments import service as segments  # noqa: E402
from setpoint._server.settings import Settings  # noqa: E402
from setpoint._server.storage.records import LabelTarget  # noqa: E402
from setpoint._server.web import install  # noqa: E402

PASSWORD = "screenshots-only"  # noqa: S105 - a throwaway server
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
AGENT_SCHEMA = {
    "type": "object",
    "properties": {
        "instructions": {"type": "string"},
        "model": {"type": "string"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    },
    "required": ["instructions", "model"],
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(ctx: ServiceContext, project_id: int) -> None:
    """Example variables: a JSON prompt config with a canary and a rule, a flag, a limit, a text."""
    actor = "user:1:Admin"  # the owner made at first start
    type_service.upsert_type(
        ctx,
        project_id,
        VariableTypeIn(
            name="AgentConfig",
            json_schema=AGENT_SCHEMA,
            description="Configuration of a support agent",
            source_hint="app.agents.AgentConfig",
        ),
        actor,
    )
    name = "support_agent_config"
    lifecycle.create_variable(
        ctx, project_id, name, actor, type_name="AgentConfig", description="Prompt and model of the support agent"
    )
    values = [
        ({"instructions": "You are a helpful support agent. Be concise.", "model": "gpt-4o-mini", "temperature": 0.2},
         "First production prompt", "production"),
        ({"instructions": "You are a helpful support agent. Be concise and cite the docs.", "model": "gpt-4o-mini",
          "temperature": 0.2}, "Cite documentation", None),
        ({"instructions": "You are a friendly expert. Explain step by step and cite the docs.", "model": "gpt-4o",
          "temperature": 0.4}, "Detailed answers on the bigger model", "canary"),
    ]  # fmt: skip
    for value, description, label in values:
        editing.create_version(ctx, project_id, name, json.dumps(value), actor, description=description, label=label)
    editing.set_label(ctx, project_id, name, "premium", LabelTarget("label", target_label="canary"), actor)
    rules: list[dict[str, Any]] = [
        {"conditions": [{"kind": "value-equals", "attribute": "plan", "value": "enterprise"}],
         "rollout": {"labels": {"premium": 1.0}}},
        {"conditions": [{"kind": "value-is-in", "attribute": "region", "values": ["eu", "uk"]},
                        {"kind": "value-semver-less-than", "attribute": "app_version", "value": "2.0.0",
                         "negate": True}],
         "rollout": {"labels": {"canary": 0.5, "production": 0.5}}},
    ]  # fmt: skip
    editing.set_targeting(ctx, project_id, name, {"labels": {"production": 0.9, "canary": 0.1}}, rules, actor)

    lifecycle.create_variable(
        ctx, project_id, "new_checkout_flow", actor, kind="boolean", description="Feature flag: the new checkout"
    )
    editing.create_version(ctx, project_id, "new_checkout_flow", "true", actor, label="on")
    segments.create_segment(
        ctx,
        project_id,
        {
            "key": "beta-testers",
            "name": "Beta testers",
            "description": "Customers who opted into early features",
            "tags": ["beta", "customers"],
            "included": ["user_42", "user_108", "user_256", "user_311"],
            "excluded": ["user_13"],
            "included_contexts": [{"context_kind": "organization", "values": ["acme", "globex"]}],
            "rules": [
                {"clauses": [{"attribute": "plan", "op": "in", "values": ["enterprise", "business"]},
                             {"attribute": "email", "op": "endsWith", "values": ["@example.test"], "negate": True}]},
                {"clauses": [{"attribute": "app_version", "op": "semVerGreaterThan", "values": ["2.3.0"]}]},
            ],
        },
        actor,
    )  # fmt: skip
    in_beta = [{"conditions": [{"kind": "in-segment", "segment": "beta-testers"}], "rollout": {"labels": {"on": 1.0}}}]
    editing.set_targeting(ctx, project_id, "new_checkout_flow", {"labels": {"on": 0.25}}, in_beta, actor)
    lifecycle.create_variable(
        ctx, project_id, "max_tokens", actor, kind="number", description="Token limit of generated answers"
    )
    editing.create_version(ctx, project_id, "max_tokens", "1024", actor, label="production")
    editing.create_version(ctx, project_id, "max_tokens", "2048", actor, label="generous")
    editing.set_targeting(ctx, project_id, "max_tokens", {"labels": {"production": 1.0}}, [], actor)
    lifecycle.create_variable(
        ctx, project_id, "welcome_message", actor, kind="text", description="Greeting shown in the chat widget"
    )
    # scheduled work: a progressive rollout of the flag (its first step runs when the server starts) and a change
    rollouts.start(ctx, project_id, "new_checkout_flow", "on", 0.25, 1.0, 3, timedelta(hours=4), actor)
    move = {"label": "generous", "target": {"target_type": "version", "version": 1}}
    tomorrow = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    schedules.create(ctx, project_id, "max_tokens", "move_label", move, tomorrow, actor)
    promote = {"label": "production", "target": {"target_type": "version", "version": 3}}  # on the Values tab
    schedules.create(ctx, project_id, "support_agent_config", "move_label", promote, tomorrow, actor)


def seed_people(ctx: ServiceContext, project_id: int) -> None:
    """A small team: an admin, an editor (who changed a variable), a viewer, and an invite not yet accepted."""
    from setpoint._server.services.people import actors, members
    from setpoint._server.services.people import service as people

    team = [("ada@example.com", "Ada Lovelace", "admin"), ("grace@example.com", "Grace Hopper", "editor"),
            ("linus@example.com", "Linus Pauling", "viewer")]  # fmt: skip
    for email, name, role in team:
        link = people.invite(ctx, email, name, "user:1:Admin")
        people.accept_link(ctx, link.token, "screenshots-only-password")
        members.set_member(ctx, project_id, email, role, "user:1:Admin")
    people.invite(ctx, "new.hire@example.com", "New Hire", "user:1:Admin")
    grace = people.get(ctx, "grace@example.com")
    editing.set_label(
        ctx, project_id, "support_agent_config", "canary", LabelTarget("version", version=2),
        actors.person(grace.id, grace.display_name),
    )  # fmt: skip


def seed_change_request(ctx: ServiceContext, project_id: int) -> int:
    """Grace proposes raising the canary's share of the support agent's rollout; Ada asks a question."""
    from setpoint._server.services.change_requests import service as requests
    from setpoint._server.services.people import actors
    from setpoint._server.services.people import service as people

    grace, ada = people.get(ctx, "grace@example.com"), people.get(ctx, "ada@example.com")
    request = requests.create(
        ctx, project_id, actors.person(grace.id, grace.display_name), "support_agent_config",
        title="Send 20% of support traffic to the canary prompt",
        rollout={"labels": {"canary": 0.2, "production": 0.8}},
    )  # fmt: skip
    requests.add_comment(
        ctx, project_id, request.id, actors.person(ada.id, ada.display_name), "Is the eval for v3 green? Then yes."
    )
    return request.id


def webhook_receiver() -> str:
    """A receiver for the Webhooks page's delivery log (a thread answering 200), and its URL."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/hooks/setpoint"


def seed_webhook(ctx: ServiceContext, project_id: int, url: str) -> int:
    """A webhook with a few deliveries (made by changing a variable) in its log."""
    from setpoint._server.services.webhooks import service as webhooks

    hook = webhooks.create_webhook(
        ctx,
        project_id,
        "user:1:Admin",
        url=url,
        events_wanted=["variable.updated", "label.moved", "change_request.opened", "change_request.applied"],
        description="#releases channel",
        allow_private=True,
    )
    editing.set_label(
        ctx, project_id, "support_agent_config", "staging", LabelTarget("version", version=2), "user:1:Admin"
    )
    return hook.id


def main() -> None:
    """Serve, seed, log in and capture."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as data_dir:
        port = _free_port()
        settings = Settings(host="127.0.0.1", port=port, data_dir=Path(data_dir), admin_password=PASSWORD)
        settings.webhooks_allow_private = True  # the example receiver is on 127.0.0.1
        app = create_app(settings)
        install(app)
        ctx: ServiceContext = app.state.setpoint.ctx
        bootstrap(ctx, PASSWORD)
        with ctx.storage.read() as tx:
            project = tx.get_project("default")
        assert project is not None
        seed(ctx, project.id)
        seed_people(ctx, project.id)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=ARGS)
                page = browser.new_page(viewport={"width": 1360, "height": 860}, device_scale_factor=1)

                def shot(name: str, path: str | None = None, full: bool = True) -> None:
                    if path is not None:
                        page.goto(base + path)
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=str(args.out / f"{name}.png"), full_page=full)
                    print(f"wrote {args.out / (name + '.png')}")

                shot("login", "/login", full=False)
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Log in").click()
                page.wait_for_url("**/variables")
                p = "/p/default"
                v = f"{p}/variables/support_agent_config"
                shot("variables", f"{p}/variables")
                shot("new-variable", f"{p}/variables/new")
                shot("values", f"{v}?diff_from=1&diff_to=3")
                shot("targeting", f"{v}/targeting")
                page.goto(base + f"{v}/history")
                page.locator(".timeline li").nth(1).get_by_text("Show the change").click()  # a targeting change
                shot("history")
                shot("segments", f"{p}/segments/beta-testers")
                shot("simulator", f"{p}/simulator?key=user_42&attributes=plan%3Denterprise%0Aregion%3Deu")
                shot("types", f"{p}/types")
                shot("scheduled", f"{p}/scheduled")
                request_id = seed_change_request(ctx, project.id)
                shot("change-request", f"{p}/change-requests/{request_id}")
                shot("members", f"{p}/members")
                shot("people", "/people")
                page.goto(base + f"{p}/keys")
                page.get_by_label("Name").fill("checkout-service production")
                page.get_by_role("button", name="Create key").click()
                shot("api-keys")
                hook_id = seed_webhook(ctx, project.id, webhook_receiver())  # last: the other pages stay as they were
                time.sleep(1)  # the deliveries arrive
                shot("webhooks", f"{p}/webhooks/{hook_id}")
                browser.close()
        finally:
            server.should_exit = True
            thread.join(10)
            app.state.setpoint.storage.dispose()


if __name__ == "__main__":
    main()
