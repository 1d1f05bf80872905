"""Three security refusals, over real websockets and HTTP on loopback, on both engines.

1. A websocket handshake without an Origin header is refused: the widget's with
   HTTP 403 before the socket opens, the console's (even with a valid session)
   with 4403 before any frame; nothing is stored or shown.
2. An identity claim that is not verified never puts the visitor on another
   contact, merges them into it, or shows them anything of it.
3. A resent client id is answered as the first message was and is published
   once: agents and the visitor's other tabs see the message exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hub.core import Hub
from hub.events import topics
from hub.models import Agent, Inbox
from hub.security import identity_hash
from storage.tables import visitors as visitors_table
from tests.conftest import LiveServer
from tests.console_client import Console, visitor_says
from tests.engines import settings  # noqa: F401 - runs every test on both engines
from tests.frames import next_event
from tests.widget_client import WidgetClient

ORIGIN = "http://shop.test"
# Generous: only reached when something is broken.
WAIT_SECONDS = 5
MARKER = {"type": "test_marker"}

# An Origin header that is absent, or present and empty.
NO_ORIGIN = [
    pytest.param({}, id="no-origin-header"),
    pytest.param({"Origin": ""}, id="empty-origin-header"),
]


# ---- helpers --------------------------------------------------------------------------------


def widget(live_server: LiveServer, inbox: Inbox):  # type: ignore[no-untyped-def]
    return WidgetClient.connect(live_server.ws_url, inbox.site_token, ORIGIN)


@asynccontextmanager
async def console_socket(
    live_server: LiveServer, console: Console
) -> AsyncIterator[ClientConnection]:
    """A console socket from the console's own page (Origin: the hub), once ready."""
    async with connect(
        f"{live_server.ws_url}/console/ws",
        origin=live_server.url,  # type: ignore[arg-type]
        additional_headers={"Cookie": f"hub_session={console.cookie}"},
    ) as ws:
        assert (await next_event(ws, WAIT_SECONDS))["type"] == "ready"
        yield ws


async def stored_visitors(hub: Hub) -> int:
    async with hub.db.read() as conn:
        return await conn.scalar(sa.select(sa.func.count()).select_from(visitors_table))


async def until_marker(channel) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Every event on a bus subscription before MARKER (published by the test)."""
    seen = []
    async with asyncio.timeout(WAIT_SECONDS):
        while (event := (await channel.get()).json()) != MARKER:
            seen.append(event)
    return seen


async def messages_until(next_frame, client_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The client ids of the `message` events that arrive up to and including the
    one with `client_id` (every frame before it has arrived by then)."""
    seen: list[str] = []
    while not seen or seen[-1] != client_id:
        frame = await next_frame()
        if frame["type"] == "message":
            seen.append(frame["message"]["client_id"])
    return seen


async def frames_until_pong(client: WidgetClient) -> list[dict[str, Any]]:
    """Every frame the hub sent the widget before it answers a ping."""
    await client.send({"type": "ping"})
    frames = []
    while (frame := await client.recv())["type"] != "pong":
        frames.append(frame)
    return frames


# ---- 1. no Origin, no socket -----------------------------------------------------------------


@pytest.mark.parametrize("headers", NO_ORIGIN)
async def test_a_widget_handshake_without_an_origin_is_refused_and_stores_nothing(
    live_server: LiveServer, website: Inbox, headers: dict[str, str]
) -> None:
    hub = live_server.hub
    async with hub.bus.subscribe(topics.site_visitors(website.id)) as live_view:
        with pytest.raises(InvalidStatus) as refused:
            # No `origin=`: the client sends no Origin header of its own.
            async with connect(
                f"{live_server.ws_url}/widget/ws?site={website.site_token}",
                additional_headers=headers,
            ) as ws:
                # Only reached when the socket was opened: what it would be served.
                await ws.send(json.dumps({"type": "hello", "visitor_token": None, "last_seq": 0}))
                await next_event(ws, WAIT_SECONDS)
        await hub.bus.publish(topics.site_visitors(website.id), MARKER)
        shown = await until_marker(live_view)
    assert refused.value.response.status_code == 403
    assert await stored_visitors(hub) == 0
    assert shown == []
    assert await hub.tracking.online() == []


