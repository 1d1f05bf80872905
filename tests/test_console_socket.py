"""The console websocket over real loopback connections."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from agent_console import socket as console_socket_module
from hub.core import Hub
from hub.events import topics
from hub.models import Agent, Inbox
from storage.tables import agents as agents_table
from tests.conftest import LiveServer
from tests.console_client import (
    Console,
    visitor_says,
)
from tests.frames import next_event

# Generous: only reached when something is broken.
WAIT_SECONDS = 5


@asynccontextmanager
async def console_socket(
    live_server: LiveServer, cookie: str | None, origin: str | None = None, **options: Any
) -> AsyncIterator[ClientConnection]:
    headers = {"Cookie": f"hub_session={cookie}"} if cookie else {}
    async with connect(
        f"{live_server.ws_url}/console/ws",
        origin=origin or live_server.url,  # type: ignore[arg-type]
        additional_headers=headers,
        **options,
    ) as ws:
        yield ws


async def receive(ws: ClientConnection) -> dict[str, Any]:
    """The next event (a `batch` frame's events come one by one)."""
    return await next_event(ws, WAIT_SECONDS)


async def receive_until(ws: ClientConnection, frame_type: str) -> dict[str, Any]:
    """The next frame of `frame_type`, skipping others (presence, etc.)."""
    while True:
        frame = await receive(ws)
        if frame["type"] == frame_type:
            return frame


async def close_code(ws: ClientConnection) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), WAIT_SECONDS)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


@asynccontextmanager
async def ready_socket(
    live_server: LiveServer, console: Console, **options: Any
) -> AsyncIterator[ClientConnection]:
    """A console socket that is subscribed to the agents' channel."""
    async with console_socket(live_server, console.cookie, **options) as ws:
        ready = await receive(ws)
        assert ready["type"] == "ready"
        yield ws


# ---- handshake -----------------------------------------------------------------------------


async def test_socket_without_a_session_is_closed_with_4401(live_server: LiveServer) -> None:
    async with console_socket(live_server, cookie=None) as ws:
        assert await close_code(ws) == 4401


async def test_socket_with_a_forged_cookie_is_closed_with_4401(live_server: LiveServer) -> None:
    async with console_socket(live_server, cookie="forged.cookie.value") as ws:
        assert await close_code(ws) == 4401


async def test_socket_from_a_foreign_origin_is_closed_with_4403(
    live_server: LiveServer, as_agent: Console
) -> None:
    async with console_socket(live_server, as_agent.cookie, origin="http://evil.example") as ws:
        assert await close_code(ws) == 4403


async def test_socket_says_ready_with_the_agent(
    live_server: LiveServer, as_agent: Console, agent: Agent
) -> None:
    async with console_socket(live_server, as_agent.cookie) as ws:
        assert await receive(ws) == {
            "type": "ready",
            "agent": {"id": agent.id, "name": agent.name},
        }


async def test_agent_is_online_while_the_socket_is_open(
    hub: Hub, live_server: LiveServer, as_agent: Console, agent: Agent
) -> None:
    async with hub.bus.subscribe(topics.AGENTS) as agents_channel:
        async with ready_socket(live_server, as_agent):
            assert hub.presence.online_agent_ids() == {agent.id}
            online = (await agents_channel.get()).json()
        offline = (await asyncio.wait_for(agents_channel.get(), WAIT_SECONDS)).json()
    assert online == {"type": "agent_presence", "agent_id": agent.id, "online": True}
    assert offline == {"type": "agent_presence", "agent_id": agent.id, "online": False}
    assert hub.presence.online_agent_ids() == set()


# ---- hub -> console ---------------------------------------------------------------------------


async def test_visitor_message_is_relayed_to_the_console(
    hub: Hub, website: Inbox, live_server: LiveServer, as_agent: Console
) -> None:
    async with ready_socket(live_server, as_agent) as ws:
        _, posted = await visitor_says(hub, website, "Is anyone there?")
        frame = await receive_until(ws, "message")
    assert frame["message"]["text"] == "Is anyone there?"
    assert frame["message"]["author"]["type"] == "visitor"
    assert frame["conversation"]["id"] == posted.conversation.id


