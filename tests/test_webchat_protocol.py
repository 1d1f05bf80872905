"""The widget protocol (docs/widget-protocol.md) over a real websocket on loopback."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from channels.webchat import protocol
from hub.events import topics
from hub.models import Agent, Inbox, Status
from hub.ratelimit import LocalLimiter
from hub.security import identity_hash
from tests.widget_client import WidgetClient

ORIGIN = "http://shop.test"


def widget(live_server, inbox: Inbox, origin: str = ORIGIN):  # type: ignore[no-untyped-def]
    return WidgetClient.connect(live_server.ws_url, inbox.site_token, origin)


async def stored_texts(hub, conversation_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.text for m in await hub.conversations.messages(conversation_id)]


async def test_first_hello_gets_a_visitor_token_and_no_conversation(live_server, website):
    async with widget(live_server, website) as client:
        welcome = await client.hello()
    assert welcome["visitor_token"]
    assert welcome["visitor_id"].startswith("v_")
    assert welcome["conversation"] is None
    assert welcome["messages"] == []
    assert welcome["agents_online"] is False


async def test_message_is_acknowledged_only_once_stored(live_server, website):
    hub = live_server.hub
    async with widget(live_server, website) as client:
        await client.hello()
        ack = await client.say("Do you ship to Norway?", "c-1")
        # The moment the ack arrives, the message is readable from the store.
        stored = await hub.conversations.messages(ack["conversation_id"])
    assert ack["type"] == "ack" and ack["seq"] == 1
    assert [(m.seq, m.text, m.client_id) for m in stored] == [(1, "Do you ship to Norway?", "c-1")]


async def test_resent_client_id_is_stored_once_and_acked_with_the_same_seq(live_server, website):
    async with widget(live_server, website) as client:
        await client.hello()
        first = await client.say("Hello", "c-dup")
        second = await client.say("Hello", "c-dup")
        third = await client.say("Next", "c-next")
    assert first["seq"] == second["seq"] == 1
    assert third["seq"] == 2
    assert await stored_texts(live_server.hub, first["conversation_id"]) == ["Hello", "Next"]


async def test_reconnect_resumes_with_missed_messages_in_order_without_notes(
    live_server, website, agent: Agent
):
    hub = live_server.hub
    async with widget(live_server, website) as client:
        welcome = await client.hello()
        ack = await client.say("Is anyone there?", "c-a")
    conversation_id = ack["conversation_id"]
    await hub.conversations.reply(agent, conversation_id, "Yes, hello!")
    await hub.conversations.reply(agent, conversation_id, "Internal: VIP", private=True)
    await hub.conversations.reply(agent, conversation_id, "How can I help?")
    async with widget(live_server, website) as client:
        resumed = await client.hello(welcome["visitor_token"], last_seq=ack["seq"])
    assert resumed["visitor_id"] == welcome["visitor_id"]
    assert resumed["conversation"]["id"] == conversation_id
    assert [(m["seq"], m["text"]) for m in resumed["messages"]] == [
        (2, "Yes, hello!"),
        (4, "How can I help?"),
    ]
    assert all(m["author"]["name"] == "Sam Agent" for m in resumed["messages"])


async def test_reload_with_last_seq_zero_brings_the_whole_history(live_server, website):
    async with widget(live_server, website) as client:
        welcome = await client.hello()
        await client.say("one", "c-1")
        await client.say("two", "c-2")
    async with widget(live_server, website) as client:
        again = await client.hello(welcome["visitor_token"], last_seq=0)
    assert [m["text"] for m in again["messages"]] == ["one", "two"]


@pytest.mark.parametrize(
    "origin", ["http://evil.test", "http://shop.test.evil.test", "https://shop.test", "null"]
)
async def test_handshake_from_a_foreign_origin_is_refused(live_server, website, origin):
    with pytest.raises(InvalidStatus) as refused:
        async with widget(live_server, website, origin=origin):
            pass
    assert refused.value.response.status_code == 403


async def test_handshake_for_an_unknown_site_is_refused(live_server, website):
    with pytest.raises(InvalidStatus) as refused:
        async with WidgetClient.connect(live_server.ws_url, "no-such-site", ORIGIN):
            pass
    assert refused.value.response.status_code == 403


async def test_forged_visitor_token_is_refused_and_the_socket_closed(live_server, website):
    async with widget(live_server, website) as client:
        welcome = await client.hello()
    token = welcome["visitor_token"]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    async with widget(live_server, website) as client:
        await client.send({"type": "hello", "visitor_token": forged, "last_seq": 0})
        error = await client.recv()
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv()
    assert error == {
        "type": "error",
        "code": "bad_token",
        "message": "Visitor token not valid for this site.",
    }
    assert closed.value.rcvd.code == protocol.CLOSE_BAD_TOKEN


async def test_visitor_token_of_another_site_is_refused(live_server, website):
    other = await live_server.hub.inboxes.create_website("Other shop", [ORIGIN])
    async with widget(live_server, other) as client:
        token = (await client.hello())["visitor_token"]
    async with widget(live_server, website) as client:
        await client.send({"type": "hello", "visitor_token": token})
        assert (await client.recv())["code"] == "bad_token"


async def test_another_visitors_conversation_is_refused(live_server, website):
    hub = live_server.hub
    async with widget(live_server, website) as alice:
        await alice.hello()
        alice_ack = await alice.say("Alice's secret", "c-alice")
    async with widget(live_server, website) as mallory:
        await mallory.hello()
        refused = await mallory.say(
            "intrusion", "c-mallory", conversation_id=alice_ack["conversation_id"]
        )
    assert refused["type"] == "error" and refused["code"] == "forbidden"
    assert await stored_texts(hub, alice_ack["conversation_id"]) == ["Alice's secret"]


async def test_agent_reply_reaches_the_widget_live_but_a_private_note_never_does(
    live_server, website, agent
):
    hub = live_server.hub
    async with widget(live_server, website) as client:
        await client.hello()
        ack = await client.say("Hi", "c-1")
        await client.ping()  # drain the echo of our own message
        await hub.conversations.reply(
            agent, ack["conversation_id"], "Note: refund later", private=True
        )
        await hub.conversations.reply(agent, ack["conversation_id"], "Hello from Sam")
        frame = await client.recv_type("message")
    assert frame["message"]["text"] == "Hello from Sam"
    assert frame["message"]["direction"] == "out"
    assert frame["message"]["author"] == {"type": "agent", "name": "Sam Agent"}


async def test_status_and_assignee_changes_reach_the_widget(live_server, website, agent):
    hub = live_server.hub
    async with widget(live_server, website) as client:
        await client.hello()
        ack = await client.say("Hi", "c-1")
        await client.ping()
        await hub.conversations.assign(agent, ack["conversation_id"], agent.id)
        frame = await client.recv_type("conversation")
    assert frame["conversation"] == {
        "id": ack["conversation_id"],
        "status": "open",
        "assignee": {"name": "Sam Agent"},
    }


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_frame"),
        ("[1, 2]", "bad_frame"),
        ('{"type": "launch"}', "unknown_type"),
        ('{"no": "type"}', "unknown_type"),
        ('{"type": "message", "client_id": "bad id!", "text": "x"}', "invalid"),
        ('{"type": "message", "client_id": "c-1", "text": 42}', "invalid"),
        ('{"type": "message", "client_id": "c-1", "text": "   "}', "invalid"),
        ('{"type": "message", "client_id": "c-1", "text": "x", "conversation_id": "1"}', "invalid"),
        ('{"type": "typing", "on": "yes"}', "invalid"),
        ('{"type": "read", "seq": -1}', "invalid"),
        ('{"type": "hello"}', "invalid"),
        ('{"type": "identify"}', "invalid"),
        ('{"type": "attributes", "attributes": [1]}', "invalid"),
    ],
)
async def test_malformed_frames_get_an_error_and_change_nothing(live_server, website, frame, code):
    hub = live_server.hub
    async with widget(live_server, website) as client:
        welcome = await client.hello()
        await client.send(frame)
        error = await client.recv_type("error")
        await client.ping()  # the socket survived
    assert error["code"] == code
    assert await hub.conversations.latest_for_visitor(welcome["visitor_id"]) is None


async def test_binary_frame_gets_bad_frame(live_server, website):
    async with widget(live_server, website) as client:
        await client.hello()
        await client.ws.send(b"\x00\x01")
        assert (await client.recv())["code"] == "bad_frame"
        await client.ping()


async def test_frames_before_hello_are_refused_until_hello(live_server, website):
    async with widget(live_server, website) as client:
        await client.send({"type": "message", "client_id": "c-1", "text": "early"})
        assert (await client.recv())["code"] == "not_ready"
        welcome = await client.hello()
    assert welcome["messages"] == []


async def test_oversize_frame_and_text_get_too_large_and_store_nothing(live_server, website):
    hub = live_server.hub
    async with widget(live_server, website) as client:
        welcome = await client.hello()
        too_long = "x" * (protocol.MAX_TEXT_CHARS + 1)
        text_error = await client.say(too_long, "c-long")
        await client.send(json.dumps({"type": "ping", "pad": "y" * protocol.MAX_FRAME_BYTES}))
        frame_error = await client.recv_type("error")
        await client.ping()
    assert text_error["code"] == "too_large"
    assert frame_error["code"] == "too_large"
    assert await hub.conversations.latest_for_visitor(welcome["visitor_id"]) is None


async def test_frame_beyond_the_transport_limit_closes_with_1009(live_server, website):
    async with widget(live_server, website) as client:
        await client.hello()
        await client.send("z" * (protocol.WS_MAX_SIZE + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv()
    assert closed.value.rcvd.code == 1009


async def test_message_flood_is_rate_limited_and_only_acked_messages_are_stored(
    live_server, website
):
    hub = live_server.hub
    answers = []
    async with widget(live_server, website) as client:
        await client.hello()
        for n in range(protocol.MESSAGE_BURST + 5):
            answers.append(await client.say(f"spam {n}", f"c-{n}"))
    acked = [a for a in answers if a["type"] == "ack"]
    limited = [a for a in answers if a["type"] == "error"]
    assert limited and all(a["code"] == "rate_limited" for a in limited)
    assert len(acked) >= protocol.MESSAGE_BURST
    texts = await stored_texts(hub, acked[0]["conversation_id"])
    assert len(texts) == len(acked)


async def test_connections_per_ip_are_capped(live_server, website, monkeypatch):
    async with widget(live_server, website) as first, widget(live_server, website) as second:
        await first.hello()
        await second.hello()
        # Lower the ceiling to the two sockets now open.
        monkeypatch.setattr(live_server.app.state.webchat_limits.connections, "limit", 2)
        with pytest.raises(InvalidStatus) as refused:
            async with widget(live_server, website):
                pass
    assert refused.value.response.status_code == 429
    # Closing sockets frees their places.
    async with widget(live_server, website) as again:
        await again.hello()


async def test_handshakes_per_ip_are_limited_before_the_site_token_is_looked_up(
    live_server, website, monkeypatch
):
    limits = live_server.app.state.webchat_limits
    monkeypatch.setattr(limits, "handshakes", LocalLimiter(rate=0.001, burst=2))
    lookups = []
    by_site_token = live_server.hub.inboxes.by_site_token

    async def counted(token: str):  # type: ignore[no-untyped-def]
        lookups.append(token)
        return await by_site_token(token)

    monkeypatch.setattr(live_server.hub.inboxes, "by_site_token", counted)
    async with widget(live_server, website) as first:
        await first.hello()
    statuses = []
    for site in ("no-such-site", website.site_token):
        with pytest.raises(InvalidStatus) as refused:
            async with WidgetClient.connect(live_server.ws_url, site, ORIGIN):
                pass
        statuses.append(refused.value.response.status_code)
    # The second attempt used up the burst with a wrong token; the third is
    # refused as too many, and costs no lookup.
    assert statuses == [403, 429]
    assert lookups == [website.site_token, "no-such-site"]


async def test_socket_without_hello_is_closed(live_server, website, monkeypatch):
    monkeypatch.setattr(protocol, "HELLO_TIMEOUT_SECONDS", 0.2)
    async with widget(live_server, website) as client:
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv()
    assert closed.value.rcvd.code == protocol.CLOSE_HELLO_TIMEOUT


async def test_away_form_sets_the_contact_with_the_message(live_server, website):
    hub = live_server.hub
    async with widget(live_server, website) as client:
        await client.hello()
        ack = await client.say(
            "Call me back", "c-away", contact={"name": "Ada", "email": "Ada@Example.com"}
        )
    conversation = await hub.conversations.get(ack["conversation_id"])
    # The name labels the contact; the email is only claimed until verified.
    assert (conversation.contact_name, conversation.contact_email) == ("Ada", None)
    contact = await hub.visitors.contact(conversation.contact_id)
    assert contact.claimed == {"name": "Ada", "email": "ada@example.com"}


async def test_away_form_with_a_bad_email_stores_nothing(live_server, website):
    hub = live_server.hub
    async with widget(live_server, website) as client:
        welcome = await client.hello()
        error = await client.say("hi", "c-away", contact={"email": "not-an-address"})
    assert error["code"] == "invalid"
    assert await hub.conversations.latest_for_visitor(welcome["visitor_id"]) is None
    visitor = await hub.visitors.get(welcome["visitor_id"])
    contact = await hub.visitors.contact(visitor.contact_id)
    assert contact.email is None


async def test_identify_requires_a_valid_hash_when_the_site_demands_it(live_server, hub):
    inbox = await hub.inboxes.create_website("Verified shop", [ORIGIN], require_identity=True)
    async with widget(live_server, inbox) as client:
        welcome = await client.hello()
        await client.send({"type": "identify", "id": "user-42", "email": "u@example.com"})
        missing = await client.recv_type("error")
        await client.send({"type": "identify", "id": "user-42", "hash": "00" * 32})
        wrong = await client.recv_type("error")
        good = identity_hash(inbox.identity_secret, "user-42")
        await client.send(
            {
                "type": "identify",
                "id": "user-42",
                "name": "Uma",
                "email": "u@example.com",
                "hash": good,
            }
        )
        identified = await client.recv_type("identified")
    assert missing["code"] == wrong["code"] == "unverified_identity"
    assert identified["contact"] == {"name": "Uma", "email": "u@example.com"}
    visitor = await hub.visitors.get(welcome["visitor_id"])
    contact = await hub.visitors.contact(visitor.contact_id)
    assert contact.external_id == "user-42"


async def test_verified_identity_joins_the_known_contact(live_server, hub):
    inbox = await hub.inboxes.create_website("Verified shop", [ORIGIN], require_identity=True)
    good = identity_hash(inbox.identity_secret, "user-7")
    frame = {"type": "identify", "id": "user-7", "hash": good}
    async with widget(live_server, inbox) as laptop:
        first = await laptop.hello()
        await laptop.send(frame)
        await laptop.recv_type("identified")
    async with widget(live_server, inbox) as phone:
        second = await phone.hello()
        await phone.send(frame)
        await phone.recv_type("identified")
    a = await hub.visitors.get(first["visitor_id"])
    b = await hub.visitors.get(second["visitor_id"])
    assert a.id != b.id and a.contact_id == b.contact_id


async def test_custom_attributes_are_stored_on_the_contact(live_server, website):
    hub = live_server.hub
    async with widget(live_server, website) as client:
        welcome = await client.hello()
        await client.send({"type": "attributes", "attributes": {"plan": "pro", "seats": 5}})
        await client.ping()
    visitor = await hub.visitors.get(welcome["visitor_id"])
    assert (await hub.visitors.contact(visitor.contact_id)).attributes == {
        "plan": "pro",
        "seats": 5,
    }


async def test_visitor_typing_and_read_reach_the_agents(live_server, website, agent):
    hub = live_server.hub
    async with (
        hub.bus.subscribe(topics.inbox_channel(website.id)) as agents,
        widget(live_server, website) as client,
    ):
        await client.hello()
        ack = await client.say("Hi", "c-1")
        reply = await hub.conversations.reply(agent, ack["conversation_id"], "Hello")
        await client.send({"type": "typing", "on": True})
        await client.send({"type": "read", "seq": reply.message.seq})
        await client.ping()
        seen = []
        async with asyncio.timeout(5):
            while not {"typing", "read"} <= {e["type"] for e in seen}:
                seen.append((await agents.get()).json())
    typing = next(e for e in seen if e["type"] == "typing")
    read = next(e for e in seen if e["type"] == "read")
    assert typing["on"] is True and typing["author"]["type"] == "visitor"
    assert read == {
        "type": "read",
        "by": "visitor",
        "conversation_id": ack["conversation_id"],
        "seq": reply.message.seq,
    }
    conversation = await hub.conversations.get(ack["conversation_id"])
    assert conversation.visitor_read_seq == reply.message.seq


async def test_widget_learns_when_agents_come_online(live_server, website, agent):
    hub = live_server.hub
    async with widget(live_server, website) as client:
        assert (await client.hello())["agents_online"] is False
        await hub.presence.connected(agent.id)
        online = await client.recv_type("presence")
        await hub.presence.disconnected(agent.id)
        offline = await client.recv_type("presence")
    assert online["agents_online"] is True and offline["agents_online"] is False


async def test_message_to_a_resolved_conversation_reopens_it(live_server, website, agent):
    hub = live_server.hub
    async with widget(live_server, website) as client:
        await client.hello()
        ack = await client.say("Thanks!", "c-1")
        await hub.conversations.set_status(agent, ack["conversation_id"], Status.RESOLVED)
        again = await client.say("One more thing", "c-2")
    assert again["conversation_id"] == ack["conversation_id"]
    assert (await hub.conversations.get(ack["conversation_id"])).status is Status.OPEN