@pytest.mark.parametrize("headers", NO_ORIGIN)
async def test_a_console_socket_without_an_origin_is_closed_with_4403_before_any_frame(
    live_server: LiveServer, as_agent: Console, agent: Agent, headers: dict[str, str]
) -> None:
    hub = live_server.hub
    async with hub.bus.subscribe(topics.AGENTS) as agents_channel:
        async with connect(
            f"{live_server.ws_url}/console/ws",
            additional_headers={"Cookie": f"hub_session={as_agent.cookie}", **headers},
        ) as ws:
            try:
                served = await asyncio.wait_for(ws.recv(), WAIT_SECONDS)
            except ConnectionClosed as closed:
                assert closed.rcvd is not None
                code = closed.rcvd.code
            else:
                pytest.fail(f"a console socket without an Origin was served: {served}")
        await hub.bus.publish(topics.AGENTS, MARKER)
        published = await until_marker(agents_channel)
    assert code == 4403
    # Never subscribed: the agent was not even shown online by it.
    assert published == []
    assert hub.presence.online_agent_ids() == set()
    # The same cookie from the console's own page is served (the refusal was the Origin's).
    async with console_socket(live_server, as_agent):
        assert hub.presence.online_agent_ids() == {agent.id}


# ---- 2. an unverified identity claim -------------------------------------------------------

VICTIM = {"id": "user-42", "name": "Vera Victim", "email": "vera@example.com"}


async def known_contact(hub: Hub, inbox: Inbox, agent: Agent) -> tuple[int, int]:
    """Vera, known by her (verified) external id and email, with a conversation:
    her message and an agent's reply. Returns her contact id and conversation id."""
    visitor = await hub.visitors.create(inbox, "pytest")
    contact = await hub.visitors.identify(
        visitor,
        inbox,
        VICTIM["id"],
        email=VICTIM["email"],
        name=VICTIM["name"],
        claimed_hash=identity_hash(inbox.identity_secret, VICTIM["id"]),
    )
    _, posted = await visitor_says(hub, inbox, "Ship it to 1 Secret Lane", visitor=visitor)
    await hub.conversations.reply(agent, posted.conversation.id, "Your door code is 4242")
    return contact.id, posted.conversation.id


async def other_inbox_secret(hub: Hub) -> str:
    other = await hub.inboxes.create_website("Other shop", ["http://other.test"])
    assert other.identity_secret
    return other.identity_secret


def wrong_hashes(inbox: Inbox, other_secret: str) -> dict[str, str]:
    return {
        "zeros": "00" * 32,
        "garbage": "not-a-hash",
        "for-another-user": identity_hash(inbox.identity_secret, "user-41"),
        "with-another-sites-secret": identity_hash(other_secret, VICTIM["id"]),
    }


REFUSED_CLAIMS = [
    # (the site requires identity, the hash sent)
    pytest.param(False, "zeros", id="optional-zeros-hash"),
    pytest.param(False, "garbage", id="optional-garbage-hash"),
    pytest.param(False, "for-another-user", id="optional-hash-of-another-id"),
    pytest.param(False, "with-another-sites-secret", id="optional-hash-with-another-secret"),
    pytest.param(True, None, id="required-no-hash"),
    pytest.param(True, "zeros", id="required-zeros-hash"),
    pytest.param(True, "for-another-user", id="required-hash-of-another-id"),
    pytest.param(True, "with-another-sites-secret", id="required-hash-with-another-secret"),
]


