"""Group commit of web chat messages (ConversationService.ingest), on both engines.

Callers queue; one writer stores what queued in one transaction, a savepoint per
message, and answers each caller only after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

import pytest

from hub import events
from hub.errors import Forbidden, TooLarge, Unavailable
from hub.models import Inbound
from tests.engines import settings  # noqa: F401 - runs every test on both engines


def same(message):  # type: ignore[no-untyped-def]
    """A message as stored (SQLite hands back times without their UTC zone)."""
    return (
        message.conversation_id,
        message.seq,
        message.text,
        message.client_id,
        (message.created_at.replace(tzinfo=None)),
    )


def inbound(inbox, visitor, text="Hello", client_id=None, **extra):  # type: ignore[no-untyped-def]
    return Inbound(
        inbox_id=inbox.id, text=text, client_id=client_id, visitor_id=visitor.id, **extra
    )


async def visitors(hub, inbox, count):  # type: ignore[no-untyped-def]
    return [await hub.visitors.create(inbox, "pytest") for _ in range(count)]


@pytest.fixture
def transactions(hub, monkeypatch):  # type: ignore[no-untyped-def]
    """Counts the store's write transactions (a batch is one)."""
    counted = {"writes": 0}
    write = hub.db.write

    @contextlib.asynccontextmanager
    async def counting_write():  # type: ignore[no-untyped-def]
        counted["writes"] += 1
        async with write() as conn:
            yield conn

    monkeypatch.setattr(hub.db, "write", counting_write)
    return counted


@pytest.fixture
def failing_commit(hub, monkeypatch):  # type: ignore[no-untyped-def]
    """Makes the next COMMIT on the store's connections fail (once)."""
    dialect = hub.db.engine.sync_engine.dialect
    commit = dialect.do_commit
    state = {"armed": False, "failed": 0}

    def do_commit(dbapi_connection):  # type: ignore[no-untyped-def]
        if state["armed"]:
            state["armed"] = False
            state["failed"] += 1
            raise ConnectionResetError("injected: the commit failed")
        commit(dbapi_connection)

    monkeypatch.setattr(dialect, "do_commit", do_commit)
    return state


async def test_concurrent_messages_are_all_stored_gap_free_and_answered_as_stored(
    hub, website, transactions
):
    people = await visitors(hub, website, 50)
    before = transactions["writes"]
    results = await asyncio.gather(
        *[
            hub.conversations.ingest(inbound(website, people[n % 50], f"m{n}", f"c-{n}"))
            for n in range(200)
        ]
    )
    assert transactions["writes"] == before + 1  # all 200 in one write transaction
    by_conversation = defaultdict(list)
    for posted in results:
        by_conversation[posted.conversation.id].append(posted)
    assert len(by_conversation) == 50
    for conversation_id, posts in by_conversation.items():
        stored = await hub.conversations.messages(conversation_id)
        assert [m.seq for m in stored] == list(range(1, len(posts) + 1))
        assert {same(p.message) for p in posts} == {same(m) for m in stored}
        current = await hub.conversations.get(conversation_id)
        assert current.last_seq == len(posts)
    for posted in results:
        assert not posted.duplicate
        assert posted.message.text == f"m{int(posted.message.client_id[2:])}"


async def test_a_bad_message_in_a_batch_fails_alone(hub, website, transactions):
    alice, bob = await visitors(hub, website, 2)
    other_inbox = await hub.inboxes.create_website("Other", ["http://other.test"])
    with pytest.raises(TooLarge):  # refused before it is queued
        await hub.conversations.ingest(inbound(website, alice, "x" * 5001))
    before = transactions["writes"]
    results = await asyncio.gather(
        hub.conversations.ingest(inbound(website, alice, "one")),
        hub.conversations.ingest(inbound(other_inbox, bob, "wrong inbox")),
        hub.conversations.ingest(inbound(website, bob, "two")),
        hub.conversations.ingest(inbound(website, alice, "three")),
        return_exceptions=True,
    )
    assert transactions["writes"] == before + 1
    assert isinstance(results[1], Forbidden)
    good = [results[0], results[2], results[3]]
    assert [p.message.text for p in good] == ["one", "two", "three"]
    assert [p.message.seq for p in good] == [1, 1, 2]
    assert [m.text for m in await hub.conversations.messages(results[0].conversation.id)] == [
        "one",
        "three",
    ]
    assert [m.text for m in await hub.conversations.messages(results[2].conversation.id)] == ["two"]


