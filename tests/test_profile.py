"""Every agent's own profile: name, picture, password, notification settings, availability."""

from __future__ import annotations

import asyncio
import re

import pytest

from hub.core import Hub
from hub.events import topics
from hub.models import Agent, Availability
from tests.conftest import LiveServer
from tests.console_client import AGENT_PASSWORD, Console, log_in, new_http
from tests.test_console_socket import WAIT_SECONDS, console_socket, receive
from tests.test_team import closed_with

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 64
NEW_PASSWORD = "my own new password"


async def upload(console: Console, data: bytes, name: str = "me.png") -> int:
    response = await console.http.post(
        "/console/profile/avatar",
        data={"csrf_token": console.csrf},
        files={"avatar": (name, data, "image/png")},
    )
    return response.status_code


async def test_an_agent_changes_their_name(hub: Hub, as_agent: Console, agent: Agent) -> None:
    response = await as_agent.post_form("/console/profile", {"name": "Sam Smith"})
    assert response.status_code == 303
    changed = await hub.agents.get(agent.id)
    assert changed is not None and changed.name == "Sam Smith"
    assert "Sam Smith" in (await as_agent.http.get("/console/profile")).text


async def test_an_empty_name_is_refused(hub: Hub, as_agent: Console, agent: Agent) -> None:
    response = await as_agent.post_form("/console/profile", {"name": "   "})
    assert response.status_code == 400
    assert await hub.agents.get(agent.id) == agent


@pytest.mark.parametrize(
    ("data", "kind"), [(PNG, "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp")]
)
async def test_a_picture_is_stored_and_served_with_its_type(
    hub: Hub, as_agent: Console, as_admin: Console, agent: Agent, data: bytes, kind: str
) -> None:
    assert await upload(as_agent, data) == 303
    me = await hub.agents.get(agent.id)
    assert me is not None and me.avatar_at is not None
    # Colleagues see it too: in the header of its owner and in the agents list.
    served = await as_admin.http.get(f"/console/agents/{agent.id}/avatar")
    assert served.status_code == 200
    assert served.headers["content-type"] == kind
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.content == data
    assert (
        f"/console/agents/{agent.id}/avatar?v=" in (await as_admin.http.get("/console/agents")).text
    )
    assert f"/console/agents/{agent.id}/avatar?v=" in (await as_agent.http.get("/console/")).text


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"GIF89a" + b"\x00" * 32, "me.gif"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "me.png"),  # a name says nothing
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * (1024 * 1024), "big.png"),
    ],
)
async def test_a_picture_that_is_not_a_small_image_is_refused(
    hub: Hub, as_agent: Console, agent: Agent, data: bytes, name: str
) -> None:
    assert await upload(as_agent, data, name) in {400, 413}
    assert await hub.agents.get(agent.id) == agent
    missing = await as_agent.http.get(f"/console/agents/{agent.id}/avatar")
    assert missing.status_code == 404


async def test_pictures_are_only_for_logged_in_agents(
    hub: Hub, as_agent: Console, agent: Agent, live_server: LiveServer
) -> None:
    await upload(as_agent, PNG)
    async with new_http(live_server) as http:
        response = await http.get(f"/console/agents/{agent.id}/avatar")
        assert response.status_code == 303


async def test_the_picture_can_be_removed(hub: Hub, as_agent: Console, agent: Agent) -> None:
    await upload(as_agent, PNG)
    response = await as_agent.post_form("/console/profile/avatar", {"remove": "1"})
    assert response.status_code == 303
    assert await hub.agents.get(agent.id) == agent
    assert (await as_agent.http.get(f"/console/agents/{agent.id}/avatar")).status_code == 404


# ---- password ---------------------------------------------------------------------------