async def assert_nothing_of_the_contact_reaches(
    live_server: LiveServer,
    inbox: Inbox,
    agent: Agent,
    welcome: dict[str, Any],
    own_contact_id: int,
    victim_contact_id: int,
    victim_conversation_id: int,
) -> None:
    """The visitor is still on their own contact, the known contact is as it was,
    and nothing of its conversation is shown to (or reachable by) the visitor."""
    hub = live_server.hub
    visitor = await hub.visitors.get(welcome["visitor_id"])
    assert visitor.contact_id == own_contact_id != victim_contact_id
    victim = await hub.visitors.contact(victim_contact_id)
    assert (victim.external_id, victim.name, victim.email) == (
        VICTIM["id"],
        VICTIM["name"],
        VICTIM["email"],
    )
    # Not merged: the known contact's record has only its own conversation.
    assert [c.id for c in await hub.conversations.for_contact(victim_contact_id)] == [
        victim_conversation_id
    ]
    async with widget(live_server, inbox) as again:
        back = await again.hello(welcome["visitor_token"])
        assert back["visitor_id"] == welcome["visitor_id"]
        assert back["conversation"] is None and back["messages"] == []
        peek = await again.say("let me in", "c-peek", conversation_id=victim_conversation_id)
        assert peek["type"] == "error" and peek["code"] == "forbidden"
        # The known contact's conversation goes on: nothing of it comes here.
        await hub.conversations.reply(agent, victim_conversation_id, "Code changed to 9999")
        assert await frames_until_pong(again) == []
        ack = await again.say("hello", "c-own")
    assert ack["type"] == "ack" and ack["conversation_id"] != victim_conversation_id
    texts = [m.text for m in await hub.conversations.messages(ack["conversation_id"])]
    assert texts == ["hello"]
    assert (await hub.conversations.get(ack["conversation_id"])).contact_id == own_contact_id


@pytest.mark.parametrize(("required", "hash_kind"), REFUSED_CLAIMS)
async def test_an_unverified_claim_to_a_known_id_is_refused_and_joins_nothing(
    live_server: LiveServer, agent: Agent, required: bool, hash_kind: str | None
) -> None:
    hub = live_server.hub
    inbox = await hub.inboxes.create_website("Shop", [ORIGIN], require_identity=required)
    victim_contact_id, victim_conversation_id = await known_contact(hub, inbox, agent)
    claimed_hash = wrong_hashes(inbox, await other_inbox_secret(hub)).get(hash_kind or "")
    async with widget(live_server, inbox) as client:
        welcome = await client.hello()
        own_contact_id = (await hub.visitors.get(welcome["visitor_id"])).contact_id
        claim = {"type": "identify", "id": VICTIM["id"], "hash": claimed_hash}
        await client.send(claim)
        answered = await frames_until_pong(client)
        # The same claim naming her email too.
        await client.send({**claim, "email": VICTIM["email"]})
        answered += await frames_until_pong(client)
    assert [(f["type"], f.get("code")) for f in answered] == [
        ("error", "unverified_identity"),
        ("error", "unverified_identity"),
    ]
    own = await hub.visitors.contact(own_contact_id)
    assert (own.external_id, own.name, own.email) == (None, None, None)  # nothing changed
    await assert_nothing_of_the_contact_reaches(
        live_server,
        inbox,
        agent,
        welcome,
        own_contact_id,
        victim_contact_id,
        victim_conversation_id,
    )


@pytest.mark.parametrize(
    "claim",
    [
        pytest.param({"id": VICTIM["id"]}, id="her-external-id"),
        pytest.param({"id": "user-77", "email": VICTIM["email"]}, id="her-email"),
        pytest.param({"id": VICTIM["id"], "email": VICTIM["email"]}, id="her-id-and-email"),
    ],
)
async def test_an_unsigned_claim_on_an_optional_site_labels_only_the_visitors_own_contact(
    live_server: LiveServer, agent: Agent, claim: dict[str, str]
) -> None:
    """The site has a secret but does not require identity: a claim without a hash
    is taken as a label of the visitor's own contact (the protocol), and must not
    show the visitor what the hub knows of the contact with that id or email."""
    hub = live_server.hub
    inbox = await hub.inboxes.create_website("Shop", [ORIGIN])
    assert inbox.identity_secret and not inbox.require_identity
    victim_contact_id, victim_conversation_id = await known_contact(hub, inbox, agent)
    async with widget(live_server, inbox) as client:
        welcome = await client.hello()
        own_contact_id = (await hub.visitors.get(welcome["visitor_id"])).contact_id
        await client.send({"type": "identify", **claim})
        answered = await frames_until_pong(client)
    # Only what the visitor said of themselves comes back (not her stored name).
    assert answered == [
        {"type": "identified", "contact": {"name": None, "email": claim.get("email")}}
    ]
    await assert_nothing_of_the_contact_reaches(
        live_server,
        inbox,
        agent,
        welcome,
        own_contact_id,
        victim_contact_id,
        victim_conversation_id,
    )