async def test_a_message_that_fails_after_writing_rolls_back_alone(hub, website, monkeypatch):
    alice, bob = await visitors(hub, website, 2)
    opened = await hub.conversations.ingest(inbound(website, alice, "first"))
    store = hub.conversations._store_inbound

    async def failing_after_the_writes(conn, queued):  # type: ignore[no-untyped-def]
        stored = await store(conn, queued)  # seq counted, row inserted …
        if queued.inbound.text == "doomed":
            raise RuntimeError("injected: fails after its writes")  # … and rolled back
        return stored

    monkeypatch.setattr(hub.conversations, "_store_inbound", failing_after_the_writes)
    results = await asyncio.gather(
        hub.conversations.ingest(inbound(website, bob, "hello")),
        hub.conversations.ingest(inbound(website, alice, "doomed")),
        hub.conversations.ingest(
            inbound(website, bob, "not yours", conversation_id=opened.conversation.id)
        ),
        hub.conversations.ingest(inbound(website, alice, "second")),
        return_exceptions=True,
    )
    assert isinstance(results[1], RuntimeError)
    assert isinstance(results[2], Forbidden)
    assert results[3].message.seq == 2  # no gap where the doomed one was
    stored = await hub.conversations.messages(opened.conversation.id)
    assert [(m.seq, m.text) for m in stored] == [(1, "first"), (2, "second")]
    assert (await hub.conversations.get(opened.conversation.id)).last_seq == 2
    assert results[0].message.seq == 1


async def test_the_same_client_id_twice_in_one_batch_is_stored_once(hub, website, transactions):
    (visitor,) = await visitors(hub, website, 1)
    before = transactions["writes"]
    first, second = await asyncio.gather(
        hub.conversations.ingest(inbound(website, visitor, "hi", "c-1")),
        hub.conversations.ingest(inbound(website, visitor, "hi", "c-1")),
    )
    assert transactions["writes"] == before + 1
    assert not first.duplicate and second.duplicate
    assert same(second.message) == same(first.message)
    assert len(await hub.conversations.messages(first.conversation.id)) == 1


async def test_events_go_out_after_the_commit_in_seq_order(hub, website, monkeypatch):
    people = await visitors(hub, website, 5)
    publish = hub.bus.publish
    visible_when_published = []

    async def checking_publish(channel, payload):  # type: ignore[no-untyped-def]
        if channel == events.AGENTS and payload["type"] == "message":
            message = payload["message"]
            # Another connection sees only committed rows.
            stored = await hub.conversations.messages(
                message["conversation_id"], after_seq=message["seq"] - 1, limit=1
            )
            visible_when_published.append(bool(stored) and stored[0].seq == message["seq"])
        await publish(channel, payload)

    monkeypatch.setattr(hub.bus, "publish", checking_publish)
    async with hub.bus.subscribe(events.AGENTS) as sub:
        results = await asyncio.gather(
            *[hub.conversations.ingest(inbound(website, people[n % 5], f"m{n}")) for n in range(40)]
        )
        seen = defaultdict(list)
        async with asyncio.timeout(10):
            while sum(len(s) for s in seen.values()) < len(results):
                payload = (await sub.get()).json()
                if payload["type"] == "message":
                    seen[payload["message"]["conversation_id"]].append(payload["message"]["seq"])
    assert visible_when_published == [True] * 40
    for seqs in seen.values():
        assert seqs == list(range(1, len(seqs) + 1))