async def test_reply_posted_over_http_shows_on_every_console(
    hub: Hub, website: Inbox, live_server: LiveServer, as_agent: Console, as_admin: Console
) -> None:
    _, posted = await visitor_says(hub, website, "hello?")
    async with ready_socket(live_server, as_admin) as ws:
        response = await as_agent.post_json(
            f"/console/conversations/{posted.conversation.id}/messages",
            {"text": "On it!", "client_id": "c-on-it"},
        )
        assert response.status_code == 201
        frame = await receive_until(ws, "message")
    assert frame["message"]["text"] == "On it!"
    assert frame["message"]["client_id"] == "c-on-it"
    assert frame["message"]["author"] == {"type": "agent", "name": "Sam Agent"}
    assert [m.text for m in await hub.conversations.messages(posted.conversation.id)] == [
        "hello?",
        "On it!",
    ]


async def test_assignment_shows_live_as_a_conversation_event(
    hub: Hub, website: Inbox, live_server: LiveServer, as_agent: Console, agent: Agent
) -> None:
    _, posted = await visitor_says(hub, website, "hello?")
    async with ready_socket(live_server, as_agent) as ws:
        await as_agent.post_json(
            f"/console/conversations/{posted.conversation.id}/assign", {"assignee_id": "me"}
        )
        frame = await receive_until(ws, "conversation")
    assert frame["conversation"]["assignee"] == {"id": agent.id, "name": agent.name}


async def test_a_console_that_falls_behind_is_closed_with_4000(
    hub: Hub, live_server: LiveServer, as_agent: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console_socket_module, "QUEUE_SIZE", 2)
    # The client reads no more than one frame ahead, so its socket stops taking
    # data; large incompressible events fill the buffers until a send has to
    # wait, and the events after it overflow the console's queue.
    async with ready_socket(live_server, as_agent, max_queue=1) as ws:
        for n in range(60):
            pad = secrets.token_urlsafe(400_000)
            await hub.bus.publish(topics.AGENTS, {"type": "test", "n": n, "pad": pad})
            await asyncio.sleep(0)  # the bus hands each over on its own (no batch)
        assert await close_code(ws) == 4000


async def test_events_published_together_reach_the_console_as_one_batch_frame(
    hub: Hub, live_server: LiveServer, as_agent: Console
) -> None:
    async with ready_socket(live_server, as_agent) as ws:
        # Published without yielding: the bus hands them over as one group.
        for n in range(5):
            await hub.bus.publish(topics.AGENTS, {"type": "test", "n": n})
        frame = await raw_frame_after_presence(ws)
        assert frame == {"type": "batch", "events": [{"type": "test", "n": n} for n in range(5)]}
        await hub.bus.publish(topics.AGENTS, {"type": "test", "n": 5})
        assert await raw_frame_after_presence(ws) == {"type": "test", "n": 5}


async def raw_frame_after_presence(ws: ClientConnection) -> dict[str, Any]:
    """The next frame as sent (batches not unpacked), past the agent's own presence."""
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), WAIT_SECONDS))
        if frame["type"] != "agent_presence":
            return frame


# ---- console -> hub ------------------------------------------------------------------------------