async def test_an_unsigned_claim_does_not_reserve_the_id_for_the_user_who_proves_it_later(
    live_server: LiveServer, agent: Agent
) -> None:
    """A visitor claims `user-99` without a hash before the real user-99 ever chats.
    When she later proves the id, she must not be put on the claimant's contact,
    and the claimant must not be shown her name and email."""
    hub = live_server.hub
    inbox = await hub.inboxes.create_website("Shop", [ORIGIN])
    async with widget(live_server, inbox) as squatter:
        squat = await squatter.hello()
        squatter_contact_id = (await hub.visitors.get(squat["visitor_id"])).contact_id
        await squatter.send({"type": "identify", "id": "user-99"})
        await squatter.recv_type("identified")
        await squatter.say("I am user-99, what is my address?", "c-squat")
        async with widget(live_server, inbox) as real:
            rita = await real.hello()
            await real.send(
                {
                    "type": "identify",
                    "id": "user-99",
                    "name": "Rita Real",
                    "email": "rita@example.com",
                    "hash": identity_hash(inbox.identity_secret, "user-99"),
                }
            )
            assert (await real.recv_type("identified"))["contact"] == {
                "name": "Rita Real",
                "email": "rita@example.com",
            }
        # The squatter asks again who they are.
        await squatter.send({"type": "identify", "id": "user-99"})
        answered = await frames_until_pong(squatter)
    rita_contact_id = (await hub.visitors.get(rita["visitor_id"])).contact_id
    assert rita_contact_id != squatter_contact_id
    assert answered == [{"type": "identified", "contact": {"name": None, "email": None}}]
    assert (await hub.visitors.contact(rita_contact_id)).external_id == "user-99"


# ---- 3. a resent client id is published once ---------------------------------------------------


async def test_a_resent_visitor_message_is_acked_as_the_first_and_published_once(
    live_server: LiveServer, website: Inbox, as_agent: Console
) -> None:
    hub = live_server.hub
    async with contextlib.AsyncExitStack() as stack:
        console = await stack.enter_async_context(console_socket(live_server, as_agent))
        sender = await stack.enter_async_context(widget(live_server, website))
        welcome = await sender.hello()
        other_tab = await stack.enter_async_context(widget(live_server, website))
        await other_tab.hello(welcome["visitor_token"])
        first = await sender.say("Hello?", "c-x")
        again = await sender.say("Hello?", "c-x")  # the widget's retry
        third = await sender.say("Anyone?", "c-z")
        on_console = await messages_until(lambda: next_event(console, WAIT_SECONDS), "c-z")
        on_other_tab = await messages_until(other_tab.recv, "c-z")
    assert first["type"] == "ack"
    assert again == first  # same conversation, seq and time: the first message's ack
    assert third["seq"] == first["seq"] + 1
    assert on_console == ["c-x", "c-z"]
    assert on_other_tab == ["c-x", "c-z"]
    stored = await hub.conversations.messages(first["conversation_id"])
    assert [(m.seq, m.client_id) for m in stored] == [(1, "c-x"), (2, "c-z")]


