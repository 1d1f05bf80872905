"""What a returning widget is shown (ConversationService.resume), on both engines.

Resumes that arrive together (a reconnect storm) share one read; each caller
gets exactly what it would have got alone.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from hub.errors import Unavailable
from hub.models import Inbound
from tests.engines import settings  # noqa: F401 - runs every test on both engines


def inbound(inbox, visitor, text):  # type: ignore[no-untyped-def]
    return Inbound.web_chat(inbox_id=inbox.id, text=text, client_id=None, visitor_id=visitor.id)


@pytest.fixture
def reads(hub, monkeypatch):  # type: ignore[no-untyped-def]
    """Counts the store's read transactions."""
    counted = {"reads": 0}
    read = hub.db.read

    @contextlib.asynccontextmanager
    async def counting_read():  # type: ignore[no-untyped-def]
        counted["reads"] += 1
        async with read() as conn:
            yield conn

    monkeypatch.setattr(hub.db, "read", counting_read)
    return counted


async def chatting_visitor(hub, website, agent, texts):  # type: ignore[no-untyped-def]
    """A visitor whose conversation holds `texts` (visitor and agent in turn) and a note."""
    visitor = await hub.visitors.create(website, "pytest")
    posted = await hub.conversations.ingest(inbound(website, visitor, texts[0]))
    for n, text in enumerate(texts[1:], 1):
        if n % 2:
            await hub.conversations.reply(agent, posted.conversation.id, text)
        else:
            await hub.conversations.ingest(inbound(website, visitor, text))
    await hub.conversations.reply(agent, posted.conversation.id, "VIP", private=True)
    return visitor, posted.conversation.id


async def test_the_latest_conversation_and_its_public_messages_after_the_seq(hub, website, agent):
    visitor, conversation_id = await chatting_visitor(hub, website, agent, ["a", "b", "c"])
    conversation, found = await hub.conversations.resume(visitor.id, 1)
    assert conversation is not None and conversation.id == conversation_id
    assert conversation.last_seq == 4
    assert [(m.seq, m.text) for m in found] == [(2, "b"), (3, "c")]  # not the note (4)
    assert [m.author_name for m in found] == ["Sam Agent", None]


async def test_nothing_before_the_first_message_and_nothing_new_after_the_last(hub, website, agent):
    newcomer = await hub.visitors.create(website, "pytest")
    assert await hub.conversations.resume(newcomer.id, 0) == (None, [])
    visitor, conversation_id = await chatting_visitor(hub, website, agent, ["a"])
    conversation, found = await hub.conversations.resume(visitor.id, 2)
    assert conversation.id == conversation_id and found == []


async def test_at_most_limit_messages_and_the_rest_by_paging_on(hub, website, agent):
    texts = [f"m{k}" for k in range(7)]
    visitor, conversation_id = await chatting_visitor(hub, website, agent, texts)
    _, found = await hub.conversations.resume(visitor.id, 0, limit=3)
    assert [m.text for m in found] == ["m0", "m1", "m2"]
    rest = await hub.conversations.messages(conversation_id, found[-1].seq, include_private=False)
    assert [m.text for m in rest] == texts[3:]


async def test_a_failed_read_fails_the_resumes_of_its_batch_and_the_next_is_read(
    hub, website, agent, monkeypatch
):
    visitor, _ = await chatting_visitor(hub, website, agent, ["a"])
    read, failed = hub.db.read, []

    @contextlib.asynccontextmanager
    async def broken_read():  # type: ignore[no-untyped-def]
        async with read() as conn:
            failed.append(conn)
            raise ConnectionResetError("injected: the store went away")
            yield conn  # never reached

    monkeypatch.setattr(hub.db, "read", broken_read)
    results = await asyncio.gather(
        hub.conversations.resume(visitor.id, 0),
        hub.conversations.resume(visitor.id, 1),
        return_exceptions=True,
    )
    assert all(isinstance(r, Unavailable) for r in results)
    assert "The conversation was not read (the store failed: injected" in str(results[0])
    assert len(failed) == 1  # one read for the batch, and it failed both
    monkeypatch.setattr(hub.db, "read", read)
    _, found = await hub.conversations.resume(visitor.id, 0)
    assert [m.text for m in found] == ["a"]
