"""ConversationService against a real store on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from hub.errors import Forbidden, InvalidInput, NotFound, TooLarge
from hub.events import topics
from hub.models import Inbound, Kind, Status
from tests.engines import settings  # noqa: F401 - runs every test on both engines


async def new_visitor(hub, inbox):  # type: ignore[no-untyped-def]
    return await hub.visitors.create(inbox, "pytest")


def inbound(inbox, visitor, text="Hello", client_id=None, **extra):  # type: ignore[no-untyped-def]
    return Inbound.web_chat(
        inbox_id=inbox.id, text=text, client_id=client_id, visitor_id=visitor.id, **extra
    )


async def test_messages_are_numbered_one_two_three(hub, website, agent):
    visitor = await new_visitor(hub, website)
    first = await hub.conversations.ingest(inbound(website, visitor, "one"))
    second = await hub.conversations.reply(agent, first.conversation.id, "two")
    third = await hub.conversations.ingest(inbound(website, visitor, "three"))
    assert [first.message.seq, second.message.seq, third.message.seq] == [1, 2, 3]
    assert third.conversation.id == first.conversation.id


async def test_concurrent_writers_get_gap_free_sequence_numbers(hub, website, agent):
    visitor = await new_visitor(hub, website)
    opened = await hub.conversations.ingest(inbound(website, visitor, "start"))
    conversation_id = opened.conversation.id
    results = await asyncio.gather(
        *[
            hub.conversations.ingest(inbound(website, visitor, f"v{n}", f"c-{n}"))
            for n in range(15)
        ],
        *[hub.conversations.reply(agent, conversation_id, f"a{n}") for n in range(15)],
    )
    seqs = sorted(r.message.seq for r in results)
    assert seqs == list(range(2, 32))
    stored = await hub.conversations.messages(conversation_id)
    assert [m.seq for m in stored] == list(range(1, 32))


async def test_same_client_id_is_stored_once(hub, website):
    visitor = await new_visitor(hub, website)
    first = await hub.conversations.ingest(inbound(website, visitor, "hi", "c-1"))
    again = await hub.conversations.ingest(inbound(website, visitor, "hi", "c-1"))
    assert again.duplicate and not first.duplicate
    assert again.message.seq == first.message.seq
    assert len(await hub.conversations.messages(first.conversation.id)) == 1


async def test_unknown_visitor_or_foreign_conversation_is_refused(hub, website):
    alice = await new_visitor(hub, website)
    bob = await new_visitor(hub, website)
    alices = await hub.conversations.ingest(inbound(website, alice, "mine"))
    with pytest.raises(Forbidden):
        await hub.conversations.ingest(
            inbound(website, bob, "yours?", conversation_id=alices.conversation.id)
        )
    other_inbox = await hub.inboxes.create_website("Other", ["http://other.test"])
    with pytest.raises(Forbidden):
        await hub.conversations.ingest(inbound(other_inbox, alice, "wrong inbox"))
    assert len(await hub.conversations.messages(alices.conversation.id)) == 1


@pytest.mark.parametrize(
    ("text", "error"), [("", InvalidInput), ("  \n ", InvalidInput), ("x" * 5001, TooLarge)]
)
async def test_bad_text_is_refused_and_nothing_is_opened(hub, website, text, error):
    visitor = await new_visitor(hub, website)
    with pytest.raises(error):
        await hub.conversations.ingest(inbound(website, visitor, text))
    assert await hub.conversations.latest_for_visitor(visitor.id) is None


async def test_control_characters_are_removed(hub, website):
    visitor = await new_visitor(hub, website)
    posted = await hub.conversations.ingest(inbound(website, visitor, "a\x00b\x1bc\r\nd"))
    assert posted.message.text == "abc\nd"


async def test_first_reply_time_is_set_by_the_first_public_reply_only(hub, website, agent):
    visitor = await new_visitor(hub, website)
    opened = await hub.conversations.ingest(inbound(website, visitor))
    await hub.conversations.reply(agent, opened.conversation.id, "note", private=True)
    assert await _first_reply_at(hub, opened.conversation.id) is None
    await hub.conversations.reply(agent, opened.conversation.id, "answer")
    first = await _first_reply_at(hub, opened.conversation.id)
    await hub.conversations.reply(agent, opened.conversation.id, "again")
    assert first is not None and await _first_reply_at(hub, opened.conversation.id) == first


async def _first_reply_at(hub, conversation_id):  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    from storage.tables import conversations

    async with hub.db.read() as conn:
        return await conn.scalar(
            sa.select(conversations.c.first_reply_at).where(conversations.c.id == conversation_id)
        )


async def test_private_notes_and_activity_are_hidden_from_the_visitor_view(hub, website, agent):
    visitor = await new_visitor(hub, website)
    opened = await hub.conversations.ingest(inbound(website, visitor))
    cid = opened.conversation.id
    await hub.conversations.reply(agent, cid, "internal", private=True)
    await hub.conversations.assign(agent, cid, agent.id)
    await hub.conversations.reply(agent, cid, "public")
    everything = await hub.conversations.messages(cid)
    public = await hub.conversations.messages(cid, include_private=False)
    assert [m.kind for m in everything] == [Kind.TEXT, Kind.NOTE, Kind.ACTIVITY, Kind.TEXT]
    assert everything[2].text == "Sam Agent self-assigned the conversation"
    assert [m.text for m in public] == ["Hello", "public"]


async def test_status_changes_record_activity_and_an_inbound_message_reopens(hub, website, agent):
    visitor = await new_visitor(hub, website)
    cid = (await hub.conversations.ingest(inbound(website, visitor))).conversation.id
    for status in (Status.PENDING, Status.SNOOZED, Status.RESOLVED):
        changed = await hub.conversations.set_status(agent, cid, status)
        assert changed.status is status
    texts = [m.text for m in await hub.conversations.messages(cid)][1:]
    assert texts == [
        "Sam Agent marked the conversation pending",
        "Sam Agent snoozed the conversation",
        "Sam Agent resolved the conversation",
    ]
    reopened = await hub.conversations.ingest(inbound(website, visitor, "back again"))
    assert reopened.conversation.status is Status.OPEN


async def test_assigning_to_an_unknown_agent_changes_nothing(hub, website, agent):
    visitor = await new_visitor(hub, website)
    cid = (await hub.conversations.ingest(inbound(website, visitor))).conversation.id
    with pytest.raises(InvalidInput):
        await hub.conversations.assign(agent, cid, 9999)
    conversation = await hub.conversations.get(cid)
    assert conversation.assignee_id is None and conversation.last_seq == 1


async def test_missing_conversation_is_not_found(hub, agent):
    with pytest.raises(NotFound):
        await hub.conversations.reply(agent, 404, "hello?")
    with pytest.raises(NotFound):
        await hub.conversations.set_status(agent, 404, Status.RESOLVED)


async def test_inbox_list_filters_by_status_and_scope_newest_first(hub, website, agent, admin):
    a, b, c = [await new_visitor(hub, website) for _ in range(3)]
    ca = (await hub.conversations.ingest(inbound(website, a, "a"))).conversation.id
    cb = (await hub.conversations.ingest(inbound(website, b, "b"))).conversation.id
    cc = (await hub.conversations.ingest(inbound(website, c, "c"))).conversation.id
    await hub.conversations.assign(agent, ca, agent.id)
    await hub.conversations.set_status(agent, cb, Status.RESOLVED)
    await hub.conversations.ingest(inbound(website, a, "a again"))

    def ids(rows):  # type: ignore[no-untyped-def]
        return [row.id for row in rows]

    assert ids(await hub.conversations.list_for_agent(agent)) == [ca, cc]
    assert ids(await hub.conversations.list_for_agent(agent, scope="mine")) == [ca]
    assert ids(await hub.conversations.list_for_agent(admin, scope="mine")) == []
    assert ids(await hub.conversations.list_for_agent(agent, scope="unassigned")) == [cc]
    assert ids(await hub.conversations.list_for_agent(agent, Status.RESOLVED)) == [cb]
    assert ids(await hub.conversations.list_for_agent(agent, None)) == [ca, cb, cc]
    assert await hub.conversations.counts_by_status() == {
        "open": 2,
        "pending": 0,
        "snoozed": 0,
        "resolved": 1,
    }


async def test_unread_counts_are_per_agent_and_drop_when_read(hub, website, agent, admin):
    visitor = await new_visitor(hub, website)
    cid = (await hub.conversations.ingest(inbound(website, visitor, "1"))).conversation.id
    await hub.conversations.ingest(inbound(website, visitor, "2"))
    await hub.conversations.reply(admin, cid, "reply")  # the replier has read everything
    last = await hub.conversations.ingest(inbound(website, visitor, "3"))

    async def unread(who):  # type: ignore[no-untyped-def]
        return (await hub.conversations.list_for_agent(who))[0].unread

    assert await unread(agent) == 3
    assert await unread(admin) == 1
    await hub.conversations.mark_read_by_agent(agent, cid, last.message.seq)
    assert await unread(agent) == 0


async def test_events_go_out_after_commit_and_carry_the_stored_message(hub, website):
    visitor = await new_visitor(hub, website)
    async with hub.bus.subscribe(
        topics.inbox_channel(website.id), topics.visitor_channel(visitor.id)
    ) as sub:
        posted = await hub.conversations.ingest(inbound(website, visitor, "after commit"))
        async with asyncio.timeout(5):
            event = await sub.get()
        # Reading through another connection proves the transaction had committed.
        stored = await hub.conversations.messages(posted.conversation.id)
    payload = event.json()
    assert payload["type"] == "message"
    assert payload["message"]["seq"] == stored[0].seq == 1


async def test_a_refused_write_publishes_nothing(hub, website):
    visitor = await new_visitor(hub, website)
    channel = topics.inbox_channel(website.id)
    async with hub.bus.subscribe(channel) as sub:
        with pytest.raises(InvalidInput):
            await hub.conversations.ingest(inbound(website, visitor, ""))
        await hub.bus.publish(channel, {"type": "marker"})
        async with asyncio.timeout(5):
            first = (await sub.get()).json()
    assert first == {"type": "marker"}