async def test_the_same_message_sent_by_two_tabs_at_once_is_published_once(
    live_server: LiveServer, website: Inbox, as_agent: Console
) -> None:
    """A widget that reconnected resends what it had not heard acked, perhaps
    while the first copy is still being stored."""
    hub = live_server.hub
    async with contextlib.AsyncExitStack() as stack:
        console = await stack.enter_async_context(console_socket(live_server, as_agent))
        tabs = [await stack.enter_async_context(widget(live_server, website)) for _ in range(3)]
        welcome = await tabs[0].hello()
        for tab in tabs[1:]:
            await tab.hello(welcome["visitor_token"])
        acks = await asyncio.gather(*(tab.say("Hello?", "c-x") for tab in tabs[:2]))
        await tabs[0].say("Anyone?", "c-z")
        on_console = await messages_until(lambda: next_event(console, WAIT_SECONDS), "c-z")
        on_observer = await messages_until(tabs[2].recv, "c-z")
    assert acks[0]["type"] == "ack" and acks[0] == acks[1]
    assert on_console == ["c-x", "c-z"]
    assert on_observer == ["c-x", "c-z"]
    stored = await hub.conversations.messages(acks[0]["conversation_id"])
    assert [m.client_id for m in stored] == ["c-x", "c-z"]


async def test_a_resent_agent_reply_is_answered_as_a_duplicate_and_published_once(
    live_server: LiveServer, website: Inbox, as_agent: Console, as_admin: Console
) -> None:
    hub = live_server.hub
    async with contextlib.AsyncExitStack() as stack:
        visitor = await stack.enter_async_context(widget(live_server, website))
        await visitor.hello()
        ack = await visitor.say("Hello?", "c-q")
        conversation_id = ack["conversation_id"]
        console = await stack.enter_async_context(console_socket(live_server, as_admin))
        path = f"/console/conversations/{conversation_id}/messages"
        first = await as_agent.post_json(path, {"text": "On it!", "client_id": "c-r"})
        again = await as_agent.post_json(path, {"text": "On it!", "client_id": "c-r"})
        third = await as_agent.post_json(path, {"text": "Found it.", "client_id": "c-s"})
        on_console = await messages_until(lambda: next_event(console, WAIT_SECONDS), "c-s")
        on_widget = await messages_until(visitor.recv, "c-s")
    assert (first.status_code, again.status_code, third.status_code) == (201, 200, 201)
    assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
    assert again.json()["message"] == first.json()["message"]  # same seq, same time
    assert third.json()["message"]["seq"] == first.json()["message"]["seq"] + 1
    assert on_console == ["c-r", "c-s"]
    assert on_widget == ["c-r", "c-s"]
    stored = await hub.conversations.messages(conversation_id)
    assert [m.client_id for m in stored] == ["c-q", "c-r", "c-s"]


async def test_a_reply_resent_through_the_service_is_a_duplicate_published_once(
    live_server: LiveServer, website: Inbox, agent: Agent, as_agent: Console
) -> None:
    hub = live_server.hub
    async with contextlib.AsyncExitStack() as stack:
        visitor = await stack.enter_async_context(widget(live_server, website))
        await visitor.hello()
        conversation_id = (await visitor.say("Hello?", "c-q"))["conversation_id"]
        console = await stack.enter_async_context(console_socket(live_server, as_agent))
        agents_bus = await stack.enter_async_context(
            hub.bus.subscribe(topics.inbox_channel(website.id))
        )
        first = await hub.conversations.reply(agent, conversation_id, "On it!", client_id="c-r")
        again = await hub.conversations.reply(agent, conversation_id, "On it!", client_id="c-r")
        await hub.conversations.reply(agent, conversation_id, "Found it.", client_id="c-s")
        on_console = await messages_until(lambda: next_event(console, WAIT_SECONDS), "c-s")
        on_widget = await messages_until(visitor.recv, "c-s")
        on_bus = await messages_until(lambda: bus_event(agents_bus), "c-s")
    assert (first.duplicate, again.duplicate) == (False, True)
    # The first reply, as sent (on SQLite a re-read time comes back without its zone).
    assert again.message.to_wire() == first.message.to_wire()
    assert on_console == on_widget == on_bus == ["c-r", "c-s"]


async def bus_event(subscription) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(WAIT_SECONDS):
        return (await subscription.get()).json()
