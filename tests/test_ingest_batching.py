"""Group commit of web chat messages (ConversationService.ingest), on both engines.

Callers queue; one writer stores what queued in one transaction, a savepoint per
message, and answers each caller only after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import defaultdict
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa

from hub.errors import Forbidden, TooLarge, Unavailable
from hub.events import topics
from hub.models import ContactDetails, Inbound, Status
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
    return Inbound.web_chat(
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


async def test_concurrent_messages_are_all_stored_gap_free_and_answered_as_stored(hub, website):
    people = await visitors(hub, website, 50)
    results = await asyncio.gather(
        *[
            hub.conversations.ingest(inbound(website, people[n % 50], f"m{n}", f"c-{n}"))
            for n in range(200)
        ]
    )
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
    store = hub.conversations.chat._store_inbound

    async def failing_after_the_writes(conn, queued):  # type: ignore[no-untyped-def]
        stored = await store(conn, queued)  # contact named, seq counted, row inserted …
        if queued.inbound.text == "doomed":
            raise RuntimeError("injected: fails after its writes")  # … and rolled back
        return stored

    monkeypatch.setattr(hub.conversations.chat, "_store_inbound", failing_after_the_writes)
    # The away form's name sends "doomed" through _store_inbound on SQLite too
    # (plain messages to a going conversation are stored in a run there).
    doomed = inbound(website, alice, "doomed", contact=ContactDetails(name="Alice"))
    results = await asyncio.gather(
        hub.conversations.ingest(inbound(website, bob, "hello")),
        hub.conversations.ingest(doomed),
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
    assert (await hub.contacts.get(alice.contact_id)).name is None
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
        if channel == topics.inbox_channel(website.id) and payload["type"] == "message":
            message = payload["message"]
            # Another connection sees only committed rows.
            stored = await hub.conversations.messages(
                message["conversation_id"], after_seq=message["seq"] - 1, limit=1
            )
            visible_when_published.append(bool(stored) and stored[0].seq == message["seq"])
        await publish(channel, payload)

    monkeypatch.setattr(hub.bus, "publish", checking_publish)
    async with hub.bus.subscribe(topics.inbox_channel(website.id)) as sub:
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
    store = hub.conversations.chat._store_inbound
    storing = asyncio.Event()

    async def signalling_store(conn, queued):  # type: ignore[no-untyped-def]
        storing.set()
        return await store(conn, queued)

    monkeypatch.setattr(hub.conversations.chat, "_store_inbound", signalling_store)
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
    write_batch = hub.conversations.chat._write_batch
    store = hub.conversations.chat._store_inbound

    async def broken_batch(batch):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(hub.conversations.chat, "_write_batch", write_batch)
        raise RuntimeError("injected: a bug in the writer")

    async def broken_for_bob(conn, queued):  # type: ignore[no-untyped-def]
        if queued.inbound.visitor_id == bob.id:
            raise RuntimeError("injected: a bug for one message")
        return await store(conn, queued)

    monkeypatch.setattr(hub.conversations.chat, "_write_batch", broken_batch)
    with pytest.raises(RuntimeError, match="a bug in the writer"):
        await hub.conversations.ingest(inbound(website, alice, "lost"))
    monkeypatch.setattr(hub.conversations.chat, "_store_inbound", broken_for_bob)
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


# ---- a batch of every kind of message, against one message at a time --------


async def mixed_chat(hub, website, agent):  # type: ignore[no-untyped-def]
    """Visitors with conversations in every state, and a batch of messages of every
    kind for them: the common case, a first message, duplicates, the away form,
    a reopening, and two that are refused."""
    alice, bob, carol, dave, erin, frank = await visitors(hub, website, 6)
    other_inbox = await hub.inboxes.create_website("Other", ["http://other.test"])
    stranger = await hub.visitors.create(other_inbox, "pytest")
    await hub.conversations.ingest(inbound(other_inbox, stranger, "chatting elsewhere"))
    alices = await hub.conversations.ingest(inbound(website, alice, "a0", "c-a0"))
    for person in (bob, dave, erin):
        await hub.conversations.ingest(inbound(website, person, "hello", "c-0"))
    franks = await hub.conversations.ingest(inbound(website, frank, "f0"))
    await hub.conversations.assign(agent, franks.conversation.id, agent.id)
    await hub.conversations.set_status(agent, franks.conversation.id, Status.RESOLVED)
    away_form = ContactDetails(name="Erin", email="erin@example.com")
    batch = [
        inbound(website, alice, "a1", "c-a1"),
        inbound(website, carol, "c1", "c-c1"),  # opens carol's conversation …
        inbound(website, carol, "c2", "c-c2"),  # … and goes to it
        inbound(website, bob, "not yours", conversation_id=alices.conversation.id),
        inbound(website, dave, "again", "c-0"),  # a duplicate of a stored message
        inbound(website, alice, "a2", "c-a2"),
        inbound(website, erin, "e1", contact=away_form),
        inbound(website, alice, "a2", "c-a2"),  # a duplicate within the batch
        inbound(website, frank, "f1"),  # reopens an assigned, resolved conversation
        inbound(website, stranger, "s1"),  # a visitor of another website
        inbound(website, bob, "b1", "c-b1"),
        inbound(website, erin, "e2"),  # her conversation now shows her name
        inbound(website, alice, "long " * 60),  # a preview cut short
    ]
    return [alice, bob, carol, dave, erin, frank, stranger], batch


@dataclasses.dataclass
class Names:
    """One run's ids replaced by their visitor's place, so that two runs compare."""

    conversations: dict[int, str]
    contacts: dict[int, str]
    visitors: dict[str, str]

    @classmethod
    async def of(cls, hub, people):  # type: ignore[no-untyped-def]
        names = cls({}, {}, {})
        for n, person in enumerate(people):
            names.contacts[person.contact_id] = names.visitors[person.id] = f"v{n}"
            latest = await hub.conversations.latest_for_visitor(person.id)
            if latest is not None:
                names.conversations[latest.id] = f"v{n}"
        return names

    def answer(self, result: Any) -> Any:
        """A caller's answer, with whether each of its times is zone-aware."""
        if isinstance(result, BaseException):
            return type(result), str(result)
        message, conversation = result.message, result.conversation
        return (
            result.duplicate,
            dataclasses.replace(
                message,
                conversation_id=self.conversations[message.conversation_id],
                created_at=aware(message.created_at),
            ),
            dataclasses.replace(
                conversation,
                id=self.conversations[conversation.id],
                contact_id=self.contacts[conversation.contact_id],
                visitor_id=self.visitors[conversation.visitor_id],
                created_at=aware(conversation.created_at),
                last_activity_at=aware(conversation.last_activity_at),
            ),
        )

    def event(self, payload: dict[str, Any]) -> dict[str, Any]:
        """An event for agents, times left out."""
        shaped = dict(payload)
        if "conversation" in payload:
            wire = dict(payload["conversation"], created_at="-", last_activity_at="-")
            contact = dict(wire["contact"], id=self.contacts[wire["contact"]["id"]])
            if contact["display_name"] == f"Visitor #{wire['contact']['id']}":
                contact["display_name"] = f"Visitor #{contact['id']}"
            shaped["conversation"] = dict(wire, id=self.conversations[wire["id"]], contact=contact)
        if "message" in payload:
            message = payload["message"]
            shaped["message"] = dict(
                message,
                conversation_id=self.conversations[message["conversation_id"]],
                created_at="-",
            )
        return shaped


