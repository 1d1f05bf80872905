"""The widget's hello after a restart, many at once, over real websockets, on both engines.

After a restart every widget reconnects and says hello at once. The hub reads
and writes what those hellos need together (storage.batching); each visitor
must still get exactly what it would have got alone, and a failing store may
cost only what it must.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from channels.webchat import endpoint
from hub.events import topics
from hub.models import Inbound
from hub.ratelimit import LocalLimiter
from tests.engines import settings  # noqa: F401 - runs every test on both engines
from tests.widget_client import WidgetClient

ORIGIN = "http://shop.test"
PAGE = "https://shop.test/shoes"
STORM = 30


@pytest.fixture
def no_address_limits(live_server, monkeypatch):  # type: ignore[no-untyped-def]
    """Every test socket comes from 127.0.0.1; a storm needs more than one address's share."""
    limits = live_server.app.state.webchat_limits
    monkeypatch.setattr(limits, "handshakes", LocalLimiter(rate=1000.0, burst=1000))
    monkeypatch.setattr(limits.connections, "limit", 1000)


@dataclass(frozen=True)
class Returning:
    visitor_id: str
    token: str
    conversation_id: int


async def returning_visitor(hub, website, agent, n):  # type: ignore[no-untyped-def]
    """A visitor with a conversation (three messages of theirs, a reply and a note)
    who was on PAGE before the hub restarted."""
    visitor = await hub.visitors.create(website, "pytest")
    for k in range(3):
        posted = await hub.conversations.ingest(
            Inbound.web_chat(
                inbox_id=website.id, text=f"{n}:{k}", client_id=f"c{k}", visitor_id=visitor.id
            )
        )
    await hub.conversations.reply(agent, posted.conversation.id, f"reply to {n}")
    await hub.conversations.reply(agent, posted.conversation.id, "note", private=True)
    await hub.tracking.arrive(visitor, website, PAGE, "Shoes")
    await hub.tracking.left(visitor, website)
    await hub.visitor_presence.remove(website.id, visitor.id)  # the restart forgot them
    token = hub.tokens.issue(visitor.id, website.id)
    return Returning(visitor.id, token, posted.conversation.id)


async def hello(client, visitor, last_seq, track=True):  # type: ignore[no-untyped-def]
    await client.send(
        {
            "type": "hello",
            "visitor_token": visitor.token,
            "last_seq": last_seq,
            "track": track,
            "page": {"url": PAGE, "title": "Shoes"},
        }
    )
    return await client.recv_type("welcome")


async def widgets(stack, live_server, website, count):  # type: ignore[no-untyped-def]
    """`count` open widget sockets, closed with the stack."""
    return [
        await stack.enter_async_context(
            WidgetClient.connect(live_server.ws_url, website.site_token, ORIGIN)
        )
        for _ in range(count)
    ]


async def last_seen(hub, visitor_id):  # type: ignore[no-untyped-def]
    seen = (await hub.visitors.get(visitor_id)).last_seen_at
    return seen.replace(tzinfo=seen.tzinfo or UTC)


async def test_a_storm_of_hellos_each_gets_exactly_the_messages_after_its_last_seq(
    live_server, website, agent, no_address_limits
):
    hub = live_server.hub
    people = [await returning_visitor(hub, website, agent, n) for n in range(STORM)]
    started = datetime.now(UTC).replace(microsecond=0)
    async with contextlib.AsyncExitStack() as stack:
        clients = await widgets(stack, live_server, website, STORM)
        live_view = await stack.enter_async_context(
            hub.bus.subscribe(topics.site_visitors(website.id))
        )
        welcomes = await asyncio.gather(
            *(hello(c, p, n % 5) for n, (c, p) in enumerate(zip(clients, people, strict=True)))
        )
        shown = []
        async with asyncio.timeout(10):
            while len(shown) < STORM:
                shown.append((await live_view.get()).json())
    for n, (welcome, person) in enumerate(zip(welcomes, people, strict=True)):
        assert welcome["visitor_id"] == person.visitor_id
        assert welcome["conversation"]["id"] == person.conversation_id
        stored = await hub.conversations.messages(
            person.conversation_id, n % 5, include_private=False
        )
        assert [(m["seq"], m["text"]) for m in welcome["messages"]] == [
            (m.seq, m.text) for m in stored
        ]
        # The store: seen now, the visit going on.
        assert await last_seen(hub, person.visitor_id) >= started
        assert (await hub.visitors.get(person.visitor_id)).visit_count == 1
    # The live view: each visitor shown once, on the page they were on.
    assert sorted(f["visitor"]["id"] for f in shown) == sorted(p.visitor_id for p in people)
    assert all(f["visitor"]["page"]["url"] == PAGE and f["page_view"] is None for f in shown)


async def test_a_long_history_arrives_whole_in_chunks(live_server, website, agent, monkeypatch):
    monkeypatch.setattr(endpoint, "HISTORY_CHUNK", 2)
    person = await returning_visitor(live_server.hub, website, agent, 0)
    async with WidgetClient.connect(live_server.ws_url, website.site_token, ORIGIN) as client:
        welcome = await hello(client, person, 0)
    assert [m["text"] for m in welcome["messages"]] == ["0:0", "0:1", "0:2", "reply to 0"]


async def test_a_failed_last_seen_stamp_costs_the_stamp_only(
    live_server, website, agent, caplog, no_address_limits, write_faults
):
    hub = live_server.hub
    people = [await returning_visitor(hub, website, agent, n) for n in range(5)]
    before = {p.visitor_id: await last_seen(hub, p.visitor_id) for p in people}
    # An untracked hello writes nothing but its stamp: the rows are updated … and rolled back.
    write_faults.fail()
    async with contextlib.AsyncExitStack() as stack:
        clients = await widgets(stack, live_server, website, len(people))
        with caplog.at_level(logging.WARNING, logger="channels.webchat.endpoint"):
            welcomes = await asyncio.gather(
                *(hello(c, p, 1, track=False) for c, p in zip(clients, people, strict=True))
            )
    for welcome, person in zip(welcomes, people, strict=True):
        assert welcome["conversation"]["id"] == person.conversation_id
        assert [m["seq"] for m in welcome["messages"]] == [2, 3, 4]
        assert await last_seen(hub, person.visitor_id) == before[person.visitor_id]
    assert "last-seen time was not stored" in caplog.text
    assert write_faults.failed >= 1
    write_faults.heal()
    async with WidgetClient.connect(live_server.ws_url, website.site_token, ORIGIN) as client:
        await hello(client, people[0], 4, track=False)
    assert await last_seen(hub, people[0].visitor_id) > before[people[0].visitor_id]


async def test_a_failed_visit_keeps_the_chat_and_the_next_ping_shows_the_visitor(
    live_server, website, agent, write_faults
):
    hub = live_server.hub
    person = await returning_visitor(hub, website, agent, 0)
    write_faults.fail()  # a tracked hello's first write is its visit's
    async with WidgetClient.connect(live_server.ws_url, website.site_token, ORIGIN) as client:
        welcome = await hello(client, person, 1)
        assert [m["seq"] for m in welcome["messages"]] == [2, 3, 4]
        async with asyncio.timeout(5):
            await write_faults.one_failed.wait()
        assert await hub.tracking.online() == []  # not shown …
        write_faults.heal()
        await client.ping()  # … but still served: its heartbeat starts the visit again
        [shown] = await hub.tracking.online()
    assert shown["id"] == person.visitor_id and shown["visit"] == 1