async def test_changing_the_password_needs_the_current_one(
    hub: Hub, as_agent: Console, agent: Agent
) -> None:
    response = await as_agent.post_form(
        "/console/profile/password",
        {"current_password": "not my password", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 400 and "current password is wrong" in response.text
    assert await hub.agents.authenticate(agent.email, AGENT_PASSWORD) == agent
    assert await hub.agents.authenticate(agent.email, NEW_PASSWORD) is None


async def test_a_short_new_password_is_refused(hub: Hub, as_agent: Console, agent: Agent) -> None:
    response = await as_agent.post_form(
        "/console/profile/password",
        {"current_password": AGENT_PASSWORD, "password": "short", "confirm": "short"},
    )
    assert response.status_code == 400
    assert await hub.agents.authenticate(agent.email, AGENT_PASSWORD) == agent


async def test_changing_the_password_ends_the_other_sessions_only(
    hub: Hub, as_agent: Console, agent: Agent, live_server: LiveServer
) -> None:
    async with new_http(live_server) as other_http:
        other = await log_in(other_http, agent.email)
        async with (
            console_socket(live_server, other.cookie) as other_ws,
            console_socket(live_server, as_agent.cookie) as own_ws,
        ):
            assert (await receive(other_ws))["type"] == "ready"
            assert (await receive(own_ws))["type"] == "ready"
            response = await as_agent.post_form(
                "/console/profile/password",
                {
                    "current_password": AGENT_PASSWORD,
                    "password": NEW_PASSWORD,
                    "confirm": NEW_PASSWORD,
                },
            )
            assert response.status_code == 303
            assert await closed_with(other_ws) == (4401, "password_changed")
            # This browser's socket stays: it answers a ping.
            await own_ws.send('{"type": "ping"}')
            assert (await receive(own_ws)) == {"type": "pong"}
        assert (await other.http.get("/console/")).status_code == 303
    assert (await as_agent.http.get("/console/")).status_code == 200
    assert await hub.agents.authenticate(agent.email, NEW_PASSWORD) is not None


# ---- notifications and availability ---------------------------------------------------------


async def test_notification_settings_are_stored(hub: Hub, as_agent: Console, agent: Agent) -> None:
    response = await as_agent.post_form("/console/profile/notifications", {"browser": "on"})
    assert response.status_code == 303
    me = await hub.agents.get(agent.id)
    assert me is not None and (me.notify_sound, me.notify_browser) == (False, True)
    page = await as_agent.http.get("/console/")
    assert '"notify": {"browser": true, "sound": false}' in page.text or (
        '"notify": {"sound": false, "browser": true}' in page.text
    )


async def test_availability_is_chosen_and_shown_to_colleagues(
    hub: Hub, as_agent: Console, as_admin: Console, agent: Agent, live_server: LiveServer
) -> None:
    async with hub.bus.subscribe(topics.AGENTS) as agents_channel:
        async with console_socket(live_server, as_agent.cookie) as ws:
            assert (await receive(ws))["type"] == "ready"
            answer = await as_agent.post_json("/console/availability", {"availability": "busy"})
            assert answer.status_code == 200 and answer.json() == {"availability": "busy"}
            page = await as_admin.http.get("/console/agents")
            assert re.search(r'<span class="status-busy"[^>]*>Busy</span>', page.text)
        # The last console tab closed: offline by itself, and the choice is kept for next time.
        while True:
            event = (await asyncio.wait_for(agents_channel.get(), WAIT_SECONDS)).json()
            if event == {"type": "agent_presence", "agent_id": agent.id, "online": False}:
                break
    page = await as_admin.http.get("/console/agents")
    assert "status-busy" not in page.text
    me = await hub.agents.get(agent.id)
    assert me is not None and me.availability is Availability.BUSY


async def test_an_unknown_availability_is_refused(
    hub: Hub, as_agent: Console, agent: Agent
) -> None:
    answer = await as_agent.post_json("/console/availability", {"availability": "away"})
    assert answer.status_code == 400
    assert await hub.agents.get(agent.id) == agent
