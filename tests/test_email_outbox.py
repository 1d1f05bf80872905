"""The email outbox against a real SMTP server on loopback (an aiosmtpd sink):
threaded replies as received, retries when the server is down or answers 4xx,
failure with the server's reason on 5xx, and two workers sending each message once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from hub.core import Hub
from hub.email.models import OutboxState
from hub.email.outbox import FIRST_RETRY, EmailOutbox, Permanent
from hub.events import topics
from hub.models import Agent, utcnow
from storage.db import Database
from tests.email_helpers import SUPPORT, inbound, make_email_inbox
from tests.engines import settings  # noqa: F401 - runs every test on both engines
from tests.mail_servers import smtp_sink


class MovableClock:
    """The outbox's clock; starts a moment ahead so mail queued by the test is due."""

    def __init__(self) -> None:
        self.now = utcnow() + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def outbox_for(
    hub: Hub, clock: MovableClock, db: Database | None = None, owner: str = "w1", transport=None
):  # type: ignore[no-untyped-def]
    return EmailOutbox(
        db or hub.db,
        hub.bus,
        hub.email_inboxes,
        hub.email.publish_state,
        transport or hub.outbox.transport,
        owner,
        clock,
    )


class StuckTransport:
    """A node that takes a message, then hangs mid-send until told how it ended."""

    def __init__(self) -> None:
        self.holding = asyncio.Event()
        self.ends: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def send(self, server, password, delivery) -> None:  # type: ignore[no-untyped-def]
        self.holding.set()
        await self.ends


async def _ticket_with_reply(hub: Hub, agent: Agent, inbox, text: str = "It ships today."):  # type: ignore[no-untyped-def]
    first = await hub.email.ingest(inbox, inbound(message_id="ask@customer.test"))
    await hub.conversations.reply(agent, first.conversation_id, text)
    return first.conversation_id


async def _state(hub: Hub, conversation_id: int):  # type: ignore[no-untyped-def]
    [ours] = [
        d for d in (await hub.email.details(conversation_id)).values() if d.direction.value == "out"
    ]
    return ours


async def test_a_reply_arrives_threaded_and_is_marked_sent(hub: Hub, agent: Agent):
    async with smtp_sink() as sink:
        inbox = await make_email_inbox(hub, smtp_port=sink.port)
        conversation_id = await _ticket_with_reply(hub, agent, inbox)
        async with hub.bus.subscribe(topics.inbox_channel(inbox.id)) as events:
            assert await outbox_for(hub, MovableClock()).deliver_due() == 1
            event = await asyncio.wait_for(events.get(), 5)
        [received] = sink.received
        message = received.message
        ours = await _state(hub, conversation_id)
        assert ours.state is OutboxState.SENT and ours.attempts == 1
        assert event.json()["email"]["state"] == "sent"
        assert received.mail_from == SUPPORT
        assert received.recipients == ["alice@customer.test"]
        assert message["Message-ID"] == f"<{ours.message_id}>"
        assert message["In-Reply-To"] == "<ask@customer.test>"
        assert message["Subject"] == f"Re: Where is my order? [#{conversation_id}]"
        assert message["From"].addresses[0].addr_spec == SUPPORT
        thread = await hub.email.thread(conversation_id)
        assert message["Reply-To"].addresses[0].addr_spec == thread["reply_address"]
        assert message.get_body(("plain",)).get_content().startswith("It ships today.")
        assert "It ships today." in message.get_body(("html",)).get_content()
        assert "Auto-Submitted" not in message


async def test_a_server_that_is_down_delays_mail_and_loses_none(hub: Hub, agent: Agent):
    clock = MovableClock()
    async with smtp_sink() as sink:
        inbox = await make_email_inbox(hub, smtp_port=sink.port)
        conversation_id = await _ticket_with_reply(hub, agent, inbox)
        await sink.stop()
        outbox = outbox_for(hub, clock)
        assert await outbox.deliver_due() == 1
        queued = await _state(hub, conversation_id)
        assert queued.state is OutboxState.QUEUED and queued.attempts == 1
        assert "127.0.0.1" in queued.error
        # Not due again before its backoff, even if asked.
        assert await outbox.deliver_due() == 0
        await sink.restart()
        clock.advance(FIRST_RETRY * 2)
        assert await outbox.deliver_due() == 1
        sent = await _state(hub, conversation_id)
        assert sent.state is OutboxState.SENT and sent.attempts == 2 and sent.error is None
        assert len(sink.received) == 1


async def test_a_4xx_answer_retries_and_a_5xx_fails_with_the_reason(hub: Hub, agent: Agent):
    clock = MovableClock()
    async with smtp_sink() as sink:
        inbox = await make_email_inbox(hub, smtp_port=sink.port)
        conversation_id = await _ticket_with_reply(hub, agent, inbox)
        outbox = outbox_for(hub, clock)
        sink.handler.answer = "451 4.3.0 mailbox busy, try later"
        await outbox.deliver_due()
        busy = await _state(hub, conversation_id)
        assert busy.state is OutboxState.QUEUED and "451" in busy.error
        sink.handler.answer = "550 5.1.1 no such user here"
        clock.advance(FIRST_RETRY * 2)
        await outbox.deliver_due()
        failed = await _state(hub, conversation_id)
        assert failed.state is OutboxState.FAILED
        assert failed.error == "550 5.1.1 no such user here"
        clock.advance(timedelta(days=1))
        assert await outbox.deliver_due() == 0  # failed mail is not retried by itself
        # An agent fixes the cause and retries.
        sink.handler.answer = "250 OK"
        assert await outbox.retry(conversation_id, failed.seq)
        assert not await outbox.retry(conversation_id, failed.seq)  # queued now, not failed
        assert await outbox.deliver_due() == 1
        assert (await _state(hub, conversation_id)).state is OutboxState.SENT
        assert len(sink.received) == 1


