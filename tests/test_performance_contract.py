"""Performance contracts: how many transactions, reads and thread hops the
store's batching and web chat's fast path take, and what an idle subscription
holds. These assert shape (and may look at internals), not
behaviour — a refactor that keeps every answer but loses a batch fails here,
not in the behaviour tests. Speed itself is measured in bench/."""

# The fixtures come from the behaviour tests' modules, imported by name.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import contextlib
import threading

from hub.events.bus import EventBus
from tests.test_chat_ingest_sqlite import (
    counting_hops,
    counting_in_worker,
    counting_inline,
)
from tests.test_chat_ingest_sqlite import inbound as chat_inbound
from tests.test_conversations_resume import chatting_visitor, reads  # noqa: F401 (fixture)

# ---- web chat on SQLite: the fast path's hops (hub/conversations/chat_ingest_sqlite.py)


async def test_a_batch_of_common_messages_is_stored_on_the_loops_thread_begin_to_commit(
    hub, website, monkeypatch
):
    people = [await hub.visitors.create(website, "pytest") for _ in range(50)]
    for person in people:
        await hub.conversations.ingest(chat_inbound(website, person, "open"))
    writes = counting_hops(hub, monkeypatch, "write")
    inline = counting_inline(hub, monkeypatch)
    with counting_in_worker(monkeypatch) as calls:
        results = await asyncio.gather(
            *[
                hub.conversations.ingest(chat_inbound(website, p, f"m{n}"))
                for n, p in enumerate(people)
            ]
        )
    assert inline == [threading.get_ident()] and writes == []  # one transaction, no hop
    assert calls["calls"] == 0
    assert [posted.message.seq for posted in results] == [2] * 50
    async with hub.db.read() as conn:
        stored = await conn.exec_driver_sql("SELECT count(*) FROM messages WHERE text LIKE 'm%'")
        assert stored.scalar() == 50


async def test_a_batch_with_a_first_message_is_rolled_back_and_stored_the_general_way(
    hub, website, monkeypatch
):
    known = [await hub.visitors.create(website, "pytest") for _ in range(3)]
    for person in known:
        await hub.conversations.ingest(chat_inbound(website, person, "open"))
    newcomer = await hub.visitors.create(website, "pytest")
    writes = counting_hops(hub, monkeypatch, "write")
    inline = counting_inline(hub, monkeypatch)
    results = await asyncio.gather(
        *[hub.conversations.ingest(chat_inbound(website, p, "again")) for p in known],
        hub.conversations.ingest(chat_inbound(website, newcomer, "first!")),
    )
    assert len(inline) == 1 and len(writes) == 1  # tried inline, then the general way
    assert [posted.message.seq for posted in results] == [2, 2, 2, 1]
    messages = await hub.conversations.messages(results[-1].conversation.id)
    assert [m.text for m in messages] == ["first!"]
    async with hub.db.read() as conn:
        again = await conn.exec_driver_sql("SELECT count(*) FROM messages WHERE text = 'again'")
        assert again.scalar() == 3  # stored once each, the attempt rolled back


# ---- returning widgets' hellos read together (hub/conversations/reads.py)


async def test_resumes_that_arrive_together_share_one_read_and_each_gets_its_own(
    hub, website, agent, reads
):
    people = [
        await chatting_visitor(hub, website, agent, [f"{n}-{k}" for k in range(3)])
        for n in range(6)
    ]
    first = people[0][0]
    newcomer = await hub.visitors.create(website, "pytest")
    before = reads["reads"]
    results = await asyncio.gather(
        *(hub.conversations.resume(visitor.id, n % 3) for n, (visitor, _) in enumerate(people)),
        hub.conversations.resume(first.id, 2),  # another tab of the first, further on
        hub.conversations.resume(newcomer.id, 0),
    )
    assert reads["reads"] == before + 1
    for n, (_, conversation_id) in enumerate(people):
        conversation, found = results[n]
        assert conversation.id == conversation_id
        assert [m.text for m in found] == [f"{n}-{k}" for k in range(n % 3, 3)]
    assert [m.text for m in results[-2][1]] == ["0-2"]
    assert results[-1] == (None, [])


# ---- web chat's group commit (hub/conversations/chat_ingest.py)


async def test_two_hundred_concurrent_visitor_messages_are_one_write_transaction(
    hub, website, monkeypatch
):
    people = [await hub.visitors.create(website, "pytest") for _ in range(50)]
    for person in people:  # each visitor's conversation is going
        await hub.conversations.ingest(chat_inbound(website, person, "open"))
    writes = {"count": 0}
    write = hub.db.write

    @contextlib.asynccontextmanager
    async def counting_write():  # type: ignore[no-untyped-def]
        writes["count"] += 1
        async with write() as conn:
            yield conn

    monkeypatch.setattr(hub.db, "write", counting_write)
    inline = counting_inline(hub, monkeypatch)
    await asyncio.gather(
        *[
            hub.conversations.ingest(chat_inbound(website, people[n % 50], f"m{n}", f"c-{n}"))
            for n in range(200)
        ]
    )
    assert writes["count"] + len(inline) == 1  # all 200 in one transaction


# ---- the bus: memory per idle subscriber (hub/events/bus.py) ------------------------------


async def test_a_subscription_holds_a_queue_only_while_events_wait_in_it() -> None:
    """Memory per idle console: an empty subscription keeps no queue of its own."""
    bus = EventBus("memory://")
    await bus.connect()
    try:
        async with bus.subscribe("c") as subscription:
            assert subscription.pending() == 0 and subscription._queue is None
            for n in range(3):
                await bus.publish("c", {"n": n})
            assert [e.json()["n"] for e in await subscription.get_group()] == [0, 1, 2]
            assert subscription.pending() == 0 and subscription._queue is None
    finally:
        await bus.disconnect()
