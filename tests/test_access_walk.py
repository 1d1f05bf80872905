"""Who sees what, walked over every console route and the console socket.

A "secret" website, email inbox and phone line are for their members only, and
the agent here is no member. Every route of the console is called as that
agent with the ids of the secret inboxes' things: each must refuse (404 for
things, 403 for admin pages), and the lists must not show them. A route that
declares no access fails here by name (and does not import at all: see
agent_console/web.py), so a new route cannot skip the check.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa
from starlette.routing import Mount, Route

from agent_console.access import ADMIN, ANYONE, LISTS, OWN
from agent_console.routes import routes as console_routes
from hub.core import Hub
from hub.email.models import Attachment
from hub.models import Agent, Direction, Inbox, Role
from hub.voice.models import CallEvent, Step
from storage.tables import email_attachments, email_messages
from tests.console_client import AGENT_PASSWORD, Console, log_in, new_http, visitor_says
from tests.email_helpers import inbound, make_email_inbox
from tests.test_console_socket import ready_socket, receive

SECRET_CHAT = "the secret chat text 7f3a"
SECRET_MAIL = "the secret mail text 9b2c"
SECRET_NUMBER = "+44 20 7946 0999"
OPEN_CHAT = "an open chat text 1d4e"


@dataclass
class Secrets:
    """Things in inboxes for members only, by path parameter."""

    ids: dict[str, int | str]
    website: Inbox
    open_site: Inbox


@pytest.fixture
async def secrets(hub: Hub, website: Inbox) -> Secrets:
    site = await hub.inboxes.create_website("Secret site", ["http://secret.test"])
    visitor, posted = await visitor_says(hub, site, SECRET_CHAT)
    await hub.tracking.arrive(visitor, site, "http://secret.test/board-page", "Secret site page")
    mail_inbox = await make_email_inbox(hub, address="board@shop.test", name="Board")
    received = await hub.email.ingest(
        mail_inbox,
        inbound(
            SECRET_MAIL,
            to=("board@shop.test",),
            attachments=(Attachment("plan.txt", "text/plain", b"secret plan"),),
        ),
    )
    line, _ = await hub.phone_lines.create("Secret line", ["+44 20 7946 0001"], "GB")
    recorded = await hub.calls.record(
        line,
        CallEvent(
            step=Step.RING,
            external_id="secret-call",
            source="cti",
            direction=Direction.IN,
            from_number=SECRET_NUMBER,
            to_number="+44 20 7946 0001",
        ),
    )
    assert recorded.call is not None
    campaign = await hub.campaigns.create(
        site.id,
        {
            "name": "Secret campaign",
            "message": "Hello from the secret site",
            "sender_name": "Board",
            "url_match": "prefix",
            "url_pattern": "/",
            "min_seconds": 1,
            "agents_online_only": False,
        },
    )
    team = await hub.access.create_team("Board")
    for inbox_id in (site.id, mail_inbox.id, line.inbox_id):
        await hub.access.set_inbox_members(inbox_id, True, [], [team.id])
    async with hub.db.read() as conn:
        email_id = await conn.scalar(
            sa.select(email_messages.c.id).where(
                email_messages.c.conversation_id == received.conversation_id
            )
        )
        attachment_id = await conn.scalar(
            sa.select(email_attachments.c.id).where(
                email_attachments.c.email_message_id == email_id
            )
        )
    ids: dict[str, int | str] = {
        "conversation_id": posted.conversation.id,
        "email_id": email_id,
        "attachment_id": attachment_id,
        "call_id": recorded.call.id,
        "contact_id": posted.conversation.contact_id,
        "inbox_id": site.id,
        "visitor_id": visitor.id,
        "campaign_id": campaign.id,
        "team_id": team.id,
        "agent_id": 1,
        "seq": 1,
    }
    return Secrets(ids, site, website)


def console_http_routes() -> list[tuple[str, str, object]]:
    """(method, path template, endpoint) of every HTTP route under /console."""
    [mount] = [r for r in console_routes if isinstance(r, Mount) and r.path == "/console"]
    found = []
    for route in mount.routes:
        if isinstance(route, Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                found.append((method, "/console" + route.path, route.endpoint))
    return found


def filled(template: str, ids: dict[str, int | str]) -> str:
    path = template
    for name, value in ids.items():
        path = path.replace("{" + name + ":id}", str(value)).replace("{" + name + "}", str(value))
    assert "{" not in path, f"teach this test an id for {path}"
    return path


@pytest.fixture
async def outsider(hub: Hub) -> Agent:
    return await hub.agents.create("out@example.com", "Olive Outsider", AGENT_PASSWORD, Role.AGENT)


@pytest.fixture
async def as_outsider(live_server, outsider: Agent):  # type: ignore[no-untyped-def]
    async with new_http(live_server) as client:
        yield await log_in(client, outsider.email)


async def call(console: Console, method: str, path: str) -> httpx.Response:
    if method == "GET":
        return await console.http.get(path, headers={"accept": "application/json"})
    return await console.post_json(path, {"text": "hello", "status": "resolved", "name": "x"})


def test_every_console_route_declares_who_may_use_it() -> None:
    undeclared = [
        f"{method} {path}"
        for method, path, endpoint in console_http_routes()
        if getattr(endpoint, "access", None) is None
    ]
    assert undeclared == []


async def test_an_agent_outside_an_inbox_is_refused_on_every_route(
    live_server, secrets: Secrets, as_outsider: Console
) -> None:
    walked = 0
    for method, template, endpoint in console_http_routes():
        guard = endpoint.access  # type: ignore[attr-defined]
        if guard in (ANYONE, OWN) or template.startswith("/console/static"):
            continue
        path = filled(template, secrets.ids)
        response = await call(as_outsider, method, path)
        walked += 1
        if guard is ADMIN:
            assert response.status_code == 403, f"{method} {path}: {response.status_code}"
        elif guard is LISTS:
            assert response.status_code in (200, 201, 400), f"{method} {path}"
            for secret in (
                SECRET_CHAT,
                SECRET_MAIL,
                "Secret site",
                "secret-call",
                "7946 0999",
                "board-page",
            ):
                assert secret not in response.text, f"{method} {path} shows {secret!r}"
        else:
            assert response.status_code == 404, (
                f"{method} {path} ({guard}): {response.status_code} {response.text[:200]}"
            )
    assert walked > 30


async def test_a_list_shows_the_agents_own_inboxes_and_counts_only_them(
    hub: Hub, live_server, secrets: Secrets, as_outsider: Console
) -> None:
    await visitor_says(hub, secrets.open_site, OPEN_CHAT)
    listing = (await as_outsider.http.get("/console/api/conversations?status=all")).json()
    texts = json.dumps(listing["conversations"])
    assert OPEN_CHAT in texts and SECRET_CHAT not in texts
    assert listing["counts"]["all"] == 1


async def test_a_member_and_an_admin_see_the_secret_inbox_and_a_manager_only_reads_it(
    hub: Hub, live_server, secrets: Secrets, outsider: Agent, admin: Agent
) -> None:
    conversation = secrets.ids["conversation_id"]
    await hub.access.set_inbox_members(secrets.website.id, True, [outsider.id], [])
    manager = await hub.agents.create("m@example.com", "Max Manager", AGENT_PASSWORD, Role.MANAGER)
    async with contextlib.AsyncExitStack() as stack:
        consoles = {}
        for who in (outsider, admin, manager):
            client = await stack.enter_async_context(new_http(live_server))
            consoles[who.email] = await log_in(client, who.email)
        for who in (outsider, admin, manager):
            page = await consoles[who.email].http.get(
                f"/console/conversations/{conversation}/messages"
            )
            assert page.status_code == 200 and SECRET_CHAT in page.text, who.email
        reply = f"/console/conversations/{conversation}/messages"
        assert (await consoles[manager.email].post_json(reply, {"text": "hi"})).status_code == 403
        page = await consoles[manager.email].http.get(f"/console/conversations/{conversation}")
        assert "do not work in it" in page.text and 'id="composer" hidden' in page.text
        page = await consoles[outsider.email].http.get(f"/console/conversations/{conversation}")
        assert "do not work in it" not in page.text and 'id="composer" method' in page.text
        assert (await consoles[outsider.email].post_json(reply, {"text": "hi"})).status_code == 201


async def test_a_team_makes_its_members_members_of_the_inbox(
    hub: Hub, live_server, secrets: Secrets, outsider: Agent, as_outsider: Console
) -> None:
    path = f"/console/conversations/{secrets.ids['conversation_id']}/messages"
    assert (await as_outsider.http.get(path)).status_code == 404
    [team] = await hub.access.teams()
    await hub.access.update_team(team.id, "Board", [outsider.id])
    assert (await as_outsider.http.get(path)).status_code == 200
    await hub.access.update_team(team.id, "Board", [])
    assert (await as_outsider.http.get(path)).status_code == 404


async def test_no_event_of_another_inbox_reaches_an_agents_socket(
    hub: Hub, live_server, secrets: Secrets, as_outsider: Console
) -> None:
    async with ready_socket(live_server, as_outsider) as ws:
        await visitor_says(hub, secrets.website, "more secrets")
        await hub.tracking.arrive(
            await hub.visitors.create(secrets.website), secrets.website, "http://secret.test/", "S"
        )
        await visitor_says(hub, secrets.open_site, OPEN_CHAT)
        seen: list[str] = []
        while OPEN_CHAT not in (seen[-1] if seen else ""):
            seen.append(json.dumps(await receive(ws)))
        assert all("secret" not in frame.lower() for frame in seen), seen
        secret_id = secrets.ids["conversation_id"]
        for frame in (
            {"type": "typing", "conversation_id": secret_id, "on": True},
            {"type": "read", "conversation_id": secret_id, "seq": 1},
        ):
            await ws.send(json.dumps(frame))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert answer["type"] == "error" and answer["code"] == "not_found", answer


# ---- the admins' page -----------------------------------------------------------------


async def test_an_admin_makes_a_team_and_an_inbox_for_its_members_only_in_the_console(
    hub: Hub, live_server, website: Inbox, as_admin: Console, outsider: Agent, agent: Agent
) -> None:
    form = {"csrf_token": as_admin.csrf, "name": "Sales", f"agent-{agent.id}": "1"}
    made = await as_admin.http.post("/console/teams", data=form)
    assert made.status_code == 303
    [team] = await hub.access.teams()
    assert (team.name, team.agent_ids) == ("Sales", (agent.id,))
    members = {"csrf_token": as_admin.csrf, "who": "members", f"team-{team.id}": "1"}
    saved = await as_admin.http.post(f"/console/inboxes/{website.id}/members", data=members)
    assert saved.status_code == 303
    assert (await hub.access.of(agent)).can_act(website.id)
    assert not (await hub.access.of(outsider)).can_read(website.id)
    page = await as_admin.http.get("/console/teams")
    assert page.status_code == 200 and "Sales" in page.text and "Only these members" in page.text


@pytest.mark.parametrize(
    ("form", "problem"),
    [
        ({"who": "nobody"}, "who must be"),
        ({"who": "members", "agent-99999": "1"}, "No agent has the id 99999"),
        ({"who": "members", "team-abc": "1"}, "list of ids"),
    ],
)
async def test_bad_member_settings_are_refused_and_change_nothing(
    hub: Hub, live_server, website: Inbox, as_admin: Console, form: dict, problem: str
) -> None:
    answer = await as_admin.post_json(
        f"/console/inboxes/{website.id}/members",
        {k: v for k, v in form.items()},
    )
    assert answer.status_code == 400 and problem in answer.json()["error"]["message"]
    assert not (await hub.inboxes.get(website.id)).members_only


async def test_a_team_name_is_needed_and_unique(hub: Hub, live_server, as_admin: Console) -> None:
    assert (await as_admin.post_json("/console/teams", {"name": "  "})).status_code == 400
    assert (await as_admin.post_json("/console/teams", {"name": "Sales"})).status_code == 303
    again = await as_admin.post_json("/console/teams", {"name": "sales"})
    assert again.status_code == 400 and "already a team" in again.json()["error"]["message"]
    assert [t.name for t in await hub.access.teams()] == ["Sales"]


# ---- the audit log ------------------------------------------------------------------


async def test_admins_changes_are_in_the_audit_log_without_secrets_and_refusals_are_not(
    hub: Hub, live_server, as_admin: Console, admin: Agent
) -> None:
    assert (await as_admin.post_json("/console/teams", {"name": "Sales"})).status_code == 303
    new_agent = {"name": "Pat", "email": "pat@example.com", "password": "a long secret pw"}
    assert (await as_admin.post_json("/console/agents", new_agent)).status_code == 201
    refused = await as_admin.post_json("/console/teams", {"name": ""})
    assert refused.status_code == 400
    entries = await hub.audit.recent()
    assert [(e.action, e.target, e.agent_name) for e in entries] == [
        ("create agent", "/console/agents", admin.name),
        ("create team", "/console/teams", admin.name),
    ]
    assert entries[0].details["email"] == "pat@example.com"
    assert entries[0].details["password"] == "(hidden)"
    page = await as_admin.http.get("/console/audit")
    assert page.status_code == 200 and "Create team" in page.text
    assert "a long secret pw" not in page.text


async def test_live_visitors_show_only_the_sites_the_agent_may_read(
    hub: Hub, live_server, secrets: Secrets, as_outsider: Console, as_admin: Console
) -> None:
    visitor = await hub.visitors.create(secrets.open_site)
    await hub.tracking.arrive(visitor, secrets.open_site, "http://shop.test/open-page", "Open")
    mine = (await as_outsider.http.get("/console/api/visitors")).json()["visitors"]
    everyone = (await as_admin.http.get("/console/api/visitors")).json()["visitors"]
    assert [v["id"] for v in mine] == [visitor.id]
    assert len(everyone) == 2 and secrets.ids["visitor_id"] in {v["id"] for v in everyone}