async def test_ping_is_answered_with_pong(live_server: LiveServer, as_agent: Console) -> None:
    async with ready_socket(live_server, as_agent) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert await receive_until(ws, "pong") == {"type": "pong"}


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_frame"),
        ("[1, 2]", "bad_frame"),
        ('{"no": "type"}', "bad_frame"),
        (b"\x00\x01", "bad_frame"),
        ('{"type": "dance"}', "unknown_type"),
        (json.dumps({"type": "ping", "pad": "x" * 17_000}), "too_large"),
        ('{"type": "typing", "conversation_id": "one", "on": true}', "invalid"),
        ('{"type": "typing", "conversation_id": 1, "on": "yes"}', "invalid"),
        ('{"type": "typing", "conversation_id": 999, "on": true}', "not_found"),
        ('{"type": "read", "conversation_id": 999, "seq": 1}', "not_found"),
        ('{"type": "read", "conversation_id": 1, "seq": -4}', "invalid"),
        # A number past a double's range is refused as JSON (it would be Infinity).
        ('{"type": "read", "conversation_id": 1e400, "seq": 1}', "bad_frame"),
        ('{"type": "read", "conversation_id": 4294967296, "seq": 1}', "invalid"),
    ],
    ids=[
        "not-json",
        "array",
        "no-type",
        "binary",
        "unknown-type",
        "too-large",
        "typing-bad-id",
        "typing-bad-on",
        "typing-unknown-conversation",
        "read-unknown-conversation",
        "read-negative-seq",
        "read-huge-id",
        "read-id-beyond-the-store",
    ],
)
async def test_malformed_frames_get_an_error_and_the_socket_survives(
    live_server: LiveServer, as_agent: Console, frame: str | bytes, code: str
) -> None:
    async with ready_socket(live_server, as_agent) as ws:
        await ws.send(frame)
        error = await receive_until(ws, "error")
        assert error["code"] == code
        assert error["message"]
        await ws.send(json.dumps({"type": "ping"}))
        assert await receive_until(ws, "pong") == {"type": "pong"}


async def test_agent_typing_reaches_the_visitor_channel(
    hub: Hub, website: Inbox, live_server: LiveServer, as_agent: Console, agent: Agent
) -> None:
    visitor, posted = await visitor_says(hub, website, "hello?")
    async with (
        hub.bus.subscribe(topics.visitor_channel(visitor.id)) as to_visitor,
        ready_socket(live_server, as_agent) as ws,
    ):
        await ws.send(
            json.dumps({"type": "typing", "conversation_id": posted.conversation.id, "on": True})
        )
        event = (await asyncio.wait_for(to_visitor.get(), WAIT_SECONDS)).json()
    assert event == {"type": "typing", "on": True, "agent": {"name": agent.name}}


async def test_visitor_typing_is_relayed_to_the_console(
    hub: Hub, website: Inbox, live_server: LiveServer, as_agent: Console
) -> None:
    _, posted = await visitor_says(hub, website, "hello?")
    async with ready_socket(live_server, as_agent) as ws:
        await hub.conversations.typing(posted.conversation, True)
        frame = await receive_until(ws, "typing")
    assert frame["conversation_id"] == posted.conversation.id
    assert frame["author"]["type"] == "visitor" and frame["on"] is True


async def test_read_frame_clears_the_unread_count(
    hub: Hub, website: Inbox, live_server: LiveServer, as_agent: Console, agent: Agent
) -> None:
    visitor, posted = await visitor_says(hub, website, "one")
    await visitor_says(hub, website, "two", visitor=visitor)
    [before] = await hub.conversations.list_for_agent(agent)
    assert before.unread == 2
    async with ready_socket(live_server, as_agent) as ws:
        await ws.send(
            json.dumps({"type": "read", "conversation_id": posted.conversation.id, "seq": 2})
        )
        await ws.send(json.dumps({"type": "ping"}))
        await receive_until(ws, "pong")  # frames are handled in order: the read is done
    [after] = await hub.conversations.list_for_agent(agent)
    assert after.unread == 0


async def test_a_deleted_agents_socket_is_closed_on_its_next_frame(
    hub: Hub, live_server: LiveServer, as_agent: Console, agent: Agent
) -> None:
    async with ready_socket(live_server, as_agent) as ws:
        async with hub.db.write() as conn:
            await conn.execute(sa.delete(agents_table).where(agents_table.c.id == agent.id))
        await ws.send(json.dumps({"type": "ping"}))
        assert await close_code(ws) == 4401
