"""Admins manage the team: invitations, edits, deactivation, deletion, password resets.

Through the console's routes, as a browser would, with the hub's state read back."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from hub.agents.invitations import Invitation, InvitationLinks
from hub.core import Hub
from hub.errors import InvalidInput
from hub.models import Agent, Direction, Inbox, Role, Status, utcnow
from hub.voice.models import Outcome
from tests.conftest import LiveServer
from tests.console_client import AGENT_PASSWORD, Console, csrf_from, log_in, new_http, visitor_says
from tests.email_helpers import make_email_inbox
from tests.mail_servers import smtp_sink
from tests.test_console_socket import WAIT_SECONDS, console_socket, receive

NEW_PASSWORD = "a brand new password"


async def invite(console: Console, email: str = "ivy@example.com", role: str = "agent") -> str:
    """Invite through the console; the link the admin is shown."""
    response = await console.post_form(
        "/console/agents/invite", {"name": "Ivy Invited", "email": email, "role": role}
    )
    assert response.status_code == 200, response.text
    match = re.search(r'<code id="invitation-link">([^<]+)</code>', response.text)
    assert match, "the admin is shown the link"
    return match.group(1).replace("&amp;", "&")


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


async def join(http: httpx.AsyncClient, token: str, password: str = NEW_PASSWORD) -> httpx.Response:
    # The session's CSRF token (the join page itself may refuse a bad link).
    csrf = csrf_from((await http.get("/console/login")).text)
    return await http.post(
        "/console/join",
        data={"csrf_token": csrf, "token": token, "password": password, "confirm": password},
    )


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(Exception) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), WAIT_SECONDS)
    rcvd = getattr(closed.value, "rcvd", None)
    assert rcvd is not None, closed.value
    return rcvd.code, rcvd.reason


# ---- invitations -------------------------------------------------------------------------


async def test_an_invitee_sets_a_password_and_lands_in_the_console(
    hub: Hub, as_admin: Console, live_server: LiveServer
) -> None:
    link = await invite(as_admin)
    assert link.startswith(f"{hub.settings.public_url}/console/join?token=")
    invited = next(a for a in await hub.agents.list(everyone=True) if a.email == "ivy@example.com")
    assert invited.invited and await hub.agents.authenticate("ivy@example.com", "") is None
    async with new_http(live_server) as http:
        answer = await join(http, token_of(link))
        assert answer.status_code == 303 and answer.headers["location"] == "/console/"
        home = await http.get("/console/")
        assert home.status_code == 200 and "Ivy Invited" in home.text
    joined = await hub.agents.authenticate("ivy@example.com", NEW_PASSWORD)
    assert joined is not None and not joined.invited


async def test_an_invitation_link_works_once(as_admin: Console, live_server: LiveServer) -> None:
    token = token_of(await invite(as_admin))
    async with new_http(live_server) as http:
        assert (await join(http, token)).status_code == 303
    async with new_http(live_server) as http:
        page = await http.get("/console/join", params={"token": token})
        assert page.status_code == 400 and "already been used" in page.text
        again = await http.post(
            "/console/join",
            data={"csrf_token": "x", "token": token, "password": "other pass", "confirm": "x"},
        )
        assert again.status_code in {400, 403}
    async with new_http(live_server) as http:
        await log_in(http, "ivy@example.com", NEW_PASSWORD)  # the first password stands


async def test_a_forged_invitation_link_is_refused(
    hub: Hub, as_admin: Console, live_server: LiveServer
) -> None:
    token = token_of(await invite(as_admin))
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    other_key = InvitationLinks("not the hub's key")
    invited = await hub.agents.list(everyone=True)
    ivy = next(a for a in invited if a.email == "ivy@example.com")
    signed_elsewhere = other_key.token(Invitation(ivy.id, "a-guessed-nonce"))
    async with new_http(live_server) as http:
        for bad in (forged, signed_elsewhere, "garbage", "x" * 500):
            page = await http.get("/console/join", params={"token": bad})
            assert page.status_code == 400, bad
            assert "not valid" in page.text
            answer = await join(http, bad)
            assert answer.status_code == 400
    assert await hub.agents.authenticate("ivy@example.com", NEW_PASSWORD) is None


async def test_an_expired_invitation_link_is_refused(
    hub: Hub, as_admin: Console, live_server: LiveServer
) -> None:
    now = 1_900_000_000.0
    hub.accounts.invitations.clock = lambda: now
    token = token_of(await invite(as_admin))
    hub.accounts.invitations.clock = lambda: now + 7 * 86400 + 1
    async with new_http(live_server) as http:
        page = await http.get("/console/join", params={"token": token})
        assert page.status_code == 400 and "expired" in page.text
        assert (await join(http, token)).status_code == 400
    assert await hub.agents.authenticate("ivy@example.com", NEW_PASSWORD) is None


async def test_a_new_invitation_link_replaces_the_old_one(
    hub: Hub, as_admin: Console, live_server: LiveServer
) -> None:
    old = token_of(await invite(as_admin))
    new = token_of(await invite(as_admin))
    async with new_http(live_server) as http:
        assert (await join(http, old)).status_code == 400
        assert (await join(http, new)).status_code == 303


async def test_inviting_an_existing_agent_is_refused(
    hub: Hub, as_admin: Console, agent: Agent
) -> None:
    response = await as_admin.post_form(
        "/console/agents/invite", {"name": "Again", "email": agent.email, "role": "agent"}
    )
    assert response.status_code == 400 and "already exists" in response.text
    assert (await hub.agents.get(agent.id)) == agent


# ---- non-admins ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/console/agents", {"name": "M", "email": "m@example.com", "password": "long enough"}),
        ("/console/agents/invite", {"name": "M", "email": "m@example.com", "role": "admin"}),
        ("/console/agents/{id}", {"name": "M", "email": "m@example.com", "role": "admin"}),
        ("/console/agents/{id}/deactivate", {}),
        ("/console/agents/{id}/reactivate", {}),
        ("/console/agents/{id}/delete", {}),
        ("/console/agents/{id}/password", {"password": "taken over!"}),
        ("/console/agents/{id}/invite", {}),
    ],
)
async def test_agents_are_refused_every_admin_action(
    hub: Hub, as_agent: Console, admin: Agent, path: str, fields: dict[str, str]
) -> None:
    response = await as_agent.post_form(path.format(id=admin.id), fields)
    assert response.status_code == 403
    assert await hub.agents.get(admin.id) == admin
    assert await hub.agents.authenticate(admin.email, AGENT_PASSWORD) == admin
    assert len(await hub.agents.list(everyone=True)) == 2


async def test_agents_may_not_open_an_agents_page(as_agent: Console, admin: Agent) -> None:
    assert (await as_agent.http.get(f"/console/agents/{admin.id}")).status_code == 403


# ---- editing ------------------------------------------------------------------------


async def test_admin_edits_name_email_and_role(hub: Hub, as_admin: Console, agent: Agent) -> None:
    response = await as_admin.post_form(
        f"/console/agents/{agent.id}",
        {"name": "Samantha", "email": "Samantha@Example.com", "role": "admin"},
    )
    assert response.status_code == 303
    edited = await hub.agents.get(agent.id)
    assert edited is not None
    assert (edited.name, edited.email, edited.role) == (
        "Samantha",
        "samantha@example.com",
        Role.ADMIN,
    )


async def test_the_role_menu_offers_every_role(as_admin: Console, agent: Agent) -> None:
    page = await as_admin.http.get(f"/console/agents/{agent.id}")
    for role in Role:
        assert f'<option value="{role.value}"' in page.text


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "", "email": "x@example.com", "role": "agent"},
        {"name": "X", "email": "not an address", "role": "agent"},
        {"name": "X", "email": "admin@example.com", "role": "agent"},
        {"name": "X", "email": "x@example.com", "role": "root"},
    ],
)
async def test_a_bad_edit_changes_nothing(
    hub: Hub, as_admin: Console, admin: Agent, agent: Agent, fields: dict[str, str]
) -> None:
    response = await as_admin.post_form(f"/console/agents/{agent.id}", fields)
    assert response.status_code == 400
    assert await hub.agents.get(agent.id) == agent


# ---- the last admin --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "fields", "word"),
    [
        ("/deactivate", {}, "deactivated"),
        ("", {"name": "Ada", "email": "admin@example.com", "role": "agent"}, "demoted"),
        ("/delete", {}, "deleted"),
    ],
)
async def test_the_last_active_admin_is_protected(
    hub: Hub, as_admin: Console, admin: Agent, agent: Agent, action: str, fields: dict, word: str
) -> None:
    response = await as_admin.post_form(f"/console/agents/{admin.id}{action}", fields)
    assert response.status_code == 400
    assert f"The last active admin cannot be {word}" in response.text
    assert await hub.agents.get(admin.id) == admin


async def test_a_deactivated_admin_does_not_count_as_the_other_admin(
    hub: Hub, admin: Agent, agent: Agent
) -> None:
    other = await hub.agents.create("bo@example.com", "Bo", AGENT_PASSWORD, Role.ADMIN)
    await hub.accounts.deactivate(admin, other.id)
    with pytest.raises(Exception, match="last active admin"):
        await hub.accounts.update(admin, admin.id, name="Ada", email=admin.email, role=Role.AGENT)
    await hub.accounts.reactivate(admin, other.id)
    await hub.accounts.update(admin, admin.id, name="Ada", email=admin.email, role=Role.AGENT)
    demoted = await hub.agents.get(admin.id)
    assert demoted is not None and demoted.role is Role.AGENT


async def test_with_two_admins_one_may_step_down(hub: Hub, as_admin: Console, admin: Agent) -> None:
    await hub.agents.create("bo@example.com", "Bo", AGENT_PASSWORD, Role.ADMIN)
    response = await as_admin.post_form(
        f"/console/agents/{admin.id}", {"name": "Ada", "email": admin.email, "role": "agent"}
    )
    assert response.status_code == 303


# ---- deactivation ----------------------------------------------------------------------


async def test_deactivation_ends_a_live_session(
    hub: Hub, as_admin: Console, as_agent: Console, agent: Agent
) -> None:
    assert (await as_agent.http.get("/console/")).status_code == 200
    response = await as_admin.post_form(f"/console/agents/{agent.id}/deactivate", {})
    assert response.status_code == 303
    after = await as_agent.http.get("/console/")
    assert after.status_code == 303 and after.headers["location"].startswith("/console/login")


async def test_deactivation_closes_the_agents_console_socket_with_a_reason(
    hub: Hub, as_admin: Console, as_agent: Console, agent: Agent, live_server: LiveServer
) -> None:
    async with console_socket(live_server, as_agent.cookie) as ws:
        assert (await receive(ws))["type"] == "ready"
        await as_admin.post_form(f"/console/agents/{agent.id}/deactivate", {})
        assert await closed_with(ws) == (4401, "deactivated")
    assert agent.id not in hub.presence.online_agent_ids()


async def test_a_deactivated_agent_cannot_log_in_and_is_told_why(
    hub: Hub, admin: Agent, agent: Agent, live_server: LiveServer
) -> None:
    await hub.accounts.deactivate(admin, agent.id)
    async with new_http(live_server) as http:
        page = await http.get("/console/login")
        answer = await http.post(
            "/console/login",
            data={
                "email": agent.email,
                "password": AGENT_PASSWORD,
                "csrf_token": csrf_from(page.text),
            },
        )
        assert answer.status_code == 403
        assert "deactivated" in answer.text
        assert (await http.get("/console/")).status_code == 303
        # A wrong password says nothing about the account.
        wrong = await http.post(
            "/console/login",
            data={
                "email": agent.email,
                "password": "wrong one!",
                "csrf_token": csrf_from(page.text),
            },
        )
        assert wrong.status_code == 400 and "deactivated" not in wrong.text


async def test_a_reactivated_agent_logs_in_again(
    hub: Hub, as_admin: Console, agent: Agent, live_server: LiveServer
) -> None:
    await as_admin.post_form(f"/console/agents/{agent.id}/deactivate", {})
    response = await as_admin.post_form(f"/console/agents/{agent.id}/reactivate", {})
    assert response.status_code == 303
    async with new_http(live_server) as http:
        await log_in(http, agent.email)


async def test_deactivation_returns_open_conversations_to_the_queue_and_keeps_the_name(
    hub: Hub, website: Inbox, admin: Agent, agent: Agent
) -> None:
    _, open_one = await visitor_says(hub, website, "Hello?")
    _, resolved_one = await visitor_says(hub, website, "Thanks, done")
    for posted in (open_one, resolved_one):
        await hub.conversations.assign(agent, posted.conversation.id, agent.id)
    await hub.conversations.reply(agent, open_one.conversation.id, "Sam here, one moment")
    await hub.conversations.set_status(agent, resolved_one.conversation.id, Status.RESOLVED)

    await hub.accounts.deactivate(admin, agent.id)

    reopened = await hub.conversations.get(open_one.conversation.id)
    assert reopened.assignee_id is None
    kept = await hub.conversations.get(resolved_one.conversation.id)
    assert kept.assignee_id == agent.id  # resolved history stays as it was
    messages = await hub.conversations.recent_messages(open_one.conversation.id)
    reply = next(m for m in messages if m.text == "Sam here, one moment")
    assert reply.author_name == "Sam Agent"
    assert agent.id not in {a.id for a in await hub.agents.list()}  # not offered for assignment


# ---- deletion -------------------------------------------------------------------------


async def test_an_agent_without_history_is_deleted(
    hub: Hub, as_admin: Console, agent: Agent
) -> None:
    response = await as_admin.post_form(f"/console/agents/{agent.id}/delete", {})
    assert response.status_code == 303
    assert await hub.agents.get(agent.id) is None


@pytest.mark.parametrize("history", ["reply", "note", "assigned"])
async def test_deleting_an_agent_with_history_is_refused(
    hub: Hub, as_admin: Console, website: Inbox, agent: Agent, history: str
) -> None:
    _, posted = await visitor_says(hub, website, "Hi")
    conversation_id = posted.conversation.id
    if history == "assigned":
        await hub.conversations.assign(agent, conversation_id, agent.id)
    else:
        await hub.conversations.reply(agent, conversation_id, "A word", private=history == "note")
    response = await as_admin.post_form(f"/console/agents/{agent.id}/delete", {})
    assert response.status_code == 400
    assert "Deactivate them instead" in response.text
    assert await hub.agents.get(agent.id) == agent


# ---- password resets -------------------------------------------------------------------


async def test_an_admin_resets_a_password_and_every_session_ends(
    hub: Hub, as_admin: Console, as_agent: Console, agent: Agent, live_server: LiveServer
) -> None:
    async with console_socket(live_server, as_agent.cookie) as ws:
        assert (await receive(ws))["type"] == "ready"
        response = await as_admin.post_form(
            f"/console/agents/{agent.id}/password", {"password": NEW_PASSWORD}
        )
        assert response.status_code == 303
        assert await closed_with(ws) == (4401, "password_reset")
    assert (await as_agent.http.get("/console/")).status_code == 303
    assert await hub.agents.authenticate(agent.email, AGENT_PASSWORD) is None
    async with new_http(live_server) as http:
        await log_in(http, agent.email, NEW_PASSWORD)


async def test_a_short_reset_password_is_refused(hub: Hub, as_admin: Console, agent: Agent) -> None:
    response = await as_admin.post_form(f"/console/agents/{agent.id}/password", {"password": "1"})
    assert response.status_code == 400 and "at least 8 characters" in response.text
    assert await hub.agents.authenticate(agent.email, AGENT_PASSWORD) == agent


async def test_deleting_an_agent_who_answered_a_logged_call_is_refused(
    hub: Hub, admin: Agent, agent: Agent
) -> None:
    line, _ = await hub.phone_lines.create("Support line", ["+44 20 7946 0000"], "GB")
    await hub.calls.log_by_hand(
        agent,
        line,
        direction=Direction.OUT,
        number="07700 900123",
        started_at=utcnow() - timedelta(minutes=5),
        duration_seconds=95,
        outcome=Outcome.ANSWERED,
        notes=None,
        client_id="form-1",
    )
    with pytest.raises(InvalidInput, match="Deactivate them instead"):
        await hub.accounts.delete(admin, agent.id)
    assert await hub.agents.get(agent.id) == agent


# ---- the invitation email ---------------------------------------------------------------


async def test_the_invitation_is_mailed_from_an_email_inbox_that_can_send(
    hub: Hub, as_admin: Console, live_server: LiveServer
) -> None:
    async with smtp_sink() as sink:
        await make_email_inbox(hub, smtp_port=sink.port)
        link = await invite(as_admin)
        async with asyncio.timeout(WAIT_SECONDS):
            mail = await sink.next_message()
    assert mail.recipients == ["ivy@example.com"]
    assert mail.message["Auto-Submitted"] == "auto-generated"
    body = mail.message.get_content()
    assert link in body
    # The mailed link is the one that works.
    async with new_http(live_server) as http:
        assert (await join(http, token_of(link))).status_code == 303


async def test_without_a_sending_inbox_the_admin_is_told_and_shown_the_link(
    as_admin: Console,
) -> None:
    response = await as_admin.post_form(
        "/console/agents/invite", {"name": "Ivy", "email": "ivy@example.com", "role": "agent"}
    )
    assert response.status_code == 200
    assert "No email inbox has an outgoing server" in response.text
    assert 'id="invitation-link"' in response.text


async def test_a_mail_server_that_refuses_is_said_and_the_link_still_shown(
    hub: Hub, as_admin: Console
) -> None:
    async with smtp_sink() as sink:
        sink.handler.answer = "554 no thanks"
        await make_email_inbox(hub, smtp_port=sink.port)
        response = await as_admin.post_form(
            "/console/agents/invite", {"name": "Ivy", "email": "ivy@example.com", "role": "agent"}
        )
    assert response.status_code == 200
    assert "could not be sent" in response.text
    assert 'id="invitation-link"' in response.text


async def test_conversations_cannot_be_given_to_a_deactivated_agent(
    hub: Hub, website: Inbox, admin: Agent, agent: Agent
) -> None:
    _, posted = await visitor_says(hub, website, "Hello?")
    await hub.accounts.deactivate(admin, agent.id)
    with pytest.raises(InvalidInput, match="no active agent"):
        await hub.conversations.assign(admin, posted.conversation.id, agent.id)
    assert (await hub.conversations.get(posted.conversation.id)).assignee_id is None