async def test_a_failed_commit_fails_every_caller_and_stores_nothing(hub, website, failing_commit):
    people = await visitors(hub, website, 3)
    opened = await hub.conversations.ingest(inbound(website, people[0], "before"))
    failing_commit["armed"] = True
    results = await asyncio.gather(
        *[hub.conversations.ingest(inbound(website, p, f"lost {n}")) for n, p in enumerate(people)],
        return_exceptions=True,
    )
    assert failing_commit["failed"] == 1
    assert all(isinstance(r, ConnectionResetError) for r in results)
    assert [m.text for m in await hub.conversations.messages(opened.conversation.id)] == ["before"]
    for person in people[1:]:
        assert await hub.conversations.latest_for_visitor(person.id) is None
    # The writer goes on: the next message is stored with the next seq.
    again = await hub.conversations.ingest(inbound(website, people[0], "after"))
    assert again.message.seq == 2


async def test_a_cancelled_caller_loses_no_one_elses_message(hub, website, monkeypatch):
    people = await visitors(hub, website, 4)
    store = hub.conversations._store_inbound
    storing = asyncio.Event()

    async def signalling_store(conn, queued):  # type: ignore[no-untyped-def]
        storing.set()
        return await store(conn, queued)

    monkeypatch.setattr(hub.conversations, "_store_inbound", signalling_store)
    waiting = [
        asyncio.create_task(hub.conversations.ingest(inbound(website, p, f"m{n}")))
        for n, p in enumerate(people)
    ]
    async with asyncio.timeout(10):
        await storing.wait()  # the batch is being stored
    queued_later = asyncio.create_task(hub.conversations.ingest(inbound(website, people[0], "q")))
    cancelled_later = asyncio.create_task(
        hub.conversations.ingest(inbound(website, people[1], "never"))
    )
    waiting[2].cancel()
    cancelled_later.cancel()
    results = await asyncio.gather(*waiting, queued_later, cancelled_later, return_exceptions=True)
    assert isinstance(results[2], asyncio.CancelledError)
    assert isinstance(results[5], asyncio.CancelledError)
    for n in (0, 1, 3):
        stored = await hub.conversations.messages(results[n].conversation.id)
        assert f"m{n}" in [m.text for m in stored]
    assert results[4].message.text == "q"
    latest = await hub.conversations.latest_for_visitor(people[1].id)
    assert "never" not in [m.text for m in await hub.conversations.messages(latest.id)]
    again = await hub.conversations.ingest(inbound(website, people[2], "still serving"))
    assert again.message.text == "still serving"


async def test_the_writer_survives_a_failing_batch_and_a_failing_message(hub, website, monkeypatch):
    alice, bob = await visitors(hub, website, 2)
    write_batch = hub.conversations._write_batch
    store = hub.conversations._store_inbound

    async def broken_batch(batch):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(hub.conversations, "_write_batch", write_batch)
        raise RuntimeError("injected: a bug in the writer")

    async def broken_for_bob(conn, queued):  # type: ignore[no-untyped-def]
        if queued.inbound.visitor_id == bob.id:
            raise RuntimeError("injected: a bug for one message")
        return await store(conn, queued)

    monkeypatch.setattr(hub.conversations, "_write_batch", broken_batch)
    with pytest.raises(RuntimeError, match="a bug in the writer"):
        await hub.conversations.ingest(inbound(website, alice, "lost"))
    monkeypatch.setattr(hub.conversations, "_store_inbound", broken_for_bob)
    results = await asyncio.gather(
        hub.conversations.ingest(inbound(website, bob, "bob")),
        hub.conversations.ingest(inbound(website, alice, "alice")),
        return_exceptions=True,
    )
    assert isinstance(results[0], RuntimeError)
    assert results[1].message.seq == 1 and results[1].message.text == "alice"


async def test_stopping_stores_what_is_queued_and_then_refuses(hub, website):
    people = await visitors(hub, website, 3)
    waiting = [
        asyncio.create_task(hub.conversations.ingest(inbound(website, p, "last words")))
        for p in people
    ]
    await asyncio.sleep(0)  # let them queue (create_task runs them on the next turn)
    await hub.conversations.close()
    for posted in await asyncio.gather(*waiting):
        assert posted.message.seq == 1
    with pytest.raises(Unavailable):
        await hub.conversations.ingest(inbound(website, people[0], "too late"))