def aware(moment: datetime) -> str:
    return "aware" if moment.tzinfo is not None else "naive"


async def agent_events(hub, run, inbox_id):  # type: ignore[no-untyped-def]
    """What `run()` returns, and every event the inbox's agents got while it ran, in order."""
    channel = topics.inbox_channel(inbox_id)
    async with hub.bus.subscribe(channel) as sub:
        result = await run()
        await hub.bus.publish(channel, {"type": "end of test"})
        seen = []
        async with asyncio.timeout(10):
            while (payload := (await sub.get()).json())["type"] != "end of test":
                seen.append(payload)
    return result, seen


async def test_a_mixed_batch_answers_each_caller_as_one_at_a_time_would(
    hub, website, agent, transactions, monkeypatch
):
    # The reference: one message at a time, and on SQLite without runs of
    # common messages on the raw connection (the general path alone).
    async def no_run(conn, pending):  # type: ignore[no-untyped-def]
        return None

    async def one_at_a_time():  # type: ignore[no-untyped-def]
        answers = []
        for message in batch:
            try:
                answers.append(await hub.conversations.ingest(message))
            except Exception as exc:
                answers.append(exc)
        return answers

    people, batch = await mixed_chat(hub, website, agent)
    with monkeypatch.context() as patch:
        patch.setattr(hub.conversations.chat, "_store_common_run", no_run)
        expected, expected_events = await agent_events(hub, one_at_a_time, website.id)
    reference = await Names.of(hub, people)

    people, batch = await mixed_chat(hub, website, agent)
    before = transactions["writes"]
    results, seen = await agent_events(
        hub,
        lambda: asyncio.gather(
            *[hub.conversations.ingest(message) for message in batch], return_exceptions=True
        ),
        website.id,
    )
    assert transactions["writes"] == before + 1  # one batch
    names = await Names.of(hub, people)

    assert [names.answer(r) for r in results] == [reference.answer(r) for r in expected]
    assert [r for r in results if isinstance(r, BaseException)] == [results[3], results[9]]
    assert str(results[3]) == "that conversation is not yours"
    assert str(results[9]) == "unknown visitor for this inbox"
    shaped = [names.event(payload) for payload in seen]
    expected_shaped = [reference.event(payload) for payload in expected_events]
    if not hub.db.is_sqlite:  # the batch went in visitor order: compare per conversation
        shaped.sort(key=lambda e: e["conversation"]["id"])
        expected_shaped.sort(key=lambda e: e["conversation"]["id"])
    assert shaped == expected_shaped

    # What each caller got is what the store reads back.
    last: dict[int, Any] = {}
    for posted in results:
        if isinstance(posted, BaseException):
            continue
        stored = await hub.conversations.messages(
            posted.conversation.id, after_seq=posted.message.seq - 1, limit=1
        )
        assert [naive(m) for m in stored] == [naive(posted.message)]
        last[posted.conversation.id] = posted.conversation
    for conversation_id, conversation in last.items():
        assert await hub.conversations.get(conversation_id) == conversation