async def test_an_inbox_without_a_server_keeps_its_mail_queued(hub: Hub, agent: Agent):
    inbox = await make_email_inbox(hub)
    conversation_id = await _ticket_with_reply(hub, agent, inbox)
    await outbox_for(hub, MovableClock()).deliver_due()
    queued = await _state(hub, conversation_id)
    assert queued.state is OutboxState.QUEUED
    assert "no outgoing SMTP server" in queued.error


async def test_mail_is_given_up_after_days_of_failures(hub: Hub, agent: Agent):
    clock = MovableClock()
    inbox = await make_email_inbox(hub)
    conversation_id = await _ticket_with_reply(hub, agent, inbox)
    clock.advance(timedelta(days=4))
    await outbox_for(hub, clock).deliver_due()
    gone = await _state(hub, conversation_id)
    assert gone.state is OutboxState.FAILED and gone.error.startswith("gave up after 1 attempts")


async def test_the_outbox_loop_sends_as_soon_as_a_reply_is_queued(hub: Hub, agent: Agent):
    async with smtp_sink() as sink:
        inbox = await make_email_inbox(hub, smtp_port=sink.port)
        stop = asyncio.Event()
        loop = asyncio.create_task(hub.outbox.run_forever(stop))
        try:
            await _ticket_with_reply(hub, agent, inbox)
            # Well before the poll interval: the reply's commit woke the sender.
            received = await asyncio.wait_for(sink.next_message(), 3)
            assert received.recipients == ["alice@customer.test"]
        finally:
            stop.set()
            await asyncio.wait_for(loop, 10)


async def test_two_workers_racing_over_one_outbox_send_each_message_once(hub: Hub, agent: Agent):
    async with smtp_sink() as sink:
        inbox = await make_email_inbox(hub, smtp_port=sink.port)
        conversations = []
        for n in range(12):
            ticket = await hub.email.ingest(inbox, inbound(subject=f"question {n}"))
            conversations.append(ticket.conversation_id)
            await hub.conversations.reply(agent, ticket.conversation_id, f"answer {n}")
            await hub.conversations.reply(agent, ticket.conversation_id, f"more {n}")
        clock = MovableClock()
        # Two workers, each with its own engine, as two processes would have.
        other_db = Database(hub.settings.database_url)
        try:
            first = outbox_for(hub, clock, owner="worker-a")
            second = outbox_for(hub, clock, db=other_db, owner="worker-b")
            tried = await asyncio.gather(*(w.deliver_due() for w in (first, second, first)))
        finally:
            await other_db.dispose()
        ids = [r.message["Message-ID"] for r in sink.received]
        assert sum(tried) == 24
        assert len(ids) == 24 and len(set(ids)) == 24
        for conversation_id in conversations:
            details = (await hub.email.details(conversation_id)).values()
            assert [d.state for d in details if d.direction.value == "out"] == [
                OutboxState.SENT,
                OutboxState.SENT,
            ]


async def test_a_dead_workers_claim_expires_and_another_sends(hub: Hub, agent: Agent):
    clock = MovableClock()
    async with smtp_sink() as sink:
        inbox = await make_email_inbox(hub, smtp_port=sink.port)
        conversation_id = await _ticket_with_reply(hub, agent, inbox)
        stuck = StuckTransport()
        dead = outbox_for(hub, clock, owner="dead", transport=stuck)
        sending = asyncio.create_task(dead.deliver_due())
        await stuck.holding.wait()  # claimed, and hanging mid-send
        alive = outbox_for(hub, clock, owner="alive")
        assert await alive.deliver_due() == 0  # the lease still holds
        clock.advance(timedelta(minutes=6))
        assert await alive.deliver_due() == 1
        assert (await _state(hub, conversation_id)).state is OutboxState.SENT
        # The dead worker's late report changes nothing: it no longer holds the claim.
        stuck.ends.set_exception(Permanent("550 late"))
        assert await sending == 1
        assert (await _state(hub, conversation_id)).state is OutboxState.SENT


@pytest.mark.parametrize("answer", ["421 4.7.0 too busy", "452 4.2.2 mailbox full"])
async def test_temporary_refusals_stay_queued(hub: Hub, agent: Agent, answer: str):
    async with smtp_sink() as sink:
        inbox = await make_email_inbox(hub, smtp_port=sink.port)
        conversation_id = await _ticket_with_reply(hub, agent, inbox)
        sink.handler.answer = answer
        await outbox_for(hub, MovableClock()).deliver_due()
        queued = await _state(hub, conversation_id)
        assert queued.state is OutboxState.QUEUED and answer.split()[0] in queued.error