def naive(message):  # type: ignore[no-untyped-def]
    """A message with its time as SQLite reads it back (UTC, no zone)."""
    return dataclasses.replace(message, created_at=message.created_at.replace(tzinfo=None))


async def refuse_doomed_messages(hub) -> None:  # type: ignore[no-untyped-def]
    """A trigger that makes the store refuse a message whose text is "doomed"."""
    async with hub.db.write() as conn:
        if hub.db.is_sqlite:
            await conn.exec_driver_sql(
                "CREATE TRIGGER refuse_doomed BEFORE INSERT ON messages "
                "WHEN NEW.text = 'doomed' BEGIN SELECT RAISE(ABORT, 'injected: doomed'); END"
            )
            return
        await conn.exec_driver_sql(
            "CREATE FUNCTION refuse_doomed() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN IF NEW.text = 'doomed' THEN RAISE EXCEPTION 'injected: doomed'; END IF; "
            "RETURN NEW; END $$"
        )
        await conn.exec_driver_sql(
            "CREATE TRIGGER refuse_doomed BEFORE INSERT ON messages "
            "FOR EACH ROW EXECUTE FUNCTION refuse_doomed()"
        )


async def test_a_message_the_store_refuses_after_counting_it_rolls_back_alone(hub, website):
    alice, bob = await visitors(hub, website, 2)
    opened = [await hub.conversations.ingest(inbound(website, p, "first")) for p in (alice, bob)]
    await refuse_doomed_messages(hub)
    # The conversation's seq is counted before the insert fails: rolled back alone.
    results = await asyncio.gather(
        hub.conversations.ingest(inbound(website, alice, "one")),
        hub.conversations.ingest(inbound(website, alice, "doomed")),
        hub.conversations.ingest(inbound(website, bob, "two")),
        hub.conversations.ingest(inbound(website, alice, "three")),
        return_exceptions=True,
    )
    assert isinstance(results[1], sa.exc.DBAPIError)  # as SQLAlchemy reports it, on both
    assert "injected: doomed" in str(results[1])
    assert [(r.message.seq, r.message.text) for r in (results[0], results[2], results[3])] == [
        (2, "one"),
        (2, "two"),
        (3, "three"),
    ]
    stored = await hub.conversations.messages(opened[0].conversation.id)
    assert [(m.seq, m.text) for m in stored] == [(1, "first"), (2, "one"), (3, "three")]
    assert (await hub.conversations.get(opened[0].conversation.id)).last_seq == 3
